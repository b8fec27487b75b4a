//! Cluster mode: one task per bot container follows its log through the API server
//! (`pods/{name}/log?follow=true&timestamps=true&container=..`).
//!
//! - First sight: the log is read back from the container's start, bounded by `readback_lines`
//!   (`tailLines`); a pod whose container already restarted has its previous run's tail read
//!   first (`previous=true`), once.
//! - A stream that ends while the container still runs was cut: it is opened again with
//!   `sinceTime` = the last line's time, and [`Dedup`] drops the lines the overlap brings back.
//! - A restart (a new container id) while the old run was not read to its end: the previous
//!   run's rest is read (`previous=true`, `sinceTime`), then the new run from its start. A
//!   stream opened again after a cut may already be the new run's (the pod's status comes
//!   later than the restart): lines at or after the new run's `startedAt` tell, and the
//!   previous run is then read from where the cut left it.
//! - The pod gone: what the open stream still delivers is read (a few seconds at most), then the
//!   task ends.
//! - At most `max_log_streams` streams are open at once; the others wait for a slot (the gauge
//!   `discord_gateway_exporter_kubernetes_log_streams{state}` and `/healthz` show both).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::LOGS_SOURCE;
use super::dedup::Dedup;
use super::metrics::KubeMetrics;
use super::pods::PodInfo;
use crate::self_metrics::SelfMetrics;
use dge_core::observation::{InstanceId, Observation, Timestamp};
use dge_parse::lines::LineSplitter;
use dge_parse::logs::{CompiledProfile, Framing, LogStream, Outcome};

/// How long a stream of a deleted pod is still read.
const GONE_DRAIN: Duration = Duration::from_secs(3);
/// Without data for this long after opening, a stream has read back its history.
const CAUGHT_UP_IDLE: Duration = Duration::from_millis(300);
const CHUNK: usize = 64 * 1024;

/// A stream task's state, for the gauge and `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// Nothing to read (container not started, or its run was read to the end).
    Idle = 0,
    /// Waiting for a slot under `max_log_streams`.
    Waiting = 1,
    Active = 2,
    /// The last attempt failed; retrying.
    Failing = 3,
}

/// What every stream task shares.
pub struct Ctx {
    pub client: kube::Client,
    pub tx: mpsc::Sender<Observation>,
    pub own: SelfMetrics,
    pub metrics: KubeMetrics,
    pub profile: Arc<CompiledProfile>,
    pub max_line_bytes: usize,
    pub readback_lines: i64,
    pub slots: Arc<Semaphore>,
    pub max_streams: usize,
    /// Streams that have not yet read back their history (readiness).
    pub catching_up: Arc<AtomicUsize>,
}

struct Handle {
    view: watch::Sender<PodInfo>,
    state: Arc<AtomicU8>,
    /// Unix seconds when its task last read a line (0: never).
    last_line: Arc<AtomicI64>,
}

/// The stream tasks, by pod key.
pub struct Streams {
    ctx: Arc<Ctx>,
    tasks: HashMap<String, Handle>,
    shutdown: watch::Receiver<bool>,
}

/// Counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    pub active: usize,
    pub waiting: usize,
    pub failing: usize,
    pub idle: usize,
}

