//! Kubernetes / Discord JSON captures -> Observations (`dge_parse::kube_json`).
//!
//! Fixtures in `tests/data/kube/` are written the way kubectl prints (4-space indent, sorted
//! keys, watch events as `{"type", "object"}`), around one incident: a `kubectl rollout restart`
//! of the Deployment `agentbroker` in namespace `bots`, whose old pod ignores SIGTERM and is
//! killed at the end of its 30 s grace period.

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

#[test]
fn pods_list_mid_rollout() {
    let c = read(&fixture("pods-list.json"));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.objects, 2);
    assert_eq!(
        transitions(&c),
        [
            "2026-03-02T09:00:00Z agentbroker-7d9f8b6c5d-x2kqp created",
            "2026-03-02T09:00:04Z agentbroker-7d9f8b6c5d-x2kqp running",
            "2026-03-02T14:02:10Z agentbroker-5c6d7f8b9-q4wzn created",
            "2026-03-02T14:02:14Z agentbroker-5c6d7f8b9-q4wzn running",
            "2026-03-02T14:02:19Z agentbroker-5c6d7f8b9-q4wzn ready",
            // The terminating old pod already shows Ready=False: no Ready from this snapshot.
            "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30",
        ]
    );
    let Body::Instance(first) = &c.observations[0].body else {
        panic!("not an instance observation")
    };
    assert_eq!(
        first.instance,
        InstanceId {
            namespace: "bots".into(),
            pod: OLD.into(),
            uid: Some(OLD_UID.into()),
            container: None,
        }
    );
    assert_eq!(first.bot.as_deref(), Some("AgentBroker"));
    assert_eq!(first.workload.as_deref(), Some("agentbroker"));
    assert!(c.observations.iter().all(|o| &*o.source == "capture"));
}

#[test]
fn rollout_restart_watch_events() {
    let c = read(&fixture("rollout-watch-events.json"));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.objects, 7);
    assert_eq!(transitions(&c), rollout());
    assert_sorted(&c);
    for o in &c.observations {
        let Body::Instance(i) = &o.body else {
            panic!("unexpected {o:?}")
        };
        assert_eq!(i.workload.as_deref(), Some("agentbroker"));
        assert_eq!(i.bot.as_deref(), Some("AgentBroker"));
        let uid = if i.instance.pod == NEW {
            NEW_UID
        } else {
            OLD_UID
        };
        assert_eq!(i.instance.uid.as_deref(), Some(uid));
    }
}

#[test]
fn repeated_snapshots_emit_each_transition_once() {
    let one = fixture("rollout-watch-events.json");
    let mut many = Vec::new();
    for _ in 0..20 {
        many.extend_from_slice(&one);
    }
    let c = read(&many);
    assert!(c.problems.is_empty());
    assert_eq!(c.objects, 140);
    assert_eq!(transitions(&c), rollout());
    // The pods list mid-rollout adds nothing new after the watch stream.
    let mut both = one.clone();
    both.extend_from_slice(&fixture("pods-list.json"));
    assert_eq!(transitions(&read(&both)), rollout());
}

#[test]
fn tracker_fed_object_by_object_dedupes_and_sorts_each_call() {
    let stream: Vec<Value> =
        serde_json::Deserializer::from_slice(&fixture("rollout-watch-events.json"))
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect();
    let mut tracker = PodTracker::new(attribution());
    let mut out = Vec::new();
    for round in 0..3 {
        for ev in &stream {
            let before = out.len();
            tracker.observe_pod(
                &ev["object"],
                ev["type"] == "DELETED",
                "kubernetes",
                &mut out,
            );
            assert!(out[before..].windows(2).all(|w| w[0].at <= w[1].at));
        }
        assert_eq!(out.len(), 9, "round {round}");
    }
    assert_eq!(tracker.len(), 2);
    assert_eq!(tracker.rejected(), 0);
    tracker.forget_deleted_before(t("2026-03-02T15:00:00Z"));
    assert_eq!(
        tracker.len(),
        1,
        "the deleted pod is forgotten, the live one kept"
    );
    let mut bad = Vec::new();
    let err = tracker
        .try_observe_pod(&json!({"kind": "Pod"}), false, "k", &mut bad)
        .unwrap_err();
    assert_eq!(err, "pod has no metadata");
    assert!(bad.is_empty());
    assert_eq!(tracker.rejected(), 1);
}

