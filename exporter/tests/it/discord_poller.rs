//! The Discord start-limit poller over real HTTP: twilight-http pointed (`proxy`, `use_http`) at
//! a local fake Discord on 127.0.0.1 that counts requests per route and answers from a script.
//!
//! In-process tests run the daemon's pipeline (pollers -> channel -> engine task -> shared
//! state that `/metrics` and `/healthz` render) with short intervals; the last test runs the
//! real binary (`run --record`, RUST_LOG=debug) and checks that no token appears in anything it
//! writes, and that `replay` of its recording gives the live findings.

use crate::support::fake_discord;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dge::daemon::{Clock, EngineTask};
use dge::sinks::http::Shared;
use dge::sources::discord::{self, BotSpec, Endpointing, Policy, Settings, TokenSource};
use dge_core::engine::{Engine, EngineConfig};
use dge_core::observation::Observation;
use fake_discord::{FakeDiscord, Reply};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

const TOK_A: &str = "MTExMTExMTExMTExMTExMTEx.AAAAAA.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOK_B: &str = "MjIyMjIyMjIyMjIyMjIyMjIy.BBBBBB.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOK_GONE: &str = "MzMzMzMzMzMzMzMzMzMzMzMz.CCCCCC.cccccccccccccccccccccccccccccccccccccc";
const TOK_FORBIDDEN: &str =
    "NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0.DDDDDD.dddddddddddddddddddddddddddddddddddddd";

/// The daemon minus its listener and signals: pollers, engine task, shared state.
struct Daemon {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(bots: &[(&str, &str)], settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<BotSpec> = bots
            .iter()
            .map(|(name, token)| {
                let p = dir.path().join(format!("{name}.token"));
                std::fs::write(&p, format!("{token}\n")).unwrap();
                BotSpec {
                    name: Some(name.to_string()),
                    token: TokenSource::File(p),
                }
            })
            .collect();
        let shared = Shared::new();
        let (tx, rx) = mpsc::channel::<Observation>(4096);
        let (stx, srx) = watch::channel(false);
        let task = EngineTask {
            engine: Engine::new(EngineConfig::default()),
            shared: shared.clone(),
            clock: Clock::Real,
            tick: Duration::from_millis(50),
            record: None,
            on_change: Box::new(|_| {}),
            traces: None,
        };
        tokio::spawn(task.run(rx, srx.clone()));
        discord::spawn(&specs, &settings, tx, &shared.own, srx);
        Self {
            shared,
            shutdown: stx,
            _dir: dir,
        }
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric(&self.shared.metrics.render(), name, labels)
    }

    fn requests(&self, bot: &str, status: &str) -> u64 {
        self.metric(
            "discord_gateway_exporter_discord_requests_total",
            &[("bot", bot), ("status", status)],
        )
        .unwrap_or(0.0) as u64
    }

    fn up(&self, bot: &str) -> Option<f64> {
        self.metric(
            "discord_gateway_exporter_source_up",
            &[("source", &format!("discord:{bot}"))],
        )
    }

    /// `/healthz` detail of a bot's source: (up, detail).
    fn health(&self, bot: &str) -> Option<(bool, String)> {
        self.shared
            .sources
            .read()
            .unwrap()
            .get(&format!("discord:{bot}"))
            .cloned()
    }

    fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// The value of the first sample of `name` carrying all `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn settings(fake: &FakeDiscord, interval_ms: u64, timeout_ms: u64) -> Settings {
    let interval = Duration::from_millis(interval_ms);
    Settings {
        policy: Policy {
            interval,
            jitter: 0.1,
            backoff_max: interval * 8,
            rejected_retry: Duration::from_secs(3600),
        },
        endpointing: Endpointing {
            proxy: Some(fake.addr.to_string()),
            use_http: true,
        },
        request_timeout: Duration::from_millis(timeout_ms),
    }
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gaps(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_samples_and_a_window_reset() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    let s = |remaining, reset_after_ms| Reply::Sample {
        remaining,
        reset_after_ms,
    };
    fake.script(
        TOK_A,
        [
            s(999, 60_000),
            s(998, 59_000),
            s(997, 58_000),
            // The window reset: back to total, not a negative drop.
            s(1000, 86_400_000),
            s(999, 86_390_000),
        ],
    );
    let t0 = Instant::now();
    let d = Daemon::start(&[("AgentBroker", TOK_A)], settings(&fake, 200, 1000));
    wait_for("7 polls", Duration::from_secs(10), || {
        fake.count(TOK_A, "gateway/bot") >= 7
    })
    .await;
    d.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = |n: &str| d.metric(n, &[("bot", "AgentBroker")]);
    // The gauge of `total` is named without `_total` (promtool rejects it on a gauge).
    assert_eq!(m("discord_session_start_limit"), Some(1000.0));
    assert_eq!(m("discord_session_start_limit_remaining"), Some(999.0));
    assert_eq!(m("discord_session_start_limit_max_concurrency"), Some(1.0));
    assert_eq!(m("discord_gateway_recommended_shards"), Some(2.0));
    assert_eq!(
        m("discord_session_start_limit_reset_after_seconds"),
        Some(86390.0)
    );
    assert_eq!(
        d.metric(
            "discord_gateway_identifies_total",
            &[("bot", "AgentBroker"), ("seen_by", "discord")]
        ),
        Some(3.0),
        "999->998->997, reset to 1000, ->999: three identifies"
    );
    let polls = fake.count(TOK_A, "gateway/bot") as u64;
    assert_eq!(fake.count(TOK_A, "users/@me"), 1, "identity asked once");
    assert_eq!(d.requests("AgentBroker", "200"), polls + 1);
    assert_eq!(d.up("AgentBroker"), Some(1.0));
    let (up, detail) = d.health("AgentBroker").unwrap();
    assert!(
        up && detail.contains("token of \"AgentBroker\" (id 111)"),
        "{detail}"
    );
    // Steady polling: every gap near the 200 ms interval (jitter ±10%, plus scheduling).
    let g = gaps(&fake.times(TOK_A, "gateway/bot", t0));
    assert!(g.iter().all(|g| (0.17..0.5).contains(g)), "{g:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tokens_back_off_to_an_hour_and_never_stall_another_bot() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.rejected(TOK_GONE);
    fake.bot(TOK_FORBIDDEN, "Forbidden", 444);
    fake.script(
        TOK_FORBIDDEN,
        [Reply::Json(
            403,
            r#"{"message": "Missing Access", "code": 50001}"#.into(),
        )],
    );
    let d = Daemon::start(
        &[
            ("Gone", TOK_GONE),
            ("Forbidden", TOK_FORBIDDEN),
            ("AgentBroker", TOK_A),
        ],
        settings(&fake, 200, 1000),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The rejected tokens: one try each, then silence (the next is an hour away).
    assert_eq!(fake.count(TOK_GONE, "users/@me"), 1);
    assert_eq!(fake.count(TOK_GONE, "gateway/bot"), 0);
    assert_eq!(fake.count(TOK_FORBIDDEN, "users/@me"), 1);
    assert_eq!(fake.count(TOK_FORBIDDEN, "gateway/bot"), 1);
    // Meanwhile the healthy bot polled on schedule.
    let good = fake.count(TOK_A, "gateway/bot");
    assert!(good >= 11, "healthy bot polled {good} times in 3 s");
    assert_eq!(d.requests("Gone", "401"), 1);
    assert_eq!(d.requests("Forbidden", "403"), 1);
    assert_eq!(d.up("Gone"), Some(0.0));
    assert_eq!(d.up("Forbidden"), Some(0.0));
    assert_eq!(d.up("AgentBroker"), Some(1.0));
    let (_, gone) = d.health("Gone").unwrap();
    assert!(
        gone.contains("token rejected by Discord (401 Unauthorized")
            && gone.contains("at most one an hour"),
        "{gone}"
    );
    // The fake echoed the token in its error message; the exporter scrubbed it.
    assert!(
        gone.contains("<redacted>") && !gone.contains(TOK_GONE),
        "{gone}"
    );
    let (_, forbidden) = d.health("Forbidden").unwrap();
    assert!(forbidden.contains("403 Forbidden"), "{forbidden}");
    let text = d.shared.metrics.render();
    assert!(!text.contains(TOK_GONE) && !text.contains(TOK_A));
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_honour_retry_after_and_twilight_does_not_hammer() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.bot(TOK_B, "Tally", 222);
    let ok = Reply::Sample {
        remaining: 1000,
        reset_after_ms: 86_000_000,
    };
    // A: a bucket 429 (Retry-After 2 s, X-RateLimit-Scope: shared).
    fake.script(
        TOK_A,
        [
            ok.clone(),
            Reply::RateLimited {
                retry_after_secs: 2,
            },
        ],
    );
    // B: an unscoped 429 (as for the global limit), which twilight would retry at once.
    fake.script(
        TOK_B,
        [
            ok.clone(),
            Reply::RateLimitedGlobal {
                retry_after_secs: 1,
            },
        ],
    );
    let t0 = Instant::now();
    let d = Daemon::start(
        &[("AgentBroker", TOK_A), ("Tally", TOK_B)],
        settings(&fake, 200, 1000),
    );
    wait_for("A's 429", Duration::from_secs(5), || {
        fake.statuses(TOK_A, "gateway/bot").contains(&429)
    })
    .await;
    wait_for("A down", Duration::from_secs(3), || {
        d.health("AgentBroker").is_some_and(|h| !h.0)
    })
    .await;
    let (_, detail) = d.health("AgentBroker").unwrap();
    assert!(detail.contains("rate limited by Discord (429"), "{detail}");
    wait_for("A polling again", Duration::from_secs(8), || {
        fake.count(TOK_A, "gateway/bot") >= 5
    })
    .await;
    let a = fake.times(TOK_A, "gateway/bot", t0);
    let st = fake.statuses(TOK_A, "gateway/bot");
    let i = st.iter().position(|s| *s == 429).unwrap();
    assert_eq!(st.iter().filter(|s| **s == 429).count(), 1, "{st:?}");
    assert!(
        a[i + 1] - a[i] >= 2.0,
        "next request {:.2} s after the 429 (Retry-After 2 s): {a:?}",
        a[i + 1] - a[i]
    );
    // B: exactly one request got the 429 (no burst of immediate retries), then a pause.
    let b = fake.times(TOK_B, "gateway/bot", t0);
    let sb = fake.statuses(TOK_B, "gateway/bot");
    let j = sb.iter().position(|s| *s == 429).unwrap();
    assert_eq!(sb.iter().filter(|s| **s == 429).count(), 1, "{sb:?}");
    assert!(b[j + 1] - b[j] >= 0.18, "{b:?}");
    assert_eq!(d.requests("AgentBroker", "429"), 1);
    assert_eq!(d.requests("Tally", "429"), 1);
    wait_for("A up again", Duration::from_secs(3), || {
        d.up("AgentBroker") == Some(1.0)
    })
    .await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_back_off_exponentially_with_jitter() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    let e500 = Reply::Json(
        500,
        r#"{"message": "500: Internal Server Error", "code": 0}"#.into(),
    );
    fake.script(TOK_A, std::iter::repeat_n(e500, 6));
    let t0 = Instant::now();
    let d = Daemon::start(&[("AgentBroker", TOK_A)], settings(&fake, 200, 1000));
    wait_for("the first 500", Duration::from_secs(3), || {
        d.health("AgentBroker").is_some()
    })
    .await;
    let (up, detail) = d.health("AgentBroker").unwrap();
    assert!(!up && detail.contains("HTTP 500"), "{detail}");
    wait_for("recovery", Duration::from_secs(15), || {
        fake.count(TOK_A, "gateway/bot") >= 9
    })
    .await;
    let t = fake.times(TOK_A, "gateway/bot", t0);
    let g = gaps(&t);
    // Steps 0.2, 0.4, 0.8, 1.6, 1.6 (cap), 1.6 s, each drawn in [step/2, step].
    for (k, step) in [0.2, 0.4, 0.8, 1.6, 1.6, 1.6].iter().enumerate() {
        assert!(
            g[k] >= step / 2.0 - 0.01 && g[k] <= step + 0.25,
            "gap {k} = {:.3} for step {step}: {g:?}",
            g[k]
        );
    }
    assert!(g[6] < 0.5, "back to the interval after recovery: {g:?}");
    assert_eq!(d.requests("AgentBroker", "500"), 6);
    wait_for("up again", Duration::from_secs(2), || {
        d.up("AgentBroker") == Some(1.0)
    })
    .await;
    println!("measured: 500 x6 then ok; gaps between requests at the fake: {g:.2?}");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_that_never_finish_time_out_without_stalling_others() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.bot(TOK_B, "Tally", 222);
    fake.script(TOK_A, [Reply::HangMidBody, Reply::Hang]);
    let t0 = Instant::now();
    let d = Daemon::start(
        &[("AgentBroker", TOK_A), ("Tally", TOK_B)],
        settings(&fake, 200, 1000),
    );
    wait_for("A recovers", Duration::from_secs(10), || {
        fake.count(TOK_A, "gateway/bot") >= 4
    })
    .await;
    let a = fake.times(TOK_A, "gateway/bot", t0);
    let g = gaps(&a);
    // Each hung request is abandoned at the 1 s timeout, then backed off.
    assert!(g[0] >= 1.0 + 0.1 - 0.01, "{g:?}");
    assert!(g[1] >= 1.0 + 0.2 - 0.01, "{g:?}");
    assert_eq!(d.requests("AgentBroker", "timeout"), 2);
    // Tally kept its schedule while AgentBroker hung.
    let during = fake
        .times(TOK_B, "gateway/bot", t0)
        .iter()
        .filter(|t| **t >= a[0] && **t <= a[2])
        .count();
    assert!(
        during >= 8,
        "Tally polled {during} times during A's 2 hangs"
    );
    wait_for("A up", Duration::from_secs(2), || {
        d.up("AgentBroker") == Some(1.0)
    })
    .await;
    println!(
        "measured: hang-mid-body then hang; A's gaps {g:.2?}; Tally polled {during} times meanwhile"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_truncated_json_back_off() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.script(
        TOK_A,
        [
            Reply::Garbage,
            Reply::Truncated,
            Reply::Json(200, r#"{"url": "wss://gateway.discord.gg"}"#.into()),
        ],
    );
    let t0 = Instant::now();
    let d = Daemon::start(&[("AgentBroker", TOK_A)], settings(&fake, 200, 1000));
    wait_for("the first failure", Duration::from_secs(3), || {
        d.health("AgentBroker").is_some()
    })
    .await;
    let (up, detail) = d.health("AgentBroker").unwrap();
    assert!(!up && detail.contains("not the expected JSON"), "{detail}");
    wait_for("recovery", Duration::from_secs(10), || {
        fake.count(TOK_A, "gateway/bot") >= 5
    })
    .await;
    let g = gaps(&fake.times(TOK_A, "gateway/bot", t0));
    assert!(g[0] >= 0.09 && g[1] >= 0.19 && g[2] >= 0.39, "{g:?}");
    assert_eq!(d.requests("AgentBroker", "malformed"), 3);
    wait_for("up", Duration::from_secs(2), || {
        d.up("AgentBroker") == Some(1.0)
    })
    .await;
    assert_eq!(
        d.metric(
            "discord_session_start_limit_remaining",
            &[("bot", "AgentBroker")]
        ),
        Some(1000.0)
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_backs_off() {
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut s = settings_for(addr.to_string(), 200, 1000);
    s.policy.backoff_max = Duration::from_millis(1600);
    let d = Daemon::start(&[("AgentBroker", TOK_A)], s);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = d.requests("AgentBroker", "connection_error");
    // Steady polling would have made 15 tries; backoff makes 4 to 6.
    assert!((3..=7).contains(&n), "{n} tries in 3 s");
    assert_eq!(d.up("AgentBroker"), Some(0.0));
    let (_, detail) = d.health("AgentBroker").unwrap();
    assert!(detail.contains("could not reach Discord"), "{detail}");
    println!("measured: connection refused: {n} tries in 3 s (200 ms interval)");
    d.stop();
}

fn settings_for(proxy: String, interval_ms: u64, timeout_ms: u64) -> Settings {
    let interval = Duration::from_millis(interval_ms);
    Settings {
        policy: Policy {
            interval,
            jitter: 0.1,
            backoff_max: interval * 8,
            rejected_retry: Duration::from_secs(3600),
        },
        endpointing: Endpointing {
            proxy: Some(proxy),
            use_http: true,
        },
        request_timeout: Duration::from_millis(timeout_ms),
    }
}

// ---------------------------------------------------------------------------------------------
// Acceptance 2: unexplained drops vs a visible rollout, end to end through `replay`.

const T0: &str = "2026-04-19T04:00:00Z";

fn ts(secs: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).unwrap();
    (t0 + chrono::TimeDelta::seconds(secs))
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// An openab log line as `kubectl logs --timestamps` shows it.
fn openab(secs: i64, what: &str) -> String {
    let t = ts(secs);
    match what {
        "connected" => {
            format!("{t} {t}  INFO openab::discord: discord bot connected user=AgentBroker\n")
        }
        _ => format!(
            "{t} {t}  INFO dispatch{{channel=1496011987654321102 adapter=\"discord\"}}: openab::dispatch: batch dispatched thread_key=discord:1 events_per_dispatch=1\n"
        ),
    }
}

fn sample_line(secs: i64, remaining: u32) -> String {
    format!(
        "{{\"at\": \"{}\", \"bot\": \"AgentBroker\", \"gateway_bot\": {{\"url\": \"wss://gateway.discord.gg\", \"shards\": 1, \"session_start_limit\": {{\"total\": 1000, \"remaining\": {remaining}, \"reset_after\": 80000000, \"max_concurrency\": 1}}}}}}\n",
        ts(secs)
    )
}

fn replay_json(dir: &Path) -> Value {
    let cfg = dge::config::Config::default();
    let mut out = Vec::new();
    dge::cmd::replay::replay(
        &cfg,
        &[dir.to_path_buf()],
        dge::cmd::replay::Format::Json,
        None,
        &mut out,
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn kinds(doc: &Value, kind: &str) -> usize {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .count()
}

#[test]
fn unexplained_drops_are_exactly_the_unattributed_identifies() {
    let dir = tempfile::tempdir().unwrap();
    // One steady pod: connected at 0, events every 30 s, no other connect.
    let mut log = openab(0, "connected");
    for t in (30..700).step_by(30) {
        log.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-5f7b9c6d8-p4m2z.log"), log).unwrap();
    // Samples every 60 s; remaining drops three times (after polls 3, 6 and 8).
    let mut samples = sample_line(5, 999);
    let mut remaining = 999;
    for i in 1..=10 {
        if [3, 6, 8].contains(&i) {
            remaining -= 1;
        }
        samples.push_str(&sample_line(5 + 60 * i, remaining));
    }
    std::fs::write(dir.path().join("gateway-bot.jsonl"), samples).unwrap();
    let doc = replay_json(dir.path());
    assert_eq!(kinds(&doc, "unattributed_identify"), 3, "{doc:#}");
    for f in doc["findings"].as_array().unwrap() {
        if f["kind"] == "unattributed_identify" {
            assert_eq!(f["bot"], "AgentBroker");
            assert!(
                f["explanation"].as_str().unwrap().contains("logs show 0"),
                "{f:#}"
            );
        }
    }
}

#[test]
fn a_visible_rollout_explains_its_drop() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = openab(0, "connected");
    for t in (30..300).step_by(30) {
        old.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-5f7b9c6d8-p4m2z.log"), old).unwrap();
    // The rollout: a new pod connects at 100 s (one IDENTIFY) and gets events.
    let mut new = openab(100, "connected");
    for t in (115..300).step_by(30) {
        new.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-6c9f7d8b4-k2x7q.log"), new).unwrap();
    let samples: String = [(5, 999), (65, 999), (125, 998), (185, 998), (245, 998)]
        .iter()
        .map(|(t, r)| sample_line(*t, *r))
        .collect();
    std::fs::write(dir.path().join("gateway-bot.jsonl"), samples).unwrap();
    let doc = replay_json(dir.path());
    assert_eq!(kinds(&doc, "unattributed_identify"), 0, "{doc:#}");
}

// ---------------------------------------------------------------------------------------------
// Acceptance 3 and 4: the real daemon, at debug level; no token anywhere; record -> replay.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Kills the child on drop, so a failing test leaves nothing running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn finding_keys(findings: &Value) -> Vec<(String, String, String, String, Option<String>)> {
    let mut v: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_string(),
                f["bot"].as_str().unwrap_or("").to_string(),
                f["pod"].as_str().unwrap_or("").to_string(),
                f["since"].as_str().unwrap_or("").to_string(),
                f["until"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_writes_a_token_and_replay_of_its_recording_matches() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.rejected(TOK_GONE);
    let s = |remaining| Reply::Sample {
        remaining,
        reset_after_ms: 80_000_000,
    };
    // Three identifies Discord counts that no log shows, then Discord fails (so that no later
    // sample changes the findings while the test compares them).
    fake.script(TOK_A, [s(999), s(998), s(997), s(996)]);
    fake.script(
        TOK_A,
        std::iter::repeat_n(
            Reply::Json(502, r#"{"message": "bad gateway", "code": 0}"#.into()),
            50,
        ),
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One steady pod whose log the daemon follows: connected a minute ago, events since.
    let now = chrono::Utc::now();
    let line = |ago: i64, what: &str| {
        let t = (now - chrono::TimeDelta::seconds(ago))
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        match what {
            "connected" => {
                format!("{t} {t}  INFO openab::discord: discord bot connected user=AgentBroker\n")
            }
            _ => format!(
                "{t} {t}  INFO dispatch{{channel=1 adapter=\"discord\"}}: openab::dispatch: batch dispatched thread_key=discord:1 events_per_dispatch=1\n"
            ),
        }
    };
    let mut log = line(60, "connected");
    for ago in [50, 40, 30, 20, 10, 5] {
        log.push_str(&line(ago, "dispatch"));
    }
    let pod_log = d.join("agentbroker-5f7b9c6d8-p4m2z.log");
    std::fs::write(&pod_log, log).unwrap();
    std::fs::write(d.join("agentbroker.token"), format!("Bot {TOK_A}\n")).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = d.join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "{addr}"
tick_ms = 200

[engine]
identify_skew_secs = 1

[[file]]
path = "{}"
namespace = "bots"

[discord]
proxy = "{}"
use_http = true
poll_interval_secs = 10
request_timeout_secs = 2

[[bot]]
name = "AgentBroker"
token_file = "{}"

[[bot]]
name = "Gone"
token_env = "GONE_BOT_TOKEN_FOR_TEST"
"#,
            pod_log.display(),
            fake.addr,
            d.join("agentbroker.token").display()
        ),
    )
    .unwrap();
    let record = d.join("record.jsonl");
    let stdout = d.join("stdout.txt");
    let stderr = d.join("stderr.txt");
    let bin = env!("CARGO_BIN_EXE_discord-gateway-exporter");
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--record")
        .arg(&record)
        .env("RUST_LOG", "debug")
        .env("GONE_BOT_TOKEN_FOR_TEST", TOK_GONE)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let child = Child(child);
    let pid = child.0.id();

    // Four samples ~10 s apart, then the settle window.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut metrics = String::new();
    loop {
        if let Ok(r) = reqwest::get(format!("http://{addr}/metrics")).await {
            metrics = r.text().await.unwrap_or_default();
            if metric(
                &metrics,
                "discord_gateway_unattributed_identifies_total",
                &[("bot", "AgentBroker")],
            ) == Some(3.0)
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 3 unattributed identifies in 90 s; metrics:\n{metrics}\nstderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last sample's interval has settled (unattributed = 3); let a tick publish.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, metrics) = get(&addr, "/metrics").await;
    let (_, findings) = get(&addr, "/api/v1/findings").await;
    let (_, sessions) = get(&addr, "/api/v1/sessions").await;
    let (_, healthz) = get(&addr, "/healthz").await;
    let (_, readyz) = get(&addr, "/readyz").await;
    let (_, index) = get(&addr, "/").await;

    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_identifies_total",
            &[("bot", "AgentBroker"), ("seen_by", "discord")]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_exporter_source_up",
            &[("source", "discord:Gone")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_exporter_discord_requests_total",
            &[("bot", "Gone"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(fake.count(TOK_GONE, "users/@me"), 1);
    let h: Value = serde_json::from_str(&healthz).unwrap();
    let gone = h["sources"]["discord:Gone"]["detail"].as_str().unwrap();
    assert!(gone.contains("token rejected"), "{healthz}");
    let live: Value = serde_json::from_str(&findings).unwrap();
    assert!(
        live["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "unattributed_identify"),
        "{findings}"
    );

    // SIGTERM: a clean shutdown flushes the recording.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Acceptance 4: replay of the recording gives the live findings.
    let out = Command::new(bin)
        .args(["replay", "--format", "json", "--config"])
        .arg(&config)
        .arg(&record)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        finding_keys(&replayed["findings"]),
        finding_keys(&live["findings"]),
        "replay of the recording vs the live run\nlive: {:#}\nreplayed: {:#}\nrecording:\n{}",
        live["findings"],
        replayed["findings"],
        std::fs::read_to_string(&record).unwrap()
    );
    let text_out = Command::new(bin)
        .arg("replay")
        .arg(&record)
        .output()
        .unwrap();
    let check = Command::new(bin)
        .arg("check-config")
        .arg(&config)
        .env("GONE_BOT_TOKEN_FOR_TEST", TOK_GONE)
        .output()
        .unwrap();

    // Acceptance 3: the tokens were used (the fake saw them) and appear in nothing the
    // exporter wrote.
    let seen = fake.tokens_seen();
    assert!(seen.iter().any(|t| t == TOK_A) && seen.iter().any(|t| t == TOK_GONE));
    let logs =
        std::fs::read_to_string(&stderr).unwrap() + &std::fs::read_to_string(&stdout).unwrap();
    assert!(
        logs.contains("DEBUG") && logs.contains("token rejected by Discord"),
        "debug logs were captured:\n{logs}"
    );
    let rejected_logged = logs
        .lines()
        .filter(|l| l.contains("token rejected by Discord") && l.contains("WARN"))
        .count();
    assert_eq!(rejected_logged, 1, "the rejection is logged once:\n{logs}");
    let everything: Vec<(&str, String)> = vec![
        ("daemon logs", logs),
        ("/metrics", metrics),
        ("/api/v1/findings", findings),
        ("/api/v1/sessions", sessions),
        ("/healthz", healthz),
        ("/readyz", readyz),
        ("/", index),
        ("recording", std::fs::read_to_string(&record).unwrap()),
        (
            "replay --format json",
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "replay stderr",
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        (
            "replay text",
            String::from_utf8_lossy(&text_out.stdout).into_owned(),
        ),
        (
            "check-config",
            String::from_utf8_lossy(&check.stdout).into_owned()
                + &String::from_utf8_lossy(&check.stderr),
        ),
    ];
    for (what, text) in &everything {
        for tok in [TOK_A, TOK_GONE] {
            // The token, and each of its dot-separated parts that is long enough to identify it.
            assert!(!text.contains(tok), "{what} contains a token");
            for part in tok.split('.').filter(|p| p.len() >= 20) {
                assert!(!text.contains(part), "{what} contains part of a token");
            }
        }
    }
}
