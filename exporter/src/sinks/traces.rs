//! OpenTelemetry traces of gateway sessions and handovers, exported over OTLP.
//!
//! The engine's [`Change`]s become spans with the observations' own times (explicit start and
//! end), so a live daemon and a replayed incident produce the same traces:
//!
//! - `gateway.session`: one per session, READY (or its first sign) to its end, with the
//!   session's identity and outcome; span events for its steps and for every finding that
//!   concerns it. Exported when the session ends.
//! - `gateway.session.segment`: children of the session span, one per `segment_secs` of a
//!   long session, carrying the events of their stretch, so a session that lives for days shows
//!   up in a backend within minutes (see docs/architecture.md, "Traces").
//! - `gateway.handover`: one per rollout or restart (a new session of a bot and shard while
//!   another is live or just ended), linked to the old and the new session, with the story of
//!   the handover as events; it ends once the old session is gone and the new one proved itself
//!   (an event), ended, or was found silent.
//!
//! Export never blocks the engine: spans go to the SDK's batch processor (a bounded queue; a
//! full queue drops spans) whose own thread talks to the collector; failed exports are
//! counted in `discord_gateway_exporter_trace_export_errors_total` and shown in `/healthz`.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use chrono::TimeDelta;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter,
};
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use dge_core::engine::{Change, Finding, Kind, Session, SessionState, Severity};
use dge_core::observation::Timestamp;

/// Instrumentation scope of the session spans.
pub const SCOPE: &str = "discord-gateway-exporter";
/// `service.name` when neither `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` nor the config
/// names one.
pub const DEFAULT_SERVICE_NAME: &str = "discord-gateway-exporter";
/// A handover still unresolved this long after it started ends as `unresolved`.
const HANDOVER_MAX: TimeDelta = TimeDelta::hours(1);
/// Ended sessions remembered (for handovers that start after their predecessor ended).
const MAX_ENDED: usize = 4096;
/// Events kept per segment (the session span itself is bounded by the SDK's span limits).
const MAX_SEGMENT_EVENTS: usize = 64;

/// `[traces]`: OTLP export of session traces. The standard `OTEL_*` variables override these;
/// with neither an endpoint nor `enabled = true`, traces are off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// `true` exports to the default endpoint (localhost:4317) when none is given; `false`
    /// turns traces off even when an endpoint is set. Unset: on when an endpoint is set.
    pub enabled: Option<bool>,
    /// Collector URL, e.g. `http://otel-collector:4317` (gRPC) or
    /// `http://otel-collector:4318` (HTTP; `/v1/traces` is appended).
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    pub protocol: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: Option<String>,
    /// Length of a long session's segment spans, in seconds; 0: no segments (the session span
    /// only, exported when the session ends).
    pub segment_secs: u64,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            endpoint: None,
            protocol: None,
            service_name: None,
            segment_secs: 300,
        }
    }
}

impl TracesConfig {
    /// Checks the protocol and the endpoint's shape.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = &self.protocol {
            parse_protocol(p).map_err(|e| Error::invalid("traces.protocol", e))?;
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Error::invalid_value(
                "traces.endpoint",
                format!("{e:?}"),
                "a URL (http://host:port)",
            ));
        }
        Ok(())
    }
}

fn parse_protocol(p: &str) -> std::result::Result<Protocol, String> {
    match p.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpBinary),
        other => Err(format!("{other:?}: grpc or http/protobuf")),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

// ----- export status ------------------------------------------------------------------------

/// Failed export calls (one per batch that could not be delivered after the exporter's own
/// retries). Process-wide, as the exporter is; every [`super::metrics::Metrics`] registers it.
pub static EXPORT_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "discord_gateway_exporter_trace_export_errors_total",
        "Batches of spans the OTLP exporter failed to deliver (after its retries).",
    )
    .expect("valid metric")
});

/// What `/healthz` shows about the trace export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportStatus {
    pub enabled: bool,
    pub endpoint: String,
    pub protocol: String,
    pub spans_exported: u64,
    pub export_errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// The last export failed.
    pub failing: bool,
}

static STATUS: LazyLock<Mutex<ExportStatus>> = LazyLock::new(Mutex::default);