#[test]
fn clean_exit_deleted_at_its_finish_once() {
    // JSON lines of watch events; the old pod stops cleanly 3 s after SIGTERM and is removed
    // then, long before its 14:02:50 grace deadline. Its DELETED event is repeated.
    let c = read(&fixture("clean-delete-watch.jsonl"));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.objects, 5);
    assert_eq!(
        transitions(&c),
        [
            "2026-03-02T09:00:00Z agentbroker-7d9f8b6c5d-x2kqp created",
            "2026-03-02T09:00:04Z agentbroker-7d9f8b6c5d-x2kqp running",
            "2026-03-02T09:00:09Z agentbroker-7d9f8b6c5d-x2kqp ready",
            "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30",
            "2026-03-02T14:02:23Z agentbroker-7d9f8b6c5d-x2kqp exited code=0 reason=Completed",
            "2026-03-02T14:02:23Z agentbroker-7d9f8b6c5d-x2kqp deleted",
        ]
    );
}

#[test]
fn deleted_while_still_running_goes_at_the_grace_deadline() {
    let mut pod = old_pod();
    pod["metadata"]["deletionTimestamp"] = json!("2026-03-02T14:02:50Z");
    pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let line = json!({"type": "DELETED", "object": pod}).to_string();
    let c = read(line.as_bytes());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(
        transitions(&c)[3..],
        [
            "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30",
            "2026-03-02T14:02:50Z agentbroker-7d9f8b6c5d-x2kqp deleted",
        ]
    );
}

#[test]
fn crash_loop_reports_every_visible_run() {
    let c = read(&fixture("crashloop-watch.json"));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.objects, 7);
    let exit = "exited code=1 reason=Error";
    assert_eq!(
        transitions(&c),
        [
            "2026-03-02T09:59:58Z agentbroker-6f7b8c9d4-l7mzt created".to_string(),
            // The log-shipper sidecar (first in spec.containers, started 09:59:59) is not the
            // bot: the container named like the app is followed.
            "2026-03-02T10:00:03Z agentbroker-6f7b8c9d4-l7mzt running".into(),
            "2026-03-02T10:00:05Z agentbroker-6f7b8c9d4-l7mzt ready".into(),
            format!("2026-03-02T10:00:09Z agentbroker-6f7b8c9d4-l7mzt {exit}"),
            "2026-03-02T10:00:10Z agentbroker-6f7b8c9d4-l7mzt running".into(),
            "2026-03-02T10:00:12Z agentbroker-6f7b8c9d4-l7mzt ready".into(),
            format!("2026-03-02T10:00:16Z agentbroker-6f7b8c9d4-l7mzt {exit}"),
            // Run 3 was never captured running; lastState of the restartCount=3 snapshot
            // still tells it.
            "2026-03-02T10:00:30Z agentbroker-6f7b8c9d4-l7mzt running".into(),
            format!("2026-03-02T10:00:36Z agentbroker-6f7b8c9d4-l7mzt {exit}"),
            "2026-03-02T10:01:00Z agentbroker-6f7b8c9d4-l7mzt running".into(),
            "2026-03-02T10:01:02Z agentbroker-6f7b8c9d4-l7mzt ready".into(),
        ]
    );
}

