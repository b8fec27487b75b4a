//! Turns simulated artifacts into observations through the real readers, in time.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Artifact, PodRef};
use crate::clock::Clock;
use crate::sources::{Source, SourceContext};
use dge_core::observation::{InstanceId, Observation, Timestamp};
use dge_parse::kube_json::{PodAttribution, PodTracker, read_json_capture};
use dge_parse::logs::{CompiledProfile, Framing, LogStream, Outcome};

/// Name of the simulated sources in metrics and health.
pub const SOURCE_LOGS: &str = "demo:logs";
pub const SOURCE_PODS: &str = "demo:kubernetes";
pub const SOURCE_DISCORD: &str = "demo:discord";

/// Converts artifacts one by one, keeping per-pod log streams.
pub struct Converter {
    profile: Arc<CompiledProfile>,
    streams: BTreeMap<PodRef, LogStream>,
    pods: PodTracker,
    attribution: PodAttribution,
}

impl Converter {
    pub fn new(profile: Arc<CompiledProfile>) -> Self {
        let attribution = PodAttribution::default();
        Self {
            profile,
            streams: BTreeMap::new(),
            pods: PodTracker::new(attribution.clone()),
            attribution,
        }
    }

    /// The observations an artifact means; for a log line also its outcome.
    pub fn convert(
        &mut self,
        at: Timestamp,
        a: &Artifact,
        out: &mut Vec<Observation>,
    ) -> Option<Outcome> {
        match a {
            Artifact::Log { pod, text } => {
                let stream = self.streams.entry(pod.clone()).or_insert_with(|| {
                    LogStream::new(
                        self.profile.clone(),
                        Framing::Kubectl,
                        InstanceId {
                            namespace: pod.namespace.clone(),
                            pod: pod.name.clone(),
                            uid: Some(pod.uid.clone()),
                            container: Some(pod.container.clone()),
                        },
                        SOURCE_LOGS.to_string(),
                    )
                });
                let line = format!(
                    "{} {text}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                );
                Some(stream.push_line(line.as_bytes(), out))
            }
            Artifact::PodWatch { kind, object } => {
                self.pods
                    .observe_pod(object, *kind == "DELETED", SOURCE_PODS, out);
                None
            }
            Artifact::GatewayBot { bot, body } => {
                let line = json!({"at": at, "bot": bot, "gateway_bot": body}).to_string();
                out.extend(
                    read_json_capture(line.as_bytes(), SOURCE_DISCORD, &self.attribution)
                        .observations,
                );
                None
            }
        }
    }
}

/// Plays artifacts into `tx` as the clock reaches them (everything already past at once).
/// Returns when all are played or on shutdown. `on_line` counts log line outcomes.
pub async fn play(
    artifacts: Vec<(Timestamp, Artifact)>,
    mut conv: Converter,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
    mut shutdown: watch::Receiver<bool>,
    on_line: impl Fn(Outcome),
) {
    let mut out = Vec::new();
    for (at, a) in artifacts {
        let wait = clock.until(at);
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
        if let Some(outcome) = conv.convert(at, &a, &mut out) {
            on_line(outcome);
        }
        for o in out.drain(..) {
            if tx.send(o).await.is_err() {
                return;
            }
        }
    }
}

/// The demo's simulated fleet as a source: plays the story on the clock, counting its log
/// lines like a live log source would.
pub struct SimSource {
    pub story: Vec<(Timestamp, Artifact)>,
    pub converter: Converter,
    pub clock: Clock,
}

impl Source for SimSource {
    fn name(&self) -> &str {
        "demo"
    }

    fn spawn(self: Box<Self>, ctx: SourceContext) -> JoinHandle<()> {
        let SourceContext {
            tx,
            shutdown,
            metrics,
            ..
        } = ctx;
        let count = move |o: Outcome| metrics.count_lines(SOURCE_LOGS, o, 1);
        tokio::spawn(play(
            self.story,
            self.converter,
            self.clock,
            tx,
            shutdown,
            count,
        ))
    }
}
