//! `session_at_risk`: the early warning of the seed incident. A session that connected while
//! another session of the bot and shard was live, and has received no event since, when that
//! peer kept receiving the bot's events after it connected, or when the peer's pod ended
//! without a clean close (Discord keeps that session and may keep routing to it). Opened
//! `SETTLE_SECS` after the sign, so within a minute of the connect whatever the bot's event
//! rate; closed when the session receives an event, ends, or `silent_session` takes over.

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;

use super::{Detector, hms};
use crate::engine::findings::{Assertion, Key};
use crate::engine::state::{EndReason, Risk};
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "session_at_risk",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotsessionatrisk",
    description: "a session that connected during an overlap and has received no event while \
                  its peer kept receiving the bot's events or ended without a clean close; a \
                  silent_session verdict follows if no event arrives",
    // Provisional: the handover is decided by what follows (its first event, or the silence).
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 10;
/// Its turn on `on_tick`: after `silent_session` (30), so that a silence verdict reached on
/// the same tick takes over instead of this warning opening.
pub(super) const ON_TICK: u32 = 35;
/// Its turn on `on_dispatch`: after `duplicate_delivery`; only notes and closes.
pub(super) const ON_DISPATCH: u32 = 25;
/// Its turn on `on_session_ended`: after `concurrent_sessions`; only closes.
pub(super) const ON_SESSION_ENDED: u32 = 25;

/// How long the sign must stand before the warning opens: a dispatch reaches both sessions'
/// log streams with some lag between them (shipping, buffering), and a trailing close line can
/// follow a pod's exit; 15 s absorbs both and still warns within a minute of the connect.
const SETTLE_SECS: i64 = 15;

pub(super) struct SessionAtRisk;

/// What the per-event path needs without building a finding key: per session (engine id)
/// that has not received an event yet, when a peer that was live before it first received an
/// event after it connected; and the sessions whose warning is open.
#[derive(Debug, Default)]
pub(super) struct State {
    peer_event: HashMap<u64, Timestamp>,
    open: HashSet<u64>,
}

impl Detector for SessionAtRisk {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.evaluate_at_risk(now);
    }

    fn on_dispatch(
        engine: &mut Engine,
        id: u64,
        row: usize,
        others: &[usize],
        at: Timestamp,
        _was_silent: bool,
    ) {
        // The receiving session proved it is connected: no early warning for it. (The common
        // case, no overlap and nothing open, costs two emptiness checks.)
        let st = &mut engine.detectors.session_at_risk;
        if !st.peer_event.is_empty() {
            st.peer_event.remove(&id);
        }
        if !st.open.is_empty() && st.open.contains(&id) {
            engine.close_at_risk(id, at);
        }
        if others.is_empty() {
            return;
        }
        let ready = engine.sessions.at(row).ready_at;
        for &o in others {
            let s = engine.sessions.at(o);
            // Only sessions that connected after the receiving one and have had nothing: an
            // older session going quiet while the newer receives is a handover that worked.
            if s.events == 0 && s.ready_at > ready && s.ready_at <= at {
                let other = s.id;
                engine
                    .detectors
                    .session_at_risk
                    .peer_event
                    .entry(other)
                    .or_insert(at);
            }
        }
    }

    fn on_session_ended(
        engine: &mut Engine,
        id: u64,
        _bot: &str,
        _shard: u32,
        at: Timestamp,
        _was_silent: bool,
    ) {
        engine.detectors.session_at_risk.peer_event.remove(&id);
        if engine.detectors.session_at_risk.open.contains(&id) {
            engine.close_at_risk(id, at);
        }
    }
}

/// Why a session is at risk, and since when.
enum Sign {
    /// The peer on `pod` received `events` events after this session connected, the first at
    /// `first`.
    PeerReceiving {
        pod: String,
        events: u64,
        first: Timestamp,
    },
    /// The peer on `pod` ended at `at` without a clean close (`code`: its exit code).
    PeerUnclean {
        pod: String,
        at: Timestamp,
        code: Option<i32>,
    },
}