#[test]
fn configured_container_overrides_the_guess() {
    let attribution = PodAttribution {
        container: Some("log-shipper".into()),
        default: Some("AgentBroker".into()),
        ..PodAttribution::default()
    };
    let c = read_json_capture(&fixture("crashloop-watch.json"), "capture", &attribution);
    let runs: Vec<String> = transitions(&c)
        .into_iter()
        .filter(|s| s.contains("running") || s.contains("exited"))
        .collect();
    assert_eq!(
        runs,
        ["2026-03-02T09:59:59Z agentbroker-6f7b8c9d4-l7mzt running"]
    );
}

#[test]
fn events_list_alone() {
    let attribution = PodAttribution {
        default: Some("AgentBroker".into()),
        ..PodAttribution::default()
    };
    let c = read_json_capture(&fixture("events-list.json"), "events", &attribution);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.objects, 10);
    assert_eq!(
        transitions(&c),
        [
            // events.k8s.io/v1 Started (eventTime null -> deprecatedLastTimestamp); the
            // log-shipper sidecar's Started and the liveness-probe Killing ("will be
            // restarted") are not the bot's pod lifecycle; BackOff is ignored.
            "2026-03-02T10:01:00Z agentbroker-6f7b8c9d4-l7mzt running",
            // Scheduled (eventTime, microseconds) is the earliest of Scheduled/Created.
            "2026-03-02T14:02:10.412345Z agentbroker-5c6d7f8b9-q4wzn created",
            "2026-03-02T14:02:14Z agentbroker-5c6d7f8b9-q4wzn running",
            "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating",
        ]
    );
    // SuccessfulCreate (about a ReplicaSet), Pulled, the later Created, BackOff, the liveness
    // Killing and the sidecar's Started.
    assert_eq!(c.ignored, 6);
    for o in &c.observations {
        let Body::Instance(i) = &o.body else { panic!() };
        assert_eq!(i.bot.as_deref(), Some("AgentBroker"));
        assert_eq!(i.workload.as_deref(), Some("agentbroker"));
        assert!(i.instance.uid.is_some());
        assert_eq!(&*o.source, "events");
    }
}

