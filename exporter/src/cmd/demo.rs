//! `demo`: the daemon on the built-in simulated fleet.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, EngineTask};
use crate::error::{Error, Result};
use crate::sinks::http::Shared;
use crate::sources::Source;
use crate::sources::sim::player::{self, Converter, SimSource};
use crate::sources::sim::{scenarios, write_capture};
use dge_core::engine::{Change, Engine};

/// Simulated seconds the story takes (the last scripted change, TallyBot's lingering session,
/// ends at about +515 s); the clock runs `--speed` times faster until then, then in real time.
const STORY_SECS: f64 = 600.0;

/// How much simulated time follows the story (the demo keeps running that long).
const HORIZON_SECS: f64 = 7.0 * 86_400.0;

/// Runs the demo until SIGTERM/SIGINT.
pub async fn demo(
    listen: &str,
    speed: f64,
    traces: Option<crate::sinks::traces::Traces>,
) -> Result<()> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(Error::invalid(
            format!("--speed {speed}"),
            "must be a positive number",
        ));
    }
    let mut cfg = Config::default();
    // The remediation actor in dry-run: it shows what it would do, with no cluster to act on.
    cfg.remediation.mode = crate::actors::remediation::Mode::DryRun;
    let shared = Shared::with_traces(
        traces
            .as_ref()
            .map(|t| t.export().clone())
            .unwrap_or_default(),
    );
    let (_tx, shutdown) = daemon::shutdown_on_signals();
    let listener = daemon::bind(listen).await?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: listen.to_owned(),
        source,
    })?;
    let clock = Clock::compressed(speed, STORY_SECS);
    let Clock::Simulated { sim0, .. } = clock else {
        unreachable!("compressed clocks are simulated")
    };
    println!(
        "discord-gateway-exporter demo: http://{addr}/ (status page)  http://{addr}/metrics  http://{addr}/api/v1/findings\n\
         A simulated fleet with two hours of history; the next ten simulated minutes run {speed}x, then real time.\n\
         - AgentBroker: `kubectl rollout restart` at +15 s; the new pod connects while the old one still holds its session\n\
         - HelperBot:   the workaround, scale 0 -> wait -> scale 1, at +60 s\n\
         - TallyBot:    a rollout where both sessions receive every event, at +120 s\n\
         Remediation runs in dry-run: once AgentBroker's deaf session is confirmed and its old session\n         is gone, a `remediation` finding says what the exporter would do (scale to 0, wait, restore).\n         Findings are printed as they open and close (times are simulated).\n"
    );
    let artifacts = scenarios::demo_fleet(sim0, HORIZON_SECS);
    let (history, story): (Vec<_>, Vec<_>) = artifacts.into_iter().partition(|(t, _)| *t <= sim0);
    let (tx, rx) = mpsc::channel(65_536);
    let profile = cfg.compile_profile("auto")?;
    let mut conv = Converter::new(profile);
    for src in [
        player::SOURCE_LOGS,
        player::SOURCE_PODS,
        player::SOURCE_DISCORD,
    ] {
        shared.set_source(src, true, "simulated");
    }
    let mut engine = Engine::new(cfg.engine.clone());
    // The history is what a live source reads back at start: feed it before serving.
    let mut out = Vec::new();
    let history_obs: Vec<_> = history
        .iter()
        .flat_map(|(at, a)| {
            out.clear();
            if let Some(o) = conv.convert(*at, a, &mut out) {
                shared.own.count_lines(player::SOURCE_LOGS, o, 1);
            }
            std::mem::take(&mut out)
        })
        .collect();
    for o in history_obs {
        engine.observe(o);
    }
    engine.tick(sim0);
    // The history's findings are not printed, but its sessions are the traces' old sessions.
    let mut sink = traces.as_ref().map(|t| t.sink(true));
    for c in engine.take_changes() {
        if let Some(s) = sink.as_mut() {
            s.apply(&c, sim0);
        }
    }
    if let Some(s) = sink.as_mut() {
        s.advance(sim0);
    }
    shared.publish(engine.snapshot());

    let task = EngineTask {
        engine,
        shared: shared.clone(),
        clock,
        tick: Duration::from_millis(250),
        record: None,
        on_change: Box::new(move |c| print_change(c, sim0)),
        traces: sink,
    };
    let engine_task = tokio::spawn(task.run(rx, shutdown.clone()));
    // The demo's one source, started like `run`'s; ready at once (its history is in already).
    let fleet: Vec<Box<dyn Source>> = vec![Box::new(SimSource {
        story,
        converter: conv,
        clock,
    })];
    let _running = daemon::start_sources(fleet, &tx, &shared, &shutdown);
    daemon::start_remediation(&cfg.remediation, false, &tx, &shared, &shutdown).await?;
    drop(tx);
    daemon::serve(listener, shared, shutdown).await?;
    engine_task.await.map_err(|source| Error::Task {
        what: "engine",
        source,
    })??;
    Ok(())
}

fn print_change(c: &Change, sim0: chrono::DateTime<chrono::Utc>) {
    let (what, f, at) = match c {
        Change::Opened(f) => ("OPEN ", f, f.since),
        Change::Closed(f) => ("CLOSE", f, f.until.unwrap_or(f.since)),
        // Sessions starting and ending are the traces' business, not the printed story's.
        Change::SessionStarted { .. }
        | Change::SessionUpdate { .. }
        | Change::SessionEnded { .. }
        | Change::HandoverStarted { .. }
        | Change::Handover { .. } => {
            return;
        }
    };
    let rel = (at - sim0).num_seconds();
    let pod = f.subject.pod_name().unwrap_or("-");
    println!(
        "[sim {rel:+5}s] {what} {:<8} {:<20} {:<10} {pod}",
        f.severity.as_str(),
        f.kind.as_str(),
        f.bot
    );
    if matches!(c, Change::Opened(_)) {
        println!("              {}", f.explanation);
    }
}

/// Writes the recorded incidents of `examples/` (fixed times, so the files are stable).
pub fn write_examples(dir: &Path) -> Result<()> {
    let r = chrono::DateTime::parse_from_rfc3339("2026-04-19T04:00:00Z")
        .expect("valid")
        .to_utc();
    for (name, capture, artifacts) in scenarios::examples(r) {
        let d = dir.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        let files = write_capture(&d, &artifacts, capture).map_err(|e| Error::io(&d, e))?;
        println!("{}: {} files", d.display(), files.len());
    }
    Ok(())
}
