//! The live Kubernetes sources against an in-process fake API server (real protocol: paged
//! lists with resourceVersion, chunked watch lines with bookmarks, 410 Gone, cut watches,
//! following pod logs), with the real kube client inside the daemon pointed at it by a
//! generated kubeconfig (`KUBECONFIG`).
//!
//! 1. A rollout restart: `/api/v1/findings` shows `concurrent_sessions` and `silent_session`
//!    for the new pod.
//! 2. A cut watch, a 410 Gone, a cut log stream and a container restart: every lifecycle
//!    transition and every log line arrives exactly once (counted in the daemon's recording
//!    and in `log_lines_total`).
//! 3. Node mode: CRI files written as the kubelet writes them (a rotation, a partial line),
//!    the daemon restarted halfway (and a rotation while it is down): every line exactly once.

use crate::support::fake_apiserver;
use crate::support::prom;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use fake_apiserver::{FakeApiServer, PodBuilder};
use prom::{ChildGuard, free_port, http};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_discord-gateway-exporter");
const NS: &str = "bots";
const C: &str = "agentbroker";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A daemon subprocess (`run --config .. --record ..`) with `KUBECONFIG` set.
struct Daemon {
    addr: SocketAddr,
    log: PathBuf,
    child: ChildGuard,
}

impl Daemon {
    fn start(dir: &Path, name: &str, config: &str, kubeconfig: &Path, record: &Path) -> Daemon {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--record")
            .arg(record)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn,dge::sources::kubernetes=debug")
            .env_remove("NODE_NAME")
            .current_dir(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("DGE_") || k.starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        let log = dir.join(format!("{name}.log"));
        let mut child = ChildGuard::spawn("discord-gateway-exporter", cmd, &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.exited() {
                panic!(
                    "exporter exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = http(addr, "GET", "/readyz", None, b"") {
                return Daemon { addr, log, child };
            }
            assert!(Instant::now() < deadline, "exporter not ready on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> String {
        let (status, body) = http(self.addr, "GET", path, None, b"").expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.get(path)).expect("JSON")
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `sum(metric{labels..})` in /metrics.
    fn metric_sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.get("/metrics")
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(metric)?;
                if !(rest.starts_with('{') || rest.starts_with(' ')) {
                    return None;
                }
                labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                    .then(|| rest.rsplit(' ').next()?.parse::<f64>().ok())?
            })
            .sum()
    }

    fn lines_counted(&self) -> u64 {
        self.metric_sum(
            "discord_gateway_exporter_log_lines_total",
            &[("source", "kubernetes:logs")],
        ) as u64
    }

    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; exporter output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.pid().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.exited() {
                assert!(status.success(), "exit {status}:\n{}", self.output());
                return;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_record(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("recorded observation"))
        .collect()
}

/// (pod, change) of every recorded Instance observation, counted.
fn transitions(record: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for o in record {
        if o["body"]["type"] == "instance" {
            let key = (
                o["body"]["instance"]["pod"].as_str().unwrap().to_owned(),
                format!(
                    "{}@{}",
                    o["body"]["change"]["change"].as_str().unwrap(),
                    o["at"].as_str().unwrap()
                ),
            );
            *m.entry(key).or_insert(0) += 1;
        }
    }
    m
}

/// The channel ids of recorded dispatch lines, counted.
fn dispatches(record: &[Value]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for o in record {
        if o["body"]["type"] != "session" {
            continue;
        }
        let line = o["body"]["line"].as_str().unwrap_or("");
        if let Some(rest) = line.split("channel=").nth(1) {
            let id: u64 = rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
}

/// Waits until the daemon's recording holds `n` dispatch lines (they reach the engine in
/// batches, a little after they are counted).
fn wait_recorded(d: &Daemon, record: &Path, n: u64) {
    d.wait_for(Duration::from_secs(20), "dispatch lines recorded", |_| {
        (dispatches(&read_record(record)).len() as u64 >= n).then_some(())
    });
}

fn dispatch(id: u64) -> String {
    format!(
        "INFO dispatch{{channel={id} adapter=\"discord\"}}: openab::dispatch: batch dispatched \
         thread_key=discord:{id} events_per_dispatch=1"
    )
}

const CONNECTED: &str = "INFO openab::discord: discord bot connected user=AgentBroker";
const RUNNING: &str = "INFO openab: discord bot running";

fn bot_pod(name: &str, uid: &str, created: DateTime<Utc>) -> PodBuilder {
    let rs = name.rsplit_once('-').map(|(a, _)| a).unwrap_or(name);
    PodBuilder::new(NS, name, uid, C, created)
        .label("app.kubernetes.io/name", "agentbroker")
        .label("app.kubernetes.io/component", "discord-bot")
        .owner(rs)
}

fn cluster_config(extra: &str) -> String {
    format!(
        r#"
profile = "openab"
tick_ms = 200
[engine]
silent_min_secs = 2
silent_max_secs = 5
silent_fallback_secs = 5
[kubernetes]
namespaces = ["{NS}"]
label_selector = "app.kubernetes.io/component=discord-bot"
max_log_streams = 10
[kubernetes.attribution]
label = "app.kubernetes.io/name"
bots = {{ agentbroker = "AgentBroker" }}
{extra}
"#
    )
}

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
    let d = Daemon::start(
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
        |d| (d.lines_counted() >= history_lines).then_some(()),
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
    d.stop();

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
    let d = Daemon::start(
        dir.path(),
        "faults",
        &cluster_config(""),
        &kubeconfig,
        &record,
    );
    let wait_lines = |d: &Daemon, n: u64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = d.lines_counted();
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
    d.stop();

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

trait FloorSecond {
    fn with_nanosecond_floor(self) -> Self;
}

impl FloorSecond for DateTime<Utc> {
    /// The start of this second plus 0.2 s (so a few lines fit in the same second).
    fn with_nanosecond_floor(self) -> Self {
        let s = DateTime::from_timestamp(self.timestamp() + 1, 0).unwrap();
        s + TimeDelta::milliseconds(200)
    }
}

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
    let d = Daemon::start(dir.path(), "node1", &config, &kubeconfig, &rec1);
    let wait = |d: &Daemon, n: u64| {
        d.wait_for(Duration::from_secs(30), "lines counted", |d| {
            let got = d.lines_counted();
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
    let first_run = d.lines_counted();
    let h = d.json("/healthz");
    assert_eq!(h["sources"]["kubernetes:logs"]["up"], true, "{h}");
    d.stop();
    assert!(positions.exists(), "positions saved");

    // While it is down: the partial's end, more lines, and another rotation.
    append(&log0, &cri(t, 'F', tail2));
    physical += 1;
    append(&log0, &lines(4, &mut id, &mut physical));
    std::fs::rename(&log0, logdir.join("0.log.20260419-041000")).unwrap();
    append(&log0, &lines(6, &mut id, &mut physical));

    let rec2 = dir.path().join("record2.jsonl");
    let d = Daemon::start(dir.path(), "node2", &config, &kubeconfig, &rec2);
    // The P line read in the first run is read again with its F (its bytes were not
    // committed): counted once more as a physical line, but it is one logical line.
    let second_expected = physical - first_run + 1;
    d.wait_for(Duration::from_secs(30), "second run's lines", |d| {
        let got = d.lines_counted();
        assert!(got <= second_expected, "{got} > {second_expected}");
        (got == second_expected).then_some(())
    });
    append(&log0, &lines(2, &mut id, &mut physical));
    d.wait_for(Duration::from_secs(30), "lines after restart", |d| {
        (d.lines_counted() == second_expected + 2).then_some(())
    });
    let first_recorded = dispatches(&read_record(&rec1)).len() as u64;
    wait_recorded(&d, &rec2, id - first_recorded);
    d.stop();

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
