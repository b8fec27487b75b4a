//! `remediation`: what the opt-in remediation actor did about a deaf session (scaled its
//! workload to 0 and back, would have in dry-run, or did not and why). The actor reports each
//! step as an observation; this kind turns it into a finding, so the API, the replay report,
//! metrics and alerts show actions like every other conclusion.

use std::collections::BTreeMap;

use super::Detector;
use crate::engine::findings::{Assertion, Evidence, Key, Subject};
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::{Remediation as Report, RemediationOutcome, Timestamp};

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "remediation",
    severity: Severity::Info,
    runbook: "docs/troubleshooting.md#discordbotremediation",
    description: "the exporter scaled a deaf bot's workload to 0 and back (or would have, in \
                  dry-run), or a guard or a failure kept it from doing so",
    handover: HandoverEffect::None,
    // About a workload, not a pod's session row: the findings list tells it.
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 20;
/// Its turn on `on_tick`: last: it reads what the other kinds concluded.
pub(super) const ON_TICK: u32 = 90;
/// Its turn on `on_remediation`: the only one.
pub(super) const ON_REMEDIATION: u32 = 90;

pub(super) struct Remediation;

/// Reports per (bot, outcome), and when each bot's last restore finished.
#[derive(Debug, Default)]
pub(super) struct State {
    totals: BTreeMap<(String, RemediationOutcome), u64>,
    /// (bot, namespace) -> the outcome of the open finding, and when its action began (the
    /// scale-down: every session that starts after it belongs to the restored workload).
    open: BTreeMap<(String, String), (RemediationOutcome, Timestamp)>,
}

impl Detector for Remediation {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.settle_remediations(now);
    }

    fn on_remediation(engine: &mut Engine, at: Timestamp, r: &Report, source: &str) {
        engine.record_remediation(at, r, source);
    }
}

/// A finding's severity for an outcome: a failure pages; a guard that blocks a deaf bot
/// from healing (the hourly limit, the identify budget, RBAC) warns; the rest informs.
fn severity(r: &Report) -> Severity {
    match r.outcome {
        RemediationOutcome::Failed => Severity::Critical,
        RemediationOutcome::Skipped
            if matches!(
                r.reason.as_str(),
                "rate_limit" | "backoff" | "identify_budget" | "forbidden"
            ) =>
        {
            Severity::Warning
        }
        _ => Severity::Info,
    }
}

impl Engine {
    /// Remediation reports per (bot, outcome) so far (never decreases).
    pub fn remediation_totals(&self) -> &BTreeMap<(String, RemediationOutcome), u64> {
        &self.detectors.remediation.totals
    }

    /// One report of the actor: opens the action's finding, or moves it to its next step. A
    /// report of another outcome class than the open one (a skip after a dry run, a failure
    /// after a skip) closes the old finding and opens its own, so each action keeps one.
    fn record_remediation(&mut self, at: Timestamp, r: &Report, source: &str) {
        *self
            .detectors
            .remediation
            .totals
            .entry((r.bot.clone(), r.outcome))
            .or_default() += 1;
        let key = Key {
            kind: Kind::Remediation,
            bot: r.bot.clone(),
            subject: Subject::bot_in(&r.namespace),
        };
        let slot = (r.bot.clone(), r.namespace.clone());
        let same_action = |prev: RemediationOutcome| {
            prev == r.outcome
                || (prev == RemediationOutcome::Started
                    && matches!(
                        r.outcome,
                        RemediationOutcome::Done | RemediationOutcome::Failed
                    ))
        };
        if let Some((prev, _)) = self.detectors.remediation.open.get(&slot)
            && !same_action(*prev)
        {
            self.book.close(&key, at, self.cfg.max_closed_findings);
        }
        let evidence = vec![Evidence {
            at,
            source: source.into(),
            text: format!(
                "remediation {} of {} in {} ({}): {}",
                r.outcome.as_str(),
                r.workload,
                r.namespace,
                r.reason,
                r.detail
            ),
        }];
        let a = Assertion::new(key, at, r.detail.clone(), evidence).severity(severity(r));
        self.book.assert(a);
        let began = match self.detectors.remediation.open.get(&slot) {
            Some((RemediationOutcome::Started, began)) => *began,
            _ => at,
        };
        self.detectors
            .remediation
            .open
            .insert(slot, (r.outcome, began));
        // The next session may already be up when the restore's report arrives.
        // (At the engine's time: the report may carry an earlier one than that session's.)
        if r.outcome == RemediationOutcome::Done {
            self.settle_remediations(self.now.unwrap_or(at).max(at));
        }
    }

