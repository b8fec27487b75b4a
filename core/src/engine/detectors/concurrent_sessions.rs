//! `concurrent_sessions`: more than one live session for one bot and shard. The finding
//! belongs to every session but the oldest; closing it records the overlap's duration.

use std::collections::HashMap;

use super::{Detector, hms};
use crate::engine::findings::{Assertion, Evidence, Key};
use crate::engine::state::PodKey;
use crate::engine::{
    Engine, HandoverEffect, HandoverOutcome, Kind, KindMeta, Session, Severity, TimelineMark,
};
use crate::observation::Timestamp;

/// What `concurrent_sessions` of one bot and shard was last evaluated from: the live sessions
/// (oldest first), the oldest's end and its pod's termination, and the book's generation.
#[derive(Debug, PartialEq)]
struct ConcurrentMemo {
    live: Vec<u64>,
    oldest_end: Option<Timestamp>,
    oldest_terminating: Option<Timestamp>,
    generation: u64,
}

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "concurrent_sessions",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotconcurrentsessions",
    description: "more than one live session for the same bot and shard",
    handover: HandoverEffect::Marks(HandoverOutcome::ConcurrentSessions),
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 0;
/// Its turn on `on_tick`: after `lingering_session` expired, before the silence loop.
pub(super) const ON_TICK: u32 = 20;
/// Its turn on `on_session_started`: after `fatal_close`.
pub(super) const ON_SESSION_STARTED: u32 = 20;
/// Its turn on `on_session_ended`: after `silent_session`.
pub(super) const ON_SESSION_ENDED: u32 = 20;
/// Its turn on `on_pod_adopted`: the only one.
pub(super) const ON_POD_ADOPTED: u32 = 10;

pub(super) struct ConcurrentSessions;

/// Per (bot, shard): what `concurrent_sessions` last asserted from, to skip re-asserting the
/// same findings on every tick.
#[derive(Debug, Default)]
pub(super) struct State {
    memo: HashMap<String, HashMap<u32, ConcurrentMemo>>,
}

impl Detector for ConcurrentSessions {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        let mut groups: Vec<(String, u32)> = Vec::new();
        for s in engine.sessions.values() {
            if !groups.iter().any(|(b, sh)| *sh == s.shard && *b == s.bot) {
                groups.push((s.bot.clone(), s.shard));
            }
        }
        groups.sort();
        for (bot, shard) in groups {
            engine.evaluate_concurrent(&bot, shard, now);
        }
    }

    fn on_pod_adopted(engine: &mut Engine, _key: &PodKey) {
        // Its sessions and findings move to the pod's namespace: start over rather than
        // compare with what they were.
        engine.detectors.concurrent_sessions.memo.clear();
    }

    fn on_session_started(engine: &mut Engine, _id: u64, bot: &str, shard: u32, at: Timestamp) {
        engine.evaluate_concurrent(bot, shard, at);
    }

    fn on_session_ended(
        engine: &mut Engine,
        _id: u64,
        bot: &str,
        shard: u32,
        at: Timestamp,
        _was_silent: bool,
    ) {
        engine.evaluate_concurrent(bot, shard, at);
    }
}

impl Engine {
    /// `concurrent_sessions`: more than one live session for one bot and shard. The finding
    /// belongs to every session but the oldest.
    fn evaluate_concurrent(&mut self, bot: &str, shard: u32, now: Timestamp) {
        let mut live: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.bot == bot && s.shard == shard && s.is_live(now))
            .collect();
        live.sort_by_key(|s| (s.ready_at, s.id));
        let old_terminating = live
            .first()
            .filter(|_| live.len() > 1)
            .and_then(|o| self.instance_of(&o.namespace, &o.pod))
            .and_then(|i| i.terminating_at);
        let memo = ConcurrentMemo {
            live: live.iter().map(|s| s.id).collect(),
            oldest_end: live.first().and_then(|s| s.ended_at),
            oldest_terminating: old_terminating,
            generation: self.book.generation(),
        };
        if self
            .detectors
            .concurrent_sessions
            .memo
            .get(bot)
            .and_then(|m| m.get(&shard))
            .is_some_and(|m| *m == memo)
        {
            // Same sessions, same states, no finding opened or closed since: the same
            // findings would be asserted again and none closed.
            return;
        }
        let mut keep = Vec::new();
        if live.len() > 1 {
            let oldest = live[0];
            let old_state = match (oldest.ended_at, old_terminating) {
                (Some(end), _) => format!(
                    ", lingering on Discord's side since its pod ended at {}",
                    hms(end)
                ),
                (None, Some(t)) => format!(", its pod terminating since {}", hms(t)),
                _ => String::new(),
            };
            for s in &live[1..] {
                let key = Key::session(Kind::ConcurrentSessions, s);
                let mut evidence = vec![s.evidence[0].clone(), oldest.evidence[0].clone()];
                if let Some(t) = old_terminating {
                    evidence.push(Evidence {
                        at: t,
                        source: "lifecycle".into(),
                        text: format!("pod {} terminating", oldest.pod),
                    });
                }
                keep.push(key.clone());
                let explanation = format!(
                    "{} sessions of {bot} on shard {shard} are live: pod {} connected at {} \
                     while pod {}'s session (live since {}{old_state}) still held the same shard.",
                    live.len(),
                    s.pod,
                    hms(s.ready_at),
                    oldest.pod,
                    hms(oldest.ready_at),
                );
                let a = Assertion::new(key, s.ready_at, explanation, evidence).about(s.id);
                self.book.assert(a);
            }
        }
        // Close the ones that no longer hold, at the moment the overlap ended.
        let end_at = self
            .sessions
            .values()
            .filter(|s| s.bot == bot && s.shard == shard)
            .filter_map(|s| s.live_until)
            .filter(|u| *u <= now)
            .max()
            .unwrap_or(now);
        for k in self.book.active_keys(Kind::ConcurrentSessions) {
            if k.bot == bot && k.subject.shard() == Some(shard) && !keep.contains(&k) {
                let since = self.book.get(&k).map_or(now, |f| f.since);
                let at = end_at.max(since);
                self.bot_state(bot)
                    .overlap
                    .observe((at - since).as_seconds_f64());
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
        let memo = ConcurrentMemo {
            generation: self.book.generation(),
            ..memo
        };
        self.detectors
            .concurrent_sessions
            .memo
            .entry(bot.to_string())
            .or_default()
            .insert(shard, memo);
    }
}
