//! `zombie_connection`: a connection that stopped answering heartbeats (ACKs missing: Discord
//! no longer hears the bot, or the bot no longer hears Discord), or a bot whose event loop is
//! blocked so that heartbeats go out late. Either way events are lost until it reconnects;
//! once, it is a warning, and again and again within the window, it pages.

use std::collections::{BTreeMap, VecDeque};

use chrono::TimeDelta;

use super::{Detector, close_quiet_pods, keep_evidence, prune_window, secs};
use crate::engine::findings::{Assertion, Evidence, Key, Subject};
use crate::engine::signals::Signal;
use crate::engine::state::PodKey;
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The kind's metadata (read by metrics, alerts, the API, handovers and the timeline).
pub(super) const META: KindMeta = KindMeta {
    name: "zombie_connection",
    severity: Severity::Warning,
    runbook: "docs/troubleshooting.md#discordbotzombieconnection",
    description: "heartbeat acknowledgements missing (a zombie connection) or heartbeats \
                  blocked by a stalled event loop; critical when it keeps happening",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 13;
/// Its turn on `on_gateway_signal`.
pub(super) const ON_GATEWAY_SIGNAL: u32 = 75;
/// Its turn on `on_tick`: closes after a window without a signal.
pub(super) const ON_TICK: u32 = 75;
/// Its turn on `on_pod_deleted`.
pub(super) const ON_POD_DELETED: u32 = 75;

/// Per pod: recent missed acknowledgements and stalls.
#[derive(Debug, Default)]
pub(super) struct State {
    pods: BTreeMap<PodKey, Zombie>,
}

#[derive(Debug, Default)]
struct Zombie {
    bot: String,
    shard: u32,
    missed: VecDeque<Timestamp>,
    stalls: VecDeque<Timestamp>,
    /// The longest stall logged in the window, in ms.
    worst_ms: Option<u64>,
    derived: bool,
    evidence: Vec<Evidence>,
}

pub(super) struct ZombieConnection;

impl Detector for ZombieConnection {
    fn on_gateway_signal(
        engine: &mut Engine,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        signal: &Signal,
        evidence: &Evidence,
    ) {
        let window = TimeDelta::seconds(engine.cfg.health_window_secs as i64);
        if !matches!(
            signal,
            Signal::HeartbeatMissed { .. } | Signal::Stalled { .. }
        ) {
            return;
        }
        let z = engine
            .detectors
            .zombie_connection
            .pods
            .entry(key.clone())
            .or_default();
        match *signal {
            Signal::HeartbeatMissed { derived } => {
                z.missed.push_back(at);
                z.derived |= derived;
            }
            Signal::Stalled { behind_ms } => {
                z.stalls.push_back(at);
                z.worst_ms = z.worst_ms.max(behind_ms);
            }
            _ => {}
        }
        z.bot = bot.to_string();
        z.shard = shard;
        for q in [&mut z.missed, &mut z.stalls] {
            prune_window(q, at, window, 256);
        }
        keep_evidence(&mut z.evidence, evidence);
        engine.assert_zombie(key, at);
    }

    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        let window = TimeDelta::seconds(engine.cfg.health_window_secs as i64);
        close_quiet_pods(
            engine,
            now,
            window,
            |e| &mut e.detectors.zombie_connection.pods,
            |z| z.missed.back().max(z.stalls.back()),
            Engine::close_zombie,
        );
    }

    fn on_pod_deleted(engine: &mut Engine, key: &PodKey, at: Timestamp) {
        engine.detectors.zombie_connection.pods.remove(key);
        engine.close_zombie(key, at);
    }
}

impl Engine {
    fn assert_zombie(&mut self, key: &PodKey, at: Timestamp) {
        let z = &self.detectors.zombie_connection.pods[key];
        let n = z.missed.len() + z.stalls.len();
        let severity = if n as u64 >= self.cfg.zombie_critical_count.max(1) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let window = secs(self.cfg.health_window_secs as f64);
        let mut parts = Vec::new();
        if !z.missed.is_empty() {
            let how = if z.derived {
                "heartbeats went unacknowledged"
            } else {
                "the library reported an unacknowledged heartbeat (a zombie connection)"
            };
            parts.push(format!("{how} {} time(s)", z.missed.len()));
        }
        if !z.stalls.is_empty() {
            let worst = z
                .worst_ms
                .map(|ms| format!(", up to {}", secs(ms as f64 / 1000.0)))
                .unwrap_or_default();
            parts.push(format!(
                "its event loop was blocked {} time(s){worst}, delaying heartbeats",
                z.stalls.len()
            ));
        }
        let explanation = format!(
            "Pod {}'s gateway connection for {}: {} within {window}; events are lost until \
             the library reconnects{}.",
            key.1,
            z.bot,
            parts.join(" and "),
            if severity == Severity::Critical {
                ", and it keeps happening"
            } else {
                ""
            }
        );
        let since = z
            .missed
            .front()
            .min(z.stalls.front())
            .copied()
            .unwrap_or(at);
        let k = Key {
            kind: Kind::ZombieConnection,
            bot: z.bot.clone(),
            subject: Subject::pod(&key.0, &key.1, Some(z.shard)),
        };
        let a = Assertion::new(k, since, explanation, z.evidence.clone()).severity(severity);
        self.book.assert(a);
    }

    fn close_zombie(&mut self, key: &PodKey, at: Timestamp) {
        for k in self.book.active_keys(Kind::ZombieConnection) {
            if k.subject.is_pod(&key.0, &key.1) {
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }
}
