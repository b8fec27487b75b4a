//! The live runtime shared by `run` and `demo`: sources send observations into one channel, one
//! task owns the engine and ticks it with a clock, the HTTP server renders snapshots.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::sinks::http::{Shared, router};
use crate::sinks::traces::TraceSink;
use crate::sources::{self, Source};
use dge_core::engine::{Change, Engine};
use dge_core::observation::{Body, Observation};

/// Shortest interval between two snapshots published for a batch of observations.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// What the engine task reports about findings (the demo prints them).
pub type ChangeHook = Box<dyn Fn(&Change) + Send>;

/// The engine task: applies observations in arrival order, ticks on the clock, publishes
/// snapshots, records observations when asked.
pub struct EngineTask {
    pub engine: Engine,
    pub shared: Arc<Shared>,
    pub clock: Clock,
    pub tick: Duration,
    pub record: Option<PathBuf>,
    pub on_change: ChangeHook,
    /// Session traces (OTLP), when configured.
    pub traces: Option<TraceSink>,
}

impl EngineTask {
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Observation>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut record = match &self.record {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Error::io(p, e))?,
            )),
            None => None,
        };
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_publish = Instant::now();
        loop {
            tokio::select! {
                o = rx.recv() => {
                    let Some(o) = o else { break };
                    self.apply(o, &mut record);
                    // Drain what is queued before publishing: one snapshot per batch, and at
                    // most one per PUBLISH_EVERY (a snapshot copies every session); the tick
                    // publishes what is left.
                    for _ in 0..4096 {
                        match rx.try_recv() {
                            Ok(o) => self.apply(o, &mut record),
                            Err(_) => break,
                        }
                    }
                    if last_publish.elapsed() >= PUBLISH_EVERY {
                        self.publish();
                        last_publish = Instant::now();
                        // What the API shows is on disk too: a daemon killed right after a
                        // scrape leaves a recording that replays to what was scraped.
                        if let Some(w) = record.as_mut() {
                            let _ = w.flush();
                        }
                    }
                }
                _ = interval.tick() => {
                    self.engine.tick(self.clock.now());
                    self.publish();
                    last_publish = Instant::now();
                    if let Some(w) = record.as_mut() {
                        let _ = w.flush();
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        // Handovers still open end with what is known now, and reach the sinks.
        self.engine.conclude_handovers();
        self.publish();
        if let Some(t) = self.traces.as_mut() {
            // Sessions still open end here, marked `open`: their segments are already out.
            t.finish(self.engine.now().unwrap_or_else(|| self.clock.now()));
        }
        if let Some(w) = record.as_mut() {
            w.flush().map_err(|source| Error::Write {
                what: "record",
                source,
            })?;
        }
        Ok(())
    }

    fn apply(&mut self, o: Observation, record: &mut Option<std::io::BufWriter<std::fs::File>>) {
        if let Some(w) = record.as_mut() {
            let _ = serde_json::to_writer(&mut *w, &o);
            let _ = w.write_all(b"\n");
        }
        if let Body::SourceHealth(h) = &o.body {
            if h.disabled {
                self.shared.set_source_disabled(&h.source, &h.detail);
            } else {
                self.shared.set_source(&h.source, h.up, &h.detail);
            }
        }
        self.engine.observe(o);
    }

    fn publish(&mut self) {
        let now = self.engine.now().unwrap_or_else(|| self.clock.now());
        for c in self.engine.take_changes() {
            let Some(t) = self.traces.as_mut() else {
                (self.on_change)(&c);
                continue;
            };
            t.apply(&c, now);
            let ctx = match &c {
                Change::Opened(f) | Change::Closed(f) => t.context_of(f),
                _ => None,
            };
            match ctx {
                // The log line about a finding carries the trace of the session it concerns.
                Some(ctx) => {
                    let span = tracing::info_span!(
                        target: crate::telemetry::TRACE_LINK_TARGET,
                        "session",
                        trace_id = %ctx.trace_id(),
                        span_id = %ctx.span_id()
                    );
                    let _entered = span.enter();
                    (self.on_change)(&c);
                }
                None => (self.on_change)(&c),
            }
        }
        if let Some(t) = self.traces.as_mut() {
            t.advance(now);
        }
        self.shared.publish(self.engine.snapshot());
    }
}

/// Logs finding changes through tracing (the daemon's default hook).
pub fn log_change(c: &Change) {
    match c {
        Change::Opened(f) => tracing::warn!(
            kind = f.kind.as_str(), bot = %f.bot, namespace = f.subject.namespace_label(),
            pod = f.subject.pod_label(),
            severity = f.severity.as_str(), "finding opened: {}", f.explanation
        ),
        Change::Closed(f) => tracing::info!(
            kind = f.kind.as_str(), bot = %f.bot, pod = f.subject.pod_label(), "finding closed"
        ),
        Change::HandoverStarted { handover: h } => tracing::debug!(
            bot = %h.bot, from = %h.from_pod, to = %h.to_pod, kind = h.kind.as_str(),
            "handover started"
        ),
        Change::Handover { handover: h } => tracing::info!(
            bot = %h.bot, from = %h.from_pod, to = %h.to_pod,
            outcome = h.outcome.map_or("", |o| o.as_str()), "handover decided"
        ),
        Change::SessionStarted { session: s, .. } => tracing::debug!(
            bot = %s.bot, namespace = %s.namespace, pod = %s.pod, shard = s.shard, "session started"
        ),
        Change::SessionUpdate { id, state, .. } => {
            tracing::trace!(session = id, state = state.name(), "session update")
        }
        Change::SessionEnded { session: s } => tracing::debug!(
            bot = %s.bot, namespace = %s.namespace, pod = %s.pod, shard = s.shard,
            outcome = s.end.as_ref().map_or("", |e| e.outcome()), "session ended"
        ),
    }
}

/// Binds the HTTP server; returns the bound address (port 0 picks a free one).
pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
    let addr: SocketAddr = listen.parse().map_err(|source| Error::ListenAddr {
        value: listen.to_owned(),
        source,
    })?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves the API until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await
        .map_err(Error::Serve)
}

/// Turns SIGTERM or SIGINT into the shutdown signal.
pub fn shutdown_on_signals() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let t = tx.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
        tracing::info!("shutting down");
        let _ = t.send(true);
    });
    (tx, rx)
}

