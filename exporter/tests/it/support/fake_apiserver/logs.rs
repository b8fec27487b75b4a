//! Pod logs: follow, previous, sinceTime, tailLines, cut streams.

use super::*;

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

pub(super) async fn pod_log(
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
