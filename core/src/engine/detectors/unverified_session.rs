//! `unverified_session`: a session at risk (it started while another session of its bot was
//! live, or around an identify Discord counted and no log explains) of a bot whose logs
//! cannot show events. Its silence proves nothing either way, so it is a warning that says
//! what would make it verifiable, never the critical `silent_session`.

use chrono::TimeDelta;

use super::{Detector, hms, secs};
use crate::engine::findings::{Assertion, Key};
use crate::engine::state::Risk;
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "unverified_session",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotunverifiedsession",
    description: "a session at risk (it started while another session of the bot was live) of \
                  a bot whose logs cannot show events: whether it receives any cannot be told \
                  (a warning that says what would make it verifiable, never a page)",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 11;
/// Its turn on `on_tick`: after the silence loop (which leaves these sessions to it).
pub(super) const ON_TICK: u32 = 70;
/// Its turn on `on_session_ended`.
pub(super) const ON_SESSION_ENDED: u32 = 70;

/// Sessions of a bot that lived this long without one event line teach that its logs
/// cannot show events (the explanation says so).
const LEARNED_AFTER_SECS: f64 = 3600.0;

pub(super) struct UnverifiedSession;

impl Detector for UnverifiedSession {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.judge_unverified(now);
    }

    fn on_session_ended(
        engine: &mut Engine,
        id: u64,
        _bot: &str,
        _shard: u32,
        at: Timestamp,
        _was_silent: bool,
    ) {
        engine.close_unverified(id, at);
    }
}

impl Engine {
    fn judge_unverified(&mut self, now: Timestamp) {
        // Open ones whose session since showed an event, or became verifiable, close.
        let open: Vec<u64> = self
            .book
            .active_of(Kind::UnverifiedSession)
            .filter_map(|f| f.session)
            .collect();
        for id in open {
            let settled = self
                .sessions
                .get(&id)
                .is_none_or(|s| !s.is_open() || !s.at_risk() || self.events_visible(id));
            if settled {
                self.close_unverified(id, now);
            }
        }
        let wait = TimeDelta::seconds(self.cfg.silent_fallback_secs as i64);
        let due: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.is_open() && s.is_live(now) && now - s.ready_at >= wait)
            .filter(|s| s.at_risk())
            .map(|s| s.id)
            .filter(|&id| !self.events_visible(id))
            .collect();
        for id in due {
            self.flag_unverified(id, now);
        }
    }

    fn flag_unverified(&mut self, id: u64, now: Timestamp) {
        let s = &self.sessions[&id];
        let key = Key::session(Kind::UnverifiedSession, s);
        if self.book.is_active(&key) {
            return;
        }
        let why: Vec<String> = s
            .risks
            .iter()
            .filter_map(|r| match r {
                Risk::StartedDuringOverlap { other_pod } => Some(format!(
                    "pod {other_pod}'s session of the bot was still live"
                )),
                Risk::UnexplainedIdentify => {
                    Some("Discord counted a session start around then that no log explains".into())
                }
                _ => None,
            })
            .collect();
        let declared = self.bots.get(&s.bot).and_then(|b| b.declared_events) == Some(false);
        // The longest any session of the bot has run without an event line.
        let longest = self
            .sessions
            .values()
            .filter(|o| o.bot == s.bot && !o.received())
            .map(|o| (o.ended_at.unwrap_or(now) - o.ready_at).as_seconds_f64())
            .fold(0.0, f64::max);
        let basis = if declared {
            "the configuration says its logs do not show events".to_string()
        } else if longest >= LEARNED_AFTER_SECS {
            format!(
                "its sessions have run for up to {} without a single event line",
                secs(longest)
            )
        } else {
            "no line of it has shown a received event so far".to_string()
        };
        let explanation = format!(
            "Pod {} connected {} at {} while {}, but whether this session receives events \
             cannot be verified: {basis}. It is most likely healthy; to make it verifiable, \
             log a line per received event (or per handled message), enable the library's \
             DEBUG heartbeat lines that carry the sequence number (discord.py), or declare \
             `events_visible` for the bot once it does.",
            s.pod,
            s.bot,
            hms(s.ready_at),
            if why.is_empty() {
                "it was at risk".to_string()
            } else {
                why.join(" and ")
            },
        );
        let a = Assertion::new(key, s.ready_at, explanation, s.evidence.clone()).about(id);
        self.book.assert(a);
    }

    fn close_unverified(&mut self, id: u64, at: Timestamp) {
        if let Some(s) = self.sessions.get(&id) {
            let key = Key::session(Kind::UnverifiedSession, s);
            self.book.close(&key, at, self.cfg.max_closed_findings);
        }
    }
}
