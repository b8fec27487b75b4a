//! What the engine remembers: sessions and instances.

use std::collections::BTreeMap;

use serde::Serialize;

use super::findings::Evidence;
use crate::observation::{InstanceId, Timestamp};

/// Why a session stopped being live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// The bot logged a clean close or a completed shutdown.
    Closed { code: Option<u16> },
    /// A non-recoverable gateway error.
    Fatal { reason: String },
    /// Discord invalidated the session (not resumable).
    Invalidated,
    /// A new READY on the same pod and shard replaced it.
    Replaced,
    /// The pod's container exited or the pod was deleted.
    PodEnded { code: Option<i32>, clean: bool },
}

impl EndReason {
    /// A short word for it (a span's `outcome`).
    pub fn outcome(&self) -> &'static str {
        match self {
            EndReason::Closed { .. } => "closed",
            EndReason::Fatal { .. } => "fatal",
            EndReason::Invalidated => "invalidated",
            EndReason::Replaced => "replaced",
            EndReason::PodEnded { clean: true, .. } => "pod_ended",
            EndReason::PodEnded { clean: false, .. } => "pod_ended_unclean",
        }
    }
}

/// Why a session's silence is suspicious (DESIGN.md, `silent_session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "risk", rename_all = "snake_case")]
pub enum Risk {
    /// Another session of the bot was live when this one became ready.
    StartedDuringOverlap { other_pod: String },
    /// An older session of the bot kept receiving events after this one connected.
    PredecessorActive {
        other_pod: String,
        events: u64,
        last_at: Timestamp,
    },
    /// Discord counted an identify the logs do not explain around this session's start.
    UnexplainedIdentify,
    /// Another live session's heartbeat sequence kept advancing (it received the bot's
    /// events) while this session's stood still.
    PeerSequenceAdvancing {
        other_pod: String,
        from: u64,
        to: u64,
        /// Milliseconds per event at the peer's sequence rate.
        every_ms: u64,
    },
}

/// A step in a live session's life, for [`super::Change::SessionUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    /// Its READY named the session id (after the session was already known).
    SessionId { session_id: String },
    /// Its first event (a dispatch) arrived: the session proved it is connected.
    FirstEvent,
    /// An older session of the bot received an event after this one connected (the first
    /// time per other pod).
    PredecessorActive { other_pod: String },
    /// The connection dropped and the library tries to resume (a non-clean close, an
    /// invalid-but-resumable session, a logged reconnect).
    Reconnecting { code: Option<u16> },
    /// The session resumed.
    Resumed,
    /// Its pod started terminating.
    PodTerminating { grace: Option<u64> },
    /// The bot logged the start of a graceful shutdown.
    ShuttingDown,
}

impl SessionState {
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::SessionId { .. } => "session_id",
            SessionState::FirstEvent => "first_event",
            SessionState::PredecessorActive { .. } => "predecessor_active",
            SessionState::Reconnecting { .. } => "reconnecting",
            SessionState::Resumed => "resumed",
            SessionState::PodTerminating { .. } => "pod_terminating",
            SessionState::ShuttingDown => "shutting_down",
        }
    }
}

/// One gateway session, from READY (or the first sign of it) to its end.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: u64,
    pub bot: String,
    pub namespace: String,
    pub pod: String,
    #[serde(skip)]
    pub instance: InstanceId,
    pub shard: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub ready_at: Timestamp,
    /// True when the session was inferred from later lines (the READY was not seen).
    pub inferred: bool,
    pub events: u64,
    pub last_event_at: Option<Timestamp>,
    /// Events received while another session of the bot and shard was live.
    pub overlap_events: u64,
    pub ended_at: Option<Timestamp>,
    pub end: Option<EndReason>,
    /// Live until this time (the end, or the end plus the lingering window after an unclean
    /// exit); `None` while open.
    pub live_until: Option<Timestamp>,
    pub risks: Vec<Risk>,
    /// Set once the session received an event with no other session live: it proved itself.
    pub proven: bool,
    /// Start of the current silence, when flagged silent or quiet.
    pub silent_since: Option<Timestamp>,
    /// A `duplicate_delivery` finding is open for this session (as the newer of the pair).
    #[serde(skip)]
    pub duplicate_open: bool,
    /// Older session id -> index of its pod's `PredecessorActive` entry in `risks` (entries
    /// are never removed), so an overlapping event finds it without comparing pod names.
    #[serde(skip)]
    pub predecessor_risks: Vec<(u64, usize)>,
    #[serde(skip)]
    pub evidence: Vec<Evidence>,
    /// The heartbeat sequence numbers the session logged (discord.py at DEBUG), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceTrack>,
    /// Heartbeat acknowledgements and heartbeats, for missing ACKs (a zombie connection).
    #[serde(skip)]
    pub heartbeat: HeartbeatTrack,
}

