//! The live actor: plans on each new engine snapshot and, for a decision to act, runs the
//! sequence against the cluster: leadership, the workload and its annotation, its replica
//! count, scale to 0, wait (the engine says when the pods and their lingering sessions are
//! gone), restore. Every step is an Event on the workload, a log line inside the action's
//! span, and an observation back to the engine (its finding and its count).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::cluster::{Cluster, StepError, Workload};
use super::config::Mode;
use super::decide::{Decision, Planner, SkipReason, Target, still_running};
use super::lease::Leadership;
use super::{describe, dry_run_text, report, skip_text};
use dge_core::engine::Snapshot;
use dge_core::observation::{Observation, RemediationOutcome, Timestamp};

/// Where the actor reads the engine's latest snapshot.
pub type SnapshotFn = Arc<dyn Fn() -> Arc<Snapshot> + Send + Sync>;

/// The actor and what it needs.
pub struct Actor {
    pub planner: Planner,
    /// `None` without a cluster (the demo): decisions are reported as dry runs.
    pub cluster: Option<Cluster>,
    pub leadership: Option<Leadership>,
    pub snapshot: SnapshotFn,
    pub tx: mpsc::Sender<Observation>,
    /// How often it plans and, while waiting, looks at the engine again.
    pub poll: Duration,
}

