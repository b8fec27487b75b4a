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
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
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

async fn list_all(
    State(s): State<FakeApiServer>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    pods(s, None, q, uri).await
}

async fn list_ns(
    State(s): State<FakeApiServer>,
    UrlPath(ns): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    pods(s, Some(ns), q, uri).await
}

/// `k=v,k2!=v,k3` against labels; `spec.nodeName=x` / `metadata.namespace=x` against fields.
fn selected(pod: &Value, ns: Option<&str>, labels: Option<&str>, fields: Option<&str>) -> bool {
    if let Some(ns) = ns
        && pod["metadata"]["namespace"] != ns
    {
        return false;
    }
    for term in labels.unwrap_or("").split(',').filter(|t| !t.is_empty()) {
        let l = &pod["metadata"]["labels"];
        let ok = if let Some((k, v)) = term.split_once("!=") {
            l[k.trim()] != v.trim()
        } else if let Some((k, v)) = term.split_once('=') {
            l[k.trim().trim_end_matches('=')] == v.trim()
        } else {
            l.get(term.trim()).is_some()
        };
        if !ok {
            return false;
        }
    }
    for term in fields.unwrap_or("").split(',').filter(|t| !t.is_empty()) {
        let Some((k, v)) = term.split_once('=') else {
            return false;
        };
        let have = match k.trim() {
            "spec.nodeName" => pod["spec"]["nodeName"].as_str().unwrap_or(""),
            "metadata.namespace" => pod["metadata"]["namespace"].as_str().unwrap_or(""),
            "metadata.name" => pod["metadata"]["name"].as_str().unwrap_or(""),
            _ => return false,
        };
        if have != v.trim_start_matches('=').trim() {
            return false;
        }
    }
    true
}

