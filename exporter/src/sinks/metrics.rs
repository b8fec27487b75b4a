//! Prometheus metrics: engine series rendered from the latest [`Snapshot`] at scrape time (so a
//! scrape always sees one consistent state, like kube-state-metrics), rendered with the
//! exporter's own counters ([`SelfMetrics`]).

use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::self_metrics::SelfMetrics;
use dge_core::engine::{Kind, OVERLAP_BUCKETS, Snapshot};

/// The rendered registry: the exporter's own metrics ([`SelfMetrics`]), the build info, the
/// trace export errors and the engine's series.
pub struct Metrics {
    registry: Registry,
    /// `discord_gateway_exporter_trace_export_errors_total`: the process's OTLP exporter's
    /// failed batches (0 while traces are off).
    pub trace_export_errors: prometheus::IntCounter,
}

impl Metrics {
    /// Registers the sink's families next to `own`; engine series come from `snapshot` at
    /// each scrape.
    pub fn new(own: &SelfMetrics, snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        let registry = own.registry().clone();
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
            Box::new(build_info) as Box<dyn Collector>,
            Box::new(super::traces::EXPORT_ERRORS.clone()),
            Box::new(EngineCollector::new(snapshot)),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            trace_export_errors: super::traces::EXPORT_ERRORS.clone(),
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

/// Renders the engine's series from the current snapshot.
struct EngineCollector {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    descs: Vec<Desc>,
}

const SESSION: [&str; 4] = ["bot", "namespace", "pod", "shard"];

/// (name, help, type, labels) of every engine metric.
const FAMILIES: &[(&str, &str, MetricType, &[&str])] = &[
    (
        "discord_gateway_session_live",
        "Whether Discord may hold this session now (1) or not (0).",
        MetricType::GAUGE,
        &SESSION,
    ),
    (
        "discord_gateway_session_silent",
        "Whether this live session is flagged connected-but-silent.",
        MetricType::GAUGE,
        &SESSION,
    ),
    (
        "discord_gateway_session_events_total",
        "Events the session delivered to the bot (from its logs).",
        MetricType::COUNTER,
        &SESSION,
    ),
    (
        "discord_gateway_session_ready_timestamp_seconds",
        "When the session became ready (READY or RESUMED), Unix seconds.",
        MetricType::GAUGE,
        &SESSION,
    ),
    (
        "discord_gateway_session_last_event_timestamp_seconds",
        "When the session last delivered an event, Unix seconds.",
        MetricType::GAUGE,
        &SESSION,
    ),
    (
        "discord_gateway_live_sessions",
        "Live sessions per bot and shard (more than 1 is an overlap).",
        MetricType::GAUGE,
        &["bot", "shard"],
    ),
    (
        "discord_gateway_session_overlap_seconds",
        "How long two sessions of one bot and shard overlapped.",
        MetricType::HISTOGRAM,
        &["bot"],
    ),
    (
        "discord_gateway_identifies_total",
        "New sessions (IDENTIFY) seen in the logs or counted by Discord.",
        MetricType::COUNTER,
        &["bot", "seen_by"],
    ),
    (
        "discord_gateway_unattributed_identifies_total",
        "Identifies Discord counted that no log explains.",
        MetricType::COUNTER,
        &["bot"],
    ),
    (
        "discord_gateway_close_codes_total",
        "Gateway close codes seen in the logs.",
        MetricType::COUNTER,
        &["bot", "code"],
    ),
    (
        "discord_gateway_expected_event_interval_seconds",
        "Mean interval between events learned from the bot's history.",
        MetricType::GAUGE,
        &["bot"],
    ),
    (
        "discord_gateway_finding_active",
        "Active findings (1 while active).",
        MetricType::GAUGE,
        &["kind", "severity", "bot", "namespace", "pod", "shard"],
    ),
    (
        "discord_gateway_findings_total",
        "Findings opened, by kind and bot.",
        MetricType::COUNTER,
        &["kind", "bot"],
    ),
    (
        "discord_session_start_limit",
        "Discord session_start_limit.total: session starts allowed per window (named without _total: it is a gauge).",
        MetricType::GAUGE,
        &["bot"],
    ),
    (
        "discord_session_start_limit_remaining",
        "Discord session_start_limit.remaining.",
        MetricType::GAUGE,
        &["bot"],
    ),
    (
        "discord_session_start_limit_max_concurrency",
        "Discord session_start_limit.max_concurrency.",
        MetricType::GAUGE,
        &["bot"],
    ),
    (
        "discord_session_start_limit_reset_after_seconds",
        "Seconds until Discord resets remaining.",
        MetricType::GAUGE,
        &["bot"],
    ),
    (
        "discord_gateway_recommended_shards",
        "Shard count Discord recommends (GET /gateway/bot).",
        MetricType::GAUGE,
        &["bot"],
    ),
];

impl EngineCollector {
    fn new(snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _, labels)| {
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels.iter().map(|l| l.to_string()).collect(),
                    Default::default(),
                )
                .expect("valid desc")
            })
            .collect();
        Self { snapshot, descs }
    }
}