impl Sign {
    fn since(&self) -> Timestamp {
        match self {
            Sign::PeerReceiving { first, .. } => *first,
            Sign::PeerUnclean { at, .. } => *at,
        }
    }
}

impl Engine {
    /// Opens the warning for every open, live, event-less session whose sign stood for
    /// `SETTLE_SECS`, unless `silent_session` already holds it (then closes it).
    fn evaluate_at_risk(&mut self, now: Timestamp) {
        let settle = TimeDelta::seconds(SETTLE_SECS);
        let mut open = Vec::new();
        for s in self.sessions.values() {
            if !s.is_open() || !s.is_live(now) || s.events > 0 || s.inferred {
                continue;
            }
            let overlap_pod = s.risks.iter().find_map(|r| match r {
                Risk::StartedDuringOverlap { other_pod } => Some(other_pod.as_str()),
                _ => None,
            });
            let receiving = self
                .detectors
                .session_at_risk
                .peer_event
                .get(&s.id)
                .and_then(|first| {
                    s.risks.iter().find_map(|r| match r {
                        Risk::PredecessorActive {
                            other_pod, events, ..
                        } => Some(Sign::PeerReceiving {
                            pod: other_pod.clone(),
                            events: *events,
                            first: *first,
                        }),
                        _ => None,
                    })
                });
            // A peer that was live when this session connected and whose pod then ended (or
            // had ended, its session lingering) without a clean close.
            let unclean = overlap_pod.and_then(|_| {
                self.sessions
                    .values()
                    .filter(|p| {
                        p.id != s.id
                            && p.bot == s.bot
                            && p.shard == s.shard
                            && p.pod != s.pod
                            && p.is_live(s.ready_at)
                    })
                    .find_map(|p| match (&p.end, p.ended_at) {
                        (Some(EndReason::PodEnded { clean: false, code }), Some(end)) => {
                            Some(Sign::PeerUnclean {
                                pod: p.pod.clone(),
                                at: end.max(s.ready_at),
                                code: *code,
                            })
                        }
                        _ => None,
                    })
            });
            let sign = [receiving, unclean]
                .into_iter()
                .flatten()
                .min_by_key(Sign::since);
            if let Some(sign) = sign.filter(|g| now - g.since() >= settle) {
                open.push((s.id, sign));
            }
        }
        for (id, sign) in open {
            let s = &self.sessions[&id];
            if self.book.is_active(&Key::session(Kind::SilentSession, s))
                || self
                    .book
                    .is_active(&Key::session(Kind::UnverifiedSession, s))
            {
                // The verdict took over (or, for a bot whose logs cannot show events, the
                // statement that none is possible): the warning has served.
                self.close_at_risk(id, now);
                continue;
            }
            let what = match &sign {
                Sign::PeerReceiving { pod, events, .. } => format!(
                    "pod {pod}'s session kept receiving the bot's events ({events} since then)"
                ),
                Sign::PeerUnclean { pod, at, code } => format!(
                    "pod {pod} ended at {} ({}) without closing its session, which Discord \
                     keeps for up to {} s",
                    hms(*at),
                    code.map_or("no exit code".to_string(), |c| format!("exit code {c}")),
                    self.cfg.lingering_secs
                ),
            };
            let explanation = format!(
                "Pod {} connected for {} at {} while another session of the bot held shard {}; \
                 {what}, and this session has received no event yet. If events do not arrive, \
                 it will be declared silent (silent_session).",
                s.pod,
                s.bot,
                hms(s.ready_at),
                s.shard,
            );
            let evidence = s.evidence.iter().take(3).cloned().collect();
            let key = Key::session(Kind::SessionAtRisk, s);
            let a = Assertion::new(key, sign.since(), explanation, evidence).about(id);
            self.book.assert(a);
            self.detectors.session_at_risk.open.insert(id);
        }
        // Session gone from view (forgotten, no longer live): nothing left to warn about.
        for k in self.book.active_keys(Kind::SessionAtRisk) {
            let still = self
                .sessions
                .values()
                .any(|s| s.bot == k.bot && k.subject.is_of(s) && s.is_open() && s.is_live(now));
            if !still {
                if let Some(id) = self.book.get(&k).and_then(|f| f.session) {
                    self.detectors.session_at_risk.open.remove(&id);
                }
                self.book.close(&k, now, self.cfg.max_closed_findings);
            }
        }
    }