/// The trace export's state, for `/healthz`.
pub fn status() -> ExportStatus {
    STATUS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Wraps the OTLP exporter to count and remember failures.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let r = self.inner.export(batch).await;
        let mut s = STATUS.lock().unwrap_or_else(|e| e.into_inner());
        match &r {
            Ok(()) => {
                if s.failing {
                    tracing::info!("trace export recovered");
                    s.failing = false;
                }
                s.spans_exported += n;
            }
            Err(e) => {
                EXPORT_ERRORS.inc();
                s.export_errors += 1;
                let msg = dge_parse::logs::redact_tokens(&e.to_string()).into_owned();
                // Once per failure streak or change of reason, not once per batch.
                if !s.failing || s.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, spans = n, "trace export failed");
                }
                s.failing = true;
                s.last_error = Some(msg);
                s.last_error_at = Some(chrono::Utc::now());
            }
        }
        r
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

// ----- the provider -------------------------------------------------------------------------

/// The OTLP trace pipeline: a tracer provider with a batch processor.
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
    segment: Option<TimeDelta>,
}

impl Traces {
    /// Builds the pipeline when traces are configured (by `OTEL_*` variables or `cfg`); `None`
    /// when they are off. `force` (replay's `--otlp`) turns them on with the defaults. The gRPC
    /// exporter needs a Tokio runtime entered.
    pub fn from_config(cfg: &TracesConfig, force: bool) -> Result<Option<Self>> {
        cfg.validate()?;
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let env_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let on = !disabled
            && (force
                || match cfg.enabled {
                    Some(e) => e,
                    None => env_endpoint || cfg.endpoint.is_some(),
                });
        if !on {
            return Ok(None);
        }
        let protocol_text = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .or_else(|| cfg.protocol.clone())
            .unwrap_or_else(|| "grpc".to_string());
        let protocol =
            parse_protocol(&protocol_text).map_err(|e| Error::invalid("OTLP protocol", e))?;
        // The variables win over the file; the exporter reads them itself.
        let endpoint = if env_endpoint {
            None
        } else {
            cfg.endpoint.clone()
        };
        let shown_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .or_else(|| endpoint.clone())
            .unwrap_or_else(|| match protocol {
                Protocol::Grpc => "http://localhost:4317".into(),
                _ => "http://localhost:4318".into(),
            });
        let exporter = match protocol {
            Protocol::Grpc => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build()
            }
            _ => {
                let endpoint = endpoint.map(|e| {
                    if e.trim_end_matches('/').ends_with("/v1/traces") {
                        e
                    } else {
                        format!("{}/v1/traces", e.trim_end_matches('/'))
                    }
                });
                // The blocking HTTP client must not be made on a runtime's thread.
                std::thread::spawn(move || {
                    let mut b = opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpBinary);
                    if let Some(e) = endpoint {
                        b = b.with_endpoint(e);
                    }
                    b.build()
                })
                .join()
                .map_err(|_| Error::TraceExporterPanicked)?
            }
        }
        .map_err(Error::TraceExporter)?;

        // Resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (read by the SDK), else the
        // config's or our name.
        let detected = Resource::builder().build();
        let named = detected
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .map(|v| !v.as_str().starts_with("unknown_service"))
            .unwrap_or(false);
        let mut resource = Resource::builder();
        if !named {
            resource = resource.with_service_name(
                cfg.service_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string()),
            );
        }
        let resource = resource
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        // OTEL_BSP_* tune the queue (default 2048 spans) and the delay (default 5 s).
        let processor = BatchSpanProcessor::builder(Counting { inner: exporter })
            .with_batch_config(BatchConfigBuilder::default().build())
            .build();
        // OTEL_TRACES_SAMPLER(_ARG) choose the sampler (read by the SDK's default config).
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = ExportStatus {
            enabled: true,
            endpoint: shown_endpoint,
            protocol: protocol_text,
            ..ExportStatus::default()
        };
        let segment = (cfg.segment_secs > 0).then(|| TimeDelta::seconds(cfg.segment_secs as i64));
        Ok(Some(Self { provider, segment }))
    }

    /// A tracer of this pipeline (the daemon's own spans use one via tracing-opentelemetry).
    pub fn tracer(&self, scope: &'static str) -> SdkTracer {
        self.provider.tracer(scope)
    }

    /// The sink that turns engine changes into spans; `segments: false` for replay, where
    /// every session's whole span is exported at once anyway.
    pub fn sink(&self, segments: bool) -> TraceSink {
        TraceSink::new(
            self.tracer(SCOPE),
            if segments { self.segment } else { None },
        )
    }

    /// Exports what is queued and stops the pipeline, waiting at most `timeout`.
    pub fn shutdown(&self, timeout: Duration) {
        let _ = self.provider.force_flush();
        if let Err(e) = self.provider.shutdown_with_timeout(timeout) {
            tracing::debug!(error = %e, "trace pipeline shutdown");
        }
    }
}

