//! `start_limit_low`: few session starts left, or burning them fast enough to run out before
//! the window resets.

use super::{Detector, secs};
use crate::engine::findings::{Assertion, Evidence, Key};
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "start_limit_low",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotstartlimitlow",
    description: "remaining session starts below a threshold, or falling fast enough to run \
                  out before reset_after",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 6;
/// Its turn on `on_start_limit`: the only one.
pub(super) const ON_START_LIMIT: u32 = 10;

pub(super) struct StartLimitLow;

impl Detector for StartLimitLow {
    fn on_start_limit(engine: &mut Engine, bot: &str, at: Timestamp) {
        engine.evaluate_start_limit(bot, at);
    }
}

impl Engine {
    /// `start_limit_low`: few session starts left, or burning them fast enough to run out.
    fn evaluate_start_limit(&mut self, bot: &str, at: Timestamp) {
        let fraction = self.cfg.start_limit_low_fraction;
        let max_closed = self.cfg.max_closed_findings;
        let b = self.bot_state(bot);
        let Some((_, sl)) = b.last_sample.clone() else {
            return;
        };
        let reset_secs = sl.reset_after_ms as f64 / 1000.0;
        let burn = match (b.burn.front(), b.burn.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                (c1 - c0) as f64 / (*t1 - *t0).as_seconds_f64()
            }
            _ => 0.0,
        };
        let low = (sl.remaining as f64) < sl.total as f64 * fraction;
        let runs_out = burn > 0.0 && burn * reset_secs > sl.remaining as f64;
        let key = Key::bot(Kind::StartLimitLow, bot);
        if !(low || runs_out) {
            self.book.close(&key, at, max_closed);
            return;
        }
        // None left is worse than few left.
        let severity = if sl.remaining == 0 {
            Severity::Critical
        } else {
            Kind::StartLimitLow.meta().severity
        };
        let why = if runs_out && !low {
            format!(
                "at the last hour's rate of {:.1} per hour it runs out before the reset in {}",
                burn * 3600.0,
                secs(reset_secs)
            )
        } else {
            format!("the window resets in {}", secs(reset_secs))
        };
        let explanation = format!(
            "{bot} has {} of {} session starts left; {why}. When none are left Discord \
             refuses new sessions, and exhausting them resets the token.",
            sl.remaining, sl.total
        );
        let evidence = vec![Evidence {
            at,
            source: format!("discord:{bot}").into(),
            text: format!(
                "session_start_limit remaining={} total={} reset_after={}ms",
                sl.remaining, sl.total, sl.reset_after_ms
            ),
        }];
        self.book
            .assert(Assertion::new(key, at, explanation, evidence).severity(severity));
    }
}
