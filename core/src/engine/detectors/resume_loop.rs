//! `resume_loop`: a pod whose connection keeps dropping and whose resumes keep failing (an
//! invalid-session storm): every failed resume is a new IDENTIFY, one of the day's session
//! starts, while the bot is mostly not connected.

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
    name: "resume_loop",
    severity: Severity::Critical,
    runbook: "docs/troubleshooting.md#discordbotresumeloop",
    description: "a pod's gateway connection keeps dropping and its resumes keep failing \
                  (invalid sessions, new identifies again and again), spending session starts \
                  (critical; a storm of reconnects that do resume is a warning)",
    handover: HandoverEffect::None,
    timeline: TimelineMark::None,
};
/// Its place among the kinds (`Kind`'s order, the order metrics list kinds).
pub(super) const ORDER: u32 = 12;
/// Its turn on `on_gateway_signal`.
pub(super) const ON_GATEWAY_SIGNAL: u32 = 72;
/// Its turn on `on_tick`: closes loops quiet for a window.
pub(super) const ON_TICK: u32 = 72;
/// Its turn on `on_pod_deleted`.
pub(super) const ON_POD_DELETED: u32 = 72;

/// Signals kept per pod (the window's count never needs more).
const MAX_KEPT: usize = 256;

/// Per pod: recent reconnects and re-identifies, and evidence lines.
#[derive(Debug, Default)]
pub(super) struct State {
    pods: BTreeMap<PodKey, Loop>,
}

#[derive(Debug, Default)]
struct Loop {
    bot: String,
    shard: u32,
    reconnects: VecDeque<Timestamp>,
    reidentifies: VecDeque<Timestamp>,
    failed_resumes: u64,
    evidence: Vec<Evidence>,
}

pub(super) struct ResumeLoop;

impl Detector for ResumeLoop {
    fn on_gateway_signal(
        engine: &mut Engine,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        signal: &Signal,
        evidence: &Evidence,
    ) {
        let (reidentify, failed, counts) = match *signal {
            Signal::Interrupted {
                failed_resume,
                new_loss,
            } => (false, failed_resume, new_loss),
            Signal::Reidentified => (true, false, true),
            _ => return,
        };
        let window = TimeDelta::seconds(engine.cfg.health_window_secs as i64);
        let l = engine
            .detectors
            .resume_loop
            .pods
            .entry(key.clone())
            .or_default();
        l.bot = bot.to_string();
        l.shard = shard;
        let list = if reidentify {
            &mut l.reidentifies
        } else {
            &mut l.reconnects
        };
        if counts {
            list.push_back(at);
            if list.len() > MAX_KEPT {
                list.pop_front();
            }
        }
        for q in [&mut l.reconnects, &mut l.reidentifies] {
            prune_window(q, at, window, usize::MAX);
        }
        if failed {
            l.failed_resumes += 1;
        }
        keep_evidence(&mut l.evidence, evidence);
        engine.judge_resume_loop(key, at);
    }

    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        let window = TimeDelta::seconds(engine.cfg.health_window_secs as i64);
        close_quiet_pods(
            engine,
            now,
            window,
            |e| &mut e.detectors.resume_loop.pods,
            |l| l.reconnects.back().max(l.reidentifies.back()),
            Engine::close_resume_loop,
        );
    }

    fn on_pod_deleted(engine: &mut Engine, key: &PodKey, at: Timestamp) {
        engine.detectors.resume_loop.pods.remove(key);
        engine.close_resume_loop(key, at);
    }
}

impl Engine {
    fn judge_resume_loop(&mut self, key: &PodKey, at: Timestamp) {
        let min = self.cfg.resume_loop_min.max(1) as usize;
        let window = secs(self.cfg.health_window_secs as f64);
        let l = &self.detectors.resume_loop.pods[key];
        let (reconnects, reidentifies) = (l.reconnects.len(), l.reidentifies.len());
        let severity = if reidentifies >= min {
            Severity::Critical
        } else if reconnects >= 2 * min {
            Severity::Warning
        } else {
            return;
        };
        let since = l
            .reconnects
            .front()
            .min(l.reidentifies.front())
            .copied()
            .unwrap_or(at);
        let explanation = if severity == Severity::Critical {
            format!(
                "Pod {} lost {}'s gateway connection {reconnects} times in {window} and could \
                 not resume: it identified anew {reidentifies} times ({} resumes refused), each \
                 spending one of the day's session starts while the bot was mostly disconnected.",
                key.1, l.bot, l.failed_resumes
            )
        } else {
            format!(
                "Pod {} lost {}'s gateway connection {reconnects} times in {window}; it resumed \
                 each time so far, but a connection this unstable drops events and soon fails \
                 to resume.",
                key.1, l.bot
            )
        };
        let k = Key {
            kind: Kind::ResumeLoop,
            bot: l.bot.clone(),
            subject: Subject::pod(&key.0, &key.1, Some(l.shard)),
        };
        let a = Assertion::new(k, since, explanation, l.evidence.clone()).severity(severity);
        self.book.assert(a);
    }

    fn close_resume_loop(&mut self, key: &PodKey, at: Timestamp) {
        for k in self.book.active_keys(Kind::ResumeLoop) {
            if k.subject.is_pod(&key.0, &key.1) {
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }
}
