//! `bot_offline`: pods that should serve the bot but no live session for longer than the
//! grace period.

use chrono::TimeDelta;

use super::{Detector, secs};
use crate::engine::findings::{Assertion, Key, Subject};
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "bot_offline",
    severity: Severity::Critical,
    runbook: "docs/troubleshooting.md#discordbotoffline",
    description: "the bot has running pods but no live session",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 8;
/// Its turn on `on_tick`: after `duplicate_delivery`, before `unattributed_identify`.
pub(super) const ON_TICK: u32 = 50;

pub(super) struct BotOffline;

impl Detector for BotOffline {
    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        engine.evaluate_offline(now);
    }
}

impl Engine {
    /// `bot_offline`: pods that should serve the bot but no live session.
    fn evaluate_offline(&mut self, now: Timestamp) {
        let grace = TimeDelta::seconds(self.cfg.offline_grace_secs as i64);
        let mut bots: std::collections::BTreeMap<String, (Timestamp, String, Vec<String>)> =
            Default::default();
        // Bots with a live session are not offline: most ticks end here, without allocating.
        let mut live_bots: Vec<&str> = Vec::new();
        for s in self.sessions.values() {
            if s.is_live(now) && !live_bots.contains(&s.bot.as_str()) {
                live_bots.push(&s.bot);
            }
        }
        for inst in self.instances.values() {
            if !inst.is_wanted() || !(inst.has_logs || inst.bot.is_some()) {
                continue;
            }
            let bot = self.bot_name(inst);
            if live_bots.contains(&bot.as_str()) {
                continue;
            }
            let started = inst
                .created_at
                .or(inst.running_since)
                .unwrap_or(inst.first_seen);
            let e = bots
                .entry(bot)
                .or_insert((started, inst.namespace.clone(), Vec::new()));
            e.0 = e.0.min(started);
            e.2.push(inst.pod.clone());
        }
        let mut keep = Vec::new();
        for (bot, (started, namespace, pods)) in bots {
            let last_live = self
                .sessions
                .values()
                .filter(|s| s.bot == bot)
                .filter_map(|s| s.live_until)
                .max();
            let since = last_live.map_or(started, |l| l.max(started));
            if now - since < grace {
                continue;
            }
            // The bot's pods of the first namespace seen (bot-wide when unknown).
            let key = Key {
                kind: Kind::BotOffline,
                bot: bot.clone(),
                subject: Subject::bot_in(&namespace),
            };
            keep.push(key.clone());
            let explanation = format!(
                "{bot} has running pods ({}) but no live gateway session for {}: the bot is offline.",
                pods.join(", "),
                secs((now - since).as_seconds_f64())
            );
            self.book
                .assert(Assertion::new(key, since, explanation, vec![]));
        }
        for k in self.book.active_keys(Kind::BotOffline) {
            if !keep.contains(&k) {
                let at = self
                    .sessions
                    .values()
                    .filter(|s| s.bot == k.bot && s.is_live(now))
                    .map(|s| s.ready_at)
                    .min()
                    .unwrap_or(now);
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }
}
