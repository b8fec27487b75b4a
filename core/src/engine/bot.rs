//! Per-bot accounting: event rate, identifies seen in logs and counted by Discord, close codes,
//! overlap durations.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::rate::RateLearner;
use crate::observation::{StartLimit, Timestamp};

/// Upper bounds (seconds) of the overlap histogram.
pub const OVERLAP_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A cumulative histogram the engine keeps so that metrics can render it at any time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Histogram {
    /// Count per bucket of [`OVERLAP_BUCKETS`] (not cumulative), plus the overflow.
    pub counts: [u64; OVERLAP_BUCKETS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        let i = OVERLAP_BUCKETS
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(OVERLAP_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }
}

/// Discord's identify count between two start-limit samples, waiting to be matched with logs.
#[derive(Debug, Clone)]
pub struct PendingDrop {
    pub from: Timestamp,
    pub to: Timestamp,
    pub count: u32,
}

/// An IDENTIFY the logs show, and whether a Discord-side drop already accounted for it.
#[derive(Debug, Clone)]
pub struct LogIdentify {
    pub at: Timestamp,
    pub pod: String,
    pub matched: bool,
}

/// Everything the engine knows about one bot beyond its sessions.
#[derive(Debug, Clone, Default)]
pub struct BotState {
    pub rate: RateLearner,
    pub identifies_logs: u64,
    pub identifies_discord: u64,
    pub unattributed: u64,
    pub close_codes: BTreeMap<u16, u64>,
    /// Close codes per (namespace, pod, code), bounded per pod (see `close_codes`); a pod's
    /// entries go when the pod is forgotten.
    pub pod_close_codes: BTreeMap<(String, String, u16), u64>,
    /// Gateway-health signals per (namespace, pod), counted in the order of
    /// [`SIGNAL_NAMES`]; a pod's entry goes when the pod is forgotten.
    pub pod_signals: BTreeMap<(String, String), [u64; SIGNAL_NAMES.len()]>,
    /// A dispatch line of the bot was ever seen: its logs can show events.
    pub dispatch_seen: bool,
    /// The configuration says whether its logs show events (`[[bot]] events_visible`).
    pub declared_events: Option<bool>,
    /// Discord's own `GET /gateway/bot` was sampled (a token is configured): the library's
    /// logged start-limit figures are then not needed.
    pub discord_polled: bool,
    pub overlap: Histogram,
    pub last_sample: Option<(Timestamp, StartLimit)>,
    pub pending: VecDeque<PendingDrop>,
    pub log_identifies: VecDeque<LogIdentify>,
    /// (time, cumulative Discord identifies) over the last hour, for the burn rate.
    pub burn: VecDeque<(Timestamp, u64)>,
}

/// The gateway-health signals counted per pod (`discord_gateway_connection_signals_total`'s
/// `signal` label): a lost connection (however many lines tell it), a new IDENTIFY after one,
/// a successful resume, an unacknowledged heartbeat, a blocked event loop.
pub const SIGNAL_NAMES: [&str; 5] = [
    "lost_connection",
    "reidentify",
    "resumed",
    "heartbeat_missed",
    "stalled",
];

/// Log identifies kept for matching; older ones can no longer match a pending drop.
pub const MAX_LOG_IDENTIFIES: usize = 10_000;