/// Marks the daemon ready (sources started and read back their history).
pub fn set_ready(shared: &Shared) {
    shared.ready.store(true, Ordering::Release);
}

/// Starts `sources` into `tx` and marks the daemon ready once every one of them is; returns
/// them running (the caller waits for them after shutdown). `run` and `demo` both start their
/// sources here, so a new source needs nothing but its module and one registration line.
pub fn start_sources(
    list: Vec<Box<dyn Source>>,
    tx: &mpsc::Sender<Observation>,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> sources::Running {
    let mut running = sources::start(list, tx, shutdown, &shared.own);
    let ready = running.ready();
    let shared = shared.clone();
    tokio::spawn(async move {
        ready.await;
        set_ready(&shared);
        tracing::info!("sources started; ready");
    });
    running
}

/// Starts the remediation actor when `[remediation] mode` is not `off`: with a cluster
/// (`run`: the kube client, its Lease) or without one (`demo`: dry runs only). Its reports go
/// into `tx` like any source's observations.
pub async fn start_remediation(
    cfg: &crate::actors::remediation::RemediationConfig,
    with_cluster: bool,
    tx: &mpsc::Sender<Observation>,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Result<()> {
    use crate::actors::remediation::{
        Actor, Mode, Planner, SnapshotFn, cluster::Cluster, lease::Leadership,
    };
    if cfg.mode == Mode::Off {
        return Ok(());
    }
    let (cluster, leadership) = if with_cluster {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| Error::invalid("remediation", format!("no Kubernetes client: {e}")))?;
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("discord-gateway-exporter-{}", std::process::id()));
        let ns = cfg
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_string());
        (
            Some(Cluster::new(client.clone(), &cfg.annotation, &identity)),
            Some(Leadership::new(
                client,
                &ns,
                &cfg.lease_name,
                &identity,
                cfg.lease_duration_secs,
            )),
        )
    } else {
        (None, None)
    };
    let shared = shared.clone();
    let snapshot: SnapshotFn = Arc::new(move || shared.current());
    let actor = Actor {
        planner: Planner::new(cfg.clone()),
        cluster,
        leadership,
        snapshot,
        tx: tx.clone(),
        poll: Duration::from_secs(1),
    };
    tracing::info!(mode = ?cfg.mode, "remediation actor started");
    tokio::spawn(actor.run(shutdown.clone()));
    Ok(())
}
