//! The poll loop on simulated time (tokio's paused clock) against a scripted Discord: the
//! schedule, backoff, rejected-token hour, 429 waits, token rotation and bot isolation, with no
//! network and no real waiting. The real HTTP path is tested in `exporter/tests/it/discord_poller/`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::*;
use dge_core::observation::Body;

#[derive(Clone, Debug)]
enum Step {
    Ok,
    Fail(Failure),
    /// Takes this long, then fails (a timeout as the real client sees it).
    Slow(Duration, Failure),
}

#[derive(Default)]
struct Script {
    gateway: VecDeque<Step>,
    me: VecDeque<Step>,
    remaining: u32,
    /// When each call happened, by route.
    gateway_calls: Vec<Instant>,
    me_calls: Vec<Instant>,
    connects: usize,
    me_name: String,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<Script>>);

impl Fake {
    fn new(name: &str) -> Self {
        Self(Arc::new(Mutex::new(Script {
            remaining: 1000,
            me_name: name.into(),
            ..Default::default()
        })))
    }
    fn script(&self, gateway: impl IntoIterator<Item = Step>) {
        self.0.lock().unwrap().gateway.extend(gateway);
    }
    fn gateway_calls(&self) -> Vec<f64> {
        let s = self.0.lock().unwrap();
        let t0 = s.me_calls.first().copied().unwrap_or_else(Instant::now);
        s.gateway_calls
            .iter()
            .map(|t| (*t - t0).as_secs_f64())
            .collect()
    }
}

async fn play(step: Option<Step>) -> Result<(), Failure> {
    match step.unwrap_or(Step::Ok) {
        Step::Ok => Ok(()),
        Step::Fail(f) => Err(f),
        Step::Slow(d, f) => {
            tokio::time::sleep(d).await;
            Err(f)
        }
    }
}

impl Api for Fake {
    async fn current_user(&self) -> Result<Identity, Failure> {
        let (step, name) = {
            let mut s = self.0.lock().unwrap();
            s.me_calls.push(Instant::now());
            (s.me.pop_front(), s.me_name.clone())
        };
        play(step).await?;
        Ok(Identity { id: 42, name })
    }

    async fn gateway_bot(&self) -> Result<GatewayBot, Failure> {
        let step = {
            let mut s = self.0.lock().unwrap();
            s.gateway_calls.push(Instant::now());
            s.gateway.pop_front()
        };
        play(step).await?;
        let remaining = self.0.lock().unwrap().remaining;
        Ok(GatewayBot {
            total: 1000,
            remaining,
            reset_after_ms: 3_600_000,
            max_concurrency: 1,
            shards: 1,
        })
    }
}

fn counter() -> IntCounterVec {
    IntCounterVec::new(Opts::new("r", "r"), &["bot", "status"]).unwrap()
}

struct Harness {
    rx: mpsc::Receiver<Observation>,
    requests: IntCounterVec,
    _shutdown: watch::Sender<bool>,
}

impl Harness {
    fn drain(&mut self) -> Vec<Observation> {
        let mut out = Vec::new();
        while let Ok(o) = self.rx.try_recv() {
            out.push(o);
        }
        out
    }
    fn count(&self, bot: &str, status: &str) -> u64 {
        self.requests.with_label_values(&[bot, status]).get()
    }
}

fn start(bots: Vec<(Option<&str>, TokenSource, Fake)>, policy: Policy) -> Harness {
    start_with(bots, policy, false)
}

fn start_with(
    bots: Vec<(Option<&str>, TokenSource, Fake)>,
    policy: Policy,
    optional: bool,
) -> Harness {
    let (tx, rx) = mpsc::channel(100_000);
    let (stx, srx) = watch::channel(false);
    let requests = counter();
    for (index, (name, token, fake)) in bots.into_iter().enumerate() {
        let f = fake.clone();
        let p = BotPoller {
            index,
            name: name.map(str::to_string),
            token,
            optional,
            policy,
            connect: move |_: &Token| {
                f.0.lock().unwrap().connects += 1;
                f.clone()
            },
            requests: requests.clone(),
            tx: tx.clone(),
            seed: Some(index as u64 + 1),
            _api: std::marker::PhantomData,
        };
        tokio::spawn(p.run(srx.clone()));
    }
    Harness {
        rx,
        requests,
        _shutdown: stx,
    }
}

