//! The decision, pure and deterministic: from an engine snapshot, the guards' memory and the
//! time, which deaf sessions to heal now and which to report as skipped (and why). No I/O and
//! no clock: `replay`, the demo and the daemon run the same code, tests run it on simulated
//! time.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::config::RemediationConfig;
use super::guards::Guards;
use dge_core::engine::{Kind, Risk, Session, Severity, Snapshot};
use dge_core::observation::Timestamp;

/// Why a deaf session was not healed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The finding is not confirmed (a warning: the inputs cannot show events), the session
    /// was inferred, or its pod's namespace or workload is unknown.
    Unverifiable,
    /// The bot's event rate is not learned: nothing bounds how often a healthy session is
    /// this silent.
    RateUnknown,
    /// No peer session to wait for (only an unexplained identify): nothing proves that a
    /// restart would help.
    PeerUnknown,
    /// A pod of the workload restarted recently, or Discord refused the bot for good.
    CrashLoop,
    /// One of the exporter's own sources is down: its picture may be stale.
    SourceUnhealthy,
    /// `session_start_limit.remaining` below `min_identify_remaining`.
    IdentifyBudget,
    /// `max_per_hour` actions of the bot in the last hour.
    RateLimit,
    /// Too soon after the bot's previous action (the wait doubles per recent action).
    Backoff,
    /// An action of the bot is still in flight.
    InFlight,
    /// The workload does not carry the annotation set to `"true"`.
    NotAllowed,
    /// RBAC refused an earlier request for this workload: no retries until restarted.
    Forbidden,
    /// The workload is already at 0 replicas (someone else is on it).
    AlreadyScaledDown,
    /// No Deployment or StatefulSet of that name.
    WorkloadNotFound,
}

impl SkipReason {
    /// The reason in findings, logs and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverifiable => "unverifiable",
            Self::RateUnknown => "rate_unknown",
            Self::PeerUnknown => "peer_unknown",
            Self::CrashLoop => "crash_loop",
            Self::SourceUnhealthy => "source_unhealthy",
            Self::IdentifyBudget => "identify_budget",
            Self::RateLimit => "rate_limit",
            Self::Backoff => "backoff",
            Self::InFlight => "in_flight",
            Self::NotAllowed => "not_allowed",
            Self::Forbidden => "forbidden",
            Self::AlreadyScaledDown => "already_scaled_down",
            Self::WorkloadNotFound => "workload_not_found",
        }
    }
}

/// What made the session a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A confirmed critical `silent_session` whose peers are gone on Discord's side.
    Silent,
    /// `preemptive = true`: it started next to a peer that kept receiving, and the peer ended.
    Preemptive,
}

/// The deaf session and the workload to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bot: String,
    pub namespace: String,
    /// The workload's name (its kind is resolved against the API).
    pub workload: String,
    pub pod: String,
    pub shard: u32,
    /// The engine's session id.
    pub session: u64,
    pub trigger: Trigger,
    /// The peer pods whose sessions had to be gone first.
    pub peers: Vec<String>,
    /// When the deaf session's silence began.
    pub silent_since: Timestamp,
}

/// One decision of a planning round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Act(Target),
    Skip(Target, SkipReason),
}

/// The planner: the configuration and the guards' memory.
#[derive(Debug)]
pub struct Planner {
    pub cfg: RemediationConfig,
    pub guards: Guards,
}

impl Planner {
    pub fn new(cfg: RemediationConfig) -> Self {
        Self {
            cfg,
            guards: Guards::default(),
        }
    }