#[test]
fn events_do_not_repeat_what_pods_said() {
    let mut bytes = fixture("events-list.json");
    bytes.extend_from_slice(&fixture("pods-list.json"));
    let c = read(&bytes);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let expected: Vec<String> = vec![
        "2026-03-02T09:00:00Z agentbroker-7d9f8b6c5d-x2kqp created".into(),
        "2026-03-02T09:00:04Z agentbroker-7d9f8b6c5d-x2kqp running".into(),
        // Only from events: the crash-looping pod is not in the pods list.
        "2026-03-02T10:01:00Z agentbroker-6f7b8c9d4-l7mzt running".into(),
        "2026-03-02T14:02:10Z agentbroker-5c6d7f8b9-q4wzn created".into(),
        "2026-03-02T14:02:14Z agentbroker-5c6d7f8b9-q4wzn running".into(),
        "2026-03-02T14:02:19Z agentbroker-5c6d7f8b9-q4wzn ready".into(),
        // The pod's own deletion request, not the Killing event (same instant here).
        "2026-03-02T14:02:20Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30".into(),
    ];
    assert_eq!(transitions(&c), expected);
    // A pod known from its object lends its bot to its events.
    let crash = c
        .observations
        .iter()
        .find_map(|o| match &o.body {
            Body::Instance(i) if i.instance.pod == CRASH => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(crash.bot, None, "unknown pod, no default bot");
}

#[test]
fn gateway_bot_lines() {
    let c = read_json_capture(
        &fixture("gateway-bot.jsonl"),
        "discord:AgentBroker",
        &attribution(),
    );
    assert_eq!(c.objects, 4);
    let limits: Vec<(Timestamp, StartLimit)> = c
        .observations
        .iter()
        .map(|o| match &o.body {
            Body::StartLimit(l) => (o.at, l.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let limit = |remaining, reset_after_ms| StartLimit {
        bot: "AgentBroker".into(),
        total: 1000,
        remaining,
        reset_after_ms,
        max_concurrency: 1,
        recommended_shards: 1,
    };
    assert_eq!(
        limits,
        [
            (t("2026-03-02T14:00:00Z"), limit(997, 41_320_000)),
            (t("2026-03-02T14:03:00Z"), limit(995, 41_140_000)),
            (t("2026-03-02T14:05:00Z"), limit(995, 41_020_000)),
        ]
    );
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].line, 3);
    assert_eq!(
        c.problems[0].reason,
        "gateway_bot is a Discord error response, not a session start limit"
    );
}

#[test]
fn recorded_observations_pass_through_unchanged() {
    let bytes = fixture("recording.jsonl");
    let c = read(&bytes);
    let text = String::from_utf8(bytes).unwrap();
    let expected: Vec<Observation> = text
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(c.observations, expected);
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].line, 4);
    assert!(
        c.problems[0]
            .reason
            .starts_with("recorded observation does not fit the vocabulary"),
        "{:?}",
        c.problems
    );
}

#[test]
fn every_shape_mixed_in_one_file_comes_out_sorted() {
    let mut bytes = Vec::new();
    for f in [
        "recording.jsonl",
        "crashloop-watch.json",
        "gateway-bot.jsonl",
        "rollout-watch-events.json",
        "events-list.json",
        "pods-list.json",
    ] {
        bytes.extend_from_slice(&fixture(f));
    }
    let c = read(&bytes);
    assert_sorted(&c);
    assert_eq!(c.objects, 4 + 7 + 4 + 7 + 10 + 2);
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems); // the teleport and the 401
    assert_eq!(
        c.observations
            .iter()
            .filter(|o| matches!(o.body, Body::StartLimit(_)))
            .count(),
        4
    );
    let from_pods = JsonCapture {
        observations: c
            .observations
            .iter()
            .filter(|o| &*o.source == "capture")
            .cloned()
            .collect(),
        ..JsonCapture::default()
    };
    let rollout_only: Vec<String> = transitions(&from_pods)
        .into_iter()
        .filter(|s| !s.contains(CRASH))
        .collect();
    assert_eq!(rollout_only, rollout());
    // The recording's own Instance observation passes through as well.
    assert!(transitions(&c).contains(
        &"2026-03-02T14:02:40Z agentbroker-7d9f8b6c5d-x2kqp terminating grace=30".to_string()
    ));
    // Equal times keep file order: the recorded Ready at 14:02:16.25 sits between pods'.
    let i = c
        .observations
        .iter()
        .position(|o| matches!(o.body, Body::Session(_)))
        .unwrap();
    assert_eq!(c.observations[i].at, t("2026-03-02T14:02:16.250Z"));
}

#[test]
fn truncated_last_object_keeps_everything_before_it() {
    let bytes = fixture("rollout-watch-truncated.json");
    let c = read(&bytes);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    let p = &c.problems[0];
    assert!(p.reason.starts_with("truncated JSON"), "{}", p.reason);
    // It points at the start of the last (DELETED) event, in column 0.
    let last_start = bytes
        .windows(2)
        .rposition(|w| w == b"\n{")
        .map(|i| i + 1)
        .unwrap();
    assert_eq!(p.offset, last_start);
    assert_eq!(
        p.line,
        1 + bytes[..last_start].iter().filter(|b| **b == b'\n').count()
    );
    // Only the DELETED is lost.
    assert_eq!(transitions(&c), rollout()[..8]);
}

#[test]
fn corrupt_object_in_the_middle_loses_only_itself() {
    let c = read(&fixture("rollout-watch-corrupt-middle.json"));
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(
        c.problems[0]
            .reason
            .starts_with("corrupt JSON: a value ends early"),
        "{:?}",
        c.problems
    );
    // Reported where the damaged (4th) event starts.
    assert_eq!(c.problems[0].line, 502);
    // The 4th event (new pod becomes Ready) was corrupt; the ones before and after are kept.
    let mut expected = rollout();
    expected.retain(|s| !s.ends_with("q4wzn ready"));
    assert_eq!(transitions(&c), expected);
}

