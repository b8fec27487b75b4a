//! Pod lists and watches: pages, selectors, resourceVersions, bookmarks, 410 Gone.

use super::*;

pub(super) async fn list_all(
    State(s): State<FakeApiServer>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    pods(s, None, q, uri).await
}

pub(super) async fn list_ns(
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

pub(super) fn fmt_ts(t: &Ts) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
