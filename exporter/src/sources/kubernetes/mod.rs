//! Live Kubernetes sources: the pod lifecycle from a watch, the bots' logs from the API server
//! (cluster mode) or from the kubelet's files (node mode).
//!
//! One task runs the pod watch (kube-runtime's `watcher`: list, then watch from the list's
//! resourceVersion with bookmarks; a cut watch resumes, `410 Gone` re-lists) and feeds a
//! [`PodSet`], which turns pods into `Instance` observations once per transition and tells the
//! log side what changed:
//!
//! - cluster mode: `streams` follows each bot container's log through the API server;
//! - node mode (a DaemonSet): the watch is limited to `spec.nodeName` = this node, and
//!   `node` reads `<log_root>/<ns>_<pod>_<uid>/<container>/*.log` with a positions file.
//!
//! Health: `source_up{source="kubernetes"}` (the watch) and `{source="kubernetes:logs"}`, with
//! details in `/healthz`; the stream bound and counts in
//! `discord_gateway_exporter_kubernetes_log_streams{state}`.

pub mod config;
mod coverage;
mod dedup;
mod metrics;
mod node;
mod pods;
mod streams;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{KubernetesConfig, KubernetesSection, Mode};
pub use dedup::{Dedup, line_time};
pub use metrics::KubeMetrics;
pub use node::NodeLogs;
pub use pods::{PodInfo, PodSet, PodSetStats, RunInfo};

use crate::error::Result;
use crate::sources::{LogSettings, Source, SourceContext};
use dge_core::observation::{Observation, Timestamp};
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::CompiledProfile;

/// The pod watch's source name (observations, `source_up`).
pub const SOURCE: &str = "kubernetes";
/// The pod logs' source name (both modes).
pub const LOGS_SOURCE: &str = "kubernetes:logs";

/// Pods deleted longer ago than this are forgotten by the tracker.
const FORGET_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Readiness does not wait longer than this for the first list and read-back.
const READY_AT_MOST: Duration = Duration::from_secs(60);

/// Everything the source task needs, resolved from `[kubernetes]` and the log settings.
#[derive(Clone)]
pub struct Settings {
    pub cfg: KubernetesConfig,
    pub attribution: PodAttribution,
    pub profile: Arc<CompiledProfile>,
    pub max_line_bytes: usize,
    /// Node mode: this node.
    pub node_name: Option<String>,
}

impl Settings {
    /// Resolves the node name (node mode) and compiles the profile.
    pub fn new(k: &KubernetesConfig, log: &LogSettings) -> Result<Self> {
        let node_name = match k.mode {
            Mode::Node => Some(k.resolve_node_name()?),
            Mode::Cluster => None,
        };
        Ok(Self {
            cfg: k.clone(),
            attribution: k.attribution_or(&log.attribution).clone(),
            profile: log.compile(&log.profile)?,
            max_line_bytes: log.max_line_bytes,
            node_name,
        })
    }
}

/// The pod watch and pod logs as one source: ready once the first list is done and the logs
/// read back (or after a minute at most); its task ends after shutdown (node mode saves its
/// positions first).
pub struct KubernetesSource {
    settings: Settings,
}

impl KubernetesSource {
    /// `None` without a `[kubernetes]` section.
    pub fn new(k: Option<&KubernetesConfig>, log: &LogSettings) -> Result<Option<Self>> {
        k.map(|k| Settings::new(k, log).map(|settings| Self { settings }))
            .transpose()
    }
}

impl Source for KubernetesSource {
    fn name(&self) -> &str {
        SOURCE
    }

    fn spawn(self: Box<Self>, ctx: SourceContext) -> JoinHandle<()> {
        tokio::spawn(run(self.settings, ctx))
    }
}

/// Where the pod logs go.
enum Logs {
    Cluster(streams::Streams),
    Node(NodeLogs),
}