// ----- the sink -----------------------------------------------------------------------------

fn systime(t: Timestamp) -> SystemTime {
    SystemTime::from(t)
}

/// An event recorded on a session (and its current segment).
#[derive(Clone)]
struct Event {
    name: &'static str,
    at: Timestamp,
    attrs: Vec<KeyValue>,
}

struct OpenSession {
    span: Span,
    ctx: SpanContext,
    identity: Vec<KeyValue>,
    bot: String,
    namespace: String,
    pod: String,
    shard: u32,
    ready_at: Timestamp,
    seg_start: Timestamp,
    seg_index: u32,
    seg_events: Vec<Event>,
    handovers: Vec<u64>,
    /// Set by `SessionEnded`; the span ends at the end of the batch, so findings raised by the
    /// same observation (lingering_session) still land on it.
    ended: Option<Box<Session>>,
    critical: Option<&'static str>,
    first_event: Option<Timestamp>,
}

struct EndedSession {
    ctx: SpanContext,
    pod: String,
    ended_at: Timestamp,
    live_until: Timestamp,
}

struct OpenHandover {
    span: Span,
    bot: String,
    shard: u32,
    old: u64,
    new: u64,
    start: Timestamp,
    /// When the old session stopped being live (its end, plus lingering), once known.
    old_gone: Option<Timestamp>,
    /// When the new session settled: its first event, its end, or a silence finding.
    new_settled: Option<Timestamp>,
    outcome: Option<&'static str>,
}

/// Turns engine [`Change`]s into spans. Owned by the engine's task; never blocks (the SDK's
/// batch processor queues the ended spans).
pub struct TraceSink {
    tracer: SdkTracer,
    segment: Option<TimeDelta>,
    open: HashMap<u64, OpenSession>,
    ended: HashMap<u64, EndedSession>,
    ended_order: VecDeque<u64>,
    handovers: HashMap<u64, OpenHandover>,
    next_handover: u64,
}

impl TraceSink {
    pub fn new(tracer: SdkTracer, segment: Option<TimeDelta>) -> Self {
        Self {
            tracer,
            segment,
            open: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            handovers: HashMap::new(),
            next_handover: 0,
        }
    }

    /// Sessions whose span is still open.
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// The span context of the session a finding concerns, for log lines.
    pub fn context_of(&self, f: &Finding) -> Option<SpanContext> {
        self.concerned(f)
            .first()
            .map(|id| self.open[id].ctx.clone())
    }

    /// Applies one change; `now` is the engine's time (when a finding was concluded).
    pub fn apply(&mut self, c: &Change, now: Timestamp) {
        match c {
            Change::SessionStarted {
                session,
                predecessor,
                handover,
            } => self.started(session, *predecessor, *handover),
            Change::SessionUpdate { id, at, state } => self.update(*id, *at, state),
            Change::SessionEnded { session } => {
                if let Some(o) = self.open.get_mut(&session.id) {
                    o.ended = Some(session.clone());
                }
                let gone = session.live_until.or(session.ended_at);
                for h in self.handovers.values_mut() {
                    if h.old == session.id {
                        h.old_gone = gone;
                    }
                    if h.new == session.id && h.new_settled.is_none() {
                        h.new_settled = session.ended_at;
                        h.outcome.get_or_insert("new_session_ended");
                    }
                }
                self.handover_event(
                    session.id,
                    "session.ended",
                    session.ended_at.unwrap_or(now),
                    end_attrs(session),
                );
            }
            Change::Opened(f) => self.finding(f, "finding.opened", now),
            Change::Closed(f) => self.finding(f, "finding.closed", f.until.unwrap_or(now)),
        }
    }

