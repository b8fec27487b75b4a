//! `duplicate_delivery`: two live sessions of one bot and shard both receive events (the bot
//! answers twice). Decided per event on the overlap path; expired by the tick.

use super::{Detector, hms};
use crate::engine::findings::{Assertion, Key};
use crate::engine::{
    Engine, HandoverEffect, HandoverOutcome, Kind, KindMeta, Legend, Severity, TimelineMark,
};
use crate::observation::{NANOS_PER_SEC, Timestamp, nanos_between};

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "duplicate_delivery",
    severity: Severity::Critical,
    runbook: "docs/troubleshooting.md#discordbotduplicatedelivery",
    description: "two live sessions of one bot both receive events in the same window (the bot \
                  answers twice)",
    handover: HandoverEffect::Marks(HandoverOutcome::DuplicateDelivery),
    timeline: TimelineMark::Span(Legend {
        mark: 'D',
        means: "duplicate delivery",
        rank: 2,
    }),
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 3;
/// Its turn on `on_tick`: after the silence loop, before `bot_offline`.
pub(super) const ON_TICK: u32 = 40;
/// Its turn on `on_dispatch`: after `silent_session`.
pub(super) const ON_DISPATCH: u32 = 20;

pub(super) struct DuplicateDelivery;

impl Detector for DuplicateDelivery {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.expire_duplicates(now);
    }

    fn on_dispatch(
        engine: &mut Engine,
        _id: u64,
        row: usize,
        others: &[usize],
        at: Timestamp,
        _was_silent: bool,
    ) {
        if !others.is_empty() {
            engine.evaluate_duplicate(row, others, at);
        }
    }
}

impl Engine {
    /// `duplicate_delivery`: two live sessions of one bot and shard both receive events.
    /// The session at row `row` received an event while those at rows `others` were live.
    fn evaluate_duplicate(&mut self, row: usize, others: &[usize], at: Timestamp) {
        let min = self.cfg.duplicate_min_events;
        let s = self.sessions.at(row);
        if s.overlap_events < min {
            return;
        }
        let window = i128::from(self.cfg.duplicate_window_secs) * NANOS_PER_SEC;
        for &o in others {
            let o = self.sessions.at(o);
            let recent = o
                .last_event_at
                .is_some_and(|l| nanos_between(at, l) <= window);
            if !recent || o.overlap_events < min {
                continue;
            }
            let (older, newer) = if o.ready_at <= s.ready_at {
                (o, s)
            } else {
                (s, o)
            };
            if newer.duplicate_open {
                // Already reported: every further event of the overlap would only re-assert it.
                return;
            }
            let newer_id = newer.id;
            let since = newer.ready_at.max(older.ready_at);
            let explanation = format!(
                "Pods {} and {} both receive {}'s events on shard {} ({} and {} events since {} \
                 when detected), so the bot handles each event twice and answers twice.",
                older.pod,
                newer.pod,
                s.bot,
                s.shard,
                older.overlap_events,
                newer.overlap_events,
                hms(since)
            );
            let key = Key::session(Kind::DuplicateDelivery, newer);
            let evidence = vec![
                older
                    .evidence
                    .last()
                    .cloned()
                    .expect("sessions carry evidence"),
                newer
                    .evidence
                    .last()
                    .cloned()
                    .expect("sessions carry evidence"),
            ];
            let a = Assertion::new(key, since, explanation, evidence).about(newer_id);
            self.book.assert(a);
            self.sessions
                .get_mut(&newer_id)
                .expect("exists")
                .duplicate_open = true;
            return;
        }
    }

    fn expire_duplicates(&mut self, now: Timestamp) {
        let window = 2 * i128::from(self.cfg.duplicate_window_secs) * NANOS_PER_SEC;
        let recent = |l: Timestamp| nanos_between(now, l) <= window;
        // Decided over borrowed state first (a tick of a long overlap closes nothing).
        let mut closes: Vec<(Key, Timestamp, Option<u64>)> = Vec::new();
        for f in self.book.active_of(Kind::DuplicateDelivery) {
            let newer = self
                .sessions
                .values()
                .filter(|s| s.bot == f.bot && f.subject.is_of(s))
                .max_by_key(|s| s.ready_at);
            let Some(newer) = newer else {
                closes.push((f.key(), now, None));
                continue;
            };
            let partner_active = self.sessions.values().any(|o| {
                o.id != newer.id
                    && o.bot == newer.bot
                    && o.shard == newer.shard
                    && o.is_live(now)
                    && o.last_event_at.is_some_and(recent)
            });
            let newer_active = newer.is_live(now) && newer.last_event_at.is_some_and(recent);
            if !(partner_active && newer_active) {
                let at = newer.ended_at.filter(|e| *e <= now).unwrap_or(now);
                closes.push((f.key(), at, Some(newer.id)));
            }
        }
        for (k, at, newer) in closes {
            self.book.close(&k, at, self.cfg.max_closed_findings);
            if let Some(id) = newer {
                self.sessions.get_mut(&id).expect("exists").duplicate_open = false;
            }
        }
    }
}