async fn run(s: Settings, mut ctx: SourceContext) {
    let own = ctx.metrics.clone();
    let tx = ctx.tx.clone();
    let metrics = KubeMetrics::new(&own);
    let started = tokio::time::Instant::now();
    let mut pods_health = ctx.health(SOURCE);
    let mut logs_health = ctx.health(LOGS_SOURCE);

    let client = loop {
        match kube::Client::try_default().await {
            Ok(c) => break c,
            Err(e) => {
                pods_health
                    .report(
                        false,
                        format!(
                            "no Kubernetes client (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
                        ),
                    )
                    .await;
                ctx.ready.fire();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(30)) => continue,
                    _ = ctx.shutdown.changed() => return,
                }
            }
        }
    };

    let mut wc = watcher::Config::default();
    if let Some(sel) = &s.cfg.label_selector {
        wc = wc.labels(sel);
    }
    if let Some(node) = &s.node_name {
        wc = wc.fields(&format!("spec.nodeName={node}"));
    }
    let ar = ApiResource::erase::<Pod>(&());
    let apis: Vec<Api<DynamicObject>> = if s.cfg.namespaces.is_empty() {
        vec![Api::all_with(client.clone(), &ar)]
    } else {
        s.cfg
            .namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
            .collect()
    };
    let groups = apis.len();
    let mut events = futures::stream::select_all(apis.into_iter().enumerate().map(|(i, api)| {
        watcher(api, wc.clone())
            .default_backoff()
            .map(move |e| (i, e))
            .boxed()
    }));

    let catching_up = Arc::new(AtomicUsize::new(0));
    let mut logs = match s.cfg.mode {
        Mode::Cluster => {
            metrics.streams_max.set(s.cfg.max_log_streams as i64);
            Logs::Cluster(streams::Streams::new(
                Arc::new(streams::Ctx {
                    client: client.clone(),
                    tx: coalesce(tx.clone(), ctx.shutdown.clone()),
                    own: own.clone(),
                    metrics: metrics.clone(),
                    profile: s.profile.clone(),
                    max_line_bytes: s.max_line_bytes,
                    readback_lines: i64::try_from(s.cfg.readback_lines).unwrap_or(i64::MAX),
                    slots: Arc::new(Semaphore::new(s.cfg.max_log_streams)),
                    max_streams: s.cfg.max_log_streams,
                    catching_up: catching_up.clone(),
                }),
                ctx.shutdown.clone(),
            ))
        }
        Mode::Node => Logs::Node(NodeLogs::new(
            s.cfg.log_root.clone(),
            s.profile.clone(),
            s.max_line_bytes,
            s.cfg.positions_file.clone(),
        )),
    };

    let mut set = PodSet::new(s.attribution.clone(), SOURCE);
    let mut listing: HashSet<usize> = (0..groups).collect();
    let mut watch_error: Option<String> = None;
    let period = match s.cfg.mode {
        Mode::Cluster => Duration::from_secs(1),
        Mode::Node => Duration::from_millis(s.cfg.poll_ms),
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut out: Vec<Observation> = Vec::new();
    let mut polled_after_list = false;
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some((group, ev)) = ev else { break };
                match ev {
                    Ok(watcher::Event::Init) => {
                        set.init(group);
                        metrics.lists.inc();
                    }
                    Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                        watch_error = None;
                        apply(&mut set, &mut logs, group, &o, false, &mut out);
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        watch_error = None;
                        apply(&mut set, &mut logs, group, &o, true, &mut out);
                    }
                    Ok(watcher::Event::InitDone) => {
                        watch_error = None;
                        for info in set.init_done(group, &mut out) {
                            logs.update(&info);
                        }
                        listing.remove(&group);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "pod watch error");
                        watch_error = Some(e.to_string());
                    }
                }
                for o in out.drain(..) {
                    if tx.send(o).await.is_err() {
                        return;
                    }
                }
            }
            _ = tick.tick() => {
                if let Logs::Node(n) = &mut logs {
                    let mut polled = Vec::new();
                    let p = tokio::task::block_in_place(|| n.poll(&mut polled));
                    own.count_outcomes(
                        LOGS_SOURCE,
                        p.stats.matched,
                        p.stats.ignored,
                        p.stats.malformed,
                    );
                    for o in polled {
                        if tx.send(o).await.is_err() {
                            return;
                        }
                    }
                    if listing.is_empty() {
                        polled_after_list = true;
                    }
                    let up = p.stats.errors.is_empty();
                    let detail = if up {
                        format!("{} file(s) of {} pod(s) on node {}", p.files, n.len(),
                            s.node_name.as_deref().unwrap_or(""))
                    } else {
                        p.stats.errors.join("; ")
                    };
                    logs_health.report(up, detail).await;
                }
                if let Logs::Cluster(st) = &logs {
                    let c = st.counts();
                    metrics.streams.with_label_values(&["active"]).set(c.active as i64);
                    metrics.streams.with_label_values(&["waiting"]).set(c.waiting as i64);
                    metrics.streams.with_label_values(&["failing"]).set(c.failing as i64);
                    let detail = format!(
                        "{} log stream(s) open (max {}), {} waiting for a slot, {} failing, {} idle",
                        c.active, st.max(), c.waiting, c.failing, c.idle
                    );
                    logs_health.report(c.failing == 0, detail).await;
                }
                metrics.pods.set(set.len() as i64);
                let silent = coverage::pods_without_lines(
                    set.infos(),
                    |key| logs.last_line(key),
                    chrono::Utc::now(),
                );
                metrics.pods_without_lines.set(silent as i64);
                set.forget_deleted_before(chrono::Utc::now() - FORGET_AFTER);
                let (up, detail) = match &watch_error {
                    Some(e) => (false, format!("pod watch failing (retrying): {e}")),
                    None if !listing.is_empty() => (true, "listing pods".to_owned()),
                    None => (true, format!("{} pod(s) watched", set.len())),
                };
                pods_health.report(up, detail).await;
                let caught_up = match &logs {
                    Logs::Cluster(_) => catching_up.load(Ordering::Acquire) == 0,
                    Logs::Node(_) => polled_after_list,
                };
                if ctx.ready.pending()
                    && ((listing.is_empty() && caught_up) || started.elapsed() >= READY_AT_MOST)
                {
                    ctx.ready.fire();
                }
            }
            _ = ctx.shutdown.changed() => break,
        }
    }
    if let Logs::Node(n) = &mut logs {
        n.save();
    }
}

