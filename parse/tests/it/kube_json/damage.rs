//! Damaged and odd input: truncated and corrupt objects, garbage, invalid UTF-8, bad fields,
//! deep nesting, random corruption; attribution of pods to workloads and bots.

use super::*;

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
