//! A consistent copy of what sinks need, taken by the engine's task after each batch.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bot::{Histogram, SIGNAL_NAMES};
use super::close_codes::{self, CloseClass};
use super::{Engine, Finding, Handover, HandoverOutcome, Instance, Key, Kind, Session};
use crate::observation::{RemediationOutcome, StartLimit, Timestamp};

/// Per-session series: one per (bot, namespace, pod, shard); several sessions of one pod (a
/// reconnect) fold into one series, as the metric labels require.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSeries {
    pub bot: String,
    pub namespace: String,
    pub pod: String,
    pub shard: u32,
    pub live: bool,
    pub silent: bool,
    pub events_total: u64,
    pub ready_at: Timestamp,
    pub last_event_at: Option<Timestamp>,
}

/// Per-bot figures.
#[derive(Debug, Clone, Serialize)]
pub struct BotView {
    pub bot: String,
    pub identifies_logs: u64,
    pub identifies_discord: u64,
    pub unattributed: u64,
    pub close_codes: BTreeMap<u16, u64>,
    /// Close codes per pod, with their class (`discord_gateway_close_codes_total`).
    pub pod_close_codes: Vec<PodCloseCount>,
    /// Gateway-health signals per (namespace, pod) in the order of `SIGNAL_NAMES`, every pod
    /// with a session of the bot listed (at 0 when it had none), so the counters exist from
    /// the start.
    pub pod_signals: Vec<(String, String, [u64; SIGNAL_NAMES.len()])>,
    pub expected_interval_secs: Option<f64>,
    pub start_limit: Option<StartLimit>,
    pub overlap: Histogram,
    /// Live sessions per shard.
    pub live_sessions: BTreeMap<u32, u64>,
    /// Decided handovers per outcome (never decreases).
    pub handovers: BTreeMap<HandoverOutcome, u64>,
    /// Remediation reports per outcome (never decreases).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub remediations: BTreeMap<RemediationOutcome, u64>,
}

/// How often one pod's connection closed with one code.
#[derive(Debug, Clone, Serialize)]
pub struct PodCloseCount {
    pub namespace: String,
    pub pod: String,
    /// 0: codes beyond the per-pod bound, or not a close code.
    pub code: u16,
    pub class: CloseClass,
    pub count: u64,
}

/// Everything the metrics and the API render.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub at: Option<Timestamp>,
    pub series: Vec<SessionSeries>,
    pub sessions: Vec<Session>,
    pub bots: Vec<BotView>,
    pub findings: Vec<Finding>,
    pub findings_total: Vec<(Kind, String, u64)>,
    /// Handovers decided recently, then the ones in progress.
    pub handovers: Vec<Handover>,
    /// Every pod still remembered (the status page's timeline; what the remediation actor
    /// checks: workload, restarts, whether its pods are gone).
    #[serde(skip)]
    pub instances: Vec<Instance>,
    /// Each source's health as last reported: name -> up.
    #[serde(skip)]
    pub source_up: BTreeMap<String, bool>,
}

impl Snapshot {
    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.until.is_none())
    }
}

impl Engine {
    /// Takes a snapshot at the engine's current time.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.now.unwrap_or_default();
        let mut series: BTreeMap<(String, String, String, u32), SessionSeries> = BTreeMap::new();
        for s in self.sessions.values() {
            let k = (s.bot.clone(), s.namespace.clone(), s.pod.clone(), s.shard);
            let e = series.entry(k).or_insert_with(|| SessionSeries {
                bot: s.bot.clone(),
                namespace: s.namespace.clone(),
                pod: s.pod.clone(),
                shard: s.shard,
                live: false,
                silent: false,
                events_total: 0,
                ready_at: s.ready_at,
                last_event_at: None,
            });
            e.live |= s.is_live(now);
            // Its own finding: the same pod name may run in two namespaces, or for two bots.
            e.silent |= s.silent_since.is_some()
                && self.book.is_active(&Key::session(Kind::SilentSession, s));
            e.events_total += s.events;
            e.ready_at = e.ready_at.max(s.ready_at);
            e.last_event_at = e.last_event_at.max(s.last_event_at);
        }
        for ((bot, ns, pod, shard), n) in &self.folded_events {
            let k = (bot.clone(), ns.clone(), pod.clone(), *shard);
            if let Some(e) = series.get_mut(&k) {
                e.events_total += n;
            }
        }
        let bots = self
            .bots
            .iter()
            .map(|(name, b)| {
                let mut live_sessions = BTreeMap::new();
                for s in self.sessions.values().filter(|s| &s.bot == name) {
                    let n = live_sessions.entry(s.shard).or_insert(0);
                    if s.is_live(now) {
                        *n += 1;
                    }
                }
                BotView {
                    bot: name.clone(),
                    identifies_logs: b.identifies_logs,
                    identifies_discord: b.identifies_discord,
                    unattributed: b.unattributed,
                    close_codes: b.close_codes.clone(),
                    pod_close_codes: b
                        .pod_close_codes
                        .iter()
                        .map(|((ns, pod, code), n)| PodCloseCount {
                            namespace: ns.clone(),
                            pod: pod.clone(),
                            code: *code,
                            class: close_codes::classify(*code),
                            count: *n,
                        })
                        .collect(),
                    pod_signals: {
                        let mut m = b.pod_signals.clone();
                        for s in self.sessions.values().filter(|s| &s.bot == name) {
                            m.entry((s.namespace.clone(), s.pod.clone())).or_default();
                        }
                        m.into_iter().map(|((ns, pod), n)| (ns, pod, n)).collect()
                    },
                    expected_interval_secs: b.rate.expected_interval(&self.cfg),
                    start_limit: b.last_sample.as_ref().map(|(_, s)| s.clone()),
                    overlap: b.overlap.clone(),
                    live_sessions,
                    handovers: self
                        .handovers
                        .totals()
                        .iter()
                        .filter(|((b, _), _)| b == name)
                        .map(|((_, o), n)| (*o, *n))
                        .collect(),
                    remediations: self
                        .remediation_totals()
                        .iter()
                        .filter(|((b, _), _)| b == name)
                        .map(|((_, o), n)| (*o, *n))
                        .collect(),
                }
            })
            .collect();
        Snapshot {
            at: self.now,
            series: series.into_values().collect(),
            sessions: self.sessions.values().cloned().collect(),
            bots,
            findings: self.all_findings(),
            findings_total: self
                .book
                .totals()
                .iter()
                .map(|((k, b), n)| (*k, b.clone(), *n))
                .collect(),
            handovers: self.handovers.all().cloned().collect(),
            instances: self.instances.values().cloned().collect(),
            source_up: self
                .sources
                .iter()
                .map(|(k, (up, _))| (k.clone(), *up))
                .collect(),
        }
    }
}