    /// Session `id` received an event, ended or was found silent: its warning is over.
    fn close_at_risk(&mut self, id: u64, at: Timestamp) {
        self.detectors.session_at_risk.open.remove(&id);
        if let Some(s) = self.sessions.get(&id) {
            let k = Key::session(Kind::SessionAtRisk, s);
            self.book.close(&k, at, self.cfg.max_closed_findings);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Kind;
    use crate::engine::tests::{NEW, OLD, Sim, incident};
    use crate::observation::{InstanceChange, SessionEvent};

    /// The old pod of a rollout: ready at 3, one event every 20 s until `until`.
    fn before_rollout(until: f64) -> Sim {
        let mut sim = Sim::new();
        sim.start_pod(0.0, OLD, "AgentBroker");
        sim.traffic(&[OLD], 10.0, until, 20.0);
        sim
    }

    fn at_risk(sim: &Sim) -> Vec<crate::engine::Finding> {
        sim.findings()
            .into_iter()
            .filter(|f| f.kind == Kind::SessionAtRisk)
            .collect()
    }

    #[test]
    fn the_seed_warns_within_a_minute_then_the_silence_takes_over() {
        let sim = incident();
        let f = at_risk(&sim);
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(f.subject.pod_label(), NEW);
        // The new session is ready at 3603; the old one receives at 3606: the sign.
        assert_eq!(f.since, sim.at(3606.0));
        assert!(f.explanation.contains(OLD) && f.explanation.contains("silent_session"));
        assert!(f.until.is_some(), "the verdict took over");

        // Tick the same incident second by second: the warning is open from 15 s after the
        // sign (within a minute of the connect) until the second silent_session opens.
        let mut sim = before_rollout(3600.0);
        sim.start_pod(3600.0, NEW, "AgentBroker");
        sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
        sim.traffic(&[OLD], 3606.0, 3615.0, 3.0);
        sim.log(3615.0, OLD, None, SessionEvent::ShuttingDown);
        sim.log(3615.6, OLD, None, SessionEvent::Stopped);
        let active = |sim: &Sim, kind: Kind| sim.engine.active_findings().any(|f| f.kind == kind);
        let mut opened = None;
        let mut verdict = None;
        for t in 3604..4200 {
            sim.tick_to(t as f64);
            if opened.is_none() && active(&sim, Kind::SessionAtRisk) {
                opened = Some(t);
            }
            if active(&sim, Kind::SilentSession) {
                verdict = Some(t);
                break;
            }
        }
        let (opened, verdict) = (opened.unwrap(), verdict.unwrap());
        assert_eq!(opened, 3606 + 15);
        assert!(opened - 3603 <= 60);
        assert!(verdict > opened + 60, "the verdict comes later: {verdict}");
        assert!(!active(&sim, Kind::SessionAtRisk), "both open at once");
        assert_eq!(at_risk(&sim)[0].until, Some(sim.at(verdict as f64)));
    }

    #[test]
    fn the_warning_is_open_between_the_sign_and_the_verdict() {
        let mut sim = before_rollout(3600.0);
        sim.start_pod(3600.0, NEW, "AgentBroker");
        sim.traffic(&[OLD], 3606.0, 3620.0, 3.0);
        sim.tick_to(3620.0);
        assert!(at_risk(&sim).is_empty(), "opened before the sign settled");
        sim.traffic(&[OLD], 3621.0, 3630.0, 3.0);
        sim.tick_to(3630.0);
        let open: Vec<_> = sim
            .engine
            .active_findings()
            .filter(|f| f.kind == Kind::SessionAtRisk)
            .cloned()
            .collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].since, sim.at(3606.0));
        assert!(
            !sim.kinds_for(NEW).contains(&Kind::SilentSession),
            "the verdict is not reached yet: only the warning"
        );
    }