const TOKEN_VAR: &str = "DGE_UNIT_TEST_TOKEN_DO_NOT_SET";

fn token_file(dir: &tempfile::TempDir, name: &str, content: &str) -> TokenSource {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    TokenSource::File(p)
}

fn health(obs: &[Observation]) -> Vec<(bool, String)> {
    obs.iter()
        .filter_map(|o| match &o.body {
            Body::SourceHealth(h) => Some((h.up, h.detail.clone())),
            _ => None,
        })
        .collect()
}

fn samples(obs: &[Observation]) -> Vec<(String, u32)> {
    obs.iter()
        .filter_map(|o| match &o.body {
            Body::StartLimit(s) => Some((s.bot.clone(), s.remaining)),
            _ => None,
        })
        .collect()
}

async fn advance(secs: f64) {
    // Small steps so that every timer in between fires in order.
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn steady_polls_are_jittered_around_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("AgentBroker");
    let mut h = start(
        vec![(
            Some("AgentBroker"),
            token_file(&dir, "t", "aaaaaaaaaaaaaaaa.bbbb.cccccccccc"),
            fake.clone(),
        )],
        Policy::default(),
    );
    advance(600.0).await;
    let calls = fake.gateway_calls();
    assert!((10..=12).contains(&calls.len()), "{calls:?}");
    assert_eq!(calls[0], 0.0, "the first sample is taken at start");
    for w in calls.windows(2) {
        let gap = w[1] - w[0];
        assert!((54.0..=66.0).contains(&gap), "gap {gap} in {calls:?}");
    }
    let obs = h.drain();
    assert_eq!(samples(&obs).len(), calls.len());
    assert_eq!(samples(&obs)[0], ("AgentBroker".into(), 1000));
    let hs = health(&obs);
    assert_eq!(hs.len(), 1, "health is sent when it changes: {hs:?}");
    assert!(hs[0].0 && hs[0].1.contains("token of \"AgentBroker\" (id 42)"));
    assert_eq!(fake.0.lock().unwrap().me_calls.len(), 1);
    assert_eq!(h.count("AgentBroker", "200") as usize, calls.len() + 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_exponentially_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("AgentBroker");
    fake.script(std::iter::repeat_n(
        Step::Fail(Failure::Status { status: 500 }),
        6,
    ));
    let mut h = start(
        vec![(
            Some("AgentBroker"),
            token_file(&dir, "t", "aaaaaaaaaaaaaaaa.bbbb.cccccccccc"),
            fake.clone(),
        )],
        Policy::default(),
    );
    advance(3600.0).await;
    let calls = fake.gateway_calls();
    let gaps: Vec<f64> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    // Six failures: steps of 60, 120, 240, 480, 900, 900 s, each jittered to [1/2, 1].
    let steps = [60.0, 120.0, 240.0, 480.0, 900.0, 900.0];
    for (g, s) in gaps.iter().zip(steps) {
        assert!(*g >= s / 2.0 && *g <= s, "gap {g} for step {s}: {gaps:?}");
    }
    // Then back to the interval.
    for g in &gaps[6..] {
        assert!((54.0..=66.0).contains(g), "{gaps:?}");
    }
    assert_eq!(h.count("AgentBroker", "500"), 6);
    let hs = health(&h.drain());
    assert!(!hs[0].0 && hs[0].1.contains("HTTP 500") && hs[0].1.contains("1 failed try"));
    assert!(hs[5].1.contains("6 failed tries"), "{hs:#?}");
    assert!(hs.last().unwrap().0, "{hs:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_tried_once_an_hour_and_retried_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("AgentBroker");
    fake.0.lock().unwrap().me.extend(std::iter::repeat_n(
        Step::Fail(Failure::Rejected {
            status: 401,
            message: Some("401: Unauthorized".into()),
        }),
        5,
    ));
    let src = token_file(&dir, "t", "revokedrevoked.xxxx.revokedrevoked");
    let mut h = start(
        vec![(Some("AgentBroker"), src.clone(), fake.clone())],
        Policy::default(),
    );
    advance(5.0 * 3600.0 - 60.0).await;
    let me: Vec<f64> = {
        let s = fake.0.lock().unwrap();
        s.me_calls
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect()
    };
    // Five hours: the first try and at most one an hour after it, never /gateway/bot.
    assert_eq!(me.len(), 4, "{me:?}");
    assert!(me.iter().all(|g| *g >= 3600.0), "{me:?}");
    assert!(fake.gateway_calls().is_empty());
    assert_eq!(h.count("AgentBroker", "401"), 5);
    let hs = health(&h.drain());
    assert!(
        !hs[0].0
            && hs[0]
                .1
                .contains("token rejected by Discord (401 Unauthorized")
    );
    assert!(hs[0].1.contains("at most one an hour"), "{hs:?}");
    // The Secret is rotated: tried within one poll interval, not an hour.
    let TokenSource::File(p) = &src else {
        unreachable!()
    };
    std::fs::write(p, "freshfreshfresh.yyyy.freshfreshfresh").unwrap();
    advance(70.0).await;
    assert_eq!(fake.gateway_calls().len(), 1);
    assert!(health(&h.drain()).last().unwrap().0);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_wait_for_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("AgentBroker");
    fake.script([
        Step::Ok,
        Step::Fail(Failure::RateLimited {
            retry_after: Some(Duration::from_secs(400)),
        }),
        Step::Fail(Failure::RateLimited { retry_after: None }),
    ]);
    let h = start(
        vec![(
            Some("AgentBroker"),
            token_file(&dir, "t", "aaaaaaaaaaaaaaaa.bbbb.cccccccccc"),
            fake.clone(),
        )],
        Policy::default(),
    );
    advance(1200.0).await;
    let calls = fake.gateway_calls();
    let gaps: Vec<f64> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[1] >= 400.0, "Retry-After honoured: {gaps:?}");
    // Second 429 without a known Retry-After: the backoff step (120 s) jittered.
    assert!((60.0..=120.0).contains(&gaps[2]), "{gaps:?}");
    assert_eq!(h.count("AgentBroker", "429"), 2);
}

#[tokio::test(start_paused = true)]
async fn one_bots_failures_never_stall_another() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Fake::new("Slow");
    slow.script(std::iter::repeat_n(
        Step::Slow(Duration::from_secs(10), Failure::Timeout),
        1000,
    ));
    let rejected = Fake::new("Gone");
    rejected.0.lock().unwrap().me.extend(std::iter::repeat_n(
        Step::Fail(Failure::Rejected {
            status: 401,
            message: None,
        }),
        10,
    ));
    let good = Fake::new("Good");
    let mut h = start(
        vec![
            (
                Some("Slow"),
                token_file(&dir, "a", "slowslowslowslow.aaaa.slowslowslow"),
                slow.clone(),
            ),
            (
                Some("Gone"),
                token_file(&dir, "b", "gonegonegonegone.bbbb.gonegonegone"),
                rejected.clone(),
            ),
            (
                Some("Good"),
                token_file(&dir, "c", "goodgoodgoodgood.cccc.goodgoodgood"),
                good.clone(),
            ),
        ],
        Policy::default(),
    );
    advance(1800.0).await;
    let g = good.gateway_calls();
    assert!((28..=34).contains(&g.len()), "{}", g.len());
    assert!(
        slow.gateway_calls().len() <= 7,
        "{:?}",
        slow.gateway_calls()
    );
    assert!(rejected.gateway_calls().is_empty());
    assert_eq!(h.count("Gone", "401"), 1);
    assert_eq!(
        h.count("Slow", "timeout") as usize,
        slow.gateway_calls().len()
    );
    let obs = h.drain();
    let good_samples = samples(&obs).iter().filter(|s| s.0 == "Good").count();
    assert_eq!(good_samples, g.len());
}

