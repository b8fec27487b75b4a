//! `quiet_session`: a live session with no risk factor, silent for far longer than the bot's
//! learned rate makes likely (a warning: quiet nights exist). Judged in the silence loop of
//! `silent_session`.

use chrono::TimeDelta;

use super::secs;
use crate::engine::findings::{Assertion, Key};
use crate::engine::{
    Engine, HandoverEffect, HandoverOutcome, Kind, KindMeta, Legend, Severity, TimelineMark,
};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "quiet_session",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotquietsession",
    description: "a live session silent for far longer than the bot's own learned event rate \
                  makes likely, with no risk factor (a warning, never a page: quiet nights exist)",
    handover: HandoverEffect::SettlesNew(HandoverOutcome::NewSessionSilent),
    timeline: TimelineMark::Span(Legend {
        mark: '?',
        means: "quiet",
        rank: 3,
    }),
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 2;

// No `Detector` of its own: `silent_session`'s silence loop judges both kinds in one pass (a
// session is one or the other), and its hooks close both.

impl Engine {
    /// Opens (or refreshes) session `id`'s `quiet_session`: no event since `since`
    /// (`silent_for`), against the bot's usual `interval` seconds between events.
    pub(super) fn flag_quiet(
        &mut self,
        id: u64,
        since: Timestamp,
        silent_for: TimeDelta,
        interval: f64,
    ) {
        let s = self.sessions.get_mut(&id).expect("exists");
        s.silent_since = Some(since);
        let s = &self.sessions[&id];
        let explanation = format!(
            "Pod {}'s session of {} has received no event for {}, far longer than \
             the bot's usual one event every {}; no rollout or overlap explains it, \
             so it may be a quiet period or a deaf session.",
            s.pod,
            s.bot,
            secs(silent_for.as_seconds_f64()),
            secs(interval)
        );
        let key = Key::session(Kind::QuietSession, s);
        let evidence = s.evidence.iter().take(2).cloned().collect();
        let a = Assertion::new(key, since, explanation, evidence).about(id);
        self.book.assert(a);
    }
}
