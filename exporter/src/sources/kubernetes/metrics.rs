//! The Kubernetes sources' own metrics.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts};

use crate::self_metrics::SelfMetrics;

/// Registered once per daemon (a second registration, e.g. a restarted source, reuses none of
/// the registry: its values simply are not exported twice).
#[derive(Clone)]
pub struct KubeMetrics {
    /// `discord_gateway_exporter_kubernetes_pods`: pods the watch currently holds.
    pub pods: IntGauge,
    /// `discord_gateway_exporter_kubernetes_pods_without_lines`: running watched pods with no
    /// log line read for 30 minutes (see `coverage`).
    pub pods_without_lines: IntGauge,
    /// `discord_gateway_exporter_kubernetes_log_streams{state}`: active, waiting, failing.
    pub streams: IntGaugeVec,
    /// `discord_gateway_exporter_kubernetes_log_streams_max`.
    pub streams_max: IntGauge,
    /// `discord_gateway_exporter_kubernetes_lists_total`: (re-)lists of the pod watch.
    pub lists: IntCounter,
    /// `discord_gateway_exporter_kubernetes_log_reconnects_total`.
    pub reconnects: IntCounter,
    /// `discord_gateway_exporter_kubernetes_log_duplicate_lines_total`: lines a resumed stream
    /// brought back and that were dropped.
    pub duplicates: IntCounter,
}

impl KubeMetrics {
    /// The gauges and counters, registered into `own` (once per process).
    pub fn new(own: &SelfMetrics) -> Self {
        let m = Self {
            pods: IntGauge::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_pods",
                "Pods the Kubernetes pod watch currently holds.",
            ))
            .expect("valid metric"),
            pods_without_lines: IntGauge::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_pods_without_lines",
                "Running watched pods from which no log line was read for 30 minutes.",
            ))
            .expect("valid metric"),
            streams: IntGaugeVec::new(
                Opts::new(
                    "discord_gateway_exporter_kubernetes_log_streams",
                    "Pod log streams by state: active (open), waiting (for a slot under \
                     max_log_streams), failing (retrying).",
                ),
                &["state"],
            )
            .expect("valid metric"),
            streams_max: IntGauge::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_log_streams_max",
                "The configured bound on concurrent pod log streams (max_log_streams).",
            ))
            .expect("valid metric"),
            lists: IntCounter::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_lists_total",
                "Lists of the pod watch: the first, and a re-list after 410 Gone or an error.",
            ))
            .expect("valid metric"),
            reconnects: IntCounter::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_log_reconnects_total",
                "Pod log streams opened again after a cut or an error.",
            ))
            .expect("valid metric"),
            duplicates: IntCounter::with_opts(Opts::new(
                "discord_gateway_exporter_kubernetes_log_duplicate_lines_total",
                "Log lines a resumed stream brought back again, dropped.",
            ))
            .expect("valid metric"),
        };
        for s in ["active", "waiting", "failing"] {
            m.streams.with_label_values(&[s]).set(0);
        }
        for c in [
            Box::new(m.pods.clone()) as Box<dyn Collector>,
            Box::new(m.pods_without_lines.clone()),
            Box::new(m.streams.clone()),
            Box::new(m.streams_max.clone()),
            Box::new(m.lists.clone()),
            Box::new(m.reconnects.clone()),
            Box::new(m.duplicates.clone()),
        ] {
            // Already registered (a second source in one process): keep the first.
            let _ = own.register(c);
        }
        m
    }
}
