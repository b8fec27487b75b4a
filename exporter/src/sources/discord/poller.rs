//! One bot's poll loop: read the token, learn who it belongs to (`GET /users/@me`), then ask
//! `GET /gateway/bot` on the [`Schedule`], turning answers into `StartLimit` observations and
//! failures into `SourceHealth` observations and request counts. Each bot runs its own task,
//! so one bot's failures never delay another's polling.

use std::time::Duration;

use chrono::Utc;
use prometheus::IntCounterVec;
use tokio::sync::{mpsc, watch};

use super::api::{Api, Failure, GatewayBot, Identity};
use super::backoff::{Outcome, Policy, Schedule};
use super::token::{Token, TokenSource};
use crate::sources::Health;
use dge_core::observation::{Body, Observation, StartLimit};

/// Everything one bot's poller needs. `connect` builds an [`Api`] for a token (a fresh one after
/// a rejection or a rotation).
pub struct BotPoller<A, M> {
    /// Position in the config, for a bot without a name.
    pub index: usize,
    /// The configured name: the `bot` label when set.
    pub name: Option<String>,
    pub token: TokenSource,
    /// An absent token disables the source (no `source_up`, no alert) instead of failing it.
    pub optional: bool,
    pub policy: Policy,
    pub connect: M,
    /// `discord_gateway_exporter_discord_requests_total{bot,status}`.
    pub requests: IntCounterVec,
    pub tx: mpsc::Sender<Observation>,
    /// Seed of the jitter draws (`None`: random).
    pub seed: Option<u64>,
    pub _api: std::marker::PhantomData<fn() -> A>,
}

/// What the loop remembers between tries.
struct State<A> {
    api: Option<(Token, A)>,
    identity: Option<Identity>,
    /// The token whose rejection was already logged (logged once per token).
    rejected_logged: Option<Token>,
    /// The streak of failures was already logged at warn level.
    failure_logged: bool,
    mismatch_logged: bool,
}