    /// After a batch of changes: ends the spans of ended sessions, exports due segments, ends
    /// settled handovers.
    pub fn advance(&mut self, now: Timestamp) {
        let ended: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| o.ended.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let o = self.open.remove(&id).expect("present");
            let s = o.ended.clone().expect("ended");
            let end = s.ended_at.unwrap_or(now);
            self.remember(id, &o, end, s.live_until.unwrap_or(end));
            self.close_session(o, end, Some(&s));
        }
        if let Some(len) = self.segment {
            for o in self.open.values_mut() {
                if now - o.seg_start >= len {
                    // One segment up to the last boundary, however far behind (a read-back
                    // history, a stalled engine): bounded work per call.
                    let n = ((now - o.seg_start).num_seconds() / len.num_seconds().max(1)).max(1);
                    let seg_end = o.seg_start + len * n as i32;
                    emit_segment(&self.tracer, o, seg_end);
                }
            }
        }
        let done: Vec<u64> = self
            .handovers
            .iter()
            .filter(|(_, h)| {
                let old_done = h.old_gone.is_some_and(|g| g <= now);
                (old_done && h.new_settled.is_some()) || now - h.start >= HANDOVER_MAX
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            let h = self.handovers.remove(&id).expect("present");
            end_handover(h, now);
        }
    }