/// A session's heartbeat sequence numbers: the last sequence it received, as its heartbeats
/// report it. A sequence that advances proves events at the gateway's own rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceTrack {
    /// The first sequence logged (the READY and guild burst before it are not traffic).
    pub first: u64,
    pub first_at: Timestamp,
    pub last: u64,
    pub last_at: Timestamp,
    /// The last heartbeat at which the sequence had advanced beyond the one before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced_at: Option<Timestamp>,
    /// Seconds between its last two heartbeats (the heartbeat interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<f64>,
}

impl SequenceTrack {
    /// Events per second the sequence shows (first to last heartbeat), when it advanced.
    pub fn rate(&self) -> Option<f64> {
        let span = (self.last_at - self.first_at).as_seconds_f64();
        (self.last > self.first && span > 0.0).then(|| (self.last - self.first) as f64 / span)
    }

    /// Since when the sequence stands still (its last advance, or its first heartbeat).
    pub fn stalled_since(&self) -> Timestamp {
        self.advanced_at.unwrap_or(self.first_at)
    }
}

/// Heartbeats sent and acknowledged, as the session's lines show them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatTrack {
    /// The last acknowledgement (the library logs ACKs at all).
    pub last_ack_at: Option<Timestamp>,
    /// Heartbeats sent since that acknowledgement.
    pub unacked: u32,
}

impl Session {
    /// Whether Discord may still hold this session at `t`.
    pub fn is_live(&self, t: Timestamp) -> bool {
        self.ready_at <= t && self.live_until.is_none_or(|u| t < u)
    }

    /// Whether the bot still uses it (not ended, not merely lingering).
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    /// The start of the current silence.
    pub fn quiet_since(&self) -> Timestamp {
        let seq = self.sequence.as_ref().and_then(|q| q.advanced_at);
        self.last_event_at
            .max(seq)
            .unwrap_or(self.ready_at)
            .max(self.ready_at)
    }

    /// Whether it ever showed an event: a dispatch line, or a heartbeat sequence that advanced.
    pub fn received(&self) -> bool {
        self.events > 0
            || self
                .sequence
                .as_ref()
                .is_some_and(|q| q.advanced_at.is_some())
    }

    /// Whether its silence is suspicious now: it never received an event although it started
    /// next to another session (or an unexplained identify), or its predecessor received
    /// events since its own last one. A session that received events alone proved itself.
    pub fn at_risk(&self) -> bool {
        if self.proven {
            return false;
        }
        let since = self.quiet_since();
        self.risks.iter().any(|r| match r {
            Risk::StartedDuringOverlap { .. } | Risk::UnexplainedIdentify => !self.received(),
            Risk::PredecessorActive { last_at, .. } => *last_at > since,
            Risk::PeerSequenceAdvancing { .. } => self
                .sequence
                .as_ref()
                .is_some_and(|q| q.stalled_since() <= since),
        })
    }
}

/// A pod (or named process) that runs a bot.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub namespace: String,
    pub pod: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Bot named by the bot's own log lines, or by the pod's labels through the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Whether any log line of it talked about a gateway session.
    pub has_logs: bool,
    pub created_at: Option<Timestamp>,
    pub running_since: Option<Timestamp>,
    pub ready_at: Option<Timestamp>,
    pub terminating_at: Option<Timestamp>,
    pub grace: Option<u64>,
    pub exited_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    pub deleted_at: Option<Timestamp>,
    pub restarts: u32,
    /// Container runs: (start, end), for the timeline.
    pub runs: Vec<(Timestamp, Option<Timestamp>)>,
    /// The bot logged a graceful shutdown in its current run.
    #[serde(skip)]
    pub clean_shutdown: bool,
    /// An IDENTIFY was counted for the current connection attempt.
    #[serde(skip)]
    pub identified: bool,
    /// The current process lost its connection since its last IDENTIFY (the next one is a
    /// re-identify: a resume failed or was not possible).
    #[serde(skip)]
    pub interrupted: bool,
    /// Current session per shard (index into the engine's sessions).
    #[serde(skip)]
    pub current: BTreeMap<u32, u64>,
    /// First and last time anything was seen of it.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Instance {
    pub fn new(namespace: &str, pod: &str, at: Timestamp) -> Self {
        Self {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            uid: None,
            bot: None,
            workload: None,
            has_logs: false,
            created_at: None,
            running_since: None,
            ready_at: None,
            terminating_at: None,
            grace: None,
            exited_at: None,
            exit_code: None,
            deleted_at: None,
            restarts: 0,
            runs: Vec::new(),
            clean_shutdown: false,
            identified: false,
            interrupted: false,
            current: BTreeMap::new(),
            first_seen: at,
            last_seen: at,
        }
    }

    /// A pod that should hold a session: it exists and is not on its way out (a crash-looping
    /// pod counts: it is meant to serve).
    pub fn is_wanted(&self) -> bool {
        self.terminating_at.is_none() && self.deleted_at.is_none()
    }
}

