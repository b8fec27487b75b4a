//! The detectors, one module per finding kind, and the table of kinds.
//!
//! Adding a kind: a row in the table below (its module, default severity, runbook anchor,
//! description and what it means for a handover; every field is required) and the module
//! `detectors/<kind>.rs` with its detector, called from [`Engine::detect`] when it is
//! time-driven or from the engine's event handlers when an event decides it. Nothing outside
//! this folder matches on a kind with a catch-all arm, so a sink that has to treat the new
//! kind differently fails to compile until it does (docs/architecture.md, "Add a finding
//! kind").

use crate::engine::HandoverOutcome;
use crate::engine::kinds::HandoverEffect;

use super::Engine;
use crate::observation::Timestamp;

finding_kinds! {
    /// More than one live session for the same bot and shard.
    ConcurrentSessions => concurrent_sessions {
        severity: Warning,
        runbook: "discordbotconcurrentsessions",
        description: "more than one live session for the same bot and shard",
        handover: HandoverEffect::Marks(HandoverOutcome::ConcurrentSessions),
    }
    /// A live session that gets no events while it is at risk.
    SilentSession => silent_session {
        severity: Critical,
        runbook: "discordbotsilentsession",
        description: "a live session that gets no events while it is at risk: it started while \
                      another session of the bot was live, its predecessor kept receiving events \
                      after it connected, or a Discord-side identify was unexplained around its start",
        handover: HandoverEffect::SettlesNew(HandoverOutcome::NewSessionSilent),
    }
    /// A live session silent for far longer than the bot's learned rate makes likely.
    QuietSession => quiet_session {
        severity: Warning,
        runbook: "discordbotquietsession",
        description: "a live session silent for far longer than the bot's own learned event rate \
                      makes likely, with no risk factor (a warning, never a page: quiet nights exist)",
        handover: HandoverEffect::SettlesNew(HandoverOutcome::NewSessionSilent),
    }
    /// Two live sessions of one bot both receive events in the same window.
    DuplicateDelivery => duplicate_delivery {
        severity: Critical,
        runbook: "discordbotduplicatedelivery",
        description: "two live sessions of one bot both receive events in the same window (the bot \
                      answers twice)",
        handover: HandoverEffect::Marks(HandoverOutcome::DuplicateDelivery),
    }
    /// A pod ended without a clean gateway close.
    LingeringSession => lingering_session {
        severity: Warning,
        runbook: "discordbotlingeringsession",
        description: "a pod ended without a clean gateway close; Discord keeps that session for \
                      minutes",
        handover: HandoverEffect::Marks(HandoverOutcome::OldSessionLingering),
    }
    /// Discord's `remaining` fell by more than the identifies visible in logs.
    UnattributedIdentify => unattributed_identify {
        severity: Warning,
        runbook: "discordbotunattributedidentify",
        description: "Discord's remaining session starts fell by more than the identifies visible \
                      in logs",
        handover: HandoverEffect::None,
    }
    /// Few session starts left, or falling fast enough to run out before the reset.
    StartLimitLow => start_limit_low {
        severity: Warning,
        runbook: "discordbotstartlimitlow",
        description: "remaining session starts below a threshold, or falling fast enough to run \
                      out before reset_after",
        handover: HandoverEffect::None,
    }
    /// A non-recoverable close: invalid token, sharding or intents.
    FatalClose => fatal_close {
        severity: Critical,
        runbook: "discordbotfatalclose",
        description: "a non-recoverable close: invalid token (4004), invalid shard or sharding \
                      (4010/4011), invalid or disallowed intents (4013/4014)",
        handover: HandoverEffect::None,
    }
    /// The bot has running pods but no live session.
    BotOffline => bot_offline {
        severity: Critical,
        runbook: "discordbotoffline",
        description: "the bot has running pods but no live session",
        handover: HandoverEffect::None,
    }
}

pub(super) use concurrent_sessions::ConcurrentMemo;

/// A duration for an explanation: seconds, minutes or hours.
fn secs(d: f64) -> String {
    if d >= 3600.0 {
        format!("{:.1} h", d / 3600.0)
    } else if d >= 120.0 {
        format!("{:.0} min", d / 60.0)
    } else {
        format!("{d:.0} s")
    }
}

/// A time of day for an explanation.
fn hms(t: Timestamp) -> String {
    t.format("%H:%M:%S").to_string()
}

impl Engine {
    /// Runs every time-driven detector at `now` (`finishing`: the input ended), then forgets
    /// pods deleted long ago. The order is part of the behaviour (finding ids follow it).
    pub(super) fn detect(&mut self, now: Timestamp, finishing: bool) {
        self.expire_lingering(now);
        let mut groups: Vec<(String, u32)> = Vec::new();
        for s in self.sessions.values() {
            if !groups.iter().any(|(b, sh)| *sh == s.shard && *b == s.bot) {
                groups.push((s.bot.clone(), s.shard));
            }
        }
        groups.sort();
        for (bot, shard) in groups {
            self.evaluate_concurrent(&bot, shard, now);
        }
        self.evaluate_silence(now);
        self.expire_duplicates(now);
        self.evaluate_offline(now);
        self.settle_identifies(now, finishing);
        self.collect_garbage(now);
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn every_kind_serializes_under_its_table_name() {
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert!(
                k.runbook()
                    .starts_with("docs/troubleshooting.md#discordbot")
            );
            assert!(!k.meta().description.is_empty());
        }
    }
}