    /// Closes what is over: a restore once the bot's next session is the only live one of its
    /// shard; anything else once no `silent_session` of the bot in that namespace is open.
    fn settle_remediations(&mut self, now: Timestamp) {
        if self.detectors.remediation.open.is_empty() {
            return;
        }
        let open: Vec<_> = self
            .detectors
            .remediation
            .open
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for ((bot, ns), (outcome, began)) in open {
            let silent = self
                .book
                .active_of(Kind::SilentSession)
                .any(|f| f.bot == bot && f.subject.namespace_label() == ns);
            let over = match outcome {
                RemediationOutcome::Started => false,
                RemediationOutcome::Done => {
                    let live: Vec<_> = self
                        .sessions
                        .values()
                        .filter(|s| s.bot == bot && s.namespace == ns && s.is_live(now))
                        .collect();
                    !silent && !live.is_empty() && live.iter().all(|s| s.ready_at >= began) && {
                        let mut shards: Vec<u32> = live.iter().map(|s| s.shard).collect();
                        shards.sort_unstable();
                        shards.windows(2).all(|w| w[0] != w[1])
                    }
                }
                _ => !silent,
            };
            if over {
                let key = Key {
                    kind: Kind::Remediation,
                    bot: bot.clone(),
                    subject: Subject::bot_in(&ns),
                };
                self.book.close(&key, now, self.cfg.max_closed_findings);
                self.detectors.remediation.open.remove(&(bot, ns));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::observation::{Body, Observation};
    use chrono::{TimeZone, Utc};

    fn report(outcome: RemediationOutcome, reason: &str) -> Report {
        Report {
            bot: "agentbroker".into(),
            namespace: "bots".into(),
            workload: "deployment/agentbroker".into(),
            pod: "agentbroker-7d9f8b6c4-x2x9q".into(),
            shard: 0,
            outcome,
            reason: reason.into(),
            detail: format!("{} because {reason}", outcome.as_str()),
        }
    }

    fn feed(e: &mut Engine, secs: i64, r: Report) {
        e.observe(Observation {
            at: Utc.timestamp_opt(1_776_000_000 + secs, 0).unwrap(),
            source: "remediation".into(),
            body: Body::Remediation(r),
        });
    }

    /// A skip, then a start and its end: two findings (the skip closed by the action), the
    /// action's severity following its step, counts per outcome.
    #[test]
    fn each_action_is_one_finding_and_counted() {
        let mut e = Engine::new(EngineConfig::default());
        feed(&mut e, 0, report(RemediationOutcome::Skipped, "rate_limit"));
        let f: Vec<_> = e.active_findings().collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        feed(
            &mut e,
            10,
            report(RemediationOutcome::Started, "scaled_down"),
        );
        feed(&mut e, 20, report(RemediationOutcome::Failed, "timeout"));
        let all = e.all_findings();
        assert_eq!(all.len(), 2);
        assert!(all[0].until.is_some());
        assert_eq!(all[1].severity, Severity::Critical);
        assert!(all[1].explanation.contains("timeout"));
        assert_eq!(
            e.remediation_totals()
                .get(&("agentbroker".into(), RemediationOutcome::Failed)),
            Some(&1)
        );
        // No silent session open: a tick settles the failure.
        e.tick(Utc.timestamp_opt(1_776_000_030, 0).unwrap());
        assert_eq!(e.active_findings().count(), 0);
    }

    /// A restore stays open until the bot has a live session again.
    #[test]
    fn a_restore_closes_with_the_next_session() {
        let mut e = Engine::new(EngineConfig::default());
        feed(
            &mut e,
            0,
            report(RemediationOutcome::Started, "scaled_down"),
        );
        feed(&mut e, 100, report(RemediationOutcome::Done, "restored"));
        e.tick(Utc.timestamp_opt(1_776_000_110, 0).unwrap());
        assert_eq!(e.active_findings().count(), 1, "no session yet");
        ready(&mut e, 120, "agentbroker-7d9f8b6c4-n3w5p");
        e.tick(Utc.timestamp_opt(1_776_000_125, 0).unwrap());
        assert_eq!(e.active_findings().count(), 0);
    }

    /// The next session may connect before the restore's report is read: it still closes it.
    #[test]
    fn a_restore_reported_after_the_next_session_closes_at_once() {
        let mut e = Engine::new(EngineConfig::default());
        feed(
            &mut e,
            0,
            report(RemediationOutcome::Started, "scaled_down"),
        );
        ready(&mut e, 100, "agentbroker-7d9f8b6c4-n3w5p");
        feed(&mut e, 110, report(RemediationOutcome::Done, "restored"));
        let f = e.all_findings();
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].until,
            Some(Utc.timestamp_opt(1_776_000_110, 0).unwrap())
        );
    }

    fn ready(e: &mut Engine, secs: i64, pod: &str) {
        use crate::observation::{InstanceId, SessionEvent, SessionObservation};
        e.observe(Observation {
            at: Utc.timestamp_opt(1_776_000_000 + secs, 0).unwrap(),
            source: "test".into(),
            body: Body::Session(SessionObservation {
                bot: Some("agentbroker".into()),
                instance: InstanceId::pod("bots", pod).into(),
                shard: None,
                event: SessionEvent::Ready { session_id: None },
                line: None,
            }),
        });
    }
}