    #[test]
    fn a_sigkilled_peer_warns_even_at_one_event_every_few_minutes() {
        // A bot with one event every 4 minutes: the old pod receives nothing after the
        // connect, but it is killed after its grace period without a gateway close.
        let mut sim = Sim::new();
        sim.start_pod(0.0, OLD, "AgentBroker");
        sim.traffic(&[OLD], 10.0, 7200.0, 240.0);
        sim.start_pod(7200.0, NEW, "AgentBroker");
        sim.pod(7205.0, OLD, InstanceChange::Terminating { grace: Some(30) });
        sim.pod(
            7235.0,
            OLD,
            InstanceChange::Exited {
                code: Some(137),
                reason: None,
            },
        );
        sim.tick_to(7203.0 + 60.0);
        let f = at_risk(&sim);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].since, sim.at(7235.0));
        assert!(f[0].until.is_none());
        assert!(
            f[0].explanation.contains("exit code 137"),
            "{}",
            f[0].explanation
        );
        // An event for the new session: it is connected after all, the warning closes.
        sim.log(7270.0, NEW, None, SessionEvent::Dispatch { kind: None });
        sim.tick_to(7300.0);
        let f = at_risk(&sim);
        assert_eq!(f[0].until, Some(sim.at(7270.0)));
        assert!(!sim.kinds_for(NEW).contains(&Kind::SilentSession));
    }

    #[test]
    fn a_clean_handover_never_warns() {
        // The old pod closes within seconds and receives nothing after the new connect; the
        // new one then gets the bot's events (after a while: its rate is one per 20 s).
        let mut sim = before_rollout(3600.0);
        sim.start_pod(3600.0, NEW, "AgentBroker");
        sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
        sim.log(3605.5, OLD, None, SessionEvent::Stopped);
        sim.pod(
            3606.0,
            OLD,
            InstanceChange::Exited {
                code: Some(0),
                reason: None,
            },
        );
        sim.traffic(&[NEW], 3630.0, 5000.0, 20.0);
        sim.tick_to(5000.0);
        assert!(at_risk(&sim).is_empty(), "{:#?}", sim.findings());
    }

    #[test]
    fn a_scale_zero_then_one_and_a_quiet_night_never_warn() {
        let mut sim = before_rollout(3600.0);
        sim.pod(3600.0, OLD, InstanceChange::Terminating { grace: Some(30) });
        sim.log(3600.8, OLD, None, SessionEvent::Stopped);
        sim.pod(
            3601.0,
            OLD,
            InstanceChange::Exited {
                code: Some(0),
                reason: None,
            },
        );
        sim.start_pod(3640.0, NEW, "AgentBroker");
        sim.tick_to(3640.0 + 1200.0);
        assert!(at_risk(&sim).is_empty(), "{:#?}", sim.findings());

        let mut sim = before_rollout(3600.0);
        sim.traffic(&[OLD], 3600.0, 30_000.0, 1800.0);
        sim.tick_to(30_000.0);
        assert!(at_risk(&sim).is_empty(), "{:#?}", sim.findings());
    }

    #[test]
    fn duplicate_delivery_is_not_at_risk() {
        // Both sessions receive every event: the new one is connected.
        let mut sim = before_rollout(3600.0);
        sim.start_pod(3600.0, NEW, "AgentBroker");
        sim.traffic(&[OLD, NEW], 3610.0, 3900.0, 12.0);
        sim.tick_to(3900.0);
        assert!(at_risk(&sim).is_empty(), "{:#?}", sim.findings());
    }
}