/// An instance's identity: (namespace, pod).
pub(super) type PodKey = (String, String);

/// Instances in key order, each at a stable index: a log line reaches its instance through
/// the index its (namespace, pod) resolved to once, without comparing names again.
#[derive(Debug, Default)]
pub(super) struct Instances {
    by_key: BTreeMap<PodKey, usize>,
    slots: Vec<Option<Instance>>,
    free: Vec<usize>,
}

impl Instances {
    pub fn index(&self, key: &PodKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub fn contains_key(&self, key: &PodKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn get(&self, key: &PodKey) -> Option<&Instance> {
        self.index(key).map(|i| self.at(i))
    }

    pub fn get_mut(&mut self, key: &PodKey) -> Option<&mut Instance> {
        self.index(key).map(|i| self.at_mut(i))
    }

    /// The instance at an index from [`Instances::index`] (valid until it is removed).
    pub fn at(&self, i: usize) -> &Instance {
        self.slots[i].as_ref().expect("live instance index")
    }

    pub fn at_mut(&mut self, i: usize) -> &mut Instance {
        self.slots[i].as_mut().expect("live instance index")
    }

    /// Inserts (or replaces) the instance of `key`; returns its index.
    pub fn insert(&mut self, key: PodKey, inst: Instance) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            self.slots[i] = Some(inst);
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(inst);
                i
            }
            None => {
                self.slots.push(Some(inst));
                self.slots.len() - 1
            }
        };
        self.by_key.insert(key, i);
        i
    }

    /// The index of `key`'s instance, inserting `make()` first when there is none.
    pub fn index_or_insert_with(&mut self, key: &PodKey, make: impl FnOnce() -> Instance) -> usize {
        match self.index(key) {
            Some(i) => i,
            None => self.insert(key.clone(), make()),
        }
    }

    pub fn remove(&mut self, key: &PodKey) -> Option<Instance> {
        let i = self.by_key.remove(key)?;
        self.free.push(i);
        self.slots[i].take()
    }

    pub fn keys(&self) -> impl Iterator<Item = &PodKey> {
        self.by_key.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PodKey, &Instance)> {
        self.by_key.iter().map(|(k, &i)| (k, self.at(i)))
    }

    pub fn values(&self) -> impl Iterator<Item = &Instance> {
        self.by_key.values().map(|&i| self.at(i))
    }
}

impl std::ops::Index<&PodKey> for Instances {
    type Output = Instance;

    fn index(&self, key: &PodKey) -> &Instance {
        self.get(key).expect("known instance")
    }
}

/// The sessions by id, in id order. Ids are handed out increasing, so a new session goes at
/// the end and a lookup is a binary search over a short contiguous run. A session's row stays
/// put until a session is removed (which bumps [`generation`](Self::generation)), so the hot
/// path can keep rows instead of searching again.
#[derive(Debug, Default)]
pub struct SessionTable {
    rows: Vec<Session>,
    generation: u64,
}

impl SessionTable {
    fn find(&self, id: u64) -> Result<usize, usize> {
        self.rows.binary_search_by_key(&id, |s| s.id)
    }

    /// The row of session `id`, valid while [`generation`](Self::generation) stays the same.
    pub fn row_of(&self, id: u64) -> Option<usize> {
        self.find(id).ok()
    }

    /// Changes whenever rows may have moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn at(&self, row: usize) -> &Session {
        &self.rows[row]
    }

    pub fn at_mut(&mut self, row: usize) -> &mut Session {
        &mut self.rows[row]
    }

    pub fn get(&self, id: &u64) -> Option<&Session> {
        self.find(*id).ok().map(|i| &self.rows[i])
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Session> {
        self.find(*id).ok().map(|i| &mut self.rows[i])
    }

    /// Adds (or replaces) the session under `id` (`session.id` must equal `id`).
    pub fn insert(&mut self, id: u64, session: Session) {
        debug_assert_eq!(id, session.id);
        match self.find(id) {
            Ok(i) => self.rows[i] = session,
            Err(i) => {
                if i < self.rows.len() {
                    self.generation += 1;
                }
                self.rows.insert(i, session);
            }
        }
    }

    pub fn remove(&mut self, id: &u64) -> Option<Session> {
        let i = self.find(*id).ok()?;
        self.generation += 1;
        Some(self.rows.remove(i))
    }

    /// Keeps the sessions `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&u64, &mut Session) -> bool) {
        let before = self.rows.len();
        self.rows.retain_mut(|s| {
            let id = s.id;
            keep(&id, s)
        });
        if self.rows.len() != before {
            self.generation += 1;
        }
    }

    pub fn values(&self) -> std::slice::Iter<'_, Session> {
        self.rows.iter()
    }

    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, Session> {
        self.rows.iter_mut()
    }
}

impl std::ops::Index<&u64> for SessionTable {
    type Output = Session;

    fn index(&self, id: &u64) -> &Session {
        self.get(id).expect("no session with this id")
    }
}
