//! 1. A rollout restart in cluster mode.

use super::*;

/// Acceptance 1: a rollout restart seen live.
#[test]
fn rollout_restart_shows_concurrent_and_silent_sessions_for_the_new_pod() {
    let rt = runtime();
    let fake = rt.block_on(FakeApiServer::start());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);

    // The old pod has been running for 20 minutes, an event every 10 s.
    let now = Utc::now();
    let t0 = now - TimeDelta::minutes(20);
    let old_name = "agentbroker-6c9f7d8b4-k2x7q";
    let mut old = bot_pod(old_name, "uid-old", t0);
    old.running = Some(("containerd://old-0".into(), t0 + TimeDelta::seconds(5), 0));
    old.ready_since = Some(t0 + TimeDelta::seconds(10));
    fake.put_pod(old.json());
    let mut history = vec![
        (
            NS,
            old_name,
            C,
            t0 + TimeDelta::seconds(6),
            RUNNING.to_owned(),
        ),
        (
            NS,
            old_name,
            C,
            t0 + TimeDelta::seconds(8),
            CONNECTED.to_owned(),
        ),
    ];
    let mut id = 0;
    let mut t = t0 + TimeDelta::seconds(20);
    while t < now {
        id += 1;
        history.push((NS, old_name, C, t, dispatch(id)));
        t += TimeDelta::seconds(10);
    }
    fake.log_many(&history);
    // A pod of another workload that the selector leaves out.
    let mut other = PodBuilder::new(NS, "web-5d4c3b2a1-zzzzz", "uid-web", "web", t0)
        .label("app.kubernetes.io/name", "web");
    other.running = Some(("containerd://web".into(), t0, 0));
    fake.put_pod(other.json());

    let record = dir.path().join("record.jsonl");
    let d = start_daemon(
        dir.path(),
        "rollout",
        &cluster_config(""),
        &kubeconfig,
        &record,
    );
    let history_lines = history.len() as u64;
    d.wait_for(
        Duration::from_secs(30),
        "the old pod's history read back",
        |d| (lines_counted(d) >= history_lines).then_some(()),
    );
    let h = d.json("/healthz");
    assert_eq!(h["sources"]["kubernetes"]["up"], true, "{h}");
    assert_eq!(h["sources"]["kubernetes:logs"]["up"], true, "{h}");
    assert!(
        h["sources"]["kubernetes:logs"]["detail"]
            .as_str()
            .unwrap()
            .contains("(max 10)"),
        "{h}"
    );

    // kubectl rollout restart: the new pod connects while the old one keeps the events.
    let new_name = "agentbroker-5f7b9c6d8-p4m2z";
    let t1 = Utc::now();
    let mut new = bot_pod(new_name, "uid-new", t1);
    fake.put_pod(new.json());
    new.running = Some(("containerd://new-0".into(), t1, 0));
    fake.put_pod(new.json());
    fake.log(NS, new_name, C, Utc::now(), RUNNING);
    fake.log(NS, new_name, C, Utc::now(), CONNECTED);
    new.ready_since = Some(Utc::now());
    fake.put_pod(new.json());
    let findings = d.wait_for(
        Duration::from_secs(40),
        "silent_session for the new pod",
        |d| {
            // The old pod still gets every event.
            id += 1;
            fake.log(NS, old_name, C, Utc::now(), &dispatch(id));
            let f = d.json("/api/v1/findings?active=true");
            let list = f["findings"].as_array().cloned().unwrap_or_default();
            let silent = list
                .iter()
                .any(|f| f["kind"] == "silent_session" && f["pod"] == new_name);
            let concurrent = list.iter().any(|f| f["kind"] == "concurrent_sessions");
            std::thread::sleep(Duration::from_millis(400));
            (silent && concurrent).then_some(list)
        },
    );
    for f in &findings {
        if f["kind"] == "silent_session" || f["kind"] == "concurrent_sessions" {
            assert_eq!(f["bot"], "AgentBroker", "{f}");
            assert_eq!(f["namespace"], NS, "{f}");
        }
    }

    // The old pod terminates and goes.
    let t2 = Utc::now();
    old.deletion = Some((t2 + TimeDelta::seconds(30), 30));
    fake.put_pod(old.json());
    fake.log(NS, old_name, C, Utc::now(), "INFO openab: shutting down");
    let (cid, started, _) = old.running.take().unwrap();
    old.terminated = Some((cid, started, Utc::now(), 0, "Completed".into()));
    old.ready_since = None;
    fake.stop_run(NS, old_name, C);
    fake.put_pod(old.json());
    fake.delete_pod(NS, old_name);
    let deleted = "deleted@";
    d.wait_for(
        Duration::from_secs(20),
        "the old pod's deletion recorded",
        |_| {
            transitions(&read_record(&record))
                .keys()
                .any(|(p, c)| p == old_name && c.starts_with(deleted))
                .then_some(())
        },
    );
    wait_recorded(&d, &record, id);
    // Streams of the deleted pod end; the new pod's stream stays.
    d.wait_for(Duration::from_secs(20), "one log stream left", |d| {
        (d.metric_sum(
            "discord_gateway_exporter_kubernetes_log_streams",
            &[("state", "active")],
        ) == 1.0)
            .then_some(())
    });
    // Coverage: the running new pod's lines are being read, so no pod counts as unread (the
    // 30-minute rule itself is unit-tested in sources::kubernetes::coverage).
    let metrics = d.get("/metrics");
    assert_eq!(
        crate::support::exporter::sample(
            &metrics,
            "discord_gateway_exporter_kubernetes_pods_without_lines",
            &[]
        ),
        Some(0.0),
        "{metrics}"
    );
    stop(d);

    let rec = read_record(&record);
    let tr = transitions(&rec);
    assert!(tr.values().all(|n| *n == 1), "a transition twice: {tr:?}");
    let changes = |pod: &str| -> Vec<String> {
        tr.keys()
            .filter(|(p, _)| p == pod)
            .map(|(_, c)| c.split('@').next().unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(
        changes(old_name),
        [
            "created",
            "deleted",
            "exited",
            "ready",
            "running",
            "terminating"
        ]
    );
    assert_eq!(changes(new_name), ["created", "ready", "running"]);
    assert!(changes("web-5d4c3b2a1-zzzzz").is_empty(), "the selector");
    let ds = dispatches(&rec);
    assert_eq!(ds.len() as u64, id, "every dispatch line once");
    assert!(ds.values().all(|n| *n == 1), "{ds:?}");
}