    /// The decisions due at `now`. An `Act` is marked in flight at once (the caller ends it
    /// with [`Guards::end`]); a skip is returned once per session and reason.
    pub fn plan(&mut self, snap: &Snapshot, now: Timestamp) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for f in snap.active_findings() {
            if f.kind != Kind::SilentSession {
                continue;
            }
            let Some(s) = f.session.and_then(|id| session(snap, id)) else {
                continue;
            };
            seen.insert(s.id);
            let verified = f.severity == Severity::Critical && !s.inferred;
            if let Some(d) = self.judge(snap, s, Trigger::Silent, verified, now) {
                out.push(d);
            }
        }
        if self.cfg.preemptive {
            for s in &snap.sessions {
                let predecessor_active = s
                    .risks
                    .iter()
                    .any(|r| matches!(r, Risk::PredecessorActive { .. }));
                if seen.contains(&s.id)
                    || !s.is_open()
                    || !s.is_live(now)
                    || !predecessor_active
                    || !s.at_risk()
                    || s.events > 0
                {
                    continue;
                }
                if let Some(d) = self.judge(snap, s, Trigger::Preemptive, !s.inferred, now) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// One candidate: `None` while its peers are still live, or once it was decided.
    fn judge(
        &mut self,
        snap: &Snapshot,
        s: &Session,
        trigger: Trigger,
        verified: bool,
        now: Timestamp,
    ) -> Option<Decision> {
        if self.guards.decided(s.id) {
            return None;
        }
        let peers: Vec<String> = s
            .risks
            .iter()
            .filter_map(|r| match r {
                Risk::StartedDuringOverlap { other_pod } => Some(other_pod.clone()),
                Risk::PredecessorActive { other_pod, .. } => Some(other_pod.clone()),
                Risk::PeerSequenceAdvancing { other_pod, .. } => Some(other_pod.clone()),
                Risk::UnexplainedIdentify => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let workload = snap
            .instances
            .iter()
            .find(|i| i.namespace == s.namespace && i.pod == s.pod)
            .and_then(|i| i.workload.clone());
        let target = Target {
            bot: s.bot.clone(),
            namespace: s.namespace.clone(),
            workload: workload.clone().unwrap_or_default(),
            pod: s.pod.clone(),
            shard: s.shard,
            session: s.id,
            trigger,
            peers: peers.clone(),
            silent_since: s.quiet_since(),
        };
        // Wait for the peers' sessions to be gone on Discord's side (their lingering window
        // over): until then a restart would start next to them again.
        let peer_live = snap
            .sessions
            .iter()
            .any(|p| p.id != s.id && p.bot == s.bot && peers.contains(&p.pod) && p.is_live(now));
        if peer_live {
            return None;
        }
        // Silent for ln(1/p) expected intervals (unclamped): a healthy session gets this far
        // with probability p at most.
        if trigger == Trigger::Silent
            && let Some(i) = interval_of(snap, &s.bot)
        {
            let need = (1.0 / self.cfg.false_alarm).ln() * i;
            if ((now - s.quiet_since()).as_seconds_f64()) < need {
                return None;
            }
        }
        let interval = interval_of(snap, &s.bot);
        let skip = if !verified || s.namespace.is_empty() || workload.is_none() {
            Some(SkipReason::Unverifiable)
        } else if trigger == Trigger::Silent && interval.is_none() {
            Some(SkipReason::RateUnknown)
        } else if peers.is_empty() {
            Some(SkipReason::PeerUnknown)
        } else if self.crash_looping(snap, s, workload.as_deref().unwrap_or(""), now) {
            Some(SkipReason::CrashLoop)
        } else if snap.source_up.values().any(|up| !up) {
            Some(SkipReason::SourceUnhealthy)
        } else if self.budget_low(snap, &s.bot) {
            Some(SkipReason::IdentifyBudget)
        } else {
            self.guards.check(&target, &self.cfg, now).err()
        };
        match skip {
            Some(r) => self
                .guards
                .first_report(s.id, r)
                .then_some(Decision::Skip(target, r)),
            None => {
                self.guards.begin(&target, now);
                Some(Decision::Act(target))
            }
        }
    }

    /// A pod of the workload restarted within `crash_window_secs`, or Discord refused the bot
    /// for good (a fatal close is open).
    fn crash_looping(&self, snap: &Snapshot, s: &Session, workload: &str, now: Timestamp) -> bool {
        let window = TimeDelta::seconds(self.cfg.crash_window_secs as i64);
        let restarted = snap.instances.iter().any(|i| {
            i.namespace == s.namespace
                && i.workload.as_deref() == Some(workload)
                && i.restarts > 0
                && i.runs
                    .last()
                    .is_some_and(|(start, _)| now - *start < window)
        });
        restarted
            || snap
                .active_findings()
                .any(|f| f.kind == Kind::FatalClose && f.bot == s.bot)
    }

    /// Discord's last `remaining` for the bot is below the threshold (unknown: not low).
    fn budget_low(&self, snap: &Snapshot, bot: &str) -> bool {
        snap.bots.iter().any(|b| {
            b.bot == bot
                && b.start_limit
                    .as_ref()
                    .is_some_and(|l| l.remaining < self.cfg.min_identify_remaining)
        })
    }
}

/// The bot's learned mean time between events, when learned.
fn interval_of(snap: &Snapshot, bot: &str) -> Option<f64> {
    snap.bots
        .iter()
        .find(|b| b.bot == bot)
        .and_then(|b| b.expected_interval_secs)
}

fn session(snap: &Snapshot, id: u64) -> Option<&Session> {
    snap.sessions.iter().find(|s| s.id == id)
}

/// What still stands between a scaled-down workload and its restore, `None` when nothing:
/// a pod of the workload not yet exited or deleted, or a session of its pods Discord may
/// still hold (the lingering window of a pod that did not close cleanly).
pub fn still_running(
    snap: &Snapshot,
    namespace: &str,
    workload: &str,
    bot: &str,
    now: Timestamp,
) -> Option<String> {
    let pods: Vec<&str> = snap
        .instances
        .iter()
        .filter(|i| i.namespace == namespace && i.workload.as_deref() == Some(workload))
        .filter(|i| {
            i.deleted_at.is_none()
                && i.exited_at
                    .is_none_or(|e| i.runs.last().is_some_and(|(st, _)| *st > e))
        })
        .map(|i| i.pod.as_str())
        .collect();
    if let Some(p) = pods.first() {
        return Some(format!("pod {p} is still running"));
    }
    snap.sessions
        .iter()
        .filter(|s| s.bot == bot && s.namespace == namespace && s.is_live(now))
        .filter(|s| {
            snap.instances.iter().any(|i| {
                i.pod == s.pod
                    && i.namespace == namespace
                    && i.workload.as_deref() == Some(workload)
            }) || dge_core::engine::workload_of(&s.pod) == workload
        })
        .map(|s| match s.live_until {
            Some(u) => format!(
                "pod {}'s session lingers on Discord's side until {}",
                s.pod,
                u.format("%H:%M:%S")
            ),
            None => format!("pod {}'s session is still open", s.pod),
        })
        .next()
}
