//! Prometheus metrics: engine series rendered from the latest [`Snapshot`] at scrape time (so a
//! scrape always sees one consistent state, like kube-state-metrics), plus the exporter's own
//! counters. The engine's families are declared in `metrics/engine.rs`, one entry each.

use std::sync::{Arc, RwLock};

use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use dge_core::engine::Snapshot;

mod engine;
mod family;

/// The registry and the exporter's own metrics.
pub struct Metrics {
    registry: Registry,
    /// `discord_gateway_exporter_log_lines_total{source,outcome}`.
    pub log_lines: IntCounterVec,
    /// `discord_gateway_exporter_source_up{source}`.
    pub source_up: IntGaugeVec,
    /// `discord_gateway_exporter_discord_requests_total{bot,status}`.
    pub discord_requests: IntCounterVec,
    /// `discord_gateway_exporter_trace_export_errors_total`: the process's OTLP exporter's
    /// failed batches (0 while traces are off).
    pub trace_export_errors: prometheus::IntCounter,
}

impl Metrics {
    /// Registers everything; engine series come from `snapshot` at each scrape.
    pub fn new(snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        let registry = Registry::new();
        let log_lines = IntCounterVec::new(
            Opts::new(
                "discord_gateway_exporter_log_lines_total",
                "Log lines read, by source and outcome (matched a rule, ignored, malformed).",
            ),
            &["source", "outcome"],
        )
        .expect("valid metric");
        let source_up = IntGaugeVec::new(
            Opts::new(
                "discord_gateway_exporter_source_up",
                "Whether the source is currently working (1) or failing (0).",
            ),
            &["source"],
        )
        .expect("valid metric");
        let discord_requests = IntCounterVec::new(
            Opts::new(
                "discord_gateway_exporter_discord_requests_total",
                "Requests to the Discord API, by bot and HTTP status (or error class).",
            ),
            &["bot", "status"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "discord_gateway_exporter_build_info",
                "The exporter's version; always 1.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(log_lines.clone()) as Box<dyn Collector>,
            Box::new(source_up.clone()),
            Box::new(discord_requests.clone()),
            Box::new(build_info),
            Box::new(super::traces::EXPORT_ERRORS.clone()),
            Box::new(engine::EngineCollector::new(snapshot)),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            log_lines,
            source_up,
            discord_requests,
            trace_export_errors: super::traces::EXPORT_ERRORS.clone(),
        }
    }

    /// Adds a source's own metrics (the Kubernetes sources' stream and pod gauges).
    pub fn register(&self, c: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(c)
    }

    /// Counts one line outcome of a source.
    pub fn count_lines(&self, source: &str, outcome: &str, n: u64) {
        if n > 0 {
            self.log_lines
                .with_label_values(&[source, outcome])
                .inc_by(n);
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("text format is UTF-8")
    }
}

#[cfg(test)]
mod tests;
