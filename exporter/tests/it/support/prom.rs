//! Test support: run the real Prometheus and Alertmanager binaries (Debian packages
//! `prometheus` and `prometheus-alertmanager`) on 127.0.0.1, plus a tiny webhook receiver.
//!
//! Use from a test file with
//!
//! ```ignore
//! #[path = "support/prom.rs"]
//! mod prom;
//! ```
//!
//! Every process gets a free loopback port and its own temporary directory, and is killed
//! (by its PID, through the owning guard) when the guard is dropped, panics included.
//! A missing binary makes the test fail with the apt package to install; it never skips.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The repository root (the workspace, one level above the crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent directory")
        .to_path_buf()
}

/// The absolute path of `binary` on PATH, or a panic that names the Debian package to install.
pub fn require_tool(binary: &str, apt_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(binary);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{binary}` was not found on PATH. These tests run the real tool: install it with \
         `apt-get install -y --no-install-recommends {apt_package}` (Debian package `{apt_package}`)."
    );
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// A child process killed (by its PID) and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
}

impl ChildGuard {
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> ChildGuard {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file handle");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none()
            && let Err(e) = self.child.kill()
        {
            eprintln!(
                "could not kill {} (pid {}): {e}",
                self.name,
                self.child.id()
            );
        }
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 exchange over loopback. Returns (status code, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no HTTP header end in {text:?}"),
        )
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line in {head:?}"),
            )
        })?;
    Ok((status, body.to_string()))
}

/// `application/x-www-form-urlencoded` / query-string encoding of one value.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// Start a server on a free port; retry with another port if it lost a race for the port.
/// `make` builds the command for a port; `ready_path` answers 200 once it serves.
fn start_server(
    name: &str,
    dir: &Path,
    make: &dyn Fn(u16) -> Command,
    ready_path: &str,
) -> (ChildGuard, SocketAddr) {
    let log = dir.join(format!("{name}.log"));
    let mut last_log = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut guard = ChildGuard::spawn(name, make(port), &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = guard.exited() {
                last_log = read_log(&log);
                if last_log.contains("address already in use") {
                    break;
                }
                panic!("{name} exited during start-up ({status}):\n{last_log}");
            }
            if let Ok((200, _)) = http(addr, "GET", ready_path, None, b"") {
                return (guard, addr);
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} did not become ready on {addr} within 60s:\n{}",
                    read_log(&log)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{name} could not bind a free port after 3 attempts:\n{last_log}");
}

/// A Prometheus server on 127.0.0.1 with its own temporary config and storage.
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    /// Holds `prometheus.yml`, any extra files, `data/` and `prometheus.log`.
    pub dir: tempfile::TempDir,
    child: ChildGuard,
}

impl Prometheus {
    /// Start Prometheus with `config_yaml` as its configuration file.
    pub fn start(config_yaml: &str) -> Prometheus {
        Prometheus::start_with_files(config_yaml, &[])
    }

    /// Start Prometheus with `config_yaml` and extra files (`(relative name, content)`)
    /// written next to it, e.g. rule files the config names in `rule_files`.
    pub fn start_with_files(config_yaml: &str, files: &[(&str, &str)]) -> Prometheus {
        let binary = require_tool("prometheus", "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("dge-prometheus-")
            .tempdir()
            .expect("temp dir");
        for (name, content) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create file's directory");
            }
            std::fs::write(&path, content).expect("write extra file");
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml).expect("write prometheus.yml");
        let data = dir.path().join("data");
        let make = |port: u16| {
            let mut c = Command::new(&binary);
            c.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .current_dir(dir.path());
            c
        };
        let (child, addr) = start_server("prometheus", dir.path(), &make, "/-/ready");
        Prometheus {
            url: format!("http://{addr}"),
            addr,
            dir,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("prometheus.log"))
    }

    /// GET a path (e.g. `/api/v1/alerts`) and parse the JSON answer.
    pub fn get(&self, path_and_query: &str) -> serde_json::Value {
        let (status, body) = http(self.addr, "GET", path_and_query, None, b"")
            .unwrap_or_else(|e| panic!("GET {path_and_query} on {}: {e}", self.url));
        serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("GET {path_and_query}: status {status}, not JSON ({e}): {body}")
        })
    }

    /// An instant query: the API's JSON answer, success or error (a parse error is
    /// `{"status":"error","errorType":"bad_data",...}` with HTTP 400).
    pub fn query(&self, expr: &str) -> serde_json::Value {
        self.post_query("/api/v1/query", &format!("query={}", urlencode(expr)))
    }

    /// An instant query at a given Unix time.
    pub fn query_at(&self, expr: &str, unix_time: f64) -> serde_json::Value {
        self.post_query(
            "/api/v1/query",
            &format!("query={}&time={unix_time}", urlencode(expr)),
        )
    }

    /// A range query over `[start, end]` with `step` seconds.
    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> serde_json::Value {
        self.post_query(
            "/api/v1/query_range",
            &format!(
                "query={}&start={start}&end={end}&step={step}",
                urlencode(expr)
            ),
        )
    }

    fn post_query(&self, path: &str, form: &str) -> serde_json::Value {
        let (status, body) = http(
            self.addr,
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            form.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST {path} on {}: {e}", self.url));
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("POST {path}: status {status}, not JSON ({e}): {body}"))
    }

    /// Alerts as the rule manager sees them (`/api/v1/alerts`), pending ones included.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.get("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Poll `check` every 500ms until it returns `Some`, or panic after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Prometheus) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; Prometheus log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
}

/// An Alertmanager on 127.0.0.1 with clustering disabled and its own temporary storage.
pub struct Alertmanager {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: ChildGuard,
}

impl Alertmanager {
    pub fn start(config_yaml: &str) -> Alertmanager {
        let binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::Builder::new()
            .prefix("dge-alertmanager-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_yaml).expect("write alertmanager.yml");
        let data = dir.path().join("data");
        let make = |port: u16| {
            let mut c = Command::new(&binary);
            c.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // An empty address disables the gossip cluster (which would bind 0.0.0.0:9094).
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .current_dir(dir.path());
            c
        };
        let (child, addr) = start_server("alertmanager", dir.path(), &make, "/-/ready");
        Alertmanager {
            url: format!("http://{addr}"),
            addr,
            dir,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("alertmanager.log"))
    }

    /// The alerts Alertmanager holds (`/api/v2/alerts`), inhibited and silenced included.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = http(self.addr, "GET", "/api/v2/alerts", None, b"")
            .unwrap_or_else(|e| panic!("GET /api/v2/alerts on {}: {e}", self.url));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/api/v2/alerts: status {status}, not JSON ({e}): {body}"));
        v.as_array().cloned().unwrap_or_default()
    }

    /// Post alerts directly (`/api/v2/alerts`, a JSON array), as Prometheus would.
    pub fn post_alerts(&self, alerts: &serde_json::Value) {
        let body = alerts.to_string();
        let (status, answer) = http(
            self.addr,
            "POST",
            "/api/v2/alerts",
            Some("application/json"),
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST /api/v2/alerts on {}: {e}", self.url));
        assert_eq!(
            status, 200,
            "POST /api/v2/alerts answered {status}: {answer}"
        );
    }
}

/// A webhook receiver on 127.0.0.1 that answers 200 to everything and keeps every request
/// body (Alertmanager's notifications are JSON bodies of POSTs).
pub struct Webhook {
    /// `http://127.0.0.1:PORT/`; any path is accepted.
    pub url: String,
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One request the webhook received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: String,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook on 127.0.0.1");
        let addr = listener.local_addr().expect("webhook address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    if let Some(request) = read_request(&mut stream) {
                        received.lock().unwrap().push(request);
                    }
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    let _ = stream.shutdown(Shutdown::Both);
                }
            })
        };
        Webhook {
            url: format!("http://{addr}/"),
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Every request body received so far, parsed as JSON where it is JSON.
    pub fn json_bodies(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect()
    }

    /// Poll until `check` finds something in the bodies received so far, or panic.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[serde_json::Value]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(&self.json_bodies()) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; received: {:#?}",
                    self.requests()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < content_length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
