//! 3. Node mode: the kubelet's CRI files across a daemon restart and rotations.

use super::*;

/// A CRI log line as the kubelet writes it.
fn cri(at: DateTime<Utc>, tag: char, text: &str) -> String {
    format!(
        "{} stdout {tag} {text}\n",
        at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Acceptance 3: node mode reads each line once across a restart and rotations.
#[test]
fn node_mode_reads_every_cri_line_once_across_a_restart_and_rotations() {
    let rt = runtime();
    let fake = rt.block_on(FakeApiServer::start());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    let root = dir.path().join("pods");
    let base = Utc::now() - TimeDelta::minutes(2);

    // This node's bot pod, another node's, and a non-bot pod on this node.
    let name = "agentbroker-6c9f7d8b4-nnnnn";
    let mut p = bot_pod(name, "uid-n", base).node("node-a");
    p.running = Some(("containerd://n-0".into(), base, 0));
    p.ready_since = Some(base);
    fake.put_pod(p.json());
    let mut elsewhere = bot_pod("agentbroker-6c9f7d8b4-eeeee", "uid-e", base).node("node-b");
    elsewhere.running = Some(("containerd://e-0".into(), base, 0));
    fake.put_pod(elsewhere.json());
    let logdir = root.join(format!("{NS}_{name}_uid-n")).join(C);
    std::fs::create_dir_all(&logdir).unwrap();
    let other_dir = root
        .join(format!("{NS}_agentbroker-6c9f7d8b4-eeeee_uid-e"))
        .join(C);
    std::fs::create_dir_all(&other_dir).unwrap();
    append(&other_dir.join("0.log"), &cri(base, 'F', &dispatch(9999)));
    let log0 = logdir.join("0.log");

    let mut id = 0u64;
    let mut physical = 0u64;
    let lines = |n: usize, id: &mut u64, physical: &mut u64| -> String {
        let mut s = String::new();
        for _ in 0..n {
            *id += 1;
            let t = base + TimeDelta::milliseconds(100 * *id as i64);
            s.push_str(&cri(t, 'F', &dispatch(*id)));
            *physical += 1;
        }
        s
    };
    // Before the first start: 10 lines, a partial line (P + F), 10 more, then a rotation
    // (0.log renamed, a new 0.log) with 5 lines.
    append(&log0, &cri(base, 'F', RUNNING));
    append(&log0, &cri(base, 'F', CONNECTED));
    physical += 2;
    append(&log0, &lines(10, &mut id, &mut physical));
    id += 1;
    let whole = dispatch(id);
    let (head, tail) = whole.split_at(30);
    append(&log0, &cri(base + TimeDelta::seconds(5), 'P', head));
    append(&log0, &cri(base + TimeDelta::seconds(5), 'F', tail));
    physical += 2;
    append(&log0, &lines(10, &mut id, &mut physical));

    let positions = dir.path().join("state/positions.json");
    let config = format!(
        r#"
profile = "openab"
tick_ms = 200
[kubernetes]
mode = "node"
node_name = "node-a"
log_root = "{}"
positions_file = "{}"
label_selector = "app.kubernetes.io/component=discord-bot"
poll_ms = 100
[kubernetes.attribution]
label = "app.kubernetes.io/name"
bots = {{ agentbroker = "AgentBroker" }}
"#,
        root.display(),
        positions.display()
    );
    let rec1 = dir.path().join("record1.jsonl");
    let d = start_daemon(dir.path(), "node1", &config, &kubeconfig, &rec1);
    let wait = |d: &Exporter, n: u64| {
        d.wait_for(Duration::from_secs(30), "lines counted", |d| {
            let got = lines_counted(d);
            assert!(got <= n, "{got} lines counted, {n} written");
            (got == n).then_some(())
        })
    };
    wait(&d, physical);
    // A rotation while it runs: the rest of the old file, then the new one.
    append(&log0, &lines(3, &mut id, &mut physical));
    std::fs::rename(&log0, logdir.join("0.log.20260419-040000")).unwrap();
    append(&log0, &lines(5, &mut id, &mut physical));
    wait(&d, physical);
    // A partial line whose end comes only after the restart.
    id += 1;
    let split = dispatch(id);
    let (head2, tail2) = split.split_at(25);
    let t = base + TimeDelta::milliseconds(100 * id as i64);
    append(&log0, &cri(t, 'P', head2));
    physical += 1;
    wait(&d, physical);
    // Every complete line reached the engine (the one waiting for its F is not complete).
    wait_recorded(&d, &rec1, id - 1);
    let first_run = lines_counted(&d);
    let h = d.json("/healthz");
    assert_eq!(h["sources"]["kubernetes:logs"]["up"], true, "{h}");
    stop(d);
    assert!(positions.exists(), "positions saved");

    // While it is down: the partial's end, more lines, and another rotation.
    append(&log0, &cri(t, 'F', tail2));
    physical += 1;
    append(&log0, &lines(4, &mut id, &mut physical));
    std::fs::rename(&log0, logdir.join("0.log.20260419-041000")).unwrap();
    append(&log0, &lines(6, &mut id, &mut physical));

    let rec2 = dir.path().join("record2.jsonl");
    let d = start_daemon(dir.path(), "node2", &config, &kubeconfig, &rec2);
    // The P line read in the first run is read again with its F (its bytes were not
    // committed): counted once more as a physical line, but it is one logical line.
    let second_expected = physical - first_run + 1;
    d.wait_for(Duration::from_secs(30), "second run's lines", |d| {
        let got = lines_counted(d);
        assert!(got <= second_expected, "{got} > {second_expected}");
        (got == second_expected).then_some(())
    });
    append(&log0, &lines(2, &mut id, &mut physical));
    d.wait_for(Duration::from_secs(30), "lines after restart", |d| {
        (lines_counted(d) == second_expected + 2).then_some(())
    });
    let first_recorded = dispatches(&read_record(&rec1)).len() as u64;
    wait_recorded(&d, &rec2, id - first_recorded);
    stop(d);

    let mut all = read_record(&rec1);
    all.extend(read_record(&rec2));
    let ds = dispatches(&all);
    assert!(!ds.contains_key(&9999), "another node's pod was read");
    assert_eq!(ds.len() as u64, id, "every line: {ds:?}");
    assert!(ds.values().all(|n| *n == 1), "a line twice: {ds:?}");
    // The pod's lifecycle came from the node-filtered watch.
    let tr = transitions(&all);
    assert!(
        tr.keys()
            .any(|(p, c)| p == name && c.starts_with("running@"))
    );
    assert!(!tr.keys().any(|(p, _)| p.ends_with("eeeee")));
}