    /// End of input (replay) or of the daemon: every open span ends at `now`, marked open.
    pub fn finish(&mut self, now: Timestamp) {
        self.advance(now);
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            let o = self.open.remove(&id).expect("present");
            self.close_session(o, now, None);
        }
        for (_, h) in self.handovers.drain() {
            end_handover(h, now);
        }
    }

    fn started(&mut self, s: &Session, predecessor: Option<u64>, handover: bool) {
        let mut identity = vec![
            KeyValue::new("discord.bot", s.bot.clone()),
            KeyValue::new("k8s.namespace.name", s.namespace.clone()),
            KeyValue::new("k8s.pod.name", s.pod.clone()),
            KeyValue::new("discord.shard", i64::from(s.shard)),
        ];
        if let Some(id) = &s.session_id {
            identity.push(KeyValue::new("discord.session.id", id.clone()));
        }
        let mut attrs = identity.clone();
        attrs.push(KeyValue::new("discord.session.inferred", s.inferred));
        if let Some(uid) = &s.instance.uid {
            attrs.push(KeyValue::new("k8s.pod.uid", uid.clone()));
        }
        let pred_ctx = predecessor.and_then(|p| self.ctx_of(p));
        let mut links = Vec::new();
        if let Some(ctx) = &pred_ctx {
            links.push(Link::new(
                ctx.clone(),
                vec![KeyValue::new("discord.link", "predecessor")],
                0,
            ));
        }
        let span = self
            .tracer
            .span_builder("gateway.session")
            .with_kind(SpanKind::Internal)
            .with_start_time(systime(s.ready_at))
            .with_attributes(attrs)
            .with_links(links)
            .start_with_context(&self.tracer, &Context::new());
        let ctx = span.span_context().clone();
        let mut o = OpenSession {
            span,
            ctx: ctx.clone(),
            identity,
            bot: s.bot.clone(),
            namespace: s.namespace.clone(),
            pod: s.pod.clone(),
            shard: s.shard,
            ready_at: s.ready_at,
            seg_start: s.ready_at,
            seg_index: 0,
            seg_events: Vec::new(),
            handovers: Vec::new(),
            ended: None,
            critical: None,
            first_event: None,
        };
        if handover
            && let Some(p) = predecessor
            && let Some(pctx) = pred_ctx
        {
            let (old_pod, old_live, old_end, old_gone) =
                match (self.open.get(&p), self.ended.get(&p)) {
                    (Some(old), _) => (old.pod.clone(), old.ended.is_none(), None, None),
                    (None, Some(e)) => (
                        e.pod.clone(),
                        e.live_until > s.ready_at,
                        Some(e.ended_at),
                        Some(e.live_until),
                    ),
                    (None, None) => (String::new(), false, None, None),
                };
            let start = old_end.map_or(s.ready_at, |e| e.min(s.ready_at));
            self.next_handover += 1;
            let hid = self.next_handover;
            let mut span = self
                .tracer
                .span_builder("gateway.handover")
                .with_start_time(systime(start))
                .with_attributes(vec![
                    KeyValue::new("discord.bot", s.bot.clone()),
                    KeyValue::new("k8s.namespace.name", s.namespace.clone()),
                    KeyValue::new("discord.shard", i64::from(s.shard)),
                    KeyValue::new("discord.handover.old_pod", old_pod.clone()),
                    KeyValue::new("discord.handover.new_pod", s.pod.clone()),
                    KeyValue::new(
                        "discord.handover.kind",
                        if old_live { "overlap" } else { "gap" },
                    ),
                ])
                .with_links(vec![
                    Link::new(pctx, vec![KeyValue::new("discord.link", "old_session")], 0),
                    Link::new(
                        ctx.clone(),
                        vec![KeyValue::new("discord.link", "new_session")],
                        0,
                    ),
                ])
                .start_with_context(&self.tracer, &Context::new());
            if let Some(e) = old_end {
                span.add_event_with_timestamp(
                    "old.session.ended",
                    systime(e),
                    vec![KeyValue::new("k8s.pod.name", old_pod.clone())],
                );
            }
            span.add_event_with_timestamp(
                "new.session.ready",
                systime(s.ready_at),
                vec![KeyValue::new("k8s.pod.name", s.pod.clone())],
            );
            o.span.add_link(
                span.span_context().clone(),
                vec![KeyValue::new("discord.link", "handover")],
            );
            o.handovers.push(hid);
            if let Some(old) = self.open.get_mut(&p) {
                old.handovers.push(hid);
            }
            self.handovers.insert(
                hid,
                OpenHandover {
                    span,
                    bot: s.bot.clone(),
                    shard: s.shard,
                    old: p,
                    new: s.id,
                    start,
                    old_gone,
                    new_settled: None,
                    outcome: None,
                },
            );
        }
        self.open.insert(s.id, o);
    }

    fn update(&mut self, id: u64, at: Timestamp, state: &SessionState) {
        let (name, attrs): (&'static str, Vec<KeyValue>) = match state {
            SessionState::SessionId { session_id } => {
                if let Some(o) = self.open.get_mut(&id) {
                    let kv = KeyValue::new("discord.session.id", session_id.clone());
                    o.span.set_attribute(kv.clone());
                    o.identity.push(kv);
                }
                return;
            }
            SessionState::FirstEvent => {
                if let Some(o) = self.open.get_mut(&id) {
                    o.first_event = Some(at);
                }
                for h in self.handovers.values_mut() {
                    if h.new == id && h.new_settled.is_none() {
                        h.new_settled = Some(at);
                    }
                }
                ("session.first_event", vec![])
            }
            SessionState::PredecessorActive { other_pod } => (
                "session.predecessor_active",
                vec![KeyValue::new("discord.other_pod", other_pod.clone())],
            ),
            SessionState::Reconnecting { code } => (
                "session.reconnecting",
                code.map(|c| vec![KeyValue::new("discord.close_code", i64::from(c))])
                    .unwrap_or_default(),
            ),
            SessionState::Resumed => ("session.resumed", vec![]),
            SessionState::PodTerminating { grace } => (
                "session.pod_terminating",
                grace
                    .map(|g| vec![KeyValue::new("k8s.pod.grace_seconds", g as i64)])
                    .unwrap_or_default(),
            ),
            SessionState::ShuttingDown => ("session.shutting_down", vec![]),
        };
        if let Some(o) = self.open.get_mut(&id) {
            record(o, name, at, attrs.clone());
        }
        self.handover_event(id, name, at, attrs);
    }

    /// Adds an event about session `id` to its open handovers, prefixed by its role.
    fn handover_event(&mut self, id: u64, name: &'static str, at: Timestamp, attrs: Vec<KeyValue>) {
        for h in self.handovers.values_mut() {
            let role = if h.old == id {
                "old"
            } else if h.new == id {
                "new"
            } else {
                continue;
            };
            h.span
                .add_event_with_timestamp(format!("{role}.{name}"), systime(at), attrs.clone());
        }
    }

    /// Open sessions a finding concerns: its pod's (and shard's) sessions, or for a bot-wide
    /// finding every open session of the bot.
    fn concerned(&self, f: &Finding) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| {
                o.bot == f.bot
                    && f.shard.is_none_or(|s| s == o.shard)
                    && (f.pod.is_empty() || (o.pod == f.pod && o.namespace == f.namespace))
            })
            .map(|(id, _)| *id)
            .collect();
        // The newest first: the session a pod-level finding is about is its current one.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if !f.pod.is_empty() && f.shard.is_some() {
            ids.truncate(1);
        }
        ids
    }

    fn finding(&mut self, f: &Finding, name: &'static str, at: Timestamp) {
        let attrs = finding_attrs(f);
        let ids = self.concerned(f);
        for id in &ids {
            let o = self.open.get_mut(id).expect("present");
            record(o, name, at, attrs.clone());
            if name == "finding.opened" && f.severity == Severity::Critical {
                o.critical = Some(f.kind.as_str());
            }
        }
        // Handovers of a concerned session, or of the bot and shard for bot-wide findings.
        for h in self.handovers.values_mut() {
            let about = ids.contains(&h.old)
                || ids.contains(&h.new)
                || (f.pod.is_empty() && h.bot == f.bot && f.shard.is_none_or(|s| s == h.shard));
            if !about {
                continue;
            }
            h.span
                .add_event_with_timestamp(name, systime(at), attrs.clone());
            if name != "finding.opened" {
                continue;
            }
            let concerns_new = ids.contains(&h.new);
            match f.kind {
                Kind::SilentSession | Kind::QuietSession if concerns_new => {
                    h.outcome = Some("new_session_silent");
                    h.new_settled.get_or_insert(at);
                }
                Kind::DuplicateDelivery => {
                    h.outcome.get_or_insert("duplicate_delivery");
                }
                Kind::LingeringSession => {
                    h.outcome.get_or_insert("old_session_lingering");
                }
                Kind::ConcurrentSessions => {
                    h.outcome.get_or_insert("concurrent_sessions");
                }
                _ => {}
            }
        }
    }

    fn ctx_of(&self, id: u64) -> Option<SpanContext> {
        self.open
            .get(&id)
            .map(|o| o.ctx.clone())
            .or_else(|| self.ended.get(&id).map(|e| e.ctx.clone()))
    }

    fn remember(&mut self, id: u64, o: &OpenSession, end: Timestamp, live_until: Timestamp) {
        self.ended.insert(
            id,
            EndedSession {
                ctx: o.ctx.clone(),
                pod: o.pod.clone(),
                ended_at: end,
                live_until,
            },
        );
        self.ended_order.push_back(id);
        while self.ended_order.len() > MAX_ENDED {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }

    /// Ends a session's span: `s` is the ended session, `None` when it is still open (end of
    /// input, the daemon stopping).
    fn close_session(&mut self, mut o: OpenSession, end: Timestamp, s: Option<&Session>) {
        let end = end.max(o.ready_at);
        if o.seg_index > 0 {
            let seg_end = end.max(o.seg_start);
            emit_segment(&self.tracer, &mut o, seg_end);
        }
        let outcome = match s {
            None => "open",
            Some(s) => s.end.as_ref().map_or("ended", |e| e.outcome()),
        };
        let mut attrs = vec![
            KeyValue::new("discord.session.outcome", outcome),
            KeyValue::new("discord.session.segments", i64::from(o.seg_index)),
        ];
        if let Some(s) = s {
            attrs.push(KeyValue::new("discord.session.events", s.events as i64));
            attrs.push(KeyValue::new(
                "discord.session.overlap_events",
                s.overlap_events as i64,
            ));
            if let Some(u) = s.live_until
                && Some(u) != s.ended_at
            {
                attrs.push(KeyValue::new(
                    "discord.session.lingering_until",
                    u.to_rfc3339(),
                ));
            }
            if let Some(dge_core::engine::EndReason::Closed { code: Some(c) }) = &s.end {
                attrs.push(KeyValue::new("discord.close_code", i64::from(*c)));
            }
            if let Some(dge_core::engine::EndReason::PodEnded { code: Some(c), .. }) = &s.end {
                attrs.push(KeyValue::new("k8s.container.exit_code", i64::from(*c)));
            }
        }
        if let Some(t) = o.first_event {
            attrs.push(KeyValue::new(
                "discord.session.first_event_seconds",
                (t - o.ready_at).as_seconds_f64(),
            ));
        }
        o.span.set_attributes(attrs);
        if let Some(kind) = o.critical {
            o.span.set_status(Status::error(kind));
        } else if matches!(outcome, "fatal") {
            o.span.set_status(Status::error("fatal close"));
        }
        o.span.end_with_timestamp(systime(end));
    }
}

