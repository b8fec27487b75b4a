//! The HTTP surface: `/` (the status page), `/metrics`, `/healthz`, `/readyz`, `/api/v1/findings`, `/api/v1/sessions`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::metrics::Metrics;
use super::status::{self, Mode, SourceLine, StatusConfig};
use super::traces::TraceExport;
use crate::self_metrics::SelfMetrics;
use dge_core::engine::Snapshot;

/// State shared between the engine task and the HTTP handlers.
pub struct Shared {
    pub snapshot: Arc<RwLock<Arc<Snapshot>>>,
    pub metrics: Metrics,
    /// The exporter's own counters, shared with the sources.
    pub own: SelfMetrics,
    /// Set once every source has started (and read back its history).
    pub ready: AtomicBool,
    /// Last health report per source: (up, detail).
    pub sources: RwLock<BTreeMap<String, (bool, String)>>,
    /// Sources disabled by configuration (an optional token that is absent): in `sources` as
    /// not up, without a `source_up` series, and named by `/readyz`.
    pub disabled: RwLock<BTreeSet<String>>,
    /// The trace export's status (`/healthz`) and failure counter (`/metrics`).
    pub traces: TraceExport,
    /// The status page's settings (`[status]`).
    pub status: StatusConfig,
}

impl Shared {
    /// With traces off.
    pub fn new() -> Arc<Self> {
        Self::with_traces(TraceExport::default())
    }

    /// Showing the state of the trace pipeline that owns `traces`.
    pub fn with_traces(traces: TraceExport) -> Arc<Self> {
        Self::with_status(traces, StatusConfig::default())
    }

    /// Also with the status page's settings.
    pub fn with_status(traces: TraceExport, status: StatusConfig) -> Arc<Self> {
        let snapshot = Arc::new(RwLock::new(Arc::new(Snapshot::default())));
        let own = SelfMetrics::new();
        let metrics = Metrics::with_traces(&own, snapshot.clone(), &traces);
        metrics.register_process_metrics();
        Arc::new(Self {
            metrics,
            own,
            snapshot,
            ready: AtomicBool::new(false),
            sources: RwLock::new(BTreeMap::new()),
            disabled: RwLock::new(BTreeSet::new()),
            traces,
            status,
        })
    }

    /// Publishes a new engine snapshot.
    pub fn publish(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a source's health, for `/healthz` and `source_up`.
    pub fn set_source(&self, source: &str, up: bool, detail: &str) {
        self.own.set_source_up(source, up);
        self.disabled
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(source);
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string(), (up, detail.to_string()));
    }
}

impl Shared {
    /// Records a source disabled by configuration: no `source_up` series (a disabled source
    /// is neither working nor failing, and must not page), its reason in `/healthz` and
    /// `/readyz`.
    pub fn set_source_disabled(&self, source: &str, detail: &str) {
        let _ = self.own.source_up.remove_label_values(&[source]);
        self.disabled
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string());
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string(), (false, detail.to_string()));
    }

    /// The disabled sources with their reasons.
    pub fn disabled_sources(&self) -> Vec<(String, String)> {
        let disabled = self.disabled.read().unwrap_or_else(|e| e.into_inner());
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        disabled
            .iter()
            .map(|s| {
                let detail = sources.get(s).map(|(_, d)| d.clone()).unwrap_or_default();
                (s.clone(), detail)
            })
            .collect()
    }
}

/// The router, ready to serve.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/sessions", get(sessions))
        .with_state(shared)
}

/// The status page, rendered from the current snapshot and the sources' health.
async fn index(State(s): State<Arc<Shared>>) -> Response {
    let snap = s.current();
    let sources: Vec<SourceLine> = s
        .sources
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(name, (up, detail))| SourceLine {
            name: name.clone(),
            up: *up,
            detail: detail.clone(),
        })
        .collect();
    let page = status::render(&snap, &sources, &s.status, Mode::Live);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let sources = s.sources.read().unwrap_or_else(|e| e.into_inner()).clone();
    let disabled = s.disabled.read().unwrap_or_else(|e| e.into_inner()).clone();
    let detail: BTreeMap<String, serde_json::Value> = sources
        .into_iter()
        .map(|(k, (up, d))| {
            let v = if disabled.contains(&k) {
                json!({"up": up, "disabled": true, "detail": d})
            } else {
                json!({"up": up, "detail": d})
            };
            (k, v)
        })
        .collect();
    // Liveness: the process serves. A failing source is reported, not fatal.
    let traces = s.traces.status();
    Json(json!({"status": "ok", "sources": detail, "traces": traces})).into_response()
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    // Disabled sources do not hold readiness back; they are named so that a probe's output
    // (or a curl) says what is off and why.
    let mut body = if s.ready.load(Ordering::Acquire) {
        String::from("ready\n")
    } else {
        String::from("sources still starting\n")
    };
    for (source, detail) in s.disabled_sources() {
        body.push_str(&format!("disabled: {source}: {detail}\n"));
    }
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

#[derive(Deserialize)]
struct FindingsQuery {
    /// `?active=true`: only the findings still open.
    #[serde(default)]
    active: bool,
}

async fn findings(State(s): State<Arc<Shared>>, Query(q): Query<FindingsQuery>) -> Response {
    let snap = s.current();
    let list: Vec<_> = snap
        .findings
        .iter()
        .filter(|f| !q.active || f.until.is_none())
        .collect();
    Json(json!({"at": snap.at, "findings": list})).into_response()
}

async fn sessions(State(s): State<Arc<Shared>>) -> Response {
    let snap = s.current();
    Json(json!({
        "at": snap.at,
        "sessions": snap.sessions,
        "series": snap.series,
        "handovers": snap.handovers,
    }))
    .into_response()
}