impl Streams {
    pub fn new(ctx: Arc<Ctx>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            ctx,
            tasks: HashMap::new(),
            shutdown,
        }
    }

    /// A pod changed (or appeared, or went).
    pub fn update(&mut self, info: &PodInfo) {
        if info.container.is_none() {
            return;
        }
        if let Some(h) = self.tasks.get(&info.key) {
            let _ = h.view.send(info.clone());
            if info.gone {
                self.tasks.remove(&info.key);
            }
            return;
        }
        if info.gone {
            return;
        }
        let (view, rx) = watch::channel(info.clone());
        let state = Arc::new(AtomicU8::new(State::Idle as u8));
        let last_line = Arc::new(AtomicI64::new(0));
        self.ctx.catching_up.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(follow(
            self.ctx.clone(),
            rx,
            state.clone(),
            last_line.clone(),
            self.shutdown.clone(),
        ));
        self.tasks.insert(
            info.key.clone(),
            Handle {
                view,
                state,
                last_line,
            },
        );
    }

    pub fn counts(&self) -> StreamCounts {
        let mut c = StreamCounts::default();
        for h in self.tasks.values() {
            match h.state.load(Ordering::Acquire) {
                1 => c.waiting += 1,
                2 => c.active += 1,
                3 => c.failing += 1,
                _ => c.idle += 1,
            }
        }
        c
    }

    pub fn max(&self) -> usize {
        self.ctx.max_streams
    }

    /// When the stream of the pod `key` last read a line, if ever.
    pub fn last_line(&self, key: &str) -> Option<Timestamp> {
        let secs = self.tasks.get(key)?.last_line.load(Ordering::Acquire);
        (secs > 0)
            .then(|| Timestamp::from_timestamp(secs, 0))
            .flatten()
    }
}

/// Exits on shutdown or when the pod is gone.
#[derive(Debug)]
enum End {
    /// The stream ended (the container stopped, or the connection was closed).
    Eof,
    /// The pod's status shows a new run while the stream is open.
    RunChanged,
    Error(String),
    Gone,
    Shutdown,
}

struct Reader {
    dedup: Dedup,
    lines: LineSplitter,
    log: LogStream,
    out: Vec<Observation>,
    caught_up: bool,
    /// Unix seconds of the last chunk with a line (the pod's `Handle` reads it).
    last_line: Arc<AtomicI64>,
}

