//! Handovers: a new session of a bot and shard on another pod (or another run of the pod)
//! while the old one is live or just ended: a rollout, a restart, scale 0 then 1. The engine
//! follows each from its start to an outcome (clean, new session silent, ...), so traces,
//! metrics, the API and the timeline all read the same decision.
//!
//! The decision reads only the engine's own change stream, in order: the new session's first
//! event or end, the old session's end, and the findings that concern either (each kind's
//! [`HandoverEffect`](super::HandoverEffect) says what it means for the handover).

use std::collections::{BTreeMap, VecDeque};

use chrono::TimeDelta;
use serde::Serialize;

use super::changes::Change;
use super::findings::Subject;
use super::kinds::HandoverEffect;
use super::state::{Session, SessionState};
use crate::observation::Timestamp;

/// A handover still unresolved this long after it started ends as `unresolved`.
pub const HANDOVER_MAX_SECS: i64 = 3600;
/// Decided handovers kept for the API.
const MAX_DECIDED: usize = 256;

/// How a handover went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverOutcome {
    /// The old session is gone and the new one received events.
    Clean,
    /// The new session was found silent (or quiet): connected but deaf.
    NewSessionSilent,
    /// The new session ended before it received an event.
    NewSessionEnded,
    /// Both sessions received the bot's events.
    DuplicateDelivery,
    /// The old pod ended without closing its session, which lingered on Discord's side.
    OldSessionLingering,
    /// Both sessions were live at once (and nothing worse was found).
    ConcurrentSessions,
    /// Neither settled within [`HANDOVER_MAX_SECS`], or the input ended first.
    Unresolved,
}

impl HandoverOutcome {
    /// The name in metrics, traces and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoverOutcome::Clean => "clean",
            HandoverOutcome::NewSessionSilent => "new_session_silent",
            HandoverOutcome::NewSessionEnded => "new_session_ended",
            HandoverOutcome::DuplicateDelivery => "duplicate_delivery",
            HandoverOutcome::OldSessionLingering => "old_session_lingering",
            HandoverOutcome::ConcurrentSessions => "concurrent_sessions",
            HandoverOutcome::Unresolved => "unresolved",
        }
    }

    /// Whether the bot was hurt (traces mark such a handover as an error).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            HandoverOutcome::NewSessionSilent | HandoverOutcome::DuplicateDelivery
        )
    }
}

/// Whether the old session was still live when the new one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverKind {
    Overlap,
    Gap,
}

impl HandoverKind {
    /// The name in traces and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoverKind::Overlap => "overlap",
            HandoverKind::Gap => "gap",
        }
    }
}

/// One handover, from the old session (`from`) to the new one (`to`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handover {
    pub id: u64,
    pub bot: String,
    /// The new session's namespace (empty while unknown).
    pub namespace: String,
    pub shard: u32,
    pub from: u64,
    pub from_pod: String,
    pub to: u64,
    pub to_pod: String,
    pub kind: HandoverKind,
    /// The old session's end when it ended before the new one started, else the new one's
    /// start.
    pub started_at: Timestamp,
    /// When the old session ended, if it did before the new one started.
    pub old_ended_at: Option<Timestamp>,
    /// When the old session stopped being live (its end, plus lingering), once known.
    pub old_gone: Option<Timestamp>,
    /// When the new session settled: its first event, its end, or a silence finding.
    pub new_settled: Option<Timestamp>,
    /// The outcome findings named so far (provisional until `outcome` is set).
    pub named: Option<HandoverOutcome>,
    /// The decided outcome.
    pub outcome: Option<HandoverOutcome>,
    /// When the handover ended (set with `outcome`).
    pub ended_at: Option<Timestamp>,
}

impl Handover {
    /// The handover from `old` to the session `new` that just started.
    pub(super) fn begin(id: u64, old: &Session, new: &Session) -> Self {
        let at = new.ready_at;
        let old_ended_at = old.ended_at;
        Handover {
            id,
            bot: new.bot.clone(),
            namespace: new.namespace.clone(),
            shard: new.shard,
            from: old.id,
            from_pod: old.pod.clone(),
            to: new.id,
            to_pod: new.pod.clone(),
            kind: if old.is_live(at) {
                HandoverKind::Overlap
            } else {
                HandoverKind::Gap
            },
            started_at: old_ended_at.map_or(at, |e| e.min(at)),
            old_ended_at,
            old_gone: old_ended_at.map(|e| old.live_until.unwrap_or(e)),
            new_settled: None,
            named: None,
            outcome: None,
            ended_at: None,
        }
    }

    fn max_end(&self) -> Timestamp {
        self.started_at + TimeDelta::seconds(HANDOVER_MAX_SECS)
    }

