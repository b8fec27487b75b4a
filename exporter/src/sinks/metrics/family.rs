//! One metric family as one declaration: name, help, labels and how its samples come out of a
//! [`Snapshot`] sit together (as kube-state-metrics declares its families), and the compiler
//! keeps them consistent: the number of label values is the number of label names (`N`), and
//! the Prometheus type follows from the value type, so a gauge cannot be filled with a
//! histogram and no family is found by its position in a list.

use prometheus::core::Desc;
use prometheus::proto::{self, MetricFamily, MetricType};

use dge_core::engine::{Histogram, OVERLAP_BUCKETS, Snapshot};

/// Receives one sample: its label values (in the order of the family's label names) and value.
pub(super) type Emit<'e, const N: usize, V> = dyn FnMut([&str; N], V) + 'e;

/// A metric family computed from the snapshot at scrape time.
pub(super) struct Family<const N: usize, V> {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: [&'static str; N],
    /// Emits every sample of the family for this snapshot (none: the family is left out).
    pub samples: fn(&Snapshot, &mut Emit<'_, N, V>),
}

/// A sample value; its type decides the family's Prometheus type.
pub(super) trait Value {
    const TYPE: MetricType;
    fn fill(self, m: &mut proto::Metric);
}

/// A value that can go up and down.
pub(super) struct Gauge(pub f64);

impl Gauge {
    /// 1 for true, 0 for false.
    pub fn flag(b: bool) -> Self {
        Self(f64::from(u8::from(b)))
    }
}

impl Value for Gauge {
    const TYPE: MetricType = MetricType::GAUGE;
    fn fill(self, m: &mut proto::Metric) {
        let mut g = proto::Gauge::default();
        g.set_value(self.0);
        m.set_gauge(g);
    }
}

/// A value that only goes up (until the exporter restarts).
pub(super) struct Counter(pub f64);

impl Value for Counter {
    const TYPE: MetricType = MetricType::COUNTER;
    fn fill(self, m: &mut proto::Metric) {
        let mut c = proto::Counter::default();
        c.set_value(self.0);
        m.set_counter(c);
    }
}

/// An engine [`Histogram`] over [`OVERLAP_BUCKETS`], with cumulative bucket counts.
pub(super) struct Buckets(proto::Histogram);

impl From<&Histogram> for Buckets {
    fn from(h: &Histogram) -> Self {
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
        let mut ph = proto::Histogram::default();
        ph.set_bucket(buckets);
        ph.set_sample_count(h.count);
        ph.set_sample_sum(h.sum);
        Self(ph)
    }
}

impl Value for Buckets {
    const TYPE: MetricType = MetricType::HISTOGRAM;
    fn fill(self, m: &mut proto::Metric) {
        m.set_histogram(self.0);
    }
}

/// A family of any label count and value type, so that one list holds them all.
pub(super) trait Render: Sync {
    fn desc(&self) -> Desc;
    fn render(&self, snap: &Snapshot) -> MetricFamily;
}

impl<const N: usize, V: Value> Render for Family<N, V> {
    fn desc(&self) -> Desc {
        Desc::new(
            self.name.to_string(),
            self.help.to_string(),
            self.labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .unwrap_or_else(|e| panic!("metric family {}: {e}", self.name))
    }

    fn render(&self, snap: &Snapshot) -> MetricFamily {
        let mut mf = MetricFamily::default();
        mf.set_name(self.name.to_string());
        mf.set_help(self.help.to_string());
        mf.set_field_type(V::TYPE);
        let mut metrics = Vec::new();
        (self.samples)(snap, &mut |values, v| {
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
            v.fill(&mut m);
            metrics.push(m);
        });
        mf.set_metric(metrics);
        mf
    }
}
