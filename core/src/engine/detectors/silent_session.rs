//! `silent_session`: a live session at risk (it started next to another one, its predecessor
//! kept receiving, or an identify was unexplained) that gets no event for longer than the
//! bot's learned rate allows. Also runs the silence loop that `quiet_session` shares.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::{Detector, hms, secs};
use crate::engine::findings::{Assertion, Evidence, Key};
use crate::engine::signals::Signal;
use crate::engine::state::{PodKey, Risk};
use crate::engine::{
    Engine, HandoverEffect, HandoverOutcome, Kind, KindMeta, Legend, Severity, TimelineMark,
};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "silent_session",
    severity: Severity::Critical,
    runbook: "docs/troubleshooting.md#discordbotsilentsession",
    description: "a live session that gets no events while it is at risk: it started while \
                  another session of the bot was live, its predecessor kept receiving events \
                  after it connected, or a Discord-side identify was unexplained around its start",
    handover: HandoverEffect::SettlesNew(HandoverOutcome::NewSessionSilent),
    timeline: TimelineMark::Span(Legend {
        mark: '!',
        means: "silent",
        rank: 1,
    }),
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 1;
/// Its turn on `on_tick`: after `concurrent_sessions`, before `duplicate_delivery` expires.
pub(super) const ON_TICK: u32 = 30;
/// Its turn on `on_session_ended`: before `concurrent_sessions`.
pub(super) const ON_SESSION_ENDED: u32 = 10;
/// Its turn on `on_dispatch`: before `duplicate_delivery`.
pub(super) const ON_DISPATCH: u32 = 10;
/// Its turn on `on_gateway_signal`: a heartbeat sequence that advanced ends a silence.
pub(super) const ON_GATEWAY_SIGNAL: u32 = 71;

pub(super) struct SilentSession;

impl Detector for SilentSession {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.evaluate_silence(now);
    }

    fn on_session_ended(
        engine: &mut Engine,
        id: u64,
        _bot: &str,
        _shard: u32,
        at: Timestamp,
        was_silent: bool,
    ) {
        if was_silent {
            engine.end_silence(id, at);
        }
    }

    fn on_dispatch(
        engine: &mut Engine,
        id: u64,
        _row: usize,
        _others: &[usize],
        at: Timestamp,
        was_silent: bool,
    ) {
        if was_silent {
            engine.end_silence(id, at);
        }
    }

    fn on_gateway_signal(
        engine: &mut Engine,
        _key: &PodKey,
        _bot: &str,
        _shard: u32,
        at: Timestamp,
        signal: &Signal,
        _evidence: &Evidence,
    ) {
        if let Signal::SequenceAdvanced {
            id,
            was_silent: true,
        } = *signal
        {
            engine.end_silence(id, at);
        }
    }
}