    /// Whether it is decided at `now`: the old session is gone and the new one settled, or
    /// it ran out of time.
    fn is_due(&self, now: Timestamp) -> bool {
        let old_done = self.old_gone.is_some_and(|g| g <= now);
        (old_done && self.new_settled.is_some()) || now >= self.max_end()
    }

    /// Decides the outcome at `now`.
    fn decide(&mut self, now: Timestamp) {
        let settled = match (self.old_gone, self.new_settled) {
            (Some(g), Some(s)) if g <= now => Some(g.max(s)),
            _ => None,
        };
        let end = settled
            .unwrap_or(now)
            .min(self.max_end())
            .max(self.started_at);
        self.outcome = Some(match (settled, self.named) {
            (_, Some(o)) => o,
            (Some(_), None) => HandoverOutcome::Clean,
            (None, None) => HandoverOutcome::Unresolved,
        });
        self.ended_at = Some(end);
    }
}

/// The open handovers, a bounded history of decided ones, and counts of outcomes.
#[derive(Debug, Default)]
pub(super) struct Handovers {
    next_id: u64,
    open: Vec<Handover>,
    decided: VecDeque<Handover>,
    /// Decided handovers per (bot, outcome); never decreases.
    totals: BTreeMap<(String, HandoverOutcome), u64>,
}

impl Handovers {
    /// Files the handovers of the guessed bot name `from` under `to` (see `attribution`).
    pub fn rename_bot(&mut self, from: &str, to: &str) {
        for h in self.open.iter_mut().chain(self.decided.iter_mut()) {
            if h.bot == from {
                h.bot = to.to_string();
            }
        }
        let moved: Vec<_> = self
            .totals
            .keys()
            .filter(|(b, _)| b == from)
            .cloned()
            .collect();
        for k in moved {
            let n = self.totals.remove(&k).unwrap_or(0);
            *self.totals.entry((to.to_string(), k.1)).or_default() += n;
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Whether a handover waits for its outcome.
    pub fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Follows one change of the engine's stream (`now`: the engine's time).
    pub fn apply(&mut self, c: &Change, now: Timestamp) {
        match c {
            Change::HandoverStarted { handover } => self.open.push((**handover).clone()),
            Change::SessionUpdate {
                id,
                at,
                state: SessionState::FirstEvent,
            } => {
                for h in self.open.iter_mut().filter(|h| h.to == *id) {
                    h.new_settled.get_or_insert(*at);
                }
            }
            Change::SessionEnded { session } => {
                let gone = session.live_until.or(session.ended_at);
                for h in &mut self.open {
                    if h.from == session.id {
                        h.old_gone = gone;
                    }
                    if h.to == session.id && h.new_settled.is_none() {
                        h.new_settled = session.ended_at;
                        h.named.get_or_insert(HandoverOutcome::NewSessionEnded);
                    }
                }
            }
            Change::Opened(f) => {
                let effect = f.kind.meta().handover;
                for h in &mut self.open {
                    let of_new = f.session == Some(h.to);
                    let of_either = of_new || f.session == Some(h.from);
                    let bot_wide = matches!(f.subject, Subject::Bot { .. })
                        && f.bot == h.bot
                        && f.subject.shard().is_none_or(|s| s == h.shard);
                    match effect {
                        HandoverEffect::None => {}
                        HandoverEffect::Marks(o) if of_either || bot_wide => {
                            h.named.get_or_insert(o);
                        }
                        HandoverEffect::Marks(_) => {}
                        HandoverEffect::SettlesNew(o) if of_new => {
                            h.named = Some(o);
                            h.new_settled.get_or_insert(now);
                        }
                        HandoverEffect::SettlesNew(_) => {}
                    }
                }
            }
            Change::Closed(_)
            | Change::SessionStarted { .. }
            | Change::SessionUpdate { .. }
            | Change::Handover { .. } => {}
        }
    }

    /// Decides the handovers that are due at `now` (all of them when `all`), in the order
    /// they started.
    pub fn decide(&mut self, now: Timestamp, all: bool) -> Vec<Handover> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.open.len() {
            if all || self.open[i].is_due(now) {
                let mut h = self.open.remove(i);
                h.decide(now);
                out.push(h);
            } else {
                i += 1;
            }
        }
        for h in &out {
            let outcome = h.outcome.expect("decided");
            *self.totals.entry((h.bot.clone(), outcome)).or_default() += 1;
            self.decided.push_back(h.clone());
            while self.decided.len() > MAX_DECIDED {
                self.decided.pop_front();
            }
        }
        out
    }

    /// The open handovers, then the recently decided ones.
    pub fn all(&self) -> impl Iterator<Item = &Handover> {
        self.decided.iter().chain(self.open.iter())
    }

    pub fn totals(&self) -> &BTreeMap<(String, HandoverOutcome), u64> {
        &self.totals
    }
}