#[tokio::test(start_paused = true)]
async fn the_configured_name_wins_and_a_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("SomeOtherBot");
    let unnamed = Fake::new("Tally");
    let mut h = start(
        vec![
            (
                Some("AgentBroker"),
                token_file(&dir, "t", "aaaaaaaaaaaaaaaa.bbbb.cccccccccc"),
                fake,
            ),
            (
                None,
                token_file(&dir, "u", "tallytallytally.dddd.tallytallytally"),
                unnamed,
            ),
        ],
        Policy::default(),
    );
    advance(5.0).await;
    let obs = h.drain();
    let mut s = samples(&obs);
    s.sort();
    assert_eq!(s, [("AgentBroker".into(), 1000), ("Tally".into(), 1000)]);
    let hs: Vec<(String, String)> = obs
        .iter()
        .filter_map(|o| match &o.body {
            Body::SourceHealth(h) => Some((h.source.clone(), h.detail.clone())),
            _ => None,
        })
        .collect();
    let ab = hs.iter().find(|h| h.0 == "discord:AgentBroker").unwrap();
    assert!(
        ab.1.contains("MISMATCH: configured as \"AgentBroker\" but the token belongs to \"SomeOtherBot\" (id 42)"),
        "{hs:?}"
    );
    assert!(hs.iter().any(|h| h.0 == "discord:bot#2"), "{hs:?}");
    assert_eq!(h.count("AgentBroker", "200"), 2);
    assert_eq!(h.count("Tally", "200"), 2);
}

