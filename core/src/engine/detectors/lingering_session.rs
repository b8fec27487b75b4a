//! `lingering_session`: a pod ended without a clean gateway close, so Discord keeps its
//! session alive for `lingering_secs` more. Opened when the pod ends, closed when the window
//! passes.

use super::Detector;
use crate::engine::findings::{Assertion, Evidence, Key};
use crate::engine::{
    Engine, HandoverEffect, HandoverOutcome, Kind, KindMeta, Severity, TimelineMark,
};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "lingering_session",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotlingeringsession",
    description: "a pod ended without a clean gateway close; Discord keeps that session for \
                  minutes",
    handover: HandoverEffect::Marks(HandoverOutcome::OldSessionLingering),
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 4;
/// Its turn on `on_tick`: first: the others judge liveness after the windows that passed.
pub(super) const ON_TICK: u32 = 10;
/// Its turn on `on_pod_session_ended`: the only one.
pub(super) const ON_POD_SESSION_ENDED: u32 = 10;

pub(super) struct LingeringSession;

impl Detector for LingeringSession {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.expire_lingering(now);
    }

    fn on_pod_session_ended(
        engine: &mut Engine,
        id: u64,
        at: Timestamp,
        code: Option<i32>,
        clean: bool,
        was_live: bool,
        source: &str,
    ) {
        if !clean && was_live {
            engine.assert_lingering(id, at, code, source);
        }
    }
}

impl Engine {
    /// Session `id` was live when its pod ended (`code`) without a clean close.
    fn assert_lingering(&mut self, id: u64, at: Timestamp, code: Option<i32>, source: &str) {
        let s = &self.sessions[&id];
        let code_text = match code {
            Some(c) => format!("exit code {c}{}", signal_name(c)),
            None => "no exit code".to_string(),
        };
        let evidence = vec![Evidence {
            at,
            source: source.into(),
            text: format!("pod {} container exited ({code_text})", s.pod),
        }];
        let explanation = format!(
            "Pod {} ended ({code_text}) without closing its gateway session, so Discord \
             keeps that session of {} alive for up to {} s and may keep routing events to it.",
            s.pod, s.bot, self.cfg.lingering_secs
        );
        let key = Key::session(Kind::LingeringSession, s);
        self.book
            .assert(Assertion::new(key, at, explanation, evidence).about(id));
    }

    /// Closes the findings whose session stopped being live (the window passed).
    fn expire_lingering(&mut self, now: Timestamp) {
        for k in self.book.active_keys(Kind::LingeringSession) {
            let until = self
                .sessions
                .values()
                .filter(|s| s.bot == k.bot && k.subject.is_of(s))
                .filter_map(|s| s.live_until)
                .max();
            match until {
                Some(u) if u > now => {}
                Some(u) => self.book.close(&k, u, self.cfg.max_closed_findings),
                None => self.book.close(&k, now, self.cfg.max_closed_findings),
            }
        }
    }
}

/// The signal an exit code means, for the explanation.
fn signal_name(code: i32) -> &'static str {
    match code {
        137 => ", SIGKILL",
        143 => ", SIGTERM not handled",
        _ => "",
    }
}
