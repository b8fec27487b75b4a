//! `run`: the daemon on the configured sources.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::daemon::{self, Clock, EngineTask};
use crate::error::Result;
use crate::sinks::http::Shared;
use crate::sources::files::FileFollower;
use crate::sources::positions::{self, PositionsFile};
use dge_core::engine::Engine;
use dge_core::observation::Observation;
use dge_parse::logs::Outcome;

/// How often files are polled for new lines.
const POLL: Duration = Duration::from_millis(250);

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
    let shared = Shared::with_traces(
        opts.traces
            .as_ref()
            .map(|t| t.export().clone())
            .unwrap_or_default(),
    );
    let (_tx, shutdown) = daemon::shutdown_on_signals();
    let listener = daemon::bind(opts.listen.as_deref().unwrap_or(&cfg.listen)).await?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
    let default_bot = opts.bot.clone().or_else(|| cfg.default_bot.clone());
    let (tx, rx) = mpsc::channel::<Observation>(16_384);

    let mut firsts = Vec::new();
    let files_task =
        spawn_files(&cfg, default_bot.clone(), &tx, &shared, &shutdown)?.map(|(task, first)| {
            firsts.push(first);
            task
        });
    spawn_discord(&cfg, tx.clone(), &shared, shutdown.clone());
    // The pod watch and pod logs ([kubernetes]); ready once listed and read back.
    let kube = crate::sources::kubernetes::spawn(&cfg, tx.clone(), &shared, shutdown.clone())?;
    let kube_task = kube.map(|k| {
        firsts.push(k.ready);
        k.task
    });
    drop(tx);
    let ready_shared = shared.clone();
    tokio::spawn(async move {
        for f in firsts {
            let _ = f.await;
        }
        daemon::set_ready(&ready_shared);
        tracing::info!("sources started; ready");
    });

    drop(startup_guard);
    drop(startup);
    let task = EngineTask {
        engine: Engine::new(cfg.engine.clone()).with_default_bot(default_bot),
        shared: shared.clone(),
        clock: Clock::Real,
        tick: Duration::from_millis(cfg.tick_ms),
        record: opts.record,
        on_change: Box::new(daemon::log_change),
        traces: opts.traces.as_ref().map(|t| t.sink(true)),
    };
    let engine = tokio::spawn(task.run(rx, shutdown.clone()));
    daemon::serve(listener, shared, shutdown).await?;
    engine
        .await
        .map_err(|e| crate::Error::Other(format!("engine task: {e}")))??;
    // File sources and node mode save their log positions on the way out.
    for t in [files_task, kube_task].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(())
}

/// Starts the `[[bot]]` pollers of Discord's session start limit (none: that view is off).
fn spawn_discord(
    cfg: &Config,
    tx: mpsc::Sender<Observation>,
    shared: &Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    use crate::sources::discord::{self, BotSpec, Settings};
    if cfg.bots.is_empty() {
        tracing::info!(
            "no [[bot]] configured: Discord's own count (unattributed_identify, start_limit_low) \
             is off; every other detector works"
        );
        return;
    }
    let bots: Vec<BotSpec> = cfg.bots.iter().map(BotSpec::from_config).collect();
    // Not awaited for readiness: Discord being down must not keep the exporter unready.
    let _ = discord::spawn(&bots, &Settings::from_config(cfg), tx, shared, shutdown);
}

/// Starts following the `[[file]]` sources (none: no task), from the positions file when one
/// is configured. The task ends after shutdown, once it saved the positions.
fn spawn_files(
    cfg: &Config,
    default_bot: Option<String>,
    tx: &mpsc::Sender<Observation>,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<(tokio::task::JoinHandle<()>, oneshot::Receiver<()>)>> {
    if cfg.files.is_empty() {
        return Ok(None);
    }
    let (positions, mut saved) = PositionsFile::open(cfg.positions_file.clone());
    let mut sources = Vec::new();
    for spec in &cfg.files {
        // The file's own profile, else its bot's (`[bot_profiles]`), else `profile`.
        let profile = cfg.file_profile(spec)?;
        let f = FileFollower::new(
            spec.clone(),
            profile,
            cfg.max_line_bytes,
            default_bot.clone(),
        );
        // A saved file belongs to the first source whose pattern matches it.
        let (mine, rest) = std::mem::take(&mut saved)
            .into_iter()
            .partition(|(p, _)| f.claims(p));
        saved = rest;
        sources.push(FileSourceTask {
            name: f.source_name(),
            follower: f.with_positions(mine),
            last_health: None,
        });
    }
    let (first_tx, first_rx) = oneshot::channel();
    let task = tokio::spawn(follow(
        sources,
        positions,
        tx.clone(),
        shared.clone(),
        shutdown.clone(),
        first_tx,
    ));
    Ok(Some((task, first_rx)))
}

/// One `[[file]]` source and the health it last reported.
struct FileSourceTask {
    name: String,
    follower: FileFollower,
    last_health: Option<(bool, String)>,
}

/// Follows the file sources: poll, count, send, report health, save positions.
async fn follow(
    mut sources: Vec<FileSourceTask>,
    mut positions: Option<PositionsFile>,
    tx: mpsc::Sender<Observation>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut out = Vec::new();
    let all_positions =
        |sources: &[FileSourceTask]| positions::of(sources.iter().map(|s| &s.follower));
    loop {
        let mut read = false;
        for s in &mut sources {
            let stats = tokio::task::block_in_place(|| s.follower.poll(&mut out));
            read |= stats.matched + stats.ignored + stats.malformed > 0;
            let m = &shared.metrics;
            m.count_lines(&s.name, Outcome::Matched.as_str(), stats.matched);
            m.count_lines(&s.name, Outcome::Ignored.as_str(), stats.ignored);
            m.count_lines(&s.name, Outcome::Malformed.as_str(), stats.malformed);
            let files = s.follower.files();
            let health = if !stats.errors.is_empty() {
                (false, stats.errors.join("; "))
            } else if files == 0 {
                (false, "no file matches".to_string())
            } else {
                (true, format!("{files} file(s) followed"))
            };
            if s.last_health.as_ref() != Some(&health) {
                if !health.0 {
                    tracing::warn!(source = %s.name, detail = %health.1, "source down");
                }
                let h = daemon::health(chrono::Utc::now(), &s.name, health.0, health.1.clone());
                let _ = tx.send(h).await;
                s.last_health = Some(health);
            }
            for o in out.drain(..) {
                if tx.send(o).await.is_err() {
                    return;
                }
            }
        }
        // Saved only once the lines are handed on: a position never runs ahead of them.
        if let Some(p) = &mut positions {
            p.save_if_due(read, || all_positions(&sources));
        }
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(p) = &mut positions {
        p.save(all_positions(&sources));
    }
}