async fn follow(
    ctx: Arc<Ctx>,
    mut view: watch::Receiver<PodInfo>,
    state: Arc<AtomicU8>,
    last_line: Arc<AtomicI64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let first = view.borrow().clone();
    let container = first.container.clone().unwrap_or_default();
    let instance = InstanceId {
        namespace: first.namespace.clone(),
        pod: first.name.clone(),
        uid: first.uid.clone(),
        container: Some(container.clone()),
    };
    let mut r = Reader {
        dedup: Dedup::default(),
        lines: LineSplitter::new(ctx.max_line_bytes),
        log: LogStream::new(
            ctx.profile.clone(),
            Framing::Kubectl,
            instance,
            LOGS_SOURCE.to_owned(),
        )
        .with_bot(first.bot.clone())
        .with_max_line_bytes(ctx.max_line_bytes),
        out: Vec::new(),
        caught_up: false,
        last_line,
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &first.namespace);
    let set = |s: State| state.store(s as u8, Ordering::Release);
    // The run last read from, and whether it was read to its end.
    let mut read_run: Option<String> = None;
    // What had been read when the current stream was opened.
    let mut at_connect = Dedup::default();
    let mut finished = false;
    let mut failures = 0u32;
    loop {
        let info = view.borrow_and_update().clone();
        if info.gone {
            break;
        }
        let Some(run) = info.current.clone() else {
            r.caught_up(&ctx);
            set(State::Idle);
            if !wait_change(&mut view, &mut shutdown, None).await {
                break;
            }
            continue;
        };
        if finished && read_run.as_deref() == Some(run.id.as_str()) {
            set(State::Idle);
            if !wait_change(&mut view, &mut shutdown, None).await {
                break;
            }
            continue;
        }
        set(State::Waiting);
        let permit = if ctx.slots.available_permits() == 0 {
            // No slot: do not hold readiness hostage to a queue.
            r.caught_up(&ctx);
            tokio::select! {
                p = ctx.slots.clone().acquire_owned() => p.ok(),
                _ = shutdown.changed() => None,
                _ = gone(&mut view) => None,
            }
        } else {
            ctx.slots.clone().acquire_owned().await.ok()
        };
        let Some(permit) = permit else { break };
        set(State::Active);
        let restarted = read_run.as_ref().is_some_and(|id| *id != run.id);
        let first_sight = read_run.is_none() && r.dedup.last().is_none();
        if first_sight && info.previous {
            // The previous run's tail, once.
            if matches!(
                r.read(&ctx, &api, &info, true, &mut view, &mut shutdown)
                    .await,
                End::Shutdown
            ) {
                break;
            }
        } else if restarted && !finished {
            // The previous run's rest. When the stream already brought lines of the new run,
            // the previous run was last read when that stream was opened.
            let into_new_run = run
                .started
                .is_some_and(|s| r.dedup.last().is_some_and(|l| l >= s));
            let end = if into_new_run {
                let ahead = std::mem::replace(&mut r.dedup, at_connect.clone());
                let end = r
                    .read(&ctx, &api, &info, true, &mut view, &mut shutdown)
                    .await;
                r.dedup = ahead;
                end
            } else {
                r.read(&ctx, &api, &info, true, &mut view, &mut shutdown)
                    .await
            };
            if matches!(end, End::Shutdown) {
                break;
            }
        }
        if read_run.as_deref() != Some(run.id.as_str()) {
            read_run = Some(run.id.clone());
            finished = false;
        }
        let before = r.dedup.last();
        at_connect = r.dedup.clone();
        let end = r
            .read(&ctx, &api, &info, false, &mut view, &mut shutdown)
            .await;
        drop(permit);
        if r.dedup.last() != before {
            failures = 0;
        }
        let now = view.borrow().clone();
        let same_run = now.current.as_ref().map(|c| c.id.as_str()) == Some(run.id.as_str());
        let still_running = same_run && now.current.as_ref().is_some_and(|c| c.running);
        let wait = match end {
            End::Gone | End::Shutdown => break,
            End::RunChanged => Some(Duration::ZERO),
            End::Eof if !still_running && same_run => {
                // The run ended and was read to its end: wait for the next one.
                finished = true;
                failures = 0;
                set(State::Idle);
                None
            }
            End::Eof => {
                // Cut while the container runs (or a restart not seen yet): again from the
                // last line's time.
                ctx.metrics.reconnects.inc();
                failures = failures.saturating_add(1);
                set(State::Active);
                Some(backoff(failures))
            }
            End::Error(e) if e.starts_with("404 ") => {
                // The pod is gone and the watch has not said so yet (a re-list will).
                tracing::debug!(pod = %info.name, error = %e, "log stream: pod not found");
                set(State::Idle);
                Some(Duration::from_secs(5))
            }
            End::Error(e) => {
                ctx.metrics.reconnects.inc();
                failures = failures.saturating_add(1);
                tracing::debug!(pod = %info.name, error = %e, "log stream failed");
                set(if failures > 2 {
                    State::Failing
                } else {
                    State::Active
                });
                Some(backoff(failures))
            }
        };
        r.caught_up(&ctx);
        if !wait_change(&mut view, &mut shutdown, wait).await {
            break;
        }
    }
    r.caught_up(&ctx);
    r.log.finish(&mut r.out);
    r.send(&ctx).await;
    set(State::Idle);
}

/// 0.2 s doubling to 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(8).saturating_sub(1)))
        .min(Duration::from_secs(30))
}

/// Waits for a pod change (or `timeout`); false: stop (shutdown, or the pod is gone).
async fn wait_change(
    view: &mut watch::Receiver<PodInfo>,
    shutdown: &mut watch::Receiver<bool>,
    timeout: Option<Duration>,
) -> bool {
    let sleep = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        changed = view.changed() => changed.is_ok() && !view.borrow().gone,
        _ = sleep => !view.borrow().gone,
        _ = shutdown.changed() => false,
    }
}

/// Resolves when the pod is gone (or its sender dropped).
async fn gone(view: &mut watch::Receiver<PodInfo>) {
    loop {
        if view.borrow().gone || view.changed().await.is_err() {
            return;
        }
    }
}

