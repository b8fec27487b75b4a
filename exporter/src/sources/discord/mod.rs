//! Discord's own count: per configured bot, `GET /users/@me` once (who the token belongs to),
//! then `GET /gateway/bot` every poll interval -> `StartLimit` observations (the engine turns
//! drops of `remaining` into `identifies_total{seen_by="discord"}`, `unattributed_identify`
//! and `start_limit_low`). Failures become `SourceHealth` observations (`source_up`,
//! `/healthz`) and `discord_gateway_exporter_discord_requests_total{bot,status}` counts.
//!
//! - [`token`]: tokens from a file or an environment variable, never printable.
//! - [`backoff`]: the pure schedule (interval, jitter, backoff, rejected-token hour).
//! - [`api`]: the two calls, on twilight-http, each bounded by one timeout.
//! - [`poller`]: one task per bot.
//! - [`config`]: its section, `[[bot]]` and `[discord]`.

pub mod api;
pub mod backoff;
pub mod config;
pub mod poller;
pub mod token;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use api::{Api, Endpointing, Failure, GatewayBot, Identity, TwilightApi};
pub use backoff::{Outcome, Policy, Schedule};
pub use poller::BotPoller;
pub use token::{Token, TokenSource};

pub use config::{BotConfig, DiscordConfig, DiscordSection};

use crate::self_metrics::SelfMetrics;
use crate::sources::{Source, SourceContext};
use dge_core::observation::Observation;

/// How the pollers talk to Discord and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub policy: Policy,
    pub endpointing: Endpointing,
    /// Bound on each call: permit, request and body together.
    pub request_timeout: Duration,
}

impl Settings {
    /// From the validated `[discord]`.
    pub fn from_config(d: &DiscordConfig) -> Self {
        Self {
            policy: Policy {
                interval: Duration::from_secs(d.poll_interval_secs),
                jitter: 0.1,
                backoff_max: Duration::from_secs(d.backoff_max_secs.max(d.poll_interval_secs)),
                rejected_retry: Duration::from_secs(d.rejected_retry_secs),
            },
            endpointing: Endpointing {
                proxy: d.proxy.clone(),
                use_http: d.use_http,
            },
            request_timeout: Duration::from_secs(d.request_timeout_secs),
        }
    }
}

/// One configured bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSpec {
    pub name: Option<String>,
    pub token: TokenSource,
    /// An absent token disables this bot's source instead of failing it.
    pub optional: bool,
}

impl BotSpec {
    /// From a validated `[[bot]]` table.
    pub fn from_config(b: &BotConfig) -> Self {
        let token = match (&b.token_file, &b.token_env) {
            (Some(f), _) => TokenSource::File(f.clone()),
            (None, Some(v)) => TokenSource::Env(v.clone()),
            (None, None) => TokenSource::Env(String::new()),
        };
        Self {
            name: b.name.clone(),
            token,
            optional: b.optional,
        }
    }
}

/// Starts one poller task per bot on the real Discord client. Call inside the runtime.
pub fn spawn(
    bots: &[BotSpec],
    settings: &Settings,
    tx: mpsc::Sender<Observation>,
    metrics: &SelfMetrics,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    bots.iter()
        .enumerate()
        .map(|(index, b)| {
            let to = settings.endpointing.clone();
            let timeout = settings.request_timeout;
            let poller = BotPoller {
                index,
                name: b.name.clone(),
                token: b.token.clone(),
                optional: b.optional,
                policy: settings.policy,
                connect: move |t: &Token| TwilightApi::new(t, &to, timeout),
                requests: metrics.discord_requests.clone(),
                tx: tx.clone(),
                seed: None,
                _api: std::marker::PhantomData,
            };
            if b.optional && b.token.is_absent() {
                tracing::info!(
                    source = %poller.source_name(), token = %b.token,
                    "Discord source disabled: the optional {} is absent; it starts polling \
                     when the token appears",
                    b.token
                );
            } else {
                tracing::info!(
                    source = %poller.source_name(), token = %b.token,
                    interval_s = settings.policy.interval.as_secs_f64(),
                    "polling Discord's session start limit"
                );
            }
            tokio::spawn(poller.run(shutdown.clone()))
        })
        .collect()
}

/// The `[[bot]]` pollers as one source. Not part of readiness: Discord being down must not
/// keep the exporter unready.
pub struct DiscordSource {
    bots: Vec<BotSpec>,
    settings: Settings,
}

impl DiscordSource {
    /// `None` without any `[[bot]]` (that view is off; every other detector works).
    pub fn new(bots: &[BotConfig], discord: &DiscordConfig) -> Option<Self> {
        if bots.is_empty() {
            tracing::info!(
                "no [[bot]] configured: Discord's own count (unattributed_identify, \
                 start_limit_low) is off; every other detector works"
            );
            return None;
        }
        Some(Self {
            bots: bots.iter().map(BotSpec::from_config).collect(),
            settings: Settings::from_config(discord),
        })
    }
}

impl Source for DiscordSource {
    fn name(&self) -> &str {
        "discord"
    }

    fn spawn(self: Box<Self>, ctx: SourceContext) -> JoinHandle<()> {
        // `ctx.ready` is dropped here: counted as ready at once.
        let tasks = spawn(
            &self.bots,
            &self.settings,
            ctx.tx,
            &ctx.metrics,
            ctx.shutdown,
        );
        tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        })
    }
}

#[cfg(test)]
mod tests;
