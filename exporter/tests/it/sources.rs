//! The "add a source" recipe walked for real: a source written here, outside the crate, plugs
//! into the daemon through the same contract as the built-in ones ([`Source`] +
//! [`SourceContext`], started by `daemon::start_sources` as `run` and `demo` start theirs),
//! and what it sends reaches the engine: its health in `/healthz` and `source_up`, its lines
//! in `log_lines_total`, its sample in the engine's snapshot and metrics, and the daemon
//! turns ready once it says so.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dge::clock::Clock;
use dge::daemon::{self, EngineTask};
use dge::sinks::http::Shared;
use dge::sources::{Source, SourceContext};
use dge_core::engine::{Engine, EngineConfig};
use dge_core::observation::{Body, Observation, StartLimit};
use dge_parse::logs::Outcome;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A stand-in for a new source (say Docker/Compose logs): its own config type and a
/// `Source` impl, nothing else.
struct ComposeConfig {
    bot: String,
    remaining: u32,
}

struct ComposeSource {
    cfg: ComposeConfig,
}

impl Source for ComposeSource {
    fn name(&self) -> &str {
        "compose"
    }

    fn spawn(self: Box<Self>, mut ctx: SourceContext) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut health = ctx.health("compose");
            health.report(false, "starting").await;
            let o = Observation {
                at: chrono::Utc::now(),
                source: "compose".into(),
                body: Body::StartLimit(StartLimit {
                    bot: self.cfg.bot.clone(),
                    total: 1000,
                    remaining: self.cfg.remaining,
                    reset_after_ms: 60_000,
                    max_concurrency: 1,
                    recommended_shards: 1,
                }),
            };
            let _ = ctx.tx.send(o).await;
            ctx.metrics.count_lines("compose", Outcome::Matched, 3);
            health.report(true, "1 container followed").await;
            // The same report again is not sent twice.
            health.report(true, "1 container followed").await;
            ctx.ready.fire();
            let _ = ctx.shutdown.changed().await;
        })
    }
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_written_outside_the_crate_reaches_the_engine_through_the_contract() {
    let shared = Shared::new();
    let (tx, rx) = mpsc::channel::<Observation>(64);
    let (stop, shutdown) = watch::channel(false);
    let engine = tokio::spawn(
        EngineTask {
            engine: Engine::new(EngineConfig::default()),
            shared: shared.clone(),
            clock: Clock::Real,
            tick: Duration::from_millis(20),
            record: None,
            on_change: Box::new(|_| {}),
            traces: None,
        }
        .run(rx, shutdown.clone()),
    );
    // The registration: one line in the list `run` builds.
    let list: Vec<Box<dyn Source>> = vec![Box::new(ComposeSource {
        cfg: ComposeConfig {
            bot: "ComposeBot".into(),
            remaining: 997,
        },
    })];
    let running = daemon::start_sources(list, &tx, &shared, &shutdown);
    drop(tx);

    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = shared.current();
        let sampled = snap.bots.iter().any(|b| {
            b.bot == "ComposeBot" && b.start_limit.as_ref().is_some_and(|s| s.remaining == 997)
        });
        let healthy = shared.sources.read().unwrap().get("compose").cloned()
            == Some((true, "1 container followed".to_string()));
        if sampled && healthy && shared.ready.load(Ordering::Acquire) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the test source's observations never reached the engine"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = shared.metrics.render();
    assert_eq!(
        metric(
            &text,
            "discord_session_start_limit_remaining{bot=\"ComposeBot\"}"
        ),
        Some(997.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "discord_gateway_exporter_source_up{source=\"compose\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "discord_gateway_exporter_log_lines_total{outcome=\"matched\",source=\"compose\"}"
        ),
        Some(3.0),
        "{text}"
    );

    let _ = stop.send(true);
    running.join(Duration::from_secs(5)).await;
    engine.await.unwrap().unwrap();
}