#[test]
fn garbage_bytes_around_and_between_objects() {
    let list = fixture("pods-list.json");
    let watch = fixture("rollout-watch-events.json");
    let mut bytes = b"\x00\x9f\x92\x96 binary junk \xff\xfe\n".to_vec();
    bytes.extend_from_slice(&list);
    bytes.extend_from_slice(b"Warning: kubectl lost its connection\n\xc3\x28\x00\x01{{{{\n");
    bytes.extend_from_slice(&watch);
    bytes.extend_from_slice(b"\x1b[31m}}}]]\n");
    let c = read(&bytes);
    assert_eq!(c.problems.len(), 3, "{:?}", c.problems);
    assert_eq!(c.problems[0].offset, 0);
    assert_eq!(c.problems[0].line, 1);
    assert!(
        c.problems
            .iter()
            .all(|p| p.reason.starts_with("not valid JSON")),
        "{:?}",
        c.problems
    );
    assert_eq!(transitions(&c), rollout());
    assert_eq!(c.objects, 9);
}

#[test]
fn invalid_utf8_inside_an_object() {
    let good = old_pod();
    let mut bad = good.to_string().into_bytes();
    let at = find(&bad, OLD.as_bytes()).unwrap();
    bad[at + 3] = 0xff;
    let mut bytes = format!("{}\n", new_pod()).into_bytes();
    bytes.extend_from_slice(&bad);
    bytes.push(b'\n');
    bytes.extend_from_slice(format!("{good}\n").as_bytes());
    let c = read(&bytes);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(c.problems[0].line, 2);
    assert_eq!(c.objects, 2);
    let pods: Vec<String> = transitions(&c);
    assert!(pods.iter().any(|s| s.contains(OLD)));
    assert!(pods.iter().any(|s| s.contains(NEW)));
}