async fn pods(
    s: FakeApiServer,
    ns: Option<String>,
    q: HashMap<String, String>,
    uri: axum::http::Uri,
) -> Response {
    s.inner.lock().unwrap().requests.push(
        uri.path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    let labels = q.get("labelSelector").cloned();
    let fields = q.get("fieldSelector").cloned();
    if q.get("watch").map(String::as_str) == Some("true") {
        let rv: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let timeout: u64 = q
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(290);
        return watch_stream(s, ns, labels, fields, rv, Duration::from_secs(timeout));
    }
    let mut inner = s.inner.lock().unwrap();
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let (rv, all, offset) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (id, off) = token.split_once(':').unwrap_or((token, "0"));
            let Some((rv, items)) = inner.lists.get(id).cloned() else {
                return status(410, "Expired", "continue token expired");
            };
            (rv, items, off.parse().unwrap_or(0))
        }
        None => {
            let items: Vec<Value> = inner
                .pods
                .values()
                .filter(|p| selected(p, ns.as_deref(), labels.as_deref(), fields.as_deref()))
                .cloned()
                .collect();
            (inner.rv, items, 0usize)
        }
    };
    let end = offset.saturating_add(limit).min(all.len());
    let page: Vec<Value> = all[offset.min(end)..end]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            // Items of a list carry no kind (the list says it).
            if let Some(m) = p.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            p
        })
        .collect();
    let cont = if end < all.len() {
        inner.next_list += 1;
        let id = inner.next_list.to_string();
        inner.lists.insert(id.clone(), (rv, all.clone()));
        format!("{id}:{end}")
    } else {
        String::new()
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if !cont.is_empty() {
        meta["continue"] = json!(cont);
    }
    let body = json!({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

struct WatchState {
    s: FakeApiServer,
    rx: watch::Receiver<u64>,
    ns: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
    cursor: u64,
    cut: u64,
    expire: u64,
    deadline: tokio::time::Instant,
    next_bookmark: tokio::time::Instant,
    done: bool,
    queue: std::collections::VecDeque<Result<Bytes, std::io::Error>>,
}

impl Drop for WatchState {
    fn drop(&mut self) {
        self.s.inner.lock().unwrap().open_watches -= 1;
    }
}

fn watch_stream(
    s: FakeApiServer,
    ns: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
    rv: u64,
    timeout: Duration,
) -> Response {
    let (cut, expire, bookmark_every) = {
        let mut i = s.inner.lock().unwrap();
        i.open_watches += 1;
        (i.watch_cut, i.watch_expire, i.bookmark_every)
    };
    let now = tokio::time::Instant::now();
    let rx = s.changed.subscribe();
    let st = WatchState {
        s,
        rx,
        ns,
        labels,
        fields,
        cursor: rv,
        cut,
        expire,
        deadline: now + timeout,
        next_bookmark: now + bookmark_every,
        done: false,
        queue: Default::default(),
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            st.rx.borrow_and_update();
            {
                let i = st.s.inner.lock().unwrap();
                if st.cursor < i.compacted || i.watch_expire != st.expire {
                    let status = json!({"type": "ERROR", "object": {"kind": "Status",
                        "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version", "reason": "Expired", "code": 410}});
                    st.queue.push_back(Ok(line(&status)));
                    st.done = true;
                    continue;
                }
                let pending: Vec<Value> = i
                    .events
                    .iter()
                    .filter(|(rv, _, _)| *rv > st.cursor)
                    .filter(|(_, _, o)| {
                        selected(
                            o,
                            st.ns.as_deref(),
                            st.labels.as_deref(),
                            st.fields.as_deref(),
                        )
                    })
                    .map(|(_, t, o)| json!({"type": t, "object": o}))
                    .collect();
                let last_rv = i.rv;
                if i.watch_cut != st.cut {
                    // Half of the next event (or of a bookmark), then a broken connection.
                    let v = pending
                        .first()
                        .cloned()
                        .unwrap_or_else(|| bookmark(last_rv));
                    let bytes = line(&v);
                    st.queue.push_back(Ok(bytes.slice(..bytes.len() / 2)));
                    st.queue.push_back(Err(std::io::Error::other("cut")));
                    st.done = true;
                    continue;
                }
                if !pending.is_empty() {
                    for v in &pending {
                        st.queue.push_back(Ok(line(v)));
                    }
                    st.cursor = last_rv;
                    continue;
                }
                st.cursor = st.cursor.max(last_rv);
                let now = tokio::time::Instant::now();
                if now >= st.next_bookmark {
                    st.next_bookmark = now + i.bookmark_every;
                    st.queue.push_back(Ok(line(&bookmark(st.cursor))));
                    continue;
                }
                if now >= st.deadline {
                    return None;
                }
            }
            let wake = st.next_bookmark.min(st.deadline);
            tokio::select! {
                _ = st.rx.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn bookmark(rv: u64) -> Value {
    json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
        "metadata": {"resourceVersion": rv.to_string(),
            "annotations": {"k8s.io/initial-events-end": "true"}}}})
}

fn fmt_ts(t: &Ts) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

struct LogState {
    s: FakeApiServer,
    rx: watch::Receiver<u64>,
    key: (String, String, String),
    run: usize,
    sent: usize,
    since: Option<Ts>,
    timestamps: bool,
    follow: bool,
    cut: u64,
    done: bool,
    queue: std::collections::VecDeque<Result<Bytes, std::io::Error>>,
}

impl Drop for LogState {
    fn drop(&mut self) {
        let mut i = self.s.inner.lock().unwrap();
        i.open_logs -= 1;
        let key = (self.key.0.clone(), self.key.1.clone());
        if let Some(n) = i.streaming.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                i.streaming.remove(&key);
            }
        }
    }
}

async fn pod_log(
    State(s): State<FakeApiServer>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    inner.requests.push(
        uri.path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    let Some(pod) = inner.pods.get(&(ns.clone(), name.clone())) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let container = match q.get("container") {
        Some(c) => c.clone(),
        None => pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    };
    let key = (ns.clone(), name.clone(), container.clone());
    if !inner.logs.contains_key(&key)
        && pod["status"]["containerStatuses"][0]["state"]["running"].is_object()
    {
        // A running container that has written nothing yet.
        inner.logs.insert(
            key.clone(),
            vec![Run {
                lines: Vec::new(),
                running: true,
            }],
        );
    }
    let runs = inner.logs.get(&key).map(Vec::len).unwrap_or(0);
    let previous = q.get("previous").map(String::as_str) == Some("true");
    let run = if previous {
        if runs < 2 {
            return status(
                400,
                "BadRequest",
                &format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ),
            );
        }
        runs - 2
    } else {
        if runs == 0 {
            return status(
                400,
                "BadRequest",
                &format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                ),
            );
        }
        runs - 1
    };
    let since = q
        .get("sinceTime")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let lines = &inner.logs[&key][run].lines;
    let eligible: Vec<usize> = (0..lines.len())
        .filter(|i| since.is_none_or(|s| lines[*i].0 >= s))
        .collect();
    let tail: Option<usize> = q.get("tailLines").and_then(|t| t.parse().ok());
    let start = match tail {
        Some(n) if eligible.len() > n => eligible[eligible.len() - n],
        _ => eligible.first().copied().unwrap_or(lines.len()),
    };
    inner.open_logs += 1;
    *inner
        .streaming
        .entry((ns.clone(), name.clone()))
        .or_insert(0) += 1;
    let cut = inner.log_cut;
    drop(inner);
    let st = LogState {
        rx: s.changed.subscribe(),
        s,
        key,
        run,
        sent: start,
        since,
        timestamps: q.get("timestamps").map(String::as_str) == Some("true"),
        follow: !previous && q.get("follow").map(String::as_str) == Some("true"),
        cut,
        done: false,
        queue: Default::default(),
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            st.rx.borrow_and_update();
            {
                let i = st.s.inner.lock().unwrap();
                let run = &i.logs[&st.key][st.run];
                let fmt = |(t, text): &(Ts, String)| {
                    if st.timestamps {
                        format!("{} {text}\n", fmt_ts(t))
                    } else {
                        format!("{text}\n")
                    }
                };
                let pending: Vec<String> = run.lines[st.sent..]
                    .iter()
                    .filter(|(t, _)| st.since.is_none_or(|s| *t >= s))
                    .map(fmt)
                    .collect();
                if i.log_cut != st.cut {
                    if let Some(l) = pending.first() {
                        st.queue
                            .push_back(Ok(Bytes::from(l[..l.len() / 2].to_owned())));
                    }
                    st.queue.push_back(Err(std::io::Error::other("cut")));
                    st.done = true;
                    continue;
                }
                st.sent = run.lines.len();
                if !pending.is_empty() {
                    st.queue.push_back(Ok(Bytes::from(pending.concat())));
                    continue;
                }
                let current = st.run + 1 == i.logs[&st.key].len();
                if !st.follow || !run.running || !current {
                    return None;
                }
            }
            let _ = st.rx.changed().await;
        }
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A pod as the API server returns it, built up step by step.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub node: String,
    pub container: String,
    pub owner: Option<String>,
    pub created: Ts,
    /// Current run: (containerID, startedAt, restartCount).
    pub running: Option<(String, Ts, u32)>,
    /// Current run ended: (containerID, startedAt, finishedAt, exitCode, reason).
    pub terminated: Option<(String, Ts, Ts, i32, String)>,
    /// Previous run: (startedAt, finishedAt, exitCode, reason).
    pub last: Option<(Ts, Ts, i32, String)>,
    pub ready_since: Option<Ts>,
    /// deletionTimestamp, grace seconds.
    pub deletion: Option<(Ts, u64)>,
}