impl Actor {
    /// Plans every `poll` until `shutdown`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if self.planner.cfg.mode == Mode::Off {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => return,
            }
            self.round().await;
        }
    }

    /// One planning round, its actions run to their end.
    pub async fn round(&mut self) {
        let snap = (self.snapshot)();
        let now = snap.at.unwrap_or_else(Utc::now);
        for d in self.planner.plan(&snap, now) {
            match d {
                Decision::Skip(t, r) => {
                    if self.leader().await {
                        let text = skip_text(&t, r, &self.planner.cfg);
                        self.send(report(
                            &t,
                            &t.workload,
                            RemediationOutcome::Skipped,
                            r.as_str(),
                            text,
                            now,
                        ))
                        .await;
                    }
                }
                Decision::Act(t) => {
                    // One span per action; each step is a log line inside it (an event of
                    // the span in OTLP, and every line carries the span's trace id).
                    let span = crate::telemetry::with_trace_id(tracing::info_span!(
                        "remediation",
                        bot = %t.bot,
                        namespace = %t.namespace,
                        workload = %t.workload,
                        pod = %t.pod,
                        trace_id = tracing::field::Empty
                    ));
                    self.act(t).instrument(span).await;
                }
            }
        }
    }

    /// Whether this instance may act (no cluster: the demo, alone by definition).
    async fn leader(&self) -> bool {
        let Some(l) = &self.leadership else {
            return true;
        };
        match l.acquire().await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "remediation: could not take the Lease; not acting");
                false
            }
        }
    }

    fn now(&self) -> Timestamp {
        (self.snapshot)().at.unwrap_or_else(Utc::now)
    }

    async fn send(&self, o: Observation) {
        tracing::info!("{}", describe(&o));
        let _ = self.tx.send(o).await;
    }

    async fn skip(&mut self, t: &Target, r: SkipReason) {
        let text = skip_text(t, r, &self.planner.cfg);
        let at = self.now();
        self.send(report(
            t,
            &t.workload,
            RemediationOutcome::Skipped,
            r.as_str(),
            text,
            at,
        ))
        .await;
    }

    /// The sequence for one decision.
    async fn act(&mut self, t: Target) {
        let Some(cluster) = self.cluster.clone() else {
            // No cluster: report what would be done.
            self.planner.guards.end(&t.bot);
            let text = dry_run_text(&t, &t.workload, None);
            let at = self.now();
            self.send(report(
                &t,
                &t.workload,
                RemediationOutcome::DryRun,
                "would_act",
                text,
                at,
            ))
            .await;
            return;
        };
        if !self.leader().await {
            tracing::info!("remediation: another instance holds the Lease; not acting");
            self.planner.guards.undo(&t);
            return;
        }
        let w = match cluster.resolve(&t.namespace, &t.workload).await {
            Ok(w) => w,
            Err(StepError::NotFound(_)) => {
                self.planner.guards.end(&t.bot);
                return self.skip(&t, SkipReason::WorkloadNotFound).await;
            }
            Err(e) => return self.fail(&cluster, &t, None, "resolve", e, None).await,
        };
        if !w.allowed {
            // Not counted against the bot's limits: nothing was done.
            self.planner.guards.release(&t);
            return self.skip(&t, SkipReason::NotAllowed).await;
        }
        let replicas = match cluster.replicas(&w).await {
            Ok(n) => n,
            Err(e) => {
                return self
                    .fail(&cluster, &t, Some(&w), "get_scale", e, None)
                    .await;
            }
        };
        if replicas == 0 {
            self.planner.guards.end(&t.bot);
            return self.skip(&t, SkipReason::AlreadyScaledDown).await;
        }
        if self.planner.cfg.mode == Mode::DryRun {
            self.planner.guards.end(&t.bot);
            let text = dry_run_text(&t, &w.display(), Some(replicas));
            let at = self.now();
            return self
                .send(report(
                    &t,
                    &w.display(),
                    RemediationOutcome::DryRun,
                    "would_act",
                    text,
                    at,
                ))
                .await;
        }
        if let Err(e) = cluster.scale(&w, 0).await {
            return self
                .fail(&cluster, &t, Some(&w), "scale_down", e, None)
                .await;
        }
        let note = format!(
            "Scaled {} from {replicas} to 0 replicas: pod {}'s gateway session of {} is deaf; \
             the replicas come back once the old pods and their sessions are gone.",
            w.display(),
            t.pod,
            t.bot
        );
        cluster
            .event(&w, false, "DeafSessionScaledDown", &note)
            .await;
        let at = self.now();
        self.send(report(
            &t,
            &w.display(),
            RemediationOutcome::Started,
            "scaled_down",
            note,
            at,
        ))
        .await;
        if let Err(left) = self.wait_gone(&t).await {
            let e = StepError::Other(format!(
                "timed out after {} s waiting for the old pods: {left}",
                self.planner.cfg.wait_timeout_secs
            ));
            return self
                .fail(&cluster, &t, Some(&w), "wait", e, Some(replicas))
                .await;
        }
        // The wait is a step of its own: the Event says why the replicas came back when they
        // did (pods gone, Discord's lingering window over).
        let note = format!(
            "The old pods of {} are gone and Discord no longer holds their sessions (lingering \
             window over); restoring {replicas} replicas.",
            w.display()
        );
        cluster
            .event(&w, false, "DeafSessionOldSessionsGone", &note)
            .await;
        if let Err(e) = cluster.scale(&w, replicas).await {
            return self.fail(&cluster, &t, Some(&w), "restore", e, None).await;
        }
        let note = format!(
            "Restored {} to {replicas} replicas: its old pods are gone and Discord no longer \
             holds their sessions, so the next session of {} starts alone.",
            w.display(),
            t.bot
        );
        cluster.event(&w, false, "DeafSessionRestored", &note).await;
        self.planner.guards.end(&t.bot);
        let at = self.now();
        self.send(report(
            &t,
            &w.display(),
            RemediationOutcome::Done,
            "restored",
            note,
            at,
        ))
        .await;
    }

    /// Waits until the engine sees no pod of the workload and no lingering session of it.
    async fn wait_gone(&self, t: &Target) -> Result<(), String> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.planner.cfg.wait_timeout_secs);
        let mut renewed = tokio::time::Instant::now();
        loop {
            // Keep the Lease while waiting (minutes): another instance must not start on the
            // workload meanwhile. A lost Lease does not abandon the restore.
            if let Some(l) = &self.leadership
                && renewed.elapsed() >= l.renew_every()
            {
                renewed = tokio::time::Instant::now();
                if !matches!(l.acquire().await, Ok(true)) {
                    tracing::warn!(
                        "remediation: lost the Lease while waiting; finishing the restore"
                    );
                }
            }
            let snap = (self.snapshot)();
            let now = snap.at.unwrap_or_else(Utc::now);
            let Some(left) = still_running(&snap, &t.namespace, &t.workload, &t.bot, now) else {
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(left);
            }
            tracing::debug!("remediation: waiting: {left}");
            tokio::time::sleep(self.poll).await;
        }
    }

    /// A step failed: restore what was scaled down (when `restore`), publish a warning Event,
    /// report the failure (a critical finding: it pages). RBAC refusals are never retried.
    async fn fail(
        &mut self,
        cluster: &Cluster,
        t: &Target,
        w: Option<&Workload>,
        step: &str,
        e: StepError,
        restore: Option<i32>,
    ) {
        let restored = match (w, restore) {
            (Some(w), Some(n)) => match cluster.scale(w, n).await {
                Ok(()) => format!("; restored to {n} replicas"),
                Err(e2) => format!("; restoring {n} replicas failed too: {e2}"),
            },
            _ => String::new(),
        };
        if matches!(e, StepError::Forbidden(_)) {
            self.planner.guards.forbid(&t.namespace, &t.workload);
        }
        self.planner.guards.end(&t.bot);
        let name = w
            .map(Workload::display)
            .unwrap_or_else(|| t.workload.clone());
        let note = format!("Remediation of {name} failed at step {step}: {e}{restored}.");
        tracing::error!("{note}");
        if let Some(w) = w {
            cluster
                .event(w, true, "DeafSessionRemediationFailed", &note)
                .await;
        }
        let at = self.now();
        self.send(report(
            t,
            &name,
            RemediationOutcome::Failed,
            e.reason(),
            note,
            at,
        ))
        .await;
    }
}