fn record(o: &mut OpenSession, name: &'static str, at: Timestamp, attrs: Vec<KeyValue>) {
    o.span
        .add_event_with_timestamp(name, systime(at), attrs.clone());
    if o.seg_events.len() < MAX_SEGMENT_EVENTS {
        o.seg_events.push(Event { name, at, attrs });
    }
}

fn emit_segment(tracer: &SdkTracer, o: &mut OpenSession, end: Timestamp) {
    let parent = Context::new().with_remote_span_context(o.ctx.clone());
    let mut attrs = o.identity.clone();
    attrs.push(KeyValue::new(
        "discord.segment.index",
        i64::from(o.seg_index),
    ));
    let mut seg = tracer
        .span_builder("gateway.session.segment")
        .with_start_time(systime(o.seg_start))
        .with_attributes(attrs)
        .start_with_context(tracer, &parent);
    for e in o.seg_events.drain(..) {
        seg.add_event_with_timestamp(e.name, systime(e.at), e.attrs);
    }
    seg.end_with_timestamp(systime(end));
    o.seg_start = end;
    o.seg_index += 1;
}

fn end_handover(mut h: OpenHandover, now: Timestamp) {
    let settled = match (h.old_gone, h.new_settled) {
        (Some(g), Some(s)) if g <= now => Some(g.max(s)),
        _ => None,
    };
    let end = settled
        .unwrap_or(now)
        .min(h.start + HANDOVER_MAX)
        .max(h.start);
    let outcome = match (settled, h.outcome) {
        (_, Some(o)) => o,
        (Some(_), None) => "clean",
        (None, None) => "unresolved",
    };
    h.span
        .set_attribute(KeyValue::new("discord.handover.outcome", outcome));
    if matches!(outcome, "new_session_silent" | "duplicate_delivery") {
        h.span.set_status(Status::error(outcome));
    }
    h.span.end_with_timestamp(systime(end));
}

fn end_attrs(s: &Session) -> Vec<KeyValue> {
    let mut v = vec![
        KeyValue::new("k8s.pod.name", s.pod.clone()),
        KeyValue::new(
            "discord.session.outcome",
            s.end.as_ref().map_or("ended", |e| e.outcome()),
        ),
    ];
    if let Some(u) = s.live_until
        && Some(u) != s.ended_at
    {
        v.push(KeyValue::new(
            "discord.session.lingering_until",
            u.to_rfc3339(),
        ));
    }
    v
}

fn finding_attrs(f: &Finding) -> Vec<KeyValue> {
    let mut v = vec![
        KeyValue::new("finding.kind", f.kind.as_str()),
        KeyValue::new("finding.severity", f.severity.as_str()),
        KeyValue::new("finding.explanation", f.explanation.clone()),
        KeyValue::new("finding.runbook", f.runbook),
        KeyValue::new("finding.since", f.since.to_rfc3339()),
        KeyValue::new("finding.id", f.id as i64),
    ];
    if let Some(u) = f.until {
        v.push(KeyValue::new("finding.until", u.to_rfc3339()));
    }
    v
}