#[test]
fn bad_fields_make_one_problem_each_and_spare_the_neighbours() {
    type Mutation = fn(&mut Value);
    let cases: Vec<(Mutation, &str)> = vec![
        (
            |p| p["metadata"]["creationTimestamp"] = json!("yesterday"),
            "metadata.creationTimestamp is not an RFC 3339 time",
        ),
        (
            |p| p["metadata"]["creationTimestamp"] = json!(1700000000),
            "metadata.creationTimestamp is not a string",
        ),
        (
            |p| {
                p["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("creationTimestamp")
                    .map(drop)
                    .unwrap_or(())
            },
            "metadata.creationTimestamp is missing",
        ),
        (
            |p| {
                p["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("name")
                    .map(drop)
                    .unwrap_or(())
            },
            "metadata.name is missing",
        ),
        (
            |p| p["metadata"]["namespace"] = json!(["bots"]),
            "metadata.namespace is not a string",
        ),
        (
            |p| *p = json!({"kind": "Pod", "metadata": 7}),
            "metadata is not an object",
        ),
        (
            |p| p["metadata"]["labels"] = json!({"app.kubernetes.io/name": 3}),
            "metadata.labels has a value that is not a string",
        ),
        (
            |p| p["metadata"]["deletionTimestamp"] = json!("2026-13-45T99:00:00Z"),
            "metadata.deletionTimestamp is not an RFC 3339 time",
        ),
        (
            |p| {
                p["metadata"]["deletionTimestamp"] = json!("2026-03-02T14:02:50Z");
                p["metadata"]["deletionGracePeriodSeconds"] = json!(-30);
            },
            "metadata.deletionGracePeriodSeconds is not a non-negative integer",
        ),
        (
            |p| {
                p["metadata"]["deletionTimestamp"] = json!("2026-03-02T14:02:50Z");
                p["metadata"]["deletionGracePeriodSeconds"] = json!(u64::MAX);
            },
            "metadata.deletionGracePeriodSeconds is out of range",
        ),
        (
            |p| p["status"]["containerStatuses"] = json!({"name": "agentbroker"}),
            "status.containerStatuses is not an array",
        ),
        (
            |p| {
                p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] = json!("soon")
            },
            "status.containerStatuses[].state.running.startedAt is not an RFC 3339 time",
        ),
        (
            |p| {
                p["status"]["containerStatuses"][0]["lastState"] =
                    json!({"terminated": {"exitCode": "137", "finishedAt": "2026-03-02T14:02:50Z"}})
            },
            "status.containerStatuses[].lastState.terminated.exitCode is not a number",
        ),
        (
            |p| {
                p["status"]["containerStatuses"][0]["lastState"] =
                    json!({"terminated": {"exitCode": 1e12, "finishedAt": "2026-03-02T14:02:50Z"}})
            },
            "status.containerStatuses[].lastState.terminated.exitCode is not an integer",
        ),
        (
            |p| p["status"]["conditions"][2]["lastTransitionTime"] = json!(false),
            "status.conditions[Ready].lastTransitionTime is not a string",
        ),
        (
            |p| p["status"] = json!("Running"),
            "status is not an object",
        ),
        (
            |p| p["spec"]["containers"] = json!([{"image": "x"}]),
            "spec.containers[].name is missing",
        ),
        (
            |p| p["metadata"]["ownerReferences"] = json!([{"kind": "ReplicaSet"}]),
            "metadata.ownerReferences[].name is missing",
        ),
    ];
    for (i, (mutate, reason)) in cases.into_iter().enumerate() {
        let mut bad = old_pod();
        mutate(&mut bad);
        let bytes = format!("{}\n{bad}\n{}\n", new_pod(), new_pod_ready()).into_bytes();
        let c = read(&bytes);
        assert_eq!(reasons(&c), [reason], "case {i}");
        assert_eq!(c.problems[0].line, 2, "case {i}");
        assert_eq!(
            transitions(&c),
            [
                "2026-03-02T14:02:10Z agentbroker-5c6d7f8b9-q4wzn created",
                "2026-03-02T14:02:14Z agentbroker-5c6d7f8b9-q4wzn running",
                "2026-03-02T14:02:19Z agentbroker-5c6d7f8b9-q4wzn ready",
            ],
            "case {i}: the bad pod adds nothing, its neighbours everything"
        );
    }
}

#[test]
fn unrecognised_and_odd_objects() {
    let input = [
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"agentbroker"}}"#,
        r#"{"apiVersion":"v1","kind":"Status","status":"Failure","reason":"NotFound","code":404}"#,
        r#"{"hello":"world"}"#,
        r#"42"#,
        r#"["not", "objects"]"#,
        r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12345"}}}"#,
        r#"{"type":"ERROR","object":{"kind":"Status","reason":"Expired","code":410,"message":"too old resource version"}}"#,
        r#"{"type":"RESYNC","object":{"kind":"Pod"}}"#,
        r#"{"type":"ADDED","object":{"kind":"ConfigMap"}}"#,
        r#"{"kind":"Ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.secret"}"#,
        r#"{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"x"}}, 5]}"#,
        r#"{"apiVersion":"v1","kind":"List","items":{"oops":1}}"#,
        r#"{"at":"2026-03-02T14:00:00Z","bot":"AgentBroker","gateway_bot":{"shards":1,"session_start_limit":{"total":1000,"remaining":-1,"reset_after":1,"max_concurrency":1}}}"#,
        r#"{"at":"2026-03-02T14:00:00Z","bot":"AgentBroker","gateway_bot":{"shards":1,"session_start_limit":{"total":1000,"remaining":5000000000,"reset_after":1,"max_concurrency":1}}}"#,
        r#"{"kind":"Event","reason":"Started","involvedObject":{"kind":"Pod","name":"x","namespace":"bots"}}"#,
        r#"{"kind":"Event","reason":"Started","involvedObject":{"kind":"Pod","name":"x","namespace":"bots"},"lastTimestamp":"now"}"#,
        r#"{"kind":"Event","reason":"Started","involvedObject":{"kind":"Node","name":"node-a"},"lastTimestamp":"2026-03-02T14:00:00Z"}"#,
    ]
    .join("\n");
    let c = read(input.as_bytes());
    assert!(c.observations.is_empty(), "{:?}", c.observations);
    assert_eq!(
        reasons(&c),
        [
            "unrecognised object kind Deployment",
            "unrecognised object kind Status",
            "unrecognised object: no kind, and not a watch event, start-limit line or recorded observation",
            "expected a JSON object, found a number",
            "element 0 of an array: expected a JSON object, found a string",
            "element 1 of an array: expected a JSON object, found a string",
            "watch ERROR event (reason Expired, code 410): changes may be missing from here on",
            "unrecognised watch event type RESYNC",
            "watch event about an unrecognised object kind ConfigMap",
            "unrecognised object kind (not a kind name)",
            "items[0] of a PodList: metadata.namespace is missing",
            "items[1] of a PodList: expected a JSON object, found a number",
            "List items is not an array",
            "gateway_bot.session_start_limit.remaining is not a non-negative integer",
            "gateway_bot.session_start_limit.remaining is out of range",
            "event has no time (eventTime, lastTimestamp, firstTimestamp)",
            "lastTimestamp is not an RFC 3339 time",
        ]
    );
    assert_eq!(
        c.problems.iter().map(|p| p.line).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 5, 7, 8, 9, 10, 11, 11, 12, 13, 14, 15, 16]
    );
    assert_eq!(c.ignored, 2, "the BOOKMARK and the Node event");
    assert_eq!(c.objects, 19);
}