impl PodBuilder {
    pub fn new(namespace: &str, name: &str, uid: &str, container: &str, created: Ts) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            labels: BTreeMap::new(),
            node: "node-a".into(),
            container: container.into(),
            owner: None,
            created,
            running: None,
            terminated: None,
            last: None,
            ready_since: None,
            deletion: None,
        }
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    pub fn node(mut self, n: &str) -> Self {
        self.node = n.into();
        self
    }

    pub fn owner(mut self, replicaset: &str) -> Self {
        self.owner = Some(replicaset.into());
        self
    }

    pub fn json(&self) -> Value {
        let restarts = self
            .running
            .as_ref()
            .map(|r| r.2)
            .unwrap_or(u32::from(self.last.is_some()));
        let mut cs = json!({"name": self.container, "image": "example/bot:1", "ready":
            self.ready_since.is_some(), "restartCount": restarts});
        cs["state"] = match (&self.running, &self.terminated) {
            (Some((id, started, _)), _) => {
                cs["containerID"] = json!(id);
                json!({"running": {"startedAt": fmt_ts(started)}})
            }
            (None, Some((id, started, finished, code, reason))) => {
                cs["containerID"] = json!(id);
                json!({"terminated": {"startedAt": fmt_ts(started), "finishedAt":
                    fmt_ts(finished), "exitCode": code, "reason": reason, "containerID": id}})
            }
            _ => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        if let Some((started, finished, code, reason)) = &self.last {
            cs["lastState"] = json!({"terminated": {"startedAt": fmt_ts(started), "finishedAt":
                fmt_ts(finished), "exitCode": code, "reason": reason}});
        }
        let mut conditions = vec![json!({"type": "PodScheduled", "status": "True",
            "lastTransitionTime": fmt_ts(&self.created)})];
        conditions.push(match &self.ready_since {
            Some(t) => json!({"type": "Ready", "status": "True", "lastTransitionTime": fmt_ts(t)}),
            None => json!({"type": "Ready", "status": "False", "lastTransitionTime":
                fmt_ts(&self.created)}),
        });
        let mut meta = json!({"name": self.name, "namespace": self.namespace, "uid": self.uid,
            "creationTimestamp": fmt_ts(&self.created), "labels": self.labels,
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}}}}]});
        if let Some(rs) = &self.owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": rs, "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]);
        }
        if let Some((t, grace)) = &self.deletion {
            meta["deletionTimestamp"] = json!(fmt_ts(t));
            meta["deletionGracePeriodSeconds"] = json!(grace);
        }
        let phase = if self.running.is_some() {
            "Running"
        } else if self.terminated.is_some() {
            "Succeeded"
        } else {
            "Pending"
        };
        json!({
            "metadata": meta,
            "spec": {"nodeName": self.node, "terminationGracePeriodSeconds": 30,
                "containers": [{"name": self.container, "image": "example/bot:1"}]},
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": [cs]}
        })
    }
}
