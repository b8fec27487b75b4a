//! Pure correlation: sessions, pods, peers, start-limit accounting, handovers, one detector
//! per finding kind. No I/O, no clock reads, no async: time arrives with the observations
//! ([`Engine::observe`]) and with ticks ([`Engine::tick`]).
//!
//! Map (docs/architecture.md): `sessions` (session lifecycle), `instances` (pods),
//! `peers` (the per-event path), `start_limit` (identify accounting), `handovers`, `changes`
//! (what sinks read), `findings` (subjects, the book), `kinds` (what a kind's metadata is),
//! `detectors/` (one file per kind, its metadata and its hooks; core/build.rs lists them into
//! `Kind` and the hook calls), `snapshot`, `replay` (the replay driver).

mod attribution;
mod bot;
mod changes;
mod close_codes;
mod config;
mod detectors;
mod findings;
mod handovers;
mod instances;
mod kinds;
mod peers;
mod rate;
mod replay;
mod sessions;
mod signals;
mod snapshot;
mod start_limit;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use bot::{BotState, Histogram, OVERLAP_BUCKETS, SIGNAL_NAMES};
pub use changes::Change;
pub use close_codes::{CloseClass, classify as classify_close};
pub use config::EngineConfig;
pub use detectors::Kind;
pub use findings::{Evidence, Finding, Key, Subject};
pub use handovers::{HANDOVER_MAX_SECS, Handover, HandoverKind, HandoverOutcome};
pub use instances::workload_of;
pub use kinds::{HandoverEffect, KindMeta, Legend, Severity, TimelineMark};
pub use snapshot::{BotView, PodCloseCount, SessionSeries, Snapshot};
pub use state::{EndReason, Instance, Risk, SequenceTrack, Session, SessionState};

use findings::Book;
use handovers::Handovers;
use peers::Peers;
use state::{Instances, SessionTable};

use crate::observation::{Body, InstanceId, Observation, Timestamp};

/// Gateway close codes Discord documents as not to be retried.
pub const FATAL_CLOSE_CODES: [u16; 6] = [4004, 4010, 4011, 4012, 4013, 4014];

/// A session of the same bot and shard that ended at most this long before a new one started
/// is the new one's predecessor (a handover: a rollout, a restart, scale 0 then 1).
pub const HANDOVER_WINDOW_SECS: i64 = 1800;

/// Ended sessions kept per pod beyond the open ones (older ones are folded into counters).
const MAX_ENDED_SESSIONS_PER_POD: usize = 16;
/// Evidence lines kept per session.
const MAX_SESSION_EVIDENCE: usize = 8;

/// Hash maps of the per-line path: names are not attacker-chosen keys in a way that matters
/// here (a bounded set of pods), and the fast hash is a large share of a line's cost.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The correlation engine. One task owns it; everything else sees [`Snapshot`]s.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    default_bot: Option<String>,
    now: Option<Timestamp>,
    sessions: SessionTable,
    next_session: u64,
    instances: Instances,
    /// Events of sessions already forgotten, per (bot, namespace, pod, shard), so counters
    /// never drop.
    folded_events: HashMap<(String, String, String, u32), u64>,
    /// Bot learned for each workload, so a pod that never names its bot inherits it.
    workload_bots: HashMap<String, String>,
    /// Bots named by the configuration or by Discord's count: (folded name, name).
    known_bots: Vec<(String, String)>,
    bots: BTreeMap<String, BotState>,
    book: Book,
    /// Handovers in progress and decided, and how far into the book's pending changes they
    /// have read.
    handovers: Handovers,
    handover_cursor: usize,
    /// Source health as last reported.
    sources: BTreeMap<String, (bool, String)>,
    /// (namespace, pod) a log line named -> the index of the instance it resolved to: looked
    /// up by `&str`, so a line costs no allocation and no key comparison in the instance map.
    resolved: FastMap<String, FastMap<String, usize>>,
    /// A log stream's shared instance (by address; the `Arc` kept so the address stays its
    /// own) -> the instance index: no hashing or comparing of names per line.
    by_stream: FastMap<usize, (Arc<InstanceId>, usize)>,
    /// Per session: the other live sessions of its bot and shard, and the time range over
    /// which that stays true. Cleared whenever a session starts, ends, leaves or changes bot.
    peers: FastMap<u64, Peers>,
    /// Reused per event (the sessions overlapping the one that received it).
    scratch: Vec<usize>,
    scratch_newer: Vec<usize>,
    /// What the detectors remember between calls, each its own (`detectors/<kind>.rs`).
    detectors: detectors::States,
}

