//! An in-process stand-in for the Kubernetes API server on 127.0.0.1, speaking the parts of the
//! real protocol the exporter uses, for the real kube client:
//!
//! - `GET /api/v1[/namespaces/{ns}]/pods` lists (`limit`/`continue` pages, `labelSelector`,
//!   `fieldSelector=spec.nodeName=..`, `metadata.resourceVersion`);
//! - the same with `watch=true&resourceVersion=N`: chunked JSON lines (`ADDED`, `MODIFIED`,
//!   `DELETED`, `BOOKMARK`), `ERROR` with code 410 for a resourceVersion older than the
//!   compaction mark, and the stream ended after `timeoutSeconds`;
//! - `GET /api/v1/namespaces/{ns}/pods/{name}/log?follow&timestamps&container&previous&
//!   sinceTime&tailLines`: the container's runs as the kubelet keeps them.
//!
//! - Deployments, StatefulSets and their scale subresource, Leases and Events (`apps.rs`,
//!   for the remediation actor), with a request log and 403 on demand.
//!
//! Faults on demand: [`FakeApiServer::cut_watches`] sends half of the next watch event and
//! breaks the connection; [`FakeApiServer::expire`] makes changes that open watches never see
//! (they get `410 Gone` and must re-list); [`FakeApiServer::cut_logs`] breaks every open log
//! stream in the middle of a line. Every request is recorded.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

mod apps;
mod logs;
mod pod_builder;
mod pods;

use logs::pod_log;
pub use pod_builder::PodBuilder;
use pods::{fmt_ts, list_all, list_ns};

type Ts = DateTime<Utc>;

/// One container run's log.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub lines: Vec<(Ts, String)>,
    pub running: bool,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    pods: BTreeMap<(String, String), Value>,
    /// Every change: (resourceVersion, type, object).
    events: Vec<(u64, &'static str, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
    /// Bumped to break every open watch in the middle of an event.
    watch_cut: u64,
    /// Bumped to send 410 to every open watch.
    watch_expire: u64,
    /// Bumped to break every open log stream in the middle of a line.
    log_cut: u64,
    logs: HashMap<(String, String, String), Vec<Run>>,
    lists: HashMap<String, (u64, Vec<Value>)>,
    next_list: u64,
    requests: Vec<String>,
    /// Open watch and log connections (for the benchmark's report).
    open_watches: usize,
    open_logs: usize,
    /// Open log streams per (namespace, pod).
    streaming: HashMap<(String, String), usize>,
    /// Bookmark interval.
    bookmark_every: Duration,
    /// (plural kind, namespace, name) -> Deployment or StatefulSet.
    workloads: BTreeMap<(String, String, String), Value>,
    leases: BTreeMap<(String, String), Value>,
    kube_events: Vec<Value>,
    /// Calls to the `apps.rs` routes: `METHOD path [body]`.
    calls: Vec<String>,
    /// Call prefixes answered with 403.
    forbidden: Vec<String>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct FakeApiServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<watch::Sender<u64>>,
}

/// A change made under the server's lock (see [`FakeApiServer::expire`]).
pub struct Tx<'a> {
    inner: &'a mut Inner,
}

impl Tx<'_> {
    pub fn put_pod(&mut self, pod: Value) -> u64 {
        put_pod(self.inner, pod)
    }

    pub fn delete_pod(&mut self, ns: &str, name: &str) -> Option<u64> {
        delete_pod(self.inner, ns, name)
    }

    pub fn log(&mut self, ns: &str, pod: &str, container: &str, at: Ts, text: &str) {
        log_line(self.inner, ns, pod, container, at, text);
    }
}