impl Engine {
    /// `silent_session` (at risk) and `quiet_session` (no risk factor) of every open session.
    fn evaluate_silence(&mut self, now: Timestamp) {
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.is_open() && s.is_live(now))
            .map(|s| s.id)
            .collect();
        // The live sessions that log sequences, per bot and shard: each one's peers.
        let mut with_sequence: BTreeMap<(&str, u32), Vec<u64>> = BTreeMap::new();
        for s in self.sessions.values() {
            if s.sequence.is_some() && s.is_live(now) {
                with_sequence
                    .entry((s.bot.as_str(), s.shard))
                    .or_default()
                    .push(s.id);
            }
        }
        let with_sequence: BTreeMap<(String, u32), Vec<u64>> = with_sequence
            .into_iter()
            .map(|((b, sh), v)| ((b.to_string(), sh), v))
            .collect();
        for id in ids {
            let s = &self.sessions[&id];
            if s.sequence.is_some() {
                let key = (s.bot.clone(), s.shard);
                let peers = with_sequence.get(&key).map_or(&[][..], Vec::as_slice);
                self.judge_sequence(id, now, peers);
                continue;
            }
            let s = &self.sessions[&id];
            if s.at_risk() && !self.events_visible(id) {
                // Its logs cannot show events: `unverified_session`, never a page.
                continue;
            }
            let since = s.quiet_since();
            let silent_for = now - since;
            let Some(b) = self.bots.get(&s.bot) else {
                // No event ever seen for the bot: still judge at-risk sessions by the fallback.
                if s.at_risk()
                    && silent_for >= TimeDelta::seconds(self.cfg.silent_fallback_secs as i64)
                {
                    self.flag_silent(id, since, now, None);
                }
                continue;
            };
            if s.at_risk() {
                if silent_for >= b.rate.silent_threshold(&self.cfg) {
                    let interval = b.rate.expected_interval(&self.cfg);
                    self.flag_silent(id, since, now, interval);
                }
            } else if s.inferred && s.events == 0 {
                // Only a RESUME was seen: nothing to judge it by.
            } else if let Some(th) = b.rate.quiet_threshold(&self.cfg)
                && silent_for >= th
            {
                let interval = b.rate.expected_interval(&self.cfg).unwrap_or(0.0);
                self.flag_quiet(id, since, silent_for, interval);
            }
        }
    }

    /// A session whose heartbeats log its sequence: events at the gateway's own rate. It is
    /// silent when its sequence stood still, proven by its own heartbeats, for longer than the
    /// rate of a live peer's advancing sequence allows (`silent_false_alarm`), and never less
    /// than one heartbeat interval; with no peer sequence to compare, the bot's line rate (or
    /// the fallback) judges an at-risk session as for any other.
    fn judge_sequence(&mut self, id: u64, now: Timestamp, peers: &[u64]) {
        let s = &self.sessions[&id];
        let q = s.sequence.clone().expect("a sequence");
        let stalled = q.stalled_since();
        // Seconds over which its own heartbeats prove no event arrived.
        let proven = (q.last_at - stalled).as_seconds_f64();
        let mut peer: Option<(String, u64, u64, f64)> = None;
        for o in peers
            .iter()
            .filter(|&&o| o != id)
            .filter_map(|o| self.sessions.get(o))
        {
            let Some(oq) = &o.sequence else { continue };
            if oq.advanced_at.is_some_and(|a| a > stalled)
                && let Some(rate) = oq.rate()
                && peer.as_ref().is_none_or(|p| rate > p.3)
            {
                peer = Some((o.pod.clone(), oq.first, oq.last, rate));
            }
        }
        let interval = q.interval_secs.unwrap_or(0.0);
        let threshold = match &peer {
            Some((.., rate)) => {
                let tau = (1.0 / self.cfg.silent_false_alarm).ln() / rate;
                tau.max(interval)
                    .clamp(
                        self.cfg.silent_min_secs as f64,
                        self.cfg.silent_max_secs as f64,
                    )
                    .max(interval)
            }
            None => {
                let b = self.bots.get(&s.bot);
                let th = b.map_or(
                    TimeDelta::seconds(self.cfg.silent_fallback_secs as i64),
                    |b| b.rate.silent_threshold(&self.cfg),
                );
                th.as_seconds_f64().max(interval)
            }
        };
        if let Some((pod, from, to, rate)) = &peer {
            let every_ms = (1000.0 / rate) as u64;
            let s = self.sessions.get_mut(&id).expect("exists");
            match s.risks.iter_mut().find(
                |r| matches!(r, Risk::PeerSequenceAdvancing { other_pod, .. } if other_pod == pod),
            ) {
                Some(Risk::PeerSequenceAdvancing {
                    from: f,
                    to: t,
                    every_ms: e,
                    ..
                }) => {
                    (*f, *t, *e) = (*from, *to, every_ms);
                }
                _ => s.risks.push(Risk::PeerSequenceAdvancing {
                    other_pod: pod.clone(),
                    from: *from,
                    to: *to,
                    every_ms,
                }),
            }
        }
        let s = &self.sessions[&id];
        // The peer's advance is current evidence; the other risks last until it received.
        let risky = peer.is_some()
            || (!s.received()
                && s.risks.iter().any(|r| {
                    matches!(
                        r,
                        Risk::StartedDuringOverlap { .. } | Risk::UnexplainedIdentify
                    )
                }));
        if risky && proven > 0.0 && proven >= threshold {
            // The peer's rate, or the one it showed while it was live.
            let per_event = peer.map(|p| 1.0 / p.3).or_else(|| {
                s.risks.iter().find_map(|r| match r {
                    Risk::PeerSequenceAdvancing { every_ms, .. } => Some(*every_ms as f64 / 1000.0),
                    _ => None,
                })
            });
            self.flag_silent(id, stalled, now, per_event);
        }
    }

    /// Opens (or refreshes) session `id`'s `silent_session`, silent since `since`.
    fn flag_silent(&mut self, id: u64, since: Timestamp, now: Timestamp, interval: Option<f64>) {
        let p = self.cfg.silent_false_alarm;
        let s = self.sessions.get_mut(&id).expect("exists");
        s.silent_since = Some(since);
        let s = &self.sessions[&id];
        let why: Vec<String> = s
            .risks
            .iter()
            .map(|r| match r {
                Risk::StartedDuringOverlap { other_pod } => {
                    format!("pod {other_pod}'s session was still live when it connected")
                }
                Risk::PredecessorActive {
                    other_pod, events, ..
                } => {
                    format!("pod {other_pod} kept receiving the bot's events ({events} since then)")
                }
                Risk::UnexplainedIdentify => {
                    "Discord counted a session start around then that no log explains".into()
                }
                Risk::PeerSequenceAdvancing {
                    other_pod,
                    from,
                    to,
                    ..
                } => format!(
                    "pod {other_pod}'s heartbeat sequence kept advancing ({from} to {to}) while \
                     this session's stood at {}",
                    s.sequence.as_ref().map_or(0, |q| q.last)
                ),
            })
            .collect();
        let rate = match interval {
            Some(i) => format!(
                "at the bot's usual one event every {}, a healthy session stays this silent with probability under {p}",
                secs(i)
            ),
            None => {
                "the bot's event rate is not learned yet, so the fallback threshold applied".into()
            }
        };
        let explanation = format!(
            "Pod {} logged a gateway connection for {} at {} but has received no event for {} \
             while {}; {rate}: it is connected but deaf.",
            s.pod,
            s.bot,
            hms(s.ready_at),
            secs((now - since).as_seconds_f64()),
            why.join(" and "),
        );
        let key = Key::session(Kind::SilentSession, s);
        let a = Assertion::new(key, since, explanation, s.evidence.clone()).about(id);
        self.book.assert(a);
    }

    /// The session at `row` received an event, or session `id` ended: its silence is over.
    fn end_silence(&mut self, id: u64, at: Timestamp) {
        let s = &self.sessions[&id];
        for kind in [Kind::SilentSession, Kind::QuietSession] {
            let k = Key::session(kind, s);
            self.book.close(&k, at, self.cfg.max_closed_findings);
        }
    }
}
