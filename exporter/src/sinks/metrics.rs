//! Prometheus metrics: engine series rendered from the latest [`Snapshot`] at scrape time (so a
//! scrape always sees one consistent state, like kube-state-metrics), rendered with the
//! exporter's own counters ([`SelfMetrics`]). The engine's families are declared in `metrics/engine.rs`, one entry each.

use std::sync::{Arc, RwLock};

use prometheus::core::Collector;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

use super::traces::TraceExport;
use crate::self_metrics::SelfMetrics;
use dge_core::engine::Snapshot;

mod engine;
mod family;

/// Labels of `discord_gateway_exporter_build_info`.
pub const BUILD_INFO_LABELS: [&str; 3] = ["version", "revision", "rustc_version"];

/// Their values: the crate's version, the git commit at build time (`exporter/build.rs`;
/// "unknown" outside git unless `DISCORD_GATEWAY_EXPORTER_REVISION` is set) and the rustc
/// version.
pub const BUILD_INFO: [&str; 3] = [
    env!("CARGO_PKG_VERSION"),
    env!("BUILD_GIT_REVISION"),
    env!("BUILD_RUSTC_VERSION"),
];

/// The rendered registry: the exporter's own metrics ([`SelfMetrics`]), the build info, the
/// trace export errors and the engine's series.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Registers the sink's families next to `own`, with traces off (the export error counter
    /// stays 0); engine series come from `snapshot` at each scrape.
    pub fn new(own: &SelfMetrics, snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        Self::with_traces(own, snapshot, &TraceExport::default())
    }

    /// [`Metrics::new`], counting the export errors of the trace pipeline that owns `traces`.
    pub fn with_traces(
        own: &SelfMetrics,
        snapshot: Arc<RwLock<Arc<Snapshot>>>,
        traces: &TraceExport,
    ) -> Self {
        let registry = own.registry().clone();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "discord_gateway_exporter_build_info",
                "The exporter's version, the git revision it was built from and the rustc that built it; always 1.",
            ),
            &BUILD_INFO_LABELS,
        )
        .expect("valid metric");
        build_info.with_label_values(&BUILD_INFO).set(1);
        for c in [
            Box::new(build_info) as Box<dyn Collector>,
            Box::new(traces.errors()),
            Box::new(engine::EngineCollector::new(snapshot)),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self { registry }
    }

    /// Adds the standard `process_*` metrics of this process (CPU, memory, file descriptors,
    /// start time: the prometheus crate's process collector; Linux only). The daemon's
    /// registry has them; the replay goldens do not.
    pub fn register_process_metrics(&self) {
        #[cfg(target_os = "linux")]
        self.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics registered once");
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
mod doc_list;
#[cfg(test)]
mod tests;