#[tokio::test(start_paused = true)]
async fn no_token_means_no_request_until_it_appears() {
    let fake = Fake::new("AgentBroker");
    // SAFETY-free: the variable is unique to this test and never set elsewhere.
    let mut h = start(
        vec![(
            Some("AgentBroker"),
            TokenSource::Env(TOKEN_VAR.into()),
            fake.clone(),
        )],
        Policy::default(),
    );
    advance(300.0).await;
    assert_eq!(fake.0.lock().unwrap().connects, 0);
    assert!(fake.gateway_calls().is_empty());
    let hs = health(&h.drain());
    assert_eq!(hs.len(), 1, "{hs:?}");
    assert!(!hs[0].0 && hs[0].1.contains(TOKEN_VAR) && hs[0].1.contains("is not set"));
}

/// Every health report: (up, disabled, detail).
fn health_states(obs: &[Observation]) -> Vec<(bool, bool, String)> {
    obs.iter()
        .filter_map(|o| match &o.body {
            Body::SourceHealth(h) => Some((h.up, h.disabled, h.detail.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_absent_optional_token_is_disabled_until_it_appears_and_again_when_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let fake = Fake::new("AgentBroker");
    let mut h = start_with(
        vec![(
            Some("AgentBroker"),
            TokenSource::File(path.clone()),
            fake.clone(),
        )],
        Policy::default(),
        true,
    );
    advance(150.0).await;
    let hs = health_states(&h.drain());
    assert_eq!(hs.len(), 1, "reported once, not every check: {hs:?}");
    assert!(!hs[0].0 && hs[0].1 && hs[0].2.contains("absent"), "{hs:?}");
    assert_eq!(
        fake.0.lock().unwrap().connects,
        0,
        "no client without a token"
    );

    // The Secret appears: polled within one interval, up.
    std::fs::write(&path, "aaaaaaaaaaaaaaaa.bbbb.cccccccccc").unwrap();
    advance(61.0).await;
    let obs = h.drain();
    assert_eq!(samples(&obs), [("AgentBroker".to_string(), 1000)]);
    let hs = health_states(&obs);
    assert!(
        hs.last().is_some_and(|(up, disabled, _)| *up && !disabled),
        "{hs:?}"
    );

    // It is deleted again: disabled again, not down.
    std::fs::remove_file(&path).unwrap();
    advance(70.0).await;
    let hs = health_states(&h.drain());
    assert!(
        hs.last().is_some_and(|(up, disabled, _)| !up && *disabled),
        "{hs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_optional_token_that_is_there_but_unusable_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new("AgentBroker");
    let mut h = start_with(
        vec![(
            Some("AgentBroker"),
            token_file(&dir, "t", "  \n"),
            fake.clone(),
        )],
        Policy::default(),
        true,
    );
    advance(5.0).await;
    let hs = health_states(&h.drain());
    assert!(
        !hs[0].0 && !hs[0].1 && hs[0].2.contains("is empty"),
        "{hs:?}"
    );
}
