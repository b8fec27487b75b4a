//! OpenTelemetry traces of gateway sessions and handovers, exported over OTLP.
//!
//! The engine's [`Change`](dge_core::engine::Change)s become spans with the observations' own
//! times (explicit start and end), so a live daemon and a replayed incident produce the same
//! traces:
//!
//! - `gateway.session`: one per session, READY (or its first sign) to its end, with the
//!   session's identity and outcome; span events for its steps and for every finding that
//!   concerns it. Exported when the session ends.
//! - `gateway.session.segment`: children of the session span, one per `segment_secs` of a
//!   long session, carrying the events of their stretch, so a session that lives for days shows
//!   up in a backend within minutes (see docs/architecture.md, "Traces").
//! - `gateway.handover`: one per handover the engine follows (a new session of a bot and shard
//!   while another is live or just ended), linked to the old and the new session, with the
//!   story of the handover as events; it ends with the outcome the engine decided.
//!
//! [`config`] is the `[traces]` table, [`pipeline`] builds the exporter and owns the export
//! state ([`TraceExport`]: status and failure counter, handed to `/healthz` and `/metrics`),
//! [`spans`] is the sink.

pub mod config;
mod handovers;
pub mod pipeline;
pub mod spans;

pub use config::TracesConfig;
pub use pipeline::{ExportStatus, TraceExport, Traces};
pub use spans::TraceSink;

/// Instrumentation scope of the session spans.
pub const SCOPE: &str = "discord-gateway-exporter";
/// `service.name` when neither `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` nor the config
/// names one.
pub const DEFAULT_SERVICE_NAME: &str = "discord-gateway-exporter";
