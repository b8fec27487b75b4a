//! Kubernetes / Discord JSON captures -> Observations (`dge_parse::kube_json`).
//!
//! Fixtures in `tests/data/kube/` are written the way kubectl prints (4-space indent, sorted
//! keys, watch events as `{"type", "object"}`), around one incident: a `kubectl rollout restart`
//! of the Deployment `agentbroker` in namespace `bots`, whose old pod ignores SIGTERM and is
//! killed at the end of its 30 s grace period.
//!
//! `captures`: the shapes of a capture (pod lists, watch events, events, gateway/bot answers,
//! recordings, mixed); `damage`: truncated, corrupt and odd input.

mod captures;
mod damage;

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use dge_core::observation::{Body, InstanceChange, InstanceId, Observation, StartLimit, Timestamp};
use dge_parse::kube_json::{JsonCapture, PodAttribution, PodTracker, read_json_capture};
use serde_json::{Value, json};

const OLD: &str = "agentbroker-7d9f8b6c5d-x2kqp";
const OLD_UID: &str = "3f0b6c1e-58a2-4d7b-9c41-2e8f6a0d5b17";
const NEW: &str = "agentbroker-5c6d7f8b9-q4wzn";
const NEW_UID: &str = "a7d2c9e4-1b3f-4e6a-8d5c-0f9e8b7a6c51";
const CRASH: &str = "agentbroker-6f7b8c9d4-l7mzt";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn attribution() -> PodAttribution {
    PodAttribution {
        label: Some("app.kubernetes.io/name".into()),
        bots: BTreeMap::from([("agentbroker".into(), "AgentBroker".into())]),
        ..PodAttribution::default()
    }
}

fn read(bytes: &[u8]) -> JsonCapture {
    read_json_capture(bytes, "capture", &attribution())
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// `"<time> <pod> <change>"` per instance observation, in output order.
fn transitions(c: &JsonCapture) -> Vec<String> {
    c.observations
        .iter()
        .filter_map(|o| match &o.body {
            Body::Instance(i) => Some(format!(
                "{} {} {}",
                o.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                i.instance.pod,
                change(&i.change)
            )),
            _ => None,
        })
        .collect()
}

fn change(c: &InstanceChange) -> String {
    match c {
        InstanceChange::Terminating { grace: Some(g) } => format!("terminating grace={g}"),
        InstanceChange::Terminating { grace: None } => "terminating".into(),
        InstanceChange::Exited { code, reason } => format!(
            "exited code={} reason={}",
            code.map_or("-".into(), |c| c.to_string()),
            reason.as_deref().unwrap_or("-")
        ),
        other => other.name().into(),
    }
}

fn reasons(c: &JsonCapture) -> Vec<&str> {
    c.problems.iter().map(|p| p.reason.as_str()).collect()
}

fn assert_sorted(c: &JsonCapture) {
    assert!(
        c.observations.windows(2).all(|w| w[0].at <= w[1].at),
        "observations out of order"
    );
}

const ROLLOUT: [&str; 9] = [
    "2026-03-02T09:00:00Z agentbroker-7d9f8b6c5d-x2kqp created",
    "2026-03-02T09:00:04Z agentbroker-7d9f8b6c5d-x2kqp running",
    "2026-03-02T09:00:09Z agentbroker-7d9f8b6c5d-x2kqp ready",
    "2026-03-02T14:02:10Z agentbroker-5c6d7f8b9-q4wzn created",
    "2026-03-02T14:02:14Z agentbroker-5c6d7f8b9-q4wzn running",
    "2026-03-02T14:02:19Z agentbroker-5c6d7f8b9-q4wzn ready",
    // deletionTimestamp 14:02:50 minus the 30 s grace: when the deletion was requested.
    "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30",
    "2026-03-02T14:02:50Z agentbroker-7d9f8b6c5d-x2kqp exited code=137 reason=Error",
    "2026-03-02T14:02:50Z agentbroker-7d9f8b6c5d-x2kqp deleted",
];

fn rollout() -> Vec<String> {
    ROLLOUT.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the last top-level object complete in `bytes` ends (kubectl closes each at column 0).
fn last_complete_object_end(bytes: &[u8]) -> usize {
    bytes
        .windows(2)
        .rposition(|w| w == b"\n}")
        .map_or(0, |i| i + 2)
}

fn old_pod() -> Value {
    watch_object(0)
}

fn watch_object(n: usize) -> Value {
    serde_json::Deserializer::from_slice(&fixture("rollout-watch-events.json"))
        .into_iter::<Value>()
        .nth(n)
        .unwrap()
        .unwrap()["object"]
        .clone()
}

fn new_pod() -> Value {
    watch_object(2)
}

fn new_pod_ready() -> Value {
    watch_object(3)
}
