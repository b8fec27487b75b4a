//! Test support: run the exporter binary itself (`demo`, `run`, `replay`) as a subprocess.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use super::prom::{ChildGuard, free_port, http};

pub const BIN: &str = env!("CARGO_BIN_EXE_discord-gateway-exporter");

/// A running exporter, killed when dropped.
pub struct Exporter {
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub child: ChildGuard,
}

impl Exporter {
    /// Starts `discord-gateway-exporter <args> --listen 127.0.0.1:PORT` and waits for /readyz.
    pub fn start(args: &[&str], dir: &Path) -> Exporter {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(dir);
        Exporter::spawn(cmd, |port| dir.join(format!("exporter-{port}.log")))
    }

    /// Starts `cmd` (the binary with its arguments) with `--listen 127.0.0.1:PORT`, its output
    /// in `log(PORT)`, and waits for /readyz.
    pub fn spawn(mut cmd: Command, log: impl FnOnce(u16) -> PathBuf) -> Exporter {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        cmd.arg("--listen").arg(addr.to_string());
        let log = log(addr.port());
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

    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    pub fn sigterm(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.exited() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "still running {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `sum(metric{labels..})` in /metrics.
    pub fn metric_sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        samples(&self.get("/metrics"), metric, labels).sum()
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
    samples(metrics, metric, labels).next()
}

/// The values of the samples of `metric` whose labels contain every `label="value"` pair.
fn samples<'a>(
    metrics: &'a str,
    metric: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = f64> + 'a {
    metrics.lines().filter_map(move |l| {
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
