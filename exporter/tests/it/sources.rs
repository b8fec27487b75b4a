//! The "add a source" recipe walked for real: a source written here, outside the crate, is
//! its own module (a config section implementing [`SourceConfig`] and a [`Source`]) plus one
//! line gathering it, by the same macro `sources/mod.rs`'s `registry!` expands to. Its keys
//! are read from the TOML, checked and built like the built-in ones', it is started by
//! `daemon::start_sources` as `run` starts them, and what it sends reaches the engine: its
//! health in `/healthz` and `source_up`, its lines in `log_lines_total`, its sample in the
//! engine's snapshot and metrics, and the daemon turns ready once it says so.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dge::clock::Clock;
use dge::config::Config;
use dge::daemon::{self, EngineTask};
use dge::sinks::http::Shared;
use dge::sources::Source;
use dge_core::engine::{Engine, EngineConfig};
use dge_core::observation::Observation;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use tokio::sync::{mpsc, watch};

/// A stand-in for a new source (say Docker/Compose logs): what would be
/// `sources/compose/mod.rs`, its section and its `Source` impl, nothing else.
mod compose {
    use dge::error::{Error, Result};
    use dge::sources::{LogSettings, Source, SourceConfig, SourceContext};
    use dge_core::observation::{Body, Observation, StartLimit};
    use dge_parse::logs::Outcome;
    use serde::{Deserialize, Serialize};
    use tokio::task::JoinHandle;

    /// The keys it owns: `[compose]`; absent: off.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct ComposeSection {
        pub compose: Option<ComposeConfig>,
    }

    /// `[compose]` (nested, so it may deny unknown keys).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ComposeConfig {
        pub bot: String,
        pub remaining: u32,
    }

    impl SourceConfig for ComposeSection {
        fn validate(&self, _: &LogSettings) -> Result<()> {
            match &self.compose {
                Some(c) if c.remaining > 1000 => Err(Error::invalid_value(
                    "compose.remaining",
                    c.remaining,
                    "at most 1000",
                )),
                _ => Ok(()),
            }
        }

        fn build(&self, _: &LogSettings) -> Result<Option<Box<dyn Source>>> {
            Ok(self
                .compose
                .clone()
                .map(|cfg| Box::new(ComposeSource { cfg }) as Box<dyn Source>))
        }
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
}

// The registration: one line per source, next to a built-in one, as in `registry!`.
dge::gather_sources! {
    struct Sources {
        files: dge::sources::files::FilesSection,
        compose: compose::ComposeSection,
    }
}

/// The test's sources from `toml`, as `Config` reads the built-in ones.
fn load(toml: &str) -> Result<Sources, String> {
    let log = Config::default().log_settings();
    let fig = Figment::from(Serialized::defaults(Sources::default())).merge(Toml::string(toml));
    let s = Sources::extract_each(&fig).map_err(|e| e.to_string())?;
    s.validate(&log).map_err(|e| e.to_string())?;
    Ok(s)
}

#[test]
fn the_sections_keys_are_read_and_checked_like_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = load(&format!(
        "[[file]]\npath = \"{}/*.log\"\n[compose]\nbot = \"ComposeBot\"\nremaining = 997\n",
        dir.path().display()
    ))
    .unwrap();
    assert_eq!(s.compose.compose.as_ref().unwrap().remaining, 997);
    assert_eq!(s.files.files.len(), 1);
    let log = Config::default().log_settings();
    let names: Vec<String> = s
        .build(&log)
        .unwrap()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names, ["files", "compose"], "in the order gathered");
    assert!(load("").unwrap().build(&log).unwrap().is_empty());

    let e = load("[compose]\nbot = \"B\"\nremaining = 5000\n").unwrap_err();
    assert!(e.contains("compose.remaining = 5000: at most 1000"), "{e}");
    let e = load("[compose]\nbot = \"B\"\nremaining = 1\nimage = \"x\"\n").unwrap_err();
    assert!(
        e.contains("compose.image") && e.contains("unknown field"),
        "{e}"
    );
    // Unregistered, its key is unknown to the exporter's own config.
    let e = Config::from_figment(
        &Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[compose]\nbot = \"B\"\nremaining = 1\n")),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("key `compose`: unknown field"), "{e}");
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
    // Built from the TOML and started as `run` does.
    let list: Vec<Box<dyn Source>> = load("[compose]\nbot = \"ComposeBot\"\nremaining = 997\n")
        .unwrap()
        .build(&Config::default().log_settings())
        .unwrap();
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
            "discord_gateway_session_start_limit_remaining{bot=\"ComposeBot\"}"
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
