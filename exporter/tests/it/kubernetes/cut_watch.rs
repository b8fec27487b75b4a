//! 2. Cut watches, 410 Gone, cut log streams and a restart: nothing lost, nothing repeated.

use super::*;

/// Acceptance 2: faults lose nothing and repeat nothing.
#[test]
fn cut_watch_410_gone_cut_log_stream_and_a_restart_lose_and_repeat_nothing() {
    let rt = runtime();
    let fake = rt.block_on(FakeApiServer::start());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);

    let base = Utc::now() - TimeDelta::minutes(5);
    let a_name = "agentbroker-6c9f7d8b4-aaaaa";
    let mut a = bot_pod(a_name, "uid-a", base);
    a.running = Some(("containerd://a-0".into(), base + TimeDelta::seconds(1), 0));
    a.ready_since = Some(base + TimeDelta::seconds(2));
    fake.put_pod(a.json());
    let c_name = "agentbroker-6c9f7d8b4-ccccc";
    let mut c = bot_pod(c_name, "uid-c", base);
    c.running = Some(("containerd://c-0".into(), base + TimeDelta::seconds(1), 0));
    fake.put_pod(c.json());
    let mut served = 0u64;
    let mut id = 0u64;
    let log_a = |fake: &FakeApiServer, at: DateTime<Utc>, id: &mut u64, served: &mut u64| {
        *id += 1;
        fake.log(NS, a_name, C, at, &dispatch(*id));
        *served += 1;
    };
    fake.log(NS, a_name, C, base + TimeDelta::seconds(1), RUNNING);
    fake.log(NS, a_name, C, base + TimeDelta::seconds(2), CONNECTED);
    served += 2;
    for i in 0..20 {
        log_a(
            &fake,
            base + TimeDelta::seconds(3 + i),
            &mut id,
            &mut served,
        );
    }

    let record = dir.path().join("record.jsonl");
    let d = start_daemon(
        dir.path(),
        "faults",
        &cluster_config(""),
        &kubeconfig,
        &record,
    );
    let wait_lines = |d: &Exporter, n: u64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = lines_counted(d);
            assert!(got <= n, "{what}: {got} lines counted, only {n} served");
            if got == n {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: {got} of {n} lines; dispatches {:?}; requests {:#?}\n{}",
                    dispatches(&read_record(&record)),
                    fake.requests(),
                    d.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_lines(&d, served, "read-back");

    // 1. A watch cut in the middle of an event: pod B appears.
    let b_name = "agentbroker-5f7b9c6d8-bbbbb";
    let tb = Utc::now();
    let mut b = bot_pod(b_name, "uid-b", tb);
    fake.cut_watches(|t| t.put_pod(b.json()));
    // 2. 410 Gone: B runs and is ready, C is deleted, and no watch sees it happen.
    b.running = Some((
        "containerd://b-0".into(),
        tb + TimeDelta::milliseconds(200),
        0,
    ));
    b.ready_since = Some(tb + TimeDelta::milliseconds(500));
    fake.expire(|t| {
        t.put_pod(b.json());
        t.delete_pod(NS, c_name);
    });
    let record_has = |pod: &str, change: &str| {
        transitions(&read_record(&record))
            .keys()
            .any(|(p, c)| p == pod && c.starts_with(&format!("{change}@")))
    };
    d.wait_for(Duration::from_secs(30), "B ready and C deleted", |_| {
        (record_has(b_name, "ready") && record_has(c_name, "deleted")).then_some(())
    });
    // 3. A log stream cut in the middle of a line, with lines in the same second before it.
    let second = Utc::now().with_nanosecond_floor();
    for k in 0..3 {
        log_a(
            &fake,
            second + TimeDelta::milliseconds(100 * k),
            &mut id,
            &mut served,
        );
    }
    wait_lines(&d, served, "lines before the cut");
    let before_cut = served;
    fake.cut_logs(|t| {
        for k in 3..6 {
            id += 1;
            t.log(
                NS,
                a_name,
                C,
                second + TimeDelta::milliseconds(100 * k),
                &dispatch(id),
            );
        }
    });
    served += 3;
    assert_eq!(served, before_cut + 3);
    wait_lines(&d, served, "lines after the cut");
    for k in 0..3 {
        // Kubelet times only go forward: after the lines above.
        let at = second + TimeDelta::seconds(1) + TimeDelta::milliseconds(10 * k);
        log_a(&fake, at, &mut id, &mut served);
    }
    wait_lines(&d, served, "lines after the resume");
    let dup = d.metric_sum(
        "discord_gateway_exporter_kubernetes_log_duplicate_lines_total",
        &[],
    );
    assert!(dup >= 3.0, "the resume's overlap was dropped: {dup}");

    // 4. A's container is OOM-killed and restarts; its last lines come after the stream's
    // cut, so only previous=true has them.
    let ta = second + TimeDelta::seconds(2);
    fake.cut_logs(|t| {
        for k in 0..2 {
            id += 1;
            t.log(
                NS,
                a_name,
                C,
                ta + TimeDelta::milliseconds(10 * k),
                &dispatch(id),
            );
        }
    });
    served += 2;
    let (cid, started, _) = a.running.take().unwrap();
    let _ = cid;
    a.last = Some((
        started,
        ta + TimeDelta::milliseconds(50),
        137,
        "OOMKilled".into(),
    ));
    a.running = Some(("containerd://a-1".into(), ta + TimeDelta::seconds(1), 1));
    a.ready_since = Some(ta + TimeDelta::seconds(2));
    fake.start_run(NS, a_name, C);
    fake.put_pod(a.json());
    fake.log(NS, a_name, C, ta + TimeDelta::seconds(1), RUNNING);
    fake.log(NS, a_name, C, ta + TimeDelta::seconds(2), CONNECTED);
    served += 2;
    for k in 0..3 {
        log_a(
            &fake,
            ta + TimeDelta::seconds(3) + TimeDelta::milliseconds(k),
            &mut id,
            &mut served,
        );
    }
    wait_lines(&d, served, "lines around the restart");
    wait_recorded(&d, &record, id);
    if std::env::var_os("SHOW_DAEMON_LOG").is_some() {
        eprintln!("{}\n{:#?}", d.output(), fake.requests());
    }
    stop(d);

    let rec = read_record(&record);
    let tr = transitions(&rec);
    assert!(tr.values().all(|n| *n == 1), "a transition twice: {tr:?}");
    let changes = |pod: &str| -> Vec<String> {
        tr.keys()
            .filter(|(p, _)| p == pod)
            .map(|(_, c)| c.split('@').next().unwrap().to_owned())
            .collect()
    };
    let mut a_changes = changes(a_name);
    a_changes.sort();
    assert_eq!(
        a_changes,
        ["created", "exited", "ready", "ready", "running", "running"],
        "{tr:?}"
    );
    let mut b_changes = changes(b_name);
    b_changes.sort();
    assert_eq!(b_changes, ["created", "ready", "running"]);
    let mut c_changes = changes(c_name);
    c_changes.sort();
    assert_eq!(c_changes, ["created", "deleted", "running"]);
    let ds = dispatches(&rec);
    assert_eq!(ds.len() as u64, id, "every dispatch line: {ds:?}");
    assert!(ds.values().all(|n| *n == 1), "a line twice: {ds:?}");
    let reqs = fake.requests();
    assert!(
        reqs.iter().any(|r| r.contains("previous=true")),
        "previous run read: {reqs:?}"
    );
    assert!(reqs.iter().any(|r| r.contains("sinceTime=")), "{reqs:?}");
    assert!(
        reqs.iter()
            .filter(|r| r.starts_with("/api/v1/namespaces/bots/pods?") && !r.contains("watch=true"))
            .count()
            >= 2,
        "re-listed after 410: {reqs:?}"
    );
}