impl Engine {
    /// An engine that knows nothing yet: its time starts with the first observation.
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            cfg,
            default_bot: None,
            now: None,
            sessions: SessionTable::default(),
            next_session: 0,
            instances: Instances::default(),
            folded_events: HashMap::new(),
            workload_bots: HashMap::new(),
            known_bots: Vec::new(),
            bots: BTreeMap::new(),
            book: Book::default(),
            handovers: Handovers::default(),
            handover_cursor: 0,
            sources: BTreeMap::new(),
            resolved: FastMap::default(),
            by_stream: FastMap::default(),
            peers: FastMap::default(),
            scratch: Vec::new(),
            scratch_newer: Vec::new(),
            detectors: detectors::States::default(),
        }
    }

    /// The bot of instances that nothing else attributes (`--bot`, or the config).
    pub fn with_default_bot(mut self, bot: Option<String>) -> Self {
        self.default_bot = bot;
        self
    }

    /// The thresholds it runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The latest time the engine has seen.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Feeds one observation. Out-of-order observations are applied at their own time; the
    /// detectors never move backwards.
    pub fn observe(&mut self, obs: Observation) {
        let at = obs.at;
        self.now = Some(self.now.map_or(at, |n| n.max(at)));
        match obs.body {
            Body::Session(s) => self.on_session(at, obs.source, s),
            Body::Instance(i) => self.on_instance(at, &obs.source, i),
            Body::StartLimit(sl) => {
                self.bot_state(&sl.bot).discord_polled = true;
                self.learn_known_bot(&sl.bot);
                self.on_start_limit(at, sl);
            }
            // A disabled source (off by configuration) is neither up nor down: nothing that
            // reads source health (the remediation guard) may count it as unhealthy.
            Body::SourceHealth(h) if h.disabled => {
                self.sources.remove(&h.source);
            }
            Body::SourceHealth(h) => {
                self.sources.insert(h.source, (h.up, h.detail));
            }
            Body::Remediation(r) => self.detectors_on_remediation(at, &r, &obs.source),
            Body::LogActivity(a) => self.on_log_activity(at, &a.instance),
        }
        self.follow_handovers(false);
    }

    /// Advances time: runs the time-driven detectors.
    pub fn tick(&mut self, now: Timestamp) {
        let now = self.now.map_or(now, |n| n.max(now));
        self.now = Some(now);
        self.detect(now, false);
        self.follow_handovers(false);
    }

    /// End of input (replay): also settles Discord-count intervals whose slack has not passed,
    /// and decides every handover still open.
    pub fn finish(&mut self) {
        if let Some(now) = self.now {
            self.detect(now, true);
        }
        self.follow_handovers(true);
    }

    /// Decides every handover still open as of now (the daemon stopping), so their outcomes
    /// reach the sinks.
    pub fn conclude_handovers(&mut self) {
        self.follow_handovers(true);
    }

    /// Reads the changes recorded since the last call into the open handovers, and records
    /// the ones decided now (all open ones when `all`).
    fn follow_handovers(&mut self, all: bool) {
        let Some(now) = self.now else { return };
        // The per-line path: nothing new to read and nothing open to decide.
        if self.handover_cursor == self.book.changes().len() && !self.handovers.any_open() {
            return;
        }
        for c in &self.book.changes()[self.handover_cursor..] {
            self.handovers.apply(c, now);
        }
        for h in self.handovers.decide(now, all) {
            self.book.record(Change::Handover {
                handover: Box::new(h),
            });
        }
        self.handover_cursor = self.book.changes().len();
    }

    /// Findings opened or closed, session steps and handovers, since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.follow_handovers(false);
        self.handover_cursor = 0;
        self.book.take_changes()
    }

    /// The findings open now, in key order.
    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.book.active()
    }

    /// Active and (bounded) closed findings, oldest first.
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self
            .book
            .closed()
            .chain(self.book.active())
            .cloned()
            .collect();
        v.sort_by_key(|f| (f.since, f.id));
        v
    }

    /// Every session still remembered (open, lingering, or ended and not yet forgotten), by id.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Every pod (or named process) still remembered, by (namespace, pod).
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// Per-bot accounting (rate, identifies, close codes, overlaps), by bot.
    pub fn bots(&self) -> &BTreeMap<String, BotState> {
        &self.bots
    }

    /// Each source's health as last reported: name -> (up, detail).
    pub fn source_health(&self) -> &BTreeMap<String, (bool, String)> {
        &self.sources
    }

    /// Handovers decided recently (bounded), then the ones in progress.
    pub fn handovers(&self) -> impl Iterator<Item = &Handover> {
        self.handovers.all()
    }

    /// The bot's accounting, created on first mention.
    fn bot_state(&mut self, bot: &str) -> &mut BotState {
        if !self.bots.contains_key(bot) {
            self.bots.insert(bot.to_string(), BotState::default());
        }
        self.bots.get_mut(bot).expect("present")
    }
}

#[cfg(test)]
mod tests;
