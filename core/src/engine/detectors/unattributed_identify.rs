//! `unattributed_identify`: Discord counted more session starts than the logs show, once the
//! slack after each counted interval has passed.

use chrono::TimeDelta;

use super::{Detector, hms};
use crate::engine::findings::{Assertion, Evidence, Key};
use crate::engine::state::Risk;
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "unattributed_identify",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotunattributedidentify",
    description: "Discord's remaining session starts fell by more than the identifies visible \
                  in logs",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 5;
/// Its turn on `on_tick`: last.
pub(super) const ON_TICK: u32 = 60;

pub(super) struct UnattributedIdentify;

impl Detector for UnattributedIdentify {
    fn on_tick(engine: &mut Engine, now: Timestamp, finishing: bool) {
        engine.settle_identifies(now, finishing);
    }
}

impl Engine {
    /// `unattributed_identify`: match Discord's counted drops with the identifies in the logs,
    /// once the slack after each interval has passed.
    fn settle_identifies(&mut self, now: Timestamp, finishing: bool) {
        let skew = TimeDelta::seconds(self.cfg.identify_skew_secs as i64);
        let bots: Vec<String> = self.bots.keys().cloned().collect();
        // Identifies of pods whose bot is only guessed from their workload name may be any
        // bot's (a crash loop before the first READY names it): they can explain any bot's
        // count. Over-counting can only hide an unattributed identify, never invent one.
        let guessed: Vec<String> = bots
            .iter()
            .filter(|b| self.is_guessed_bot(b))
            .cloned()
            .collect();
        for bot in bots {
            loop {
                let b = self.bots.get_mut(&bot).expect("exists");
                let Some(p) = b.pending.front().cloned() else {
                    break;
                };
                if !finishing && now < p.to + skew {
                    break;
                }
                b.pending.pop_front();
                let mut matched = 0u32;
                for li in b.log_identifies.iter_mut() {
                    if matched == p.count {
                        break;
                    }
                    if !li.matched && li.at > p.from - skew && li.at <= p.to + skew {
                        li.matched = true;
                        matched += 1;
                    }
                }
                for g in guessed.iter().filter(|g| **g != bot) {
                    if matched == p.count {
                        break;
                    }
                    let gb = self.bots.get_mut(g).expect("exists");
                    for li in gb.log_identifies.iter_mut() {
                        if matched == p.count {
                            break;
                        }
                        if !li.matched && li.at > p.from - skew && li.at <= p.to + skew {
                            li.matched = true;
                            matched += 1;
                        }
                    }
                }
                let b = self.bots.get_mut(&bot).expect("exists");
                let unexplained = p.count - matched;
                let key = Key::bot(Kind::UnattributedIdentify, &bot);
                if unexplained == 0 {
                    self.book.close(&key, p.to, self.cfg.max_closed_findings);
                    continue;
                }
                b.unattributed += u64::from(unexplained);
                for s in self.sessions.values_mut() {
                    if s.bot == bot
                        && s.ready_at > p.from - skew
                        && s.ready_at <= p.to + skew
                        && !s.risks.contains(&Risk::UnexplainedIdentify)
                    {
                        s.risks.push(Risk::UnexplainedIdentify);
                    }
                }
                let explanation = format!(
                    "Discord counted {} new session(s) of {bot} between {} and {} but the logs \
                     show {matched}: {unexplained} session(s) were started by something this \
                     exporter does not see (another pod, cluster or machine using the token).",
                    p.count,
                    hms(p.from),
                    hms(p.to)
                );
                let evidence = vec![Evidence {
                    at: p.to,
                    source: format!("discord:{bot}").into(),
                    text: format!(
                        "session_start_limit.remaining fell by {} between {} and {}",
                        p.count, p.from, p.to
                    ),
                }];
                self.book
                    .assert(Assertion::new(key, p.from, explanation, evidence));
            }
            let b = self.bots.get_mut(&bot).expect("exists");
            // Identifies older than any interval still to come can never match. A guessed
            // bot's may still explain another bot's interval (up to a long poll interval).
            let horizon = if guessed.contains(&bot) {
                now - TimeDelta::hours(1)
            } else {
                b.pending.front().map_or(now, |p| p.from) - skew * 2
            };
            while b.log_identifies.front().is_some_and(|li| li.at < horizon) {
                b.log_identifies.pop_front();
            }
        }
    }
}
