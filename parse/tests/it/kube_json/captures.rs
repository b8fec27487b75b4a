//! The shapes of a capture: pod lists and watch streams (one transition each, sorted), events,
//! `/gateway/bot` answers, recorded observations, everything mixed in one file.

use super::*;

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
