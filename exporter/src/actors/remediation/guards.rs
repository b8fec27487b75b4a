//! The guards that keep the actor from becoming the naive watchdog that restarts idle bots
//! and burns Discord's identify budget: at most `max_per_hour` actions per bot, a wait that
//! doubles with every recent action, one action in flight per bot, each deaf session decided
//! once, each skip reported once, and workloads RBAC refused left alone.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;

use super::config::RemediationConfig;
use super::decide::{SkipReason, Target};
use dge_core::observation::Timestamp;

/// Per bot: when its actions started, and whether one is in flight.
#[derive(Debug, Default)]
struct BotGuard {
    actions: Vec<Timestamp>,
    in_flight: bool,
}

/// The guards' memory (what the planner keeps between rounds).
#[derive(Debug, Default)]
pub struct Guards {
    bots: BTreeMap<String, BotGuard>,
    /// Sessions acted on (or dry-run): never twice.
    decided: BTreeSet<u64>,
    /// (session, reason) skips already reported.
    reported: BTreeSet<(u64, SkipReason)>,
    /// (namespace, workload) RBAC refused.
    forbidden: BTreeSet<(String, String)>,
}

impl Guards {
    /// Whether the session was acted on already.
    pub fn decided(&self, session: u64) -> bool {
        self.decided.contains(&session)
    }

    /// The per-bot guards: in flight, forbidden, hourly limit, back-off.
    pub fn check(
        &self,
        t: &Target,
        cfg: &RemediationConfig,
        now: Timestamp,
    ) -> Result<(), SkipReason> {
        if self
            .forbidden
            .contains(&(t.namespace.clone(), t.workload.clone()))
        {
            return Err(SkipReason::Forbidden);
        }
        let Some(g) = self.bots.get(&t.bot) else {
            return Ok(());
        };
        if g.in_flight {
            return Err(SkipReason::InFlight);
        }
        let hour = TimeDelta::hours(1);
        let last_hour = g.actions.iter().filter(|a| now - **a < hour).count();
        if last_hour >= cfg.max_per_hour as usize {
            return Err(SkipReason::RateLimit);
        }
        let reset = TimeDelta::seconds(cfg.backoff_reset_secs as i64);
        let recent = g.actions.iter().filter(|a| now - **a < reset).count();
        if let (Some(last), n @ 1..) = (g.actions.last(), recent) {
            // 1 recent action: wait backoff_secs; 2: twice that; ...
            let wait = cfg
                .backoff_secs
                .saturating_mul(1u64 << (n - 1).min(16) as u32);
            if now - *last < TimeDelta::seconds(wait.min(i64::MAX as u64) as i64) {
                return Err(SkipReason::Backoff);
            }
        }
        Ok(())
    }

    /// An action on `t` starts at `now`: counted, in flight, its session decided.
    pub fn begin(&mut self, t: &Target, now: Timestamp) {
        self.decided.insert(t.session);
        let g = self.bots.entry(t.bot.clone()).or_default();
        g.in_flight = true;
        g.actions.push(now);
        // Only the last day matters to any guard.
        let day = TimeDelta::days(1);
        g.actions.retain(|a| now - *a < day);
    }

    /// The bot's action ended (done, failed, or skipped by a check made while acting).
    pub fn end(&mut self, bot: &str) {
        if let Some(g) = self.bots.get_mut(bot) {
            g.in_flight = false;
        }
    }

    /// An action that turned out not to act (not leader, annotation missing): it does not
    /// count against the bot's limits, and the session may be decided again later.
    pub fn undo(&mut self, t: &Target) {
        self.decided.remove(&t.session);
        if let Some(g) = self.bots.get_mut(&t.bot) {
            g.in_flight = false;
            g.actions.pop();
        }
    }

    /// An action that found nothing it may do (the annotation is missing): not counted
    /// against the bot's limits; the session stays decided.
    pub fn release(&mut self, t: &Target) {
        if let Some(g) = self.bots.get_mut(&t.bot) {
            g.in_flight = false;
            g.actions.pop();
        }
    }

    /// RBAC refused a request for this workload: no more attempts on it.
    pub fn forbid(&mut self, namespace: &str, workload: &str) {
        self.forbidden
            .insert((namespace.to_string(), workload.to_string()));
    }

    /// Whether this skip is news (first time for this session and reason).
    pub fn first_report(&mut self, session: u64, reason: SkipReason) -> bool {
        self.reported.insert((session, reason))
    }
}
