//! `fatal_close`: Discord refused the connection for good (bad token, sharding or intents).
//! Opened by the fatal line, closed when a session of the bot is ready again or the pod is
//! deleted.

use super::Detector;
use crate::engine::findings::{Assertion, Evidence, Key, Subject};
use crate::engine::state::PodKey;
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Legend, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "fatal_close",
    severity: Severity::Critical,
    runbook: "docs/troubleshooting.md#discordbotfatalclose",
    description: "a non-recoverable close: invalid token (4004), invalid shard or sharding \
                  (4010/4011), invalid or disallowed intents (4013/4014)",
    handover: HandoverEffect::None,
    timeline: TimelineMark::Point(Legend {
        mark: 'X',
        means: "fatal close",
        rank: 4,
    }),
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 7;
/// Its turn on `on_session_started`: before `concurrent_sessions`.
pub(super) const ON_SESSION_STARTED: u32 = 10;
/// Its turn on `on_pod_deleted`: the only one.
pub(super) const ON_POD_DELETED: u32 = 10;
/// Its turn on `on_fatal`: the only one.
pub(super) const ON_FATAL: u32 = 10;

pub(super) struct FatalClose;

impl Detector for FatalClose {
    fn on_session_started(engine: &mut Engine, _id: u64, bot: &str, _shard: u32, at: Timestamp) {
        engine.close_fatal_of_bot(bot, at);
    }

    fn on_pod_deleted(engine: &mut Engine, key: &PodKey, at: Timestamp) {
        engine.close_fatal_of_pod(key, at);
    }

    fn on_fatal(
        engine: &mut Engine,
        key: &PodKey,
        bot: &str,
        at: Timestamp,
        reason: &str,
        code: Option<u16>,
        evidence: &Evidence,
    ) {
        engine.assert_fatal_close(key, bot, at, reason, code, evidence.clone());
    }
}

impl Engine {
    /// The pod `key` logged a fatal close of `bot`'s connection (`reason`, `code`).
    fn assert_fatal_close(
        &mut self,
        key: &PodKey,
        bot: &str,
        at: Timestamp,
        reason: &str,
        code: Option<u16>,
        evidence: Evidence,
    ) {
        let code_text = code
            .map(|c| format!(" (close code {c})"))
            .unwrap_or_default();
        let inst = &self.instances[key];
        let restarts = if inst.restarts > 0 {
            format!("; the pod has restarted {} times", inst.restarts)
        } else {
            String::new()
        };
        let explanation = format!(
            "Discord refused {bot}'s gateway connection from pod {}: {reason}{code_text}; \
             retrying cannot help until the token or the intents in the Developer Portal are fixed{restarts}.",
            key.1
        );
        // The pod, not a session: the refusal ends every session it had.
        let key = Key {
            kind: Kind::FatalClose,
            bot: bot.to_string(),
            subject: Subject::pod(&key.0, &key.1, None),
        };
        self.book
            .assert(Assertion::new(key, at, explanation, vec![evidence]));
    }

    /// A session of `bot` is ready again: the refusals are over.
    fn close_fatal_of_bot(&mut self, bot: &str, at: Timestamp) {
        for k in self.book.active_keys(Kind::FatalClose) {
            if k.bot == bot {
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }

    /// The pod `key` was deleted: its refusals are history.
    fn close_fatal_of_pod(&mut self, key: &PodKey, at: Timestamp) {
        for k in self.book.active_keys(Kind::FatalClose) {
            if k.subject.is_pod(&key.0, &key.1) {
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }
}
