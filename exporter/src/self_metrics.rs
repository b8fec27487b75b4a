//! The exporter's own metrics (lines read, source health, Discord requests, and whatever a
//! source registers of its own). Sources count into it and sinks render it, so it sits beside
//! both rather than inside the HTTP sink: a source never needs to know how it is served.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use dge_parse::logs::Outcome;

/// A cheap handle (clones share the same series) on the process's metric registry and the
/// counters every source may touch.
#[derive(Clone)]
pub struct SelfMetrics {
    registry: Registry,
    /// `discord_gateway_exporter_log_lines_total{source,outcome}`.
    pub log_lines: IntCounterVec,
    /// `discord_gateway_exporter_source_up{source}`.
    pub source_up: IntGaugeVec,
    /// `discord_gateway_exporter_discord_requests_total{bot,status}`.
    pub discord_requests: IntCounterVec,
}

impl SelfMetrics {
    /// A fresh registry holding the exporter's own counters.
    pub fn new() -> Self {
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
        let registry = Registry::new();
        for c in [
            Box::new(log_lines.clone()) as Box<dyn Collector>,
            Box::new(source_up.clone()),
            Box::new(discord_requests.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            log_lines,
            source_up,
            discord_requests,
        }
    }

    /// The registry everything is rendered from (sinks add the engine's families to it).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds a source's own metrics (the Kubernetes sources' stream and pod gauges).
    pub fn register(&self, c: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(c)
    }

    /// Counts `n` lines of one outcome read by `source`.
    pub fn count_lines(&self, source: &str, outcome: Outcome, n: u64) {
        if n > 0 {
            self.log_lines
                .with_label_values(&[source, outcome.as_str()])
                .inc_by(n);
        }
    }

    /// Counts a poll's matched, ignored and malformed lines at once.
    pub fn count_outcomes(&self, source: &str, matched: u64, ignored: u64, malformed: u64) {
        self.count_lines(source, Outcome::Matched, matched);
        self.count_lines(source, Outcome::Ignored, ignored);
        self.count_lines(source, Outcome::Malformed, malformed);
    }

    /// Records whether a source works, for `source_up`.
    pub fn set_source_up(&self, source: &str, up: bool) {
        self.source_up
            .with_label_values(&[source])
            .set(i64::from(up));
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}
