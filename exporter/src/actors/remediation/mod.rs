//! Opt-in remediation (`[remediation]`, off by default): when a deaf session is confirmed and
//! its peer is gone on Discord's side, scale the bot's workload to 0 through the scale
//! subresource, wait until its pods are gone and their lingering sessions expired, and restore
//! the replica count it had: the workaround an on-call person would apply, with guards.
//!
//! `decide` (pure: which sessions, which skips) and `guards` (limits, back-off, in flight)
//! are the decision; `cluster` (scale, Events), `lease` (leadership) and `actor` (the
//! sequence) are the acting. Every outcome goes back to the engine as a
//! [`Body::Remediation`] observation, which the `remediation` finding kind turns into a
//! finding (and `discord_gateway_remediations_total`).

mod actor;
pub mod cluster;
pub mod config;
pub mod decide;
pub mod guards;
pub mod lease;

pub use actor::{Actor, SnapshotFn};
pub use config::{Mode, RemediationConfig};
pub use decide::{Decision, Planner, SkipReason, Target, Trigger, still_running};

use chrono::TimeDelta;

use dge_core::engine::Engine;
use dge_core::observation::{Body, Observation, Remediation, RemediationOutcome, Timestamp};

/// The source name of the actor's observations.
pub const SOURCE: &str = "remediation";

/// An observation of one step or outcome about `t`.
pub fn report(
    t: &Target,
    workload: &str,
    outcome: RemediationOutcome,
    reason: &str,
    detail: String,
    at: Timestamp,
) -> Observation {
    Observation {
        at,
        source: SOURCE.into(),
        body: Body::Remediation(Remediation {
            bot: t.bot.clone(),
            namespace: t.namespace.clone(),
            workload: workload.to_string(),
            pod: t.pod.clone(),
            shard: t.shard,
            outcome,
            reason: reason.to_string(),
            detail,
        }),
    }
}

/// Why the session was a candidate, for sentences.
fn trigger_text(t: &Target) -> String {
    let peers = t.peers.join(", ");
    match t.trigger {
        Trigger::Silent => format!(
            "pod {}'s session of {} has been deaf since {} and the session of pod {peers} it \
             overlapped is gone on Discord's side",
            t.pod,
            t.bot,
            t.silent_since.format("%H:%M:%S")
        ),
        Trigger::Preemptive => format!(
            "pod {}'s session of {} started while pod {peers} kept receiving the bot's events, \
             and that session has ended (preemptive)",
            t.pod, t.bot
        ),
    }
}

/// The sentence of a skip.
pub fn skip_text(t: &Target, r: SkipReason, cfg: &RemediationConfig) -> String {
    let why = match r {
        SkipReason::Unverifiable => "the finding cannot be verified (the bot's inputs cannot \
                                     show events, the session was inferred, or its pod's \
                                     namespace or workload is unknown)"
            .to_string(),
        SkipReason::RateUnknown => "the bot's event rate is not learned yet, so nothing bounds \
                                    how often a healthy session is this silent"
            .to_string(),
        SkipReason::PeerUnknown => {
            "no peer session explains the silence, so a restart is not known to help".into()
        }
        SkipReason::CrashLoop => {
            "the workload is crash-looping (a pod restarted recently or Discord refused the bot)"
                .into()
        }
        SkipReason::SourceUnhealthy => {
            "one of the exporter's own sources is unhealthy, so its picture may be stale".into()
        }
        SkipReason::IdentifyBudget => format!(
            "Discord's session_start_limit.remaining is below {}",
            cfg.min_identify_remaining
        ),
        SkipReason::RateLimit => format!(
            "the bot already had {} actions in the last hour (max_per_hour)",
            cfg.max_per_hour
        ),
        SkipReason::Backoff => "the back-off after the bot's previous action has not passed".into(),
        SkipReason::InFlight => "an action on the bot is still in flight".into(),
        SkipReason::NotAllowed => format!(
            "workload {} does not carry the annotation {}: \"true\"",
            t.workload, cfg.annotation
        ),
        SkipReason::Forbidden => {
            "RBAC refused an earlier request for this workload (no retries until restarted)".into()
        }
        SkipReason::AlreadyScaledDown => "the workload is already at 0 replicas".into(),
        SkipReason::WorkloadNotFound => format!(
            "no Deployment or StatefulSet named {} in {}",
            t.workload, t.namespace
        ),
    };
    format!("Not restarting {}: {}; {why}.", t.workload, trigger_text(t))
}

/// The sentence of a dry run.
pub fn dry_run_text(t: &Target, workload: &str, replicas: Option<i32>) -> String {
    let back = match replicas {
        Some(n) => format!("restore its {n} replicas"),
        None => "restore its replica count".into(),
    };
    format!(
        "Dry run: {}, so the exporter would now scale {workload} in {} to 0, wait until its pods \
         are gone and any session they leave lingering on Discord's side has expired, then {back}.",
        capitalize(&trigger_text(t)),
        t.namespace
    )
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Dry-run planning over a recorded incident (`replay`) or a simulated fleet without a
/// cluster: every `step` of engine time, plan on a snapshot and feed each decision back as an
/// observation (a dry run, or a skip and why). No annotation or replica count is known
/// without a cluster; the sentence says what would be checked.
pub struct OfflinePlanner {
    planner: Planner,
    last: Option<Timestamp>,
    step: TimeDelta,
}

impl OfflinePlanner {
    pub fn new(cfg: RemediationConfig) -> Self {
        Self {
            planner: Planner::new(cfg),
            last: None,
            step: TimeDelta::seconds(5),
        }
    }

    /// Plans when `step` of engine time passed since the last round.
    pub fn after(&mut self, engine: &mut Engine) {
        let Some(now) = engine.now() else { return };
        if self.planner.cfg.mode == Mode::Off || self.last.is_some_and(|l| now - l < self.step) {
            return;
        }
        self.last = Some(now);
        let snap = engine.snapshot();
        for d in self.planner.plan(&snap, now) {
            let obs = match d {
                Decision::Act(t) => {
                    self.planner.guards.end(&t.bot);
                    let text = dry_run_text(&t, &t.workload, None);
                    report(
                        &t,
                        &t.workload,
                        RemediationOutcome::DryRun,
                        "would_act",
                        text,
                        now,
                    )
                }
                Decision::Skip(t, r) => {
                    let text = skip_text(&t, r, &self.planner.cfg);
                    report(
                        &t,
                        &t.workload,
                        RemediationOutcome::Skipped,
                        r.as_str(),
                        text,
                        now,
                    )
                }
            };
            tracing::info!(target: "remediation", "{}", describe(&obs));
            engine.observe(obs);
        }
    }
}

/// A log line's text for a report.
pub fn describe(o: &Observation) -> String {
    match &o.body {
        Body::Remediation(r) => format!(
            "remediation {} {}/{} ({}): {}",
            r.outcome.as_str(),
            r.namespace,
            r.workload,
            r.reason,
            r.detail
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