#[test]
fn workload_and_bot_attribution() {
    let mut sts = old_pod();
    sts["metadata"]["name"] = json!("relay-0");
    sts["metadata"]["uid"] = json!("11111111-2222-4333-8444-555555555555");
    sts["metadata"]["ownerReferences"] = json!([
        {"kind": "Node", "name": "node-a"},
        {"kind": "StatefulSet", "name": "relay", "controller": true}
    ]);
    sts["metadata"]["labels"] = json!({"app.kubernetes.io/name": "relay-bot"});
    let mut bare = old_pod();
    bare["metadata"]["name"] = json!("agentbroker-7d9f8b6c5d-x2kqp");
    bare["metadata"]["uid"] = json!("66666666-2222-4333-8444-555555555555");
    bare["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    bare["metadata"].as_object_mut().unwrap().remove("labels");
    let mut debug = bare.clone();
    debug["metadata"]["name"] = json!("debug-shell");
    debug["metadata"]["uid"] = json!("77777777-2222-4333-8444-555555555555");
    let bytes = format!("{sts}\n{bare}\n{debug}\n").into_bytes();
    let attribution = PodAttribution {
        default: Some("Fallback".into()),
        ..attribution()
    };
    let c = read_json_capture(&bytes, "capture", &attribution);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let mut seen: Vec<(String, Option<String>, Option<String>)> = c
        .observations
        .iter()
        .filter_map(|o| match &o.body {
            Body::Instance(i) if i.change == InstanceChange::Created => {
                Some((i.instance.pod.clone(), i.workload.clone(), i.bot.clone()))
            }
            _ => None,
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "agentbroker-7d9f8b6c5d-x2kqp".into(),
                Some("agentbroker".into()),
                Some("Fallback".into())
            ),
            ("debug-shell".into(), None, Some("Fallback".into())),
            // A label value not in the map is the bot name itself.
            (
                "relay-0".into(),
                Some("relay".into()),
                Some("relay-bot".into())
            ),
        ]
    );
}

