//! `run`: the daemon on the configured sources.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, EngineTask};
use crate::error::{Error, Result};
use crate::sinks::http::Shared;
use dge_core::observation::Observation;

/// Options of `run` beyond the config file.
pub struct RunOptions {
    pub listen: Option<String>,
    pub record: Option<PathBuf>,
    pub bot: Option<String>,
    /// Session traces (OTLP), when configured.
    pub traces: Option<crate::sinks::traces::Traces>,
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(cfg: Config, opts: RunOptions) -> Result<()> {
    let startup = crate::telemetry::with_trace_id(tracing::info_span!(
        "startup",
        trace_id = tracing::field::Empty
    ));
    let startup_guard = startup.enter();
    let shared = Shared::with_status(
        opts.traces
            .as_ref()
            .map(|t| t.export().clone())
            .unwrap_or_default(),
        cfg.status.clone(),
    );
    let (_tx, shutdown) = daemon::shutdown_on_signals();
    let listener = daemon::bind(opts.listen.as_deref().unwrap_or(&cfg.listen)).await?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
    let mut log = cfg.log_settings();
    log.default_bot = opts.bot.clone().or(log.default_bot);
    let (tx, rx) = mpsc::channel::<Observation>(16_384);
    // Every source the config turns on, in the order of `registry!` (`sources/mod.rs`).
    let running = daemon::start_sources(cfg.sources.build(&log)?, &tx, &shared, &shutdown);
    daemon::start_remediation(&cfg.remediation, true, &tx, &shared, &shutdown).await?;
    drop(tx);

    drop(startup_guard);
    drop(startup);
    let task = EngineTask {
        engine: cfg.engine(cfg.engine.clone(), log.default_bot.clone()),
        shared: shared.clone(),
        clock: Clock::Real,
        tick: Duration::from_millis(cfg.tick_ms),
        record: opts.record,
        on_change: Box::new(daemon::log_change),
        traces: opts.traces.as_ref().map(|t| t.sink(true)),
    };
    let engine = tokio::spawn(task.run(rx, shutdown.clone()));
    daemon::serve(listener, shared, shutdown).await?;
    engine.await.map_err(|source| Error::Task {
        what: "engine",
        source,
    })??;
    // File sources and node mode save their log positions on the way out.
    running.join(Duration::from_secs(5)).await;
    Ok(())
}
