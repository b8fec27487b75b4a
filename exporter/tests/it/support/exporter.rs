//! Test support: run the exporter binary itself (`demo`, `run`, `replay`) as a subprocess.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::prom::{ChildGuard, free_port, http};

pub const BIN: &str = env!("CARGO_BIN_EXE_discord-gateway-exporter");

/// A running exporter, killed when dropped.
pub struct Exporter {
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
    pub child: ChildGuard,
}

impl Exporter {
    /// Starts `discord-gateway-exporter <args> --listen 127.0.0.1:PORT` and waits for /readyz.
    pub fn start(args: &[&str], dir: &Path) -> Exporter {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .current_dir(dir);
        let log = dir.join(format!("exporter-{}.log", addr.port()));
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
                return Exporter { addr, log, child };
            }
            assert!(Instant::now() < deadline, "exporter not ready on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> String {
        let (status, body) = http(self.addr, "GET", path, None, b"").expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path)).expect("JSON body")
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `f` every 100 ms until it returns Some, or panics after `timeout`.
    pub fn wait_for<T>(
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
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run exporter")
}

/// The value of the first sample of `metric` whose labels contain every `label="value"` pair.
pub fn sample(metrics: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(metric)?;
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return None;
        }
        if !labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        {
            return None;
        }
        rest.rsplit(' ').next()?.parse().ok()
    })
}
