//! Session lifecycle: what a log line about a gateway session does to the engine's sessions
//! (start, step, end), and which session a new one takes over from.

use std::sync::Arc;

use chrono::TimeDelta;

use super::changes::Change;
use super::findings::{Evidence, LazyEvidence};
use super::handovers::Handover;
use super::signals::Signal;
use super::state::{EndReason, PodKey, Risk, Session, SessionState};
use super::{Engine, FATAL_CLOSE_CODES, HANDOVER_WINDOW_SECS, MAX_ENDED_SESSIONS_PER_POD};
use crate::observation::{SessionEvent, SessionObservation, Timestamp};

impl Engine {
    pub(super) fn on_session(&mut self, at: Timestamp, source: Arc<str>, s: SessionObservation) {
        let ix = self.resolve_shared(&s.instance, at);
        let shard = s.shard.unwrap_or(0);
        // One lookup for everything the hot path (a dispatch line) needs.
        let current = {
            let inst = self.instances.at_mut(ix);
            inst.has_logs = true;
            inst.last_seen = inst.last_seen.max(at);
            if inst.uid.is_none() && s.instance.uid.is_some() {
                inst.uid = s.instance.uid.clone();
            }
            if inst.running_since.is_none() {
                // Plain logs with no lifecycle source: the process runs since its first line.
                inst.running_since = Some(at);
                inst.runs.push((at, None));
            }
            inst.current
                .get(&shard)
                .or_else(|| inst.current.values().next())
                .copied()
        };
        if let Some(b) = &s.bot
            && self.instances.at(ix).bot.as_ref() != Some(b)
        {
            self.learn_bot(ix, b);
        }
        let event = &s.event;
        let evidence =
            |key: &str| LazyEvidence::new(at, source, s.line, || format!("{key} {}", event.name()));
        if let (SessionEvent::Dispatch { .. }, Some(id)) = (&s.event, current) {
            // The hot path: an event of the session the pod already has.
            let evidence = evidence(&self.instances.at(ix).pod);
            self.on_dispatch(id, at, evidence);
            return;
        }
        let key: PodKey = {
            let inst = self.instances.at(ix);
            (inst.namespace.clone(), inst.pod.clone())
        };
        let bot = self.bot_name(self.instances.at(ix));
        let evidence = evidence(&key.1).into_evidence();
        match s.event {
            SessionEvent::Starting => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.identified = false;
                inst.interrupted = false;
                inst.clean_shutdown = false;
            }
            SessionEvent::Identifying => {
                if self.count_identify(&key, &bot, at) {
                    self.signal(&key, &bot, shard, at, Signal::Reidentified, &evidence);
                }
            }
            SessionEvent::Ready { session_id } => {
                // Libraries log one READY twice (discord.py: the raw payload and the connect
                // line): the same session, not a new one.
                if let Some(id) = self.current(&key, shard) {
                    let s = self.sessions.get_mut(&id).expect("exists");
                    let same = match (&s.session_id, &session_id) {
                        (Some(a), Some(b)) => a == b,
                        _ => s.events == 0 && at - s.ready_at < TimeDelta::seconds(10),
                    };
                    if same && !s.inferred {
                        if s.session_id.is_none()
                            && let Some(sid) = session_id
                        {
                            s.session_id = Some(sid.clone());
                            self.book.record(Change::SessionUpdate {
                                id,
                                at,
                                state: SessionState::SessionId { session_id: sid },
                            });
                        }
                        if s.bot != bot && s.events == 0 {
                            s.bot = bot.clone();
                            self.peers.clear();
                        }
                        return;
                    }
                }
                if self.count_identify(&key, &bot, at) {
                    self.signal(&key, &bot, shard, at, Signal::Reidentified, &evidence);
                }
                self.instances.get_mut(&key).expect("resolved").identified = false;
                self.start_session(&key, &bot, shard, at, session_id, false, evidence);
            }
            SessionEvent::Resumed => {
                self.instances.get_mut(&key).expect("resolved").interrupted = false;
                match self.current(&key, shard) {
                    None => {
                        self.start_session(&key, &bot, shard, at, None, true, evidence.clone());
                    }
                    Some(id) => self.update(id, at, SessionState::Resumed),
                }
                self.signal(&key, &bot, shard, at, Signal::Resumed, &evidence);
            }
            SessionEvent::Dispatch { .. } => {
                let id = match current {
                    Some(id) => id,
                    None => self.start_session(&key, &bot, shard, at, None, true, evidence.clone()),
                };
                self.on_dispatch(id, at, LazyEvidence::made(evidence));
            }
            SessionEvent::HeartbeatAck => self.on_ack(&key, &bot, shard, at, &evidence),
            SessionEvent::Heartbeat { sequence } => {
                self.on_heartbeat(&key, &bot, shard, at, sequence, &evidence);
            }
            SessionEvent::HeartbeatMissed => {
                let sig = Signal::HeartbeatMissed { derived: false };
                self.signal(&key, &bot, shard, at, sig, &evidence);
            }
            SessionEvent::Stalled { behind_ms } => {
                self.signal(
                    &key,
                    &bot,
                    shard,
                    at,
                    Signal::Stalled { behind_ms },
                    &evidence,
                );
            }
            // The library waits for its own identify slot: no session start yet.
            SessionEvent::IdentifyThrottled { .. } => {}
            SessionEvent::SessionLimit {
                total,
                remaining,
                reset_after_ms,
            } => self.on_logged_start_limit(&bot, at, total, remaining, reset_after_ms),
            SessionEvent::Resuming | SessionEvent::Reconnecting => {
                let new_loss = self.interrupted(&key, shard, at, None);
                let sig = Signal::Interrupted {
                    failed_resume: false,
                    new_loss,
                };
                self.signal(&key, &bot, shard, at, sig, &evidence);
            }
            SessionEvent::InvalidSession { resumable } => {
                if let Some(id) = self.current(&key, shard) {
                    if resumable {
                        self.update(id, at, SessionState::Reconnecting { code: None });
                    } else {
                        self.end_session(id, at, EndReason::Invalidated, false);
                    }
                }
                let inst = self.instances.get_mut(&key).expect("resolved");
                let new_loss = !std::mem::replace(&mut inst.interrupted, true);
                inst.identified = false;
                let sig = Signal::Interrupted {
                    failed_resume: !resumable,
                    new_loss,
                };
                self.signal(&key, &bot, shard, at, sig, &evidence);
            }
            SessionEvent::Closed { code } => {
                if let Some(code) = code {
                    self.count_close(&key, &bot, code);
                }
                match code {
                    Some(c) if FATAL_CLOSE_CODES.contains(&c) => {
                        let reason = format!("gateway closed with code {c}");
                        self.on_fatal(&key, &bot, at, reason, Some(c), evidence);
                    }
                    Some(1000 | 1001) => {
                        if let Some(id) = self.current(&key, shard) {
                            self.end_session(id, at, EndReason::Closed { code }, false);
                        }
                    }
                    // Other closes are followed by a resume or a new READY.
                    _ => {
                        let new_loss = self.interrupted(&key, shard, at, code);
                        if let Some(sig) = Self::close_signal(code, new_loss) {
                            self.signal(&key, &bot, shard, at, sig, &evidence);
                        }
                    }
                }
            }
            SessionEvent::Fatal { reason, code } => {
                if let Some(c) = code {
                    self.count_close(&key, &bot, c);
                }
                self.on_fatal(&key, &bot, at, reason, code, evidence);
            }
            SessionEvent::ShuttingDown => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.clean_shutdown = true;
                let ids: Vec<u64> = inst.current.values().copied().collect();
                for id in ids {
                    self.update(id, at, SessionState::ShuttingDown);
                }
            }
            SessionEvent::Stopped => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.clean_shutdown = true;
                let ids: Vec<u64> = inst.current.values().copied().collect();
                for id in ids {
                    self.end_session(id, at, EndReason::Closed { code: None }, false);
                }
            }
        }
    }

    /// The pod's connection dropped and the library reconnects: the session is reconnecting,
    /// and the next IDENTIFY of this process is a re-identify. True when this is the first
    /// line about the loss.
    fn interrupted(&mut self, key: &PodKey, shard: u32, at: Timestamp, code: Option<u16>) -> bool {
        let inst = self.instances.get_mut(key).expect("resolved");
        let new_loss = !std::mem::replace(&mut inst.interrupted, true);
        inst.identified = false;
        if let Some(id) = self.current(key, shard) {
            self.update(id, at, SessionState::Reconnecting { code });
        }
        new_loss
    }

    pub(super) fn on_fatal(
        &mut self,
        key: &PodKey,
        bot: &str,
        at: Timestamp,
        reason: String,
        code: Option<u16>,
        evidence: Evidence,
    ) {
        // The IDENTIFY that Discord refused still counted as a session start.
        self.count_identify(key, bot, at);
        let inst = self.instances.get_mut(key).expect("resolved");
        inst.identified = false;
        let ids: Vec<u64> = inst.current.values().copied().collect();
        for id in ids {
            self.end_session(
                id,
                at,
                EndReason::Fatal {
                    reason: reason.clone(),
                },
                false,
            );
        }
        self.detectors_on_fatal(key, bot, at, &reason, code, &evidence);
    }

    /// Records a step of a session's life for the sinks.
    pub(super) fn update(&mut self, id: u64, at: Timestamp, state: SessionState) {
        self.book.record(Change::SessionUpdate { id, at, state });
    }

    /// The session a new one of `bot` and `shard` on `key` takes over from: the latest still
    /// live or ended within [`HANDOVER_WINDOW_SECS`]; and whether that is a handover (another
    /// pod, or another run of this pod) rather than a reconnect.
    pub(super) fn predecessor(
        &self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
    ) -> Option<(u64, bool)> {
        let window = TimeDelta::seconds(HANDOVER_WINDOW_SECS);
        let p = self
            .sessions
            .values()
            .filter(|o| o.bot == bot && o.shard == shard && o.ready_at <= at)
            .filter(|o| o.is_live(at) || o.ended_at.is_some_and(|e| at - e <= window))
            .max_by_key(|o| (o.ready_at, o.id))?;
        let handover = p.namespace != key.0
            || p.pod != key.1
            || matches!(p.end, Some(EndReason::PodEnded { .. }));
        Some((p.id, handover))
    }

    pub(super) fn current(&self, key: &PodKey, shard: u32) -> Option<u64> {
        self.instances.get(key)?.current.get(&shard).copied()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_session(
        &mut self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        session_id: Option<String>,
        inferred: bool,
        evidence: Evidence,
    ) -> u64 {
        if let Some(prev) = self.current(key, shard) {
            self.end_session(prev, at, EndReason::Replaced, false);
        }
        let predecessor = self.predecessor(key, bot, shard, at);
        let mut risks = Vec::new();
        if !inferred {
            for o in self.sessions.values() {
                if o.bot == bot && o.shard == shard && o.is_live(at) {
                    let r = Risk::StartedDuringOverlap {
                        other_pod: o.pod.clone(),
                    };
                    if !risks.contains(&r) {
                        risks.push(r);
                    }
                }
            }
        }
        self.next_session += 1;
        let id = self.next_session;
        let inst = self.instances.get_mut(key).expect("resolved");
        inst.current.insert(shard, id);
        let session = Session {
            id,
            bot: bot.to_string(),
            namespace: key.0.clone(),
            pod: key.1.clone(),
            instance: crate::observation::InstanceId {
                namespace: key.0.clone(),
                pod: key.1.clone(),
                uid: inst.uid.clone(),
                container: None,
            },
            shard,
            session_id,
            ready_at: at,
            inferred,
            events: 0,
            last_event_at: None,
            overlap_events: 0,
            ended_at: None,
            end: None,
            live_until: None,
            risks,
            proven: false,
            silent_since: None,
            duplicate_open: false,
            predecessor_risks: Vec::new(),
            evidence: vec![evidence],
            sequence: None,
            heartbeat: Default::default(),
        };
        let handover = match predecessor {
            Some((p, true)) => {
                let old = self.sessions.get(&p).expect("predecessor exists");
                Some(Handover::begin(self.handovers.next_id(), old, &session))
            }
            _ => None,
        };
        self.book.record(Change::SessionStarted {
            session: Box::new(session.clone()),
            predecessor: predecessor.map(|p| p.0),
            handover: handover.is_some(),
        });
        if let Some(h) = handover {
            self.book.record(Change::HandoverStarted {
                handover: Box::new(h),
            });
        }
        self.sessions.insert(id, session);
        self.peers.clear();
        self.detectors_on_session_started(id, bot, shard, at);
        self.prune_pod_sessions(key);
        id
    }

    pub(super) fn end_session(
        &mut self,
        id: u64,
        at: Timestamp,
        reason: EndReason,
        lingering: bool,
    ) {
        let linger = TimeDelta::seconds(self.cfg.lingering_secs as i64);
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.ended_at.is_some() {
            return;
        }
        s.ended_at = Some(at);
        s.end = Some(reason);
        s.live_until = Some(if lingering { at + linger } else { at });
        self.peers.clear();
        let (bot, shard, ns, pod) = (s.bot.clone(), s.shard, s.namespace.clone(), s.pod.clone());
        let silent = s.silent_since.take().is_some();
        let ended = Box::new(s.clone());
        self.book.record(Change::SessionEnded { session: ended });
        if let Some(inst) = self.instances.get_mut(&(ns.clone(), pod.clone()))
            && inst.current.get(&shard) == Some(&id)
        {
            inst.current.remove(&shard);
        }
        self.detectors_on_session_ended(id, &bot, shard, at, silent);
    }

    /// Keeps a pod's ended sessions bounded; their events move into the folded counters.
    pub(super) fn prune_pod_sessions(&mut self, key: &PodKey) {
        let ended: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.namespace == key.0 && s.pod == key.1 && s.ended_at.is_some())
            .map(|s| s.id)
            .collect();
        if ended.len() <= MAX_ENDED_SESSIONS_PER_POD {
            return;
        }
        let now = self.now.unwrap_or_default();
        for id in &ended[..ended.len() - MAX_ENDED_SESSIONS_PER_POD] {
            if self.sessions[id].is_live(now) {
                continue;
            }
            if let Some(s) = self.sessions.remove(id) {
                self.peers.clear();
                *self
                    .folded_events
                    .entry((s.bot, s.namespace, s.pod, s.shard))
                    .or_default() += s.events;
            }
        }
    }
}
