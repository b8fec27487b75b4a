//! The engine's metric families, rendered from the latest [`Snapshot`] at scrape time. Each
//! family is one entry of [`FAMILIES`]: adding a metric is adding an entry here, then
//! regenerating `exporter/tests/golden/metrics/` (`UPDATE_GOLDEN=1 cargo test -p
//! discord-gateway-exporter --lib sinks::metrics`).

use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

use dge_core::engine::{BotView, Finding, Kind, SIGNAL_NAMES, SessionSeries, Snapshot};

use super::family::{Buckets, Counter, Emit, Family, Gauge, Render};

/// Labels of the per-session series.
const SESSION: [&str; 4] = ["bot", "namespace", "pod", "shard"];

/// Labels of the per-finding series (`finding_active`, `finding_since_timestamp_seconds`).
const FINDING: [&str; 6] = ["kind", "severity", "bot", "namespace", "pod", "shard"];

/// Every engine family; the registry serves them sorted by name, whatever the order here.
pub(super) const FAMILIES: &[&dyn Render] = &[
    &Family::<4, Gauge> {
        name: "discord_gateway_session_live",
        help: "Whether Discord may hold this session now (1) or not (0).",
        labels: SESSION,
        samples: |snap, emit| per_session(snap, emit, |s| Some(Gauge::flag(s.live))),
    },
    &Family::<4, Gauge> {
        name: "discord_gateway_session_silent",
        help: "Whether this live session is flagged connected-but-silent.",
        labels: SESSION,
        samples: |snap, emit| per_session(snap, emit, |s| Some(Gauge::flag(s.silent))),
    },
    &Family::<4, Counter> {
        name: "discord_gateway_session_events_total",
        help: "Events the session delivered to the bot (from its logs).",
        labels: SESSION,
        samples: |snap, emit| per_session(snap, emit, |s| Some(Counter(s.events_total as f64))),
    },
    &Family::<4, Gauge> {
        name: "discord_gateway_session_ready_timestamp_seconds",
        help: "When the session became ready (READY or RESUMED), Unix seconds.",
        labels: SESSION,
        samples: |snap, emit| per_session(snap, emit, |s| Some(Gauge(secs(s.ready_at)))),
    },
    &Family::<4, Gauge> {
        name: "discord_gateway_session_last_event_timestamp_seconds",
        help: "When the session last delivered an event, Unix seconds.",
        labels: SESSION,
        samples: |snap, emit| per_session(snap, emit, |s| s.last_event_at.map(|t| Gauge(secs(t)))),
    },
    &Family::<2, Gauge> {
        name: "discord_gateway_shard_live_sessions",
        help: "Live sessions per bot and shard (more than 1 is an overlap).",
        labels: ["bot", "shard"],
        samples: |snap, emit| {
            for b in &snap.bots {
                for (shard, n) in &b.live_sessions {
                    emit([&b.bot, &shard.to_string()], Gauge(*n as f64));
                }
            }
        },
    },
    &Family::<1, Buckets> {
        name: "discord_gateway_session_overlap_seconds",
        help: "How long two sessions of one bot and shard overlapped.",
        labels: ["bot"],
        samples: |snap, emit| per_bot(snap, emit, |b| Some(Buckets::from(&b.overlap))),
    },
    &Family::<2, Counter> {
        name: "discord_gateway_identifies_total",
        help: "New sessions (IDENTIFY) seen in the logs or counted by Discord.",
        labels: ["bot", "seen_by"],
        samples: |snap, emit| {
            for b in &snap.bots {
                emit([&b.bot, "logs"], Counter(b.identifies_logs as f64));
                // Discord's count exists once its start limit has been read.
                if b.start_limit.is_some() {
                    emit([&b.bot, "discord"], Counter(b.identifies_discord as f64));
                }
            }
        },
    },
    &Family::<1, Counter> {
        name: "discord_gateway_unattributed_identifies_total",
        help: "Identifies Discord counted that no log explains.",
        labels: ["bot"],
        samples: |snap, emit| per_bot(snap, emit, |b| Some(Counter(b.unattributed as f64))),
    },
    &Family::<5, Counter> {
        name: "discord_gateway_close_codes_total",
        help: "Gateway close codes seen in the logs, per pod, with their class (clean, resumable, reidentify, fatal, unknown; code 0: beyond the per-pod bound).",
        labels: ["bot", "namespace", "pod", "code", "class"],
        samples: |snap, emit| {
            for b in &snap.bots {
                for c in &b.pod_close_codes {
                    let code = c.code.to_string();
                    let labels = [&*b.bot, &c.namespace, &c.pod, &code, c.class.as_str()];
                    emit(labels, Counter(c.count as f64));
                }
            }
        },
    },
    &Family::<4, Counter> {
        name: "discord_gateway_connection_signals_total",
        help: "Gateway-health signals per pod, from its logs: lost_connection (one per drop), reidentify (a new IDENTIFY after a drop: a session start spent), resumed, heartbeat_missed, stalled (a blocked event loop).",
        labels: ["bot", "namespace", "pod", "signal"],
        samples: |snap, emit| {
            for b in &snap.bots {
                for (ns, pod, counts) in &b.pod_signals {
                    for (name, n) in SIGNAL_NAMES.iter().zip(counts) {
                        emit([&*b.bot, ns, pod, name], Counter(*n as f64));
                    }
                }
            }
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_expected_event_interval_seconds",
        help: "Mean interval between events learned from the bot's history.",
        labels: ["bot"],
        samples: |snap, emit| per_bot(snap, emit, |b| b.expected_interval_secs.map(Gauge)),
    },
    &Family::<6, Gauge> {
        name: "discord_gateway_finding_active",
        help: "Active findings (1 while active).",
        labels: FINDING,
        samples: |snap, emit| per_active_finding(snap, emit, |_| Gauge(1.0)),
    },
    &Family::<6, Gauge> {
        name: "discord_gateway_finding_since_timestamp_seconds",
        help: "When each active finding started, Unix seconds (the same series as discord_gateway_finding_active).",
        labels: FINDING,
        samples: |snap, emit| per_active_finding(snap, emit, |f| Gauge(secs(f.since))),
    },
    &Family::<2, Counter> {
        name: "discord_gateway_handovers_total",
        help: "Handovers (a new session of a bot and shard on another pod or run while the old one is live or just ended), by the outcome the engine decided.",
        labels: ["bot", "outcome"],
        samples: |snap, emit| {
            for b in &snap.bots {
                for (outcome, n) in &b.handovers {
                    emit([&b.bot, outcome.as_str()], Counter(*n as f64));
                }
            }
        },
    },
    &Family::<2, Counter> {
        name: "discord_gateway_remediations_total",
        help: "Remediation reports of the opt-in actor ([remediation]), by bot and outcome (dry_run, started, done, skipped, failed).",
        labels: ["bot", "outcome"],
        samples: |snap, emit| {
            for b in &snap.bots {
                for (outcome, n) in &b.remediations {
                    emit([&b.bot, outcome.as_str()], Counter(*n as f64));
                }
            }
        },
    },
    &Family::<2, Counter> {
        name: "discord_gateway_findings_total",
        help: "Findings opened, by kind and bot.",
        labels: ["kind", "bot"],
        samples: |snap, emit| {
            for (kind, bot, n) in &snap.findings_total {
                emit([kind.as_str(), bot], Counter(*n as f64));
            }
            // Every kind shows up for every bot, so `increase()` works from the first finding on.
            for b in &snap.bots {
                for k in Kind::ALL {
                    let seen = snap
                        .findings_total
                        .iter()
                        .any(|(kk, bb, _)| *kk == k && *bb == b.bot);
                    if !seen {
                        emit([k.as_str(), &b.bot], Counter(0.0));
                    }
                }
            }
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_session_start_limit",
        help: "Discord session_start_limit.total: session starts allowed per window (named without _total: it is a gauge).",
        labels: ["bot"],
        samples: |snap, emit| {
            per_bot(snap, emit, |b| {
                b.start_limit.as_ref().map(|l| Gauge(f64::from(l.total)))
            })
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_session_start_limit_remaining",
        help: "Discord session_start_limit.remaining.",
        labels: ["bot"],
        samples: |snap, emit| {
            per_bot(snap, emit, |b| {
                b.start_limit
                    .as_ref()
                    .map(|l| Gauge(f64::from(l.remaining)))
            })
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_session_start_limit_max_concurrency",
        help: "Discord session_start_limit.max_concurrency.",
        labels: ["bot"],
        samples: |snap, emit| {
            per_bot(snap, emit, |b| {
                b.start_limit
                    .as_ref()
                    .map(|l| Gauge(f64::from(l.max_concurrency)))
            })
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_session_start_limit_reset_after_seconds",
        help: "Seconds until Discord resets remaining.",
        labels: ["bot"],
        samples: |snap, emit| {
            per_bot(snap, emit, |b| {
                b.start_limit
                    .as_ref()
                    .map(|l| Gauge(l.reset_after_ms as f64 / 1000.0))
            })
        },
    },
    &Family::<1, Gauge> {
        name: "discord_gateway_recommended_shards",
        help: "Shard count Discord recommends (GET /gateway/bot).",
        labels: ["bot"],
        samples: |snap, emit| {
            per_bot(snap, emit, |b| {
                b.start_limit
                    .as_ref()
                    .map(|l| Gauge(f64::from(l.recommended_shards)))
            })
        },
    },
];

/// One sample per session series that has a value, labelled [`SESSION`].
fn per_session<V>(
    snap: &Snapshot,
    emit: &mut Emit<'_, 4, V>,
    value: impl Fn(&SessionSeries) -> Option<V>,
) {
    for s in &snap.series {
        if let Some(v) = value(s) {
            emit([&s.bot, &s.namespace, &s.pod, &s.shard.to_string()], v);
        }
    }
}

/// One sample per active finding, labelled [`FINDING`].
fn per_active_finding<V>(
    snap: &Snapshot,
    emit: &mut Emit<'_, 6, V>,
    value: impl Fn(&Finding) -> V,
) {
    for f in snap.active_findings() {
        let shard = f.subject.shard().map(|s| s.to_string()).unwrap_or_default();
        let labels = [
            f.kind.as_str(),
            f.severity.as_str(),
            &f.bot,
            f.subject.namespace_label(),
            f.subject.pod_label(),
            &shard,
        ];
        emit(labels, value(f));
    }
}

/// One sample per bot that has a value, labelled `bot`.
fn per_bot<V>(snap: &Snapshot, emit: &mut Emit<'_, 1, V>, value: impl Fn(&BotView) -> Option<V>) {
    for b in &snap.bots {
        if let Some(v) = value(b) {
            emit([&b.bot], v);
        }
    }
}

fn secs(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Renders [`FAMILIES`] from the snapshot the engine's task published last, so one scrape sees
/// one consistent state.
pub(super) struct EngineCollector {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    descs: Vec<Desc>,
}

impl EngineCollector {
    pub(super) fn new(snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        let descs = FAMILIES.iter().map(|f| f.desc()).collect();
        Self { snapshot, descs }
    }
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
        FAMILIES
            .iter()
            .map(|f| f.render(&snap))
            .filter(|mf| !mf.get_metric().is_empty())
            .collect()
    }
}