impl<A, M> BotPoller<A, M>
where
    A: Api,
    M: Fn(&Token) -> A + Send + 'static,
{
    /// `discord:<name>`, or `discord:bot#N` for a bot without a configured name.
    pub fn source_name(&self) -> String {
        format!("discord:{}", self.fallback_label())
    }

    fn fallback_label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("bot#{}", self.index + 1))
    }

    /// The `bot` label: the configured name wins; else the token's bot once known.
    fn label(&self, identity: Option<&Identity>) -> String {
        match (&self.name, identity) {
            (Some(n), _) => n.clone(),
            (None, Some(i)) => i.name.clone(),
            (None, None) => self.fallback_label(),
        }
    }

    /// Polls until `shutdown` turns true (or the engine goes away).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let source = self.source_name();
        let mut sched = Schedule::new(self.policy);
        let mut rng = match self.seed {
            Some(s) => fastrand::Rng::with_seed(s),
            None => fastrand::Rng::new(),
        };
        let mut st = State {
            api: None,
            identity: None,
            rejected_logged: None,
            failure_logged: false,
            mismatch_logged: false,
        };
        // The poller logs its failures itself (once per streak): the detail changes every try.
        let mut health = Health::new(source.clone(), self.tx.clone()).quiet();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let token = match self.token.load() {
                Ok(t) => t,
                Err(_) if self.optional && self.token.is_absent() => {
                    let detail = format!(
                        "disabled: the optional {} is absent; polling starts when it appears \
                         (checked every {} s)",
                        self.token,
                        self.policy.interval.as_secs_f64()
                    );
                    if !health.is_disabled() && health.last().is_some() {
                        tracing::info!(source = %source, "{detail}");
                    }
                    st.api = None;
                    if !health.disabled(detail).await {
                        return;
                    }
                    if self.wait(self.policy.interval, None, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    let detail = format!("{e}; no request made until it can be read");
                    if health.last().is_none_or(|(_, d)| d != detail) {
                        tracing::warn!(source = %source, "{detail}");
                    }
                    if !health.report(false, detail).await {
                        return;
                    }
                    if self.wait(self.policy.interval, None, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            if health.is_disabled() {
                tracing::info!(source = %source, "the optional {} appeared; polling", self.token);
            }
            if st.api.as_ref().is_none_or(|(t, _)| *t != token) {
                if st.api.is_some() {
                    tracing::info!(source = %source, "token changed; starting over");
                    sched.reset();
                }
                st.identity = None;
                st.api = Some((token.clone(), (self.connect)(&token)));
            }
            let result = tokio::select! {
                r = self.attempt(&mut st) => r,
                _ = shutdown.changed() => return,
            };
            let label = self.label(st.identity.as_ref());
            let (outcome, up, detail) = match result {
                Ok(g) => {
                    tracing::debug!(
                        bot = %label, remaining = g.remaining, total = g.total,
                        reset_after_ms = g.reset_after_ms, "session start limit sampled"
                    );
                    let o = Observation {
                        at: Utc::now(),
                        source: source.as_str().into(),
                        body: Body::StartLimit(StartLimit {
                            bot: label.clone(),
                            total: g.total,
                            remaining: g.remaining,
                            reset_after_ms: g.reset_after_ms,
                            max_concurrency: g.max_concurrency,
                            recommended_shards: g.shards,
                        }),
                    };
                    if self.tx.send(o).await.is_err() {
                        return;
                    }
                    if st.failure_logged || st.rejected_logged.is_some() {
                        tracing::info!(source = %source, "Discord answers again");
                    }
                    st.failure_logged = false;
                    st.rejected_logged = None;
                    (Outcome::Ok, true, self.ok_detail(st.identity.as_ref()))
                }
                Err(f) => {
                    let outcome = match &f {
                        Failure::Rejected { .. } => Outcome::Rejected,
                        Failure::RateLimited { retry_after } => Outcome::RateLimited {
                            retry_after: *retry_after,
                        },
                        Failure::Connection => Outcome::Unreachable,
                        _ => Outcome::Failed,
                    };
                    (outcome, false, f.describe())
                }
            };
            let delay = sched.next(outcome, rng.f64());
            let next_at = (Utc::now()
                + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX))
            .format("%Y-%m-%dT%H:%M:%SZ");
            let mut watch_token = None;
            let detail = match outcome {
                Outcome::Ok => detail,
                Outcome::Rejected => {
                    if st.rejected_logged.as_ref() != Some(&token) {
                        tracing::warn!(
                            bot = %label, source = %source,
                            "{detail}; polling this bot at most once an hour from now on, \
                             or as soon as its {} changes",
                            self.token
                        );
                        st.rejected_logged = Some(token.clone());
                    } else {
                        tracing::debug!(bot = %label, "{detail} (again)");
                    }
                    // A fresh client next time: twilight remembers a 401 and would not retry.
                    st.api = None;
                    watch_token = Some(token.clone());
                    format!(
                        "{detail}; next try at {next_at} (at most one an hour) or when the {} changes",
                        self.token
                    )
                }
                Outcome::RateLimited { .. } | Outcome::Failed | Outcome::Unreachable => {
                    let n = sched.failures();
                    if sched.starting() {
                        // A proxy sidecar still starting: retried within seconds, no warning yet.
                        tracing::info!(
                            bot = %label, source = %source, failures = n,
                            "{detail}; retrying in {:.0} s (start-up)", delay.as_secs_f64()
                        );
                    } else if !st.failure_logged {
                        tracing::warn!(bot = %label, source = %source, "{detail}; backing off");
                        st.failure_logged = true;
                    } else {
                        tracing::debug!(bot = %label, failures = n, "{detail}");
                    }
                    format!(
                        "{detail}; {n} failed tr{} in a row; next try at {next_at}",
                        if n == 1 { "y" } else { "ies" }
                    )
                }
            };
            if !health.report(up, detail).await {
                return;
            }
            if self.wait(delay, watch_token.as_ref(), &mut shutdown).await {
                return;
            }
        }
    }

    /// `GET /users/@me` while the token's bot is unknown, then `GET /gateway/bot`.
    async fn attempt(&self, st: &mut State<A>) -> Result<GatewayBot, Failure> {
        let (_, api) = st.api.as_ref().expect("a client was just built");
        if st.identity.is_none() {
            let r = api.current_user().await;
            self.count(r.as_ref().ok(), &r);
            let id = r?;
            if let Some(n) = &self.name
                && !n.eq_ignore_ascii_case(&id.name)
                && !st.mismatch_logged
            {
                tracing::warn!(
                    bot = %n, token_bot = %id.name, token_bot_id = id.id,
                    "the token of [[bot]] {n:?} belongs to Discord bot {:?} (id {}): \
                     samples are labelled {n:?} as configured; check that the right token is mounted",
                    id.name, id.id
                );
                st.mismatch_logged = true;
            }
            st.identity = Some(id);
        }
        let (_, api) = st.api.as_ref().expect("a client was just built");
        let r = api.gateway_bot().await;
        self.count(st.identity.as_ref(), &r);
        r
    }

    fn count<T>(&self, identity: Option<&Identity>, r: &Result<T, Failure>) {
        let status = match r {
            Ok(_) => "200".to_string(),
            Err(f) => f.label(),
        };
        self.requests
            .with_label_values(&[self.label(identity).as_str(), status.as_str()])
            .inc();
    }

    fn ok_detail(&self, identity: Option<&Identity>) -> String {
        let every = format!(
            "polling GET /gateway/bot every {} s",
            self.policy.interval.as_secs_f64()
        );
        match (identity, &self.name) {
            (Some(i), Some(n)) if !n.eq_ignore_ascii_case(&i.name) => format!(
                "{every}; MISMATCH: configured as {n:?} but the token belongs to {:?} (id {})",
                i.name, i.id
            ),
            (Some(i), _) => format!("{every}; token of {:?} (id {})", i.name, i.id),
            (None, _) => every,
        }
    }

    /// Sleeps `delay`; while `watch_token` is set, re-reads the token every poll interval and
    /// stops early when it changed. True on shutdown.
    async fn wait(
        &self,
        delay: Duration,
        watch_token: Option<&Token>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                return false;
            }
            let chunk = match watch_token {
                Some(_) => (until - now).min(self.policy.interval),
                None => until - now,
            };
            tokio::select! {
                _ = tokio::time::sleep(chunk) => {}
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return true;
                    }
                }
            }
            if let Some(t) = watch_token
                && self.token.load().is_ok_and(|n| n != *t)
            {
                return false;
            }
        }
    }
}