/// How long log observations are gathered before they go to the engine together.
const COALESCE: Duration = Duration::from_millis(100);

/// A sender whose observations reach `tx` in batches, at most every [`COALESCE`]: hundreds of
/// streams each sending a line would otherwise wake the engine (and make it publish a
/// snapshot) once per line. The order of each stream's observations is kept.
fn coalesce(
    tx: mpsc::Sender<Observation>,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Sender<Observation> {
    let (in_tx, mut in_rx) = mpsc::channel::<Observation>(4096);
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = in_rx.recv_many(&mut batch, 4096) => {
                    if n == 0 {
                        return;
                    }
                }
                _ = shutdown.changed() => {
                    // What is still here goes if the engine takes it at once.
                    while let Ok(o) = in_rx.try_recv() {
                        let _ = tx.try_send(o);
                    }
                    return;
                }
            }
            // More of the same burst: wait a little, then take all that came.
            tokio::time::sleep(COALESCE).await;
            while let Ok(o) = in_rx.try_recv() {
                batch.push(o);
            }
            for o in batch.drain(..) {
                if tx.send(o).await.is_err() {
                    return;
                }
            }
        }
    });
    in_tx
}

/// One pod object from the watch.
fn apply(
    set: &mut PodSet,
    logs: &mut Logs,
    group: usize,
    obj: &DynamicObject,
    deleted: bool,
    out: &mut Vec<Observation>,
) {
    let Ok(v) = serde_json::to_value(obj) else {
        return;
    };
    if let Some(info) = set.apply(group, &v, deleted, out) {
        logs.update(&info);
    }
}

impl Logs {
    fn update(&mut self, info: &PodInfo) {
        match self {
            Logs::Cluster(s) => s.update(info),
            Logs::Node(n) => n.update(info),
        }
    }

    /// When a line of the pod (by key) was last read, if ever since it is followed.
    fn last_line(&self, key: &str) -> Option<Timestamp> {
        match self {
            Logs::Cluster(s) => s.last_line(key),
            Logs::Node(n) => n.last_line(key),
        }
    }
}