#[test]
fn pod_without_uid_is_tracked_by_name() {
    let mut pod = old_pod();
    pod["metadata"].as_object_mut().unwrap().remove("uid");
    let bytes = format!("{pod}\n{pod}\n").into_bytes();
    let c = read(&bytes);
    assert_eq!(transitions(&c).len(), 3);
    assert!(c.observations.iter().all(|o| match &o.body {
        Body::Instance(i) => i.instance.uid.is_none(),
        _ => false,
    }));
}

#[test]
fn deep_nesting_and_huge_inputs_do_not_hurt() {
    let mut bytes = "[".repeat(200_000).into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(&fixture("pods-list.json"));
    let c = read(&bytes);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(c.problems[0].offset, 0);
    assert_eq!(transitions(&c).len(), 6);

    // 2 100 watch snapshots of the same two pods (~13 MB): each transition once.
    let one = fixture("rollout-watch-events.json");
    let mut big = Vec::with_capacity(one.len() * 300);
    for _ in 0..300 {
        big.extend_from_slice(&one);
    }
    let c = read(&big);
    assert!(c.problems.is_empty());
    assert_eq!(c.objects, 2_100);
    assert_eq!(transitions(&c), rollout());

    // One enormous string value.
    let mut line = br#"{"kind":"Pod","metadata":{"name":""#.to_vec();
    line.extend(std::iter::repeat_n(b'a', 5_000_000));
    line.extend_from_slice(b"\"}}\n");
    let c = read(&line);
    assert_eq!(reasons(&c), ["metadata.namespace is missing"]);
}

#[test]
fn every_truncation_point_is_survived() {
    let bytes = fixture("rollout-watch-events.json");
    let full = transitions(&read(&bytes));
    for cut in (0..bytes.len()).step_by(211) {
        let c = read(&bytes[..cut]);
        assert!(c.problems.len() <= 1, "cut {cut}: {:?}", c.problems);
        let got = transitions(&c);
        assert!(
            got.iter().all(|s| full.contains(s)),
            "cut {cut}: invented {got:?}"
        );
        assert_sorted(&c);
        // Everything from objects complete before the cut is there.
        let complete = read(&bytes[..last_complete_object_end(&bytes[..cut])]);
        for s in transitions(&complete) {
            assert!(got.contains(&s), "cut {cut}: lost {s}");
        }
    }
}

#[test]
fn random_corruption_costs_at_most_the_damaged_objects() {
    let bytes = fixture("rollout-watch-events.json");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut b = bytes.clone();
        let flips = (next() % 4 + 1) as usize;
        for _ in 0..flips {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let c = read(&b);
        // A damaged byte costs at most its own object (and at most two problems: the object
        // and, when it made the object end early, the rest of it).
        assert!(
            c.problems.len() <= 2 * flips,
            "round {round}: {:?}",
            c.problems
        );
        assert!(
            c.objects >= 7 - flips,
            "round {round}: {} objects",
            c.objects
        );
        assert_sorted(&c);
    }
}

#[test]
fn random_corruption_of_every_fixture_never_panics() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in [
        "pods-list.json",
        "crashloop-watch.json",
        "events-list.json",
        "clean-delete-watch.jsonl",
        "gateway-bot.jsonl",
        "recording.jsonl",
    ] {
        let bytes = fixture(name);
        for _ in 0..60 {
            let mut b = bytes.clone();
            for _ in 0..(next() % 6 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            // Also cut somewhere, sometimes.
            if next() % 3 == 0 {
                b.truncate((next() as usize) % b.len());
            }
            let c = read(&b);
            assert_sorted(&c);
            assert!(c.problems.iter().all(|p| p.offset <= b.len()));
        }
    }
}

#[test]
fn utf8_bom_and_crlf_are_fine() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    let text = String::from_utf8(fixture("gateway-bot.jsonl")).unwrap();
    bytes.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
    let c = read(&bytes);
    assert_eq!(c.observations.len(), 3);
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].line, 3);
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