fn put_pod(inner: &mut Inner, mut pod: Value) -> u64 {
    inner.rv += 1;
    let rv = inner.rv;
    pod["metadata"]["resourceVersion"] = json!(rv.to_string());
    pod["kind"] = json!("Pod");
    pod["apiVersion"] = json!("v1");
    let key = (
        pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        pod["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    );
    let kind = if inner.pods.contains_key(&key) {
        "MODIFIED"
    } else {
        "ADDED"
    };
    inner.pods.insert(key, pod.clone());
    inner.events.push((rv, kind, pod));
    rv
}

fn delete_pod(inner: &mut Inner, ns: &str, name: &str) -> Option<u64> {
    let mut pod = inner.pods.remove(&(ns.to_owned(), name.to_owned()))?;
    inner.rv += 1;
    let rv = inner.rv;
    pod["metadata"]["resourceVersion"] = json!(rv.to_string());
    inner.events.push((rv, "DELETED", pod));
    for ((n, p, _), runs) in inner.logs.iter_mut() {
        if n == ns && p == name {
            for r in runs {
                r.running = false;
            }
        }
    }
    Some(rv)
}

fn log_line(inner: &mut Inner, ns: &str, pod: &str, container: &str, at: Ts, text: &str) {
    let runs = inner
        .logs
        .entry((ns.to_owned(), pod.to_owned(), container.to_owned()))
        .or_default();
    if runs.is_empty() {
        runs.push(Run {
            lines: Vec::new(),
            running: true,
        });
    }
    runs.last_mut().unwrap().lines.push((at, text.to_owned()));
}

impl FakeApiServer {
    /// Binds 127.0.0.1 on a free port and serves on the current runtime.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            bookmark_every: Duration::from_secs(1),
            ..Inner::default()
        }));
        let (changed, _) = watch::channel(0u64);
        let server = FakeApiServer {
            addr: ([127, 0, 0, 1], 0).into(),
            inner,
            changed: Arc::new(changed),
        };
        let app = Router::new()
            .route("/api/v1/pods", get(list_all))
            .route("/api/v1/namespaces/{ns}/pods", get(list_ns))
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log));
        let app = apps::routes(app)
            .fallback(not_found)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApiServer { addr, ..server }
    }

    /// A kubeconfig for this server (plain HTTP, no credentials), written to `path`.
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.addr
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }

    fn wake(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Runs `f` under the lock, then wakes every open stream.
    pub fn with<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> R) -> R {
        let r = {
            let mut inner = self.inner.lock().unwrap();
            f(&mut Tx { inner: &mut inner })
        };
        self.wake();
        r
    }

    pub fn put_pod(&self, pod: Value) -> u64 {
        self.with(|t| t.put_pod(pod))
    }

    pub fn delete_pod(&self, ns: &str, name: &str) -> Option<u64> {
        self.with(|t| t.delete_pod(ns, name))
    }

    /// Appends a line to the container's current run (a first run is started if none).
    pub fn log(&self, ns: &str, pod: &str, container: &str, at: Ts, text: &str) {
        self.with(|t| t.log(ns, pod, container, at, text));
    }

    /// Many lines at once (one wake-up).
    pub fn log_many(&self, lines: &[(&str, &str, &str, Ts, String)]) {
        self.with(|t| {
            for (ns, pod, c, at, text) in lines {
                t.log(ns, pod, c, *at, text);
            }
        });
    }

    /// A container (re)starts: a new run, the previous one stopped.
    pub fn start_run(&self, ns: &str, pod: &str, container: &str) {
        let mut inner = self.inner.lock().unwrap();
        let runs = inner
            .logs
            .entry((ns.to_owned(), pod.to_owned(), container.to_owned()))
            .or_default();
        for r in runs.iter_mut() {
            r.running = false;
        }
        runs.push(Run {
            lines: Vec::new(),
            running: true,
        });
        drop(inner);
        self.wake();
    }

    /// The container's current run ends (its follow streams finish).
    pub fn stop_run(&self, ns: &str, pod: &str, container: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(runs) =
            inner
                .logs
                .get_mut(&(ns.to_owned(), pod.to_owned(), container.to_owned()))
        {
            for r in runs {
                r.running = false;
            }
        }
        drop(inner);
        self.wake();
    }

    /// Breaks every open watch in the middle of its next event (or of a bookmark); `f` runs
    /// under the same lock first (its changes are the events cut).
    pub fn cut_watches<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> R) -> R {
        let r = {
            let mut inner = self.inner.lock().unwrap();
            let r = f(&mut Tx { inner: &mut inner });
            inner.watch_cut += 1;
            r
        };
        self.wake();
        r
    }

    /// Makes the changes `f` makes, then compacts: open watches get `410 Gone` instead of
    /// those events, and must re-list to learn them.
    pub fn expire<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> R) -> R {
        let r = {
            let mut inner = self.inner.lock().unwrap();
            let r = f(&mut Tx { inner: &mut inner });
            inner.compacted = inner.rv;
            inner.watch_expire += 1;
            r
        };
        self.wake();
        r
    }

    /// Breaks every open log stream, in the middle of the next line when one is waiting; `f`
    /// runs under the same lock first (to have lines waiting).
    pub fn cut_logs<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> R) -> R {
        let r = {
            let mut inner = self.inner.lock().unwrap();
            let r = f(&mut Tx { inner: &mut inner });
            inner.log_cut += 1;
            r
        };
        self.wake();
        r
    }

    /// Requests seen so far (path and query).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Open (watch, log) connections.
    pub fn open(&self) -> (usize, usize) {
        let i = self.inner.lock().unwrap();
        (i.open_watches, i.open_logs)
    }

    /// Pods with an open log stream.
    pub fn streaming_pods(&self) -> Vec<(String, String)> {
        self.inner
            .lock()
            .unwrap()
            .streaming
            .keys()
            .cloned()
            .collect()
    }

    pub fn resource_version(&self) -> u64 {
        self.inner.lock().unwrap().rv
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    status(404, "NotFound", &format!("no route {}", uri.path()))
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}