impl Reader {
    fn caught_up(&mut self, ctx: &Ctx) {
        if !self.caught_up {
            self.caught_up = true;
            ctx.catching_up.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn send(&mut self, ctx: &Ctx) {
        for o in self.out.drain(..) {
            if ctx.tx.send(o).await.is_err() {
                return;
            }
        }
    }

    /// One request: the current run (following), or the previous run (`previous`, to its end).
    async fn read(
        &mut self,
        ctx: &Ctx,
        api: &Api<Pod>,
        info: &PodInfo,
        previous: bool,
        view: &mut watch::Receiver<PodInfo>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut lp = LogParams {
            container: info.container.clone(),
            follow: !previous,
            previous,
            timestamps: true,
            tail_lines: Some(ctx.readback_lines),
            ..LogParams::default()
        };
        if let Some(last) = self.dedup.last() {
            // Whole seconds, rounded down (kube rounds to the nearest: up would skip lines).
            lp.since_time = k8s_openapi::jiff::Timestamp::from_second(last.timestamp()).ok();
            self.dedup.resume();
        }
        let opened = tokio::select! {
            s = api.log_stream(&info.name, &lp) => s,
            _ = shutdown.changed() => return End::Shutdown,
        };
        let stream = match opened {
            Ok(s) => s,
            Err(e) => return End::Error(describe(&e)),
        };
        let mut stream = std::pin::pin!(stream);
        let mut buf = vec![0u8; CHUNK];
        let mut drain_until: Option<Instant> = None;
        let mut idle_until = Some(Instant::now() + CAUGHT_UP_IDLE * 3);
        let mut pod_gone = view.borrow().gone;
        let run_id = view.borrow().current.as_ref().map(|c| c.id.clone());
        if pod_gone {
            drain_until = Some(Instant::now() + GONE_DRAIN);
        }
        let end = loop {
            let deadline = match (drain_until, idle_until.filter(|_| !self.caught_up)) {
                (Some(d), Some(i)) => Some(d.min(i)),
                (d, i) => d.or(i),
            };
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = stream.read(&mut buf) => match n {
                    Ok(0) => break End::Eof,
                    Ok(n) => {
                        self.take(ctx, &buf[..n]);
                        self.send(ctx).await;
                        if !self.caught_up {
                            idle_until = Some(Instant::now() + CAUGHT_UP_IDLE);
                        }
                    }
                    Err(e) => break End::Error(e.to_string()),
                },
                changed = view.changed(), if !pod_gone => {
                    let v = view.borrow();
                    if changed.is_err() || v.gone {
                        pod_gone = true;
                        drain_until = Some(Instant::now() + GONE_DRAIN);
                    } else if !previous
                        && v.current.as_ref().map(|c| &c.id) != run_id.as_ref()
                    {
                        break End::RunChanged;
                    }
                }
                _ = timer => {
                    if drain_until.is_some_and(|d| Instant::now() >= d) {
                        break End::Gone;
                    }
                    self.caught_up(ctx);
                }
                _ = shutdown.changed() => break End::Shutdown,
            }
        };
        // A line cut in the middle comes back whole on the next request.
        self.lines.reset();
        if pod_gone && matches!(end, End::Eof | End::Error(_)) {
            return End::Gone;
        }
        end
    }

    /// Splits, drops repeats, classifies and counts one chunk.
    fn take(&mut self, ctx: &Ctx, chunk: &[u8]) {
        let Self {
            dedup,
            lines,
            log,
            out,
            ..
        } = self;
        let mut counts = [0u64; 3];
        let before = dedup.dropped();
        lines.push(chunk, |line| {
            if dedup.admit(line) {
                let i = match log.push_line(line, out) {
                    Outcome::Matched => 0,
                    Outcome::Ignored => 1,
                    Outcome::Malformed => 2,
                };
                counts[i] += 1;
            }
        });
        for (o, n) in Outcome::ALL.iter().zip(counts) {
            ctx.own.count_lines(LOGS_SOURCE, *o, n);
        }
        if counts.iter().any(|n| *n > 0) {
            self.last_line
                .store(chrono::Utc::now().timestamp(), Ordering::Release);
        }
        ctx.metrics.duplicates.inc_by(dedup.dropped() - before);
    }
}

/// An API error, without the request URL's query (it holds nothing secret, but is long).
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}
