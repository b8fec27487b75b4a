//! The per-event path: which sessions are live next to the one that received an event (its
//! peers, cached over the time range in which they stay the same), and what that event means
//! for them (an overlap event, a predecessor still receiving, a duplicate delivery).

use super::bot::BotState;
use super::changes::Change;
use super::findings::LazyEvidence;
use super::state::{Risk, Session, SessionState};
use super::{Engine, MAX_SESSION_EVIDENCE};
use crate::observation::Timestamp;

/// The sessions live next to one session (their rows in the session table), valid for times
/// in `[from, until)` while the table's rows stay where they are.
#[derive(Debug)]
pub(super) struct Peers {
    generation: u64,
    from: Timestamp,
    until: Option<Timestamp>,
    rows: Vec<usize>,
    /// Those of them newer than the session (ready later).
    newer: Vec<usize>,
}

impl Engine {
    pub(super) fn on_dispatch(&mut self, id: u64, at: Timestamp, evidence: LazyEvidence) {
        // Per event: no name is copied, no map keyed by names is searched but the bot's, and
        // sessions are reached by row (searched once, for this one).
        let mut others = std::mem::take(&mut self.scratch);
        let mut newer = std::mem::take(&mut self.scratch_newer);
        others.clear();
        newer.clear();
        let row = self.sessions.row_of(id).expect("exists");
        let generation = self.sessions.generation();
        {
            let s = self.sessions.at(row);
            match self.bots.get_mut(s.bot.as_str()) {
                Some(b) => {
                    b.rate.record(at);
                    b.dispatch_seen = true;
                }
                None => {
                    let mut b = BotState::default();
                    b.rate.record(at);
                    b.dispatch_seen = true;
                    self.bots.insert(s.bot.clone(), b);
                }
            }
            match self.peers.get(&id) {
                Some(p)
                    if p.generation == generation
                        && p.from <= at
                        && p.until.is_none_or(|u| at < u) =>
                {
                    others.extend_from_slice(&p.rows);
                    newer.extend_from_slice(&p.newer);
                }
                _ => {
                    // Liveness changes only at a session's ready_at and live_until: between
                    // the nearest such times around `at`, the same sessions are live.
                    let mut from = Timestamp::MIN_UTC;
                    let mut until: Option<Timestamp> = None;
                    for (r, o) in self.sessions.values().enumerate() {
                        if r == row || o.shard != s.shard || o.bot != s.bot {
                            continue;
                        }
                        for b in [Some(o.ready_at), o.live_until].into_iter().flatten() {
                            if b <= at {
                                from = from.max(b);
                            } else {
                                until = Some(until.map_or(b, |u| u.min(b)));
                            }
                        }
                        if o.is_live(at) {
                            others.push(r);
                            if o.ready_at > s.ready_at {
                                newer.push(r);
                            }
                        }
                    }
                    self.peers.insert(
                        id,
                        Peers {
                            generation,
                            from,
                            until,
                            rows: others.clone(),
                            newer: newer.clone(),
                        },
                    );
                }
            }
        }
        let s = self.sessions.at_mut(row);
        s.events += 1;
        if s.events == 1 {
            self.book.record(Change::SessionUpdate {
                id,
                at,
                state: SessionState::FirstEvent,
            });
        }
        s.last_event_at = Some(s.last_event_at.map_or(at, |l| l.max(at)));
        if others.is_empty() {
            s.proven = true;
        } else {
            s.overlap_events += 1;
        }
        if s.evidence.len() < MAX_SESSION_EVIDENCE {
            s.evidence.push(evidence.get().clone());
        }
        let was_silent = s.silent_since.take().is_some();
        if !newer.is_empty() {
            self.flag_newer_sessions(row, &newer, at, &evidence);
        }
        self.detectors_on_dispatch(id, row, &others, at, was_silent);
        self.scratch = others;
        self.scratch_newer = newer;
    }

    /// The session at row `older` received an event while the ones at rows `newer` were live:
    /// their silence is now suspicious.
    pub(super) fn flag_newer_sessions(
        &mut self,
        older: usize,
        newer: &[usize],
        at: Timestamp,
        evidence: &LazyEvidence,
    ) {
        let older_id = self.sessions.at(older).id;
        for &o in newer {
            let other = self.sessions.at_mut(o);
            if let Some(&(_, i)) = other
                .predecessor_risks
                .iter()
                .find(|(id, _)| *id == older_id)
            {
                note_predecessor_event(other, i, at, evidence);
                continue;
            }
            let i = self.link_predecessor(older, o, at);
            note_predecessor_event(self.sessions.at_mut(o), i, at, evidence);
        }
    }

    /// The index of the `PredecessorActive` entry in the risks of the session at row `newer`
    /// for the pod of the one at row `older`: the pod's entry from an earlier session of that
    /// pod, or a new one (a state change).
    pub(super) fn link_predecessor(&mut self, older: usize, newer: usize, at: Timestamp) -> usize {
        let (older_id, pod) = {
            let o = self.sessions.at(older);
            (o.id, o.pod.clone())
        };
        let other = self.sessions.at_mut(newer);
        let i = match other.risks.iter().position(
            |r| matches!(r, Risk::PredecessorActive { other_pod, .. } if *other_pod == pod),
        ) {
            Some(i) => i,
            None => {
                other.risks.push(Risk::PredecessorActive {
                    other_pod: pod.clone(),
                    events: 0,
                    last_at: at,
                });
                self.book.record(Change::SessionUpdate {
                    id: other.id,
                    at,
                    state: SessionState::PredecessorActive { other_pod: pod },
                });
                other.risks.len() - 1
            }
        };
        other.predecessor_risks.push((older_id, i));
        i
    }
}

/// One more event of a predecessor while `newer` (holding entry `i`) was live; the line is
/// evidence for `newer` until it has events of its own.
fn note_predecessor_event(newer: &mut Session, i: usize, at: Timestamp, evidence: &LazyEvidence) {
    if let Risk::PredecessorActive {
        events, last_at, ..
    } = &mut newer.risks[i]
    {
        *events += 1;
        *last_at = at;
    }
    if newer.events == 0 && newer.evidence.len() < MAX_SESSION_EVIDENCE {
        newer.evidence.push(evidence.get().clone());
    }
}
