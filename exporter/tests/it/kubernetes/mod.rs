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

use crate::support::exporter::{BIN, Exporter};
use crate::support::fake_apiserver;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use fake_apiserver::{FakeApiServer, PodBuilder};
use serde_json::Value;

mod cut_watch;
mod node_mode;
mod rollout;

const NS: &str = "bots";
const C: &str = "agentbroker";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a daemon subprocess (`run --config .. --record ..`) with `KUBECONFIG` set.
fn start_daemon(
    dir: &Path,
    name: &str,
    config: &str,
    kubeconfig: &Path,
    record: &Path,
) -> Exporter {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
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
    Exporter::spawn(cmd, |_| dir.join(format!("{name}.log")))
}

/// Lines the Kubernetes log streams counted.
fn lines_counted(d: &Exporter) -> u64 {
    d.metric_sum(
        "discord_gateway_exporter_log_lines_total",
        &[("source", "kubernetes:logs")],
    ) as u64
}

/// SIGTERM, then a clean exit.
fn stop(mut d: Exporter) {
    let status = d.sigterm(Duration::from_secs(20));
    assert!(status.success(), "exit {status}:\n{}", d.output());
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
fn wait_recorded(d: &Exporter, record: &Path, n: u64) {
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
