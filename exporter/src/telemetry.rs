//! The daemon's own diagnostics: `tracing` to stderr as text or JSON lines and, when traces are
//! configured, its spans through tracing-opentelemetry into the same OTLP pipeline as the
//! session traces. Log lines inside a span carry its trace id (`trace_id` field), and the
//! daemon's line about a finding carries the trace id of the session it concerns.

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

use crate::sinks::traces::Traces;

/// Target of the spans that only label log lines with a session's trace (not exported).
pub const TRACE_LINK_TARGET: &str = "dge::trace_link";
/// Instrumentation scope of the daemon's own spans.
pub const DAEMON_SCOPE: &str = "discord-gateway-exporter.daemon";

/// Installs the global subscriber (once; later calls do nothing). `RUST_LOG` filters (default
/// `info`).
pub fn init(json: bool, traces: Option<&Traces>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    // Only the daemon's own spans: not the trace-id labels, and not the HTTP/gRPC libraries'
    // (the exporter's own requests must not produce spans to export).
    let otel = traces.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer(DAEMON_SCOPE))
            .with_filter(filter_fn(|m| {
                let target = m.target();
                target != TRACE_LINK_TARGET
                    && (target.starts_with("dge") || target.starts_with("discord_gateway_exporter"))
            }))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
}

/// Records the span's OpenTelemetry trace id in its `trace_id` field (declare it as
/// `trace_id = tracing::field::Empty`), so every log line inside it shows the id. A no-op
/// when traces are off.
pub fn with_trace_id(span: tracing::Span) -> tracing::Span {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
    }
    span
}