/// Builds one family; each sample is (label values, value).
struct Family {
    mf: MetricFamily,
    labels: &'static [&'static str],
    kind: MetricType,
}

impl Family {
    fn new(index: usize) -> Self {
        let (name, help, kind, labels) = FAMILIES[index];
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_string());
        mf.set_help(help.to_string());
        mf.set_field_type(kind);
        Self { mf, labels, kind }
    }

    fn metric(&self, values: &[&str]) -> proto::Metric {
        let pairs = self
            .labels
            .iter()
            .zip(values)
            .map(|(n, v)| {
                let mut p = proto::LabelPair::default();
                p.set_name(n.to_string());
                p.set_value(v.to_string());
                p
            })
            .collect();
        let mut m = proto::Metric::default();
        m.set_label(pairs);
        m
    }

    fn push(&mut self, values: &[&str], v: f64) {
        let mut m = self.metric(values);
        if self.kind == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        self.mf.mut_metric().push(m);
    }

    fn push_histogram(&mut self, values: &[&str], h: &dge_core::engine::Histogram) {
        let mut m = self.metric(values);
        let mut ph = proto::Histogram::default();
        let mut cumulative = 0;
        let buckets = OVERLAP_BUCKETS
            .iter()
            .zip(h.counts.iter())
            .map(|(&bound, &n)| {
                cumulative += n;
                let mut b = proto::Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        ph.set_bucket(buckets);
        ph.set_sample_count(h.count);
        ph.set_sample_sum(h.sum);
        m.set_histogram(ph);
        self.mf.mut_metric().push(m);
    }
}

fn secs(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snap = self
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut f: Vec<Family> = (0..FAMILIES.len()).map(Family::new).collect();
        for s in &snap.series {
            let shard = s.shard.to_string();
            let l = [s.bot.as_str(), &s.namespace, &s.pod, &shard];
            f[0].push(&l, f64::from(u8::from(s.live)));
            f[1].push(&l, f64::from(u8::from(s.silent)));
            f[2].push(&l, s.events_total as f64);
            f[3].push(&l, secs(s.ready_at));
            if let Some(t) = s.last_event_at {
                f[4].push(&l, secs(t));
            }
        }
        for b in &snap.bots {
            let bot = b.bot.as_str();
            for (shard, n) in &b.live_sessions {
                f[5].push(&[bot, &shard.to_string()], *n as f64);
            }
            f[6].push_histogram(&[bot], &b.overlap);
            f[7].push(&[bot, "logs"], b.identifies_logs as f64);
            if b.start_limit.is_some() {
                f[7].push(&[bot, "discord"], b.identifies_discord as f64);
            }
            f[8].push(&[bot], b.unattributed as f64);
            for (code, n) in &b.close_codes {
                f[9].push(&[bot, &code.to_string()], *n as f64);
            }
            if let Some(i) = b.expected_interval_secs {
                f[10].push(&[bot], i);
            }
            if let Some(sl) = &b.start_limit {
                f[13].push(&[bot], f64::from(sl.total));
                f[14].push(&[bot], f64::from(sl.remaining));
                f[15].push(&[bot], f64::from(sl.max_concurrency));
                f[16].push(&[bot], sl.reset_after_ms as f64 / 1000.0);
                f[17].push(&[bot], f64::from(sl.recommended_shards));
            }
        }
        for x in snap.active_findings() {
            let shard = x.shard.map(|s| s.to_string()).unwrap_or_default();
            f[11].push(
                &[
                    x.kind.as_str(),
                    x.severity.as_str(),
                    &x.bot,
                    &x.namespace,
                    &x.pod,
                    &shard,
                ],
                1.0,
            );
        }
        for (kind, bot, n) in &snap.findings_total {
            f[12].push(&[kind.as_str(), bot], *n as f64);
        }
        // Every kind shows up for every bot, so `increase()` works from the first finding on.
        for b in &snap.bots {
            for k in Kind::ALL {
                if !snap
                    .findings_total
                    .iter()
                    .any(|(kk, bb, _)| *kk == k && *bb == b.bot)
                {
                    f[12].push(&[k.as_str(), &b.bot], 0.0);
                }
            }
        }
        f.into_iter()
            .map(|x| x.mf)
            .filter(|mf| !mf.get_metric().is_empty())
            .collect()
    }
}
