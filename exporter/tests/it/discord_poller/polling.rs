//! The pollers in process, against the fake Discord: schedule, backoff, rejected tokens,
//! rate limits, timeouts, malformed answers.

use super::*;

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
                    optional: false,
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
    assert_eq!(m("discord_gateway_session_start_limit"), Some(1000.0));
    assert_eq!(
        m("discord_gateway_session_start_limit_remaining"),
        Some(999.0)
    );
    assert_eq!(
        m("discord_gateway_session_start_limit_max_concurrency"),
        Some(1.0)
    );
    assert_eq!(m("discord_gateway_recommended_shards"), Some(2.0));
    assert_eq!(
        m("discord_gateway_session_start_limit_reset_after_seconds"),
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
    // Every answered request is counted (+1: users/@me), but for one the fake answered while
    // the daemon was being stopped: the stop can cut it before it is counted.
    let counted = d.requests("AgentBroker", "200");
    assert!(
        counted == polls + 1 || counted == polls,
        "{counted} requests counted for {polls} polls and one identity request"
    );
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
            "discord_gateway_session_start_limit_remaining",
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

/// A proxy sidecar (or Discord) that starts listening 2 s after the exporter: with the real
/// 60 s poll interval, the first sample still comes within seconds, after a few quick
/// start-up retries, not after a whole interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_that_starts_late_is_sampled_within_seconds() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let s = settings_for(addr.to_string(), 60_000, 1000);
    let started = Instant::now();
    let d = Daemon::start(&[("AgentBroker", TOK_A)], s);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused_before = d.requests("AgentBroker", "connection_error");
    let fake = FakeDiscord::start_at(addr).await;
    fake.bot(TOK_A, "AgentBroker", 111);
    // Bounded well below the 60 s interval the old schedule waited after a refusal.
    wait_for("the first sample", Duration::from_secs(30), || {
        d.metric(
            "discord_gateway_session_start_limit_remaining",
            &[("bot", "AgentBroker")],
        ) == Some(1000.0)
    })
    .await;
    let first_sample = started.elapsed();
    let refused = d.requests("AgentBroker", "connection_error");
    // Tries at 0, 1 and 3 s: two refused before the fake listened, none after.
    assert!((1..=3).contains(&refused_before), "{refused_before}");
    assert_eq!(refused, refused_before, "no refusal once the fake listens");
    assert_eq!(fake.count(TOK_A, "gateway/bot"), 1);
    assert_eq!(fake.count(TOK_A, "users/@me"), 1);
    assert_eq!(d.up("AgentBroker"), Some(1.0));
    println!(
        "measured: Discord listening 2 s late: {refused} refused tries, first sample after {:.1} s",
        first_sample.as_secs_f64()
    );
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
