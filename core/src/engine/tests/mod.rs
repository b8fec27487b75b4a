//! Engine scenarios on simulated time: every clock reading is an observation or a tick.

mod handovers;
mod health;
mod scenarios;
mod subjects;

use chrono::{TimeDelta, TimeZone, Utc};

use super::*;
use crate::observation::{
    InstanceChange, InstanceObservation, SessionEvent, SessionObservation, StartLimit,
};

pub(super) const NS: &str = "bots";

pub(super) struct Sim {
    pub(super) engine: Engine,
    t0: Timestamp,
}

impl Sim {
    pub(super) fn new() -> Self {
        Self {
            engine: Engine::new(EngineConfig::default()),
            t0: Utc.with_ymd_and_hms(2026, 4, 19, 4, 0, 0).unwrap(),
        }
    }

    pub(super) fn at(&self, secs: f64) -> Timestamp {
        self.t0 + TimeDelta::milliseconds((secs * 1000.0) as i64)
    }

    pub(super) fn tick_to(&mut self, secs: f64) {
        let from = self.engine.now().unwrap_or(self.t0);
        let mut t = from;
        let end = self.at(secs);
        while t < end {
            t = (t + TimeDelta::seconds(1)).min(end);
            self.engine.tick(t);
        }
    }

    pub(super) fn obs(&mut self, secs: f64, body: Body) {
        self.tick_to(secs);
        self.engine.observe(Observation {
            at: self.at(secs),
            source: "test".into(),
            body,
        });
    }

    pub(super) fn log(&mut self, secs: f64, pod: &str, bot: Option<&str>, event: SessionEvent) {
        self.obs(
            secs,
            Body::Session(SessionObservation {
                bot: bot.map(str::to_string),
                instance: InstanceId::pod(NS, pod).into(),
                shard: None,
                event,
                line: None,
            }),
        );
    }

    pub(super) fn pod(&mut self, secs: f64, pod: &str, change: InstanceChange) {
        self.obs(
            secs,
            Body::Instance(InstanceObservation {
                instance: InstanceId::pod(NS, pod),
                bot: None,
                workload: Some(workload_of(pod)),
                change,
            }),
        );
    }

    pub(super) fn sample(&mut self, secs: f64, bot: &str, remaining: u32) {
        self.obs(
            secs,
            Body::StartLimit(StartLimit {
                bot: bot.into(),
                total: 1000,
                remaining,
                reset_after_ms: 80_000_000,
                max_concurrency: 1,
                recommended_shards: 1,
            }),
        );
    }

    /// A pod that starts, connects and is ready at `t`.
    pub(super) fn start_pod(&mut self, t: f64, pod: &str, bot: &str) {
        self.pod(t, pod, InstanceChange::Created);
        self.pod(t + 1.0, pod, InstanceChange::Running);
        self.log(t + 1.5, pod, None, SessionEvent::Starting);
        self.log(
            t + 3.0,
            pod,
            Some(bot),
            SessionEvent::Ready { session_id: None },
        );
        self.pod(t + 4.0, pod, InstanceChange::Ready);
    }

    /// Events every `every` seconds on `pod` in [from, to).
    pub(super) fn traffic(&mut self, pods: &[&str], from: f64, to: f64, every: f64) {
        let mut t = from;
        while t < to {
            for p in pods {
                self.log(t, p, None, SessionEvent::Dispatch { kind: None });
            }
            t += every;
        }
    }

    pub(super) fn findings(&self) -> Vec<Finding> {
        self.engine.all_findings()
    }

    pub(super) fn kinds_for(&self, pod: &str) -> Vec<Kind> {
        self.findings()
            .iter()
            .filter(|f| f.subject.pod_label() == pod)
            .map(|f| f.kind)
            .collect()
    }
}

pub(super) const OLD: &str = "agentbroker-6c9f7d8b4-k2x7q";
pub(super) const NEW: &str = "agentbroker-5f7b9c6d8-p4m2z";

/// The reported incident: rollout restart, the old pod keeps its session and its events while
/// the new one connects; the new one stays deaf.
pub(super) fn incident() -> Sim {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.traffic(&[OLD], 3606.0, 3615.0, 3.0);
    sim.log(3615.0, OLD, None, SessionEvent::ShuttingDown);
    sim.log(3615.6, OLD, None, SessionEvent::Stopped);
    sim.pod(
        3616.0,
        OLD,
        InstanceChange::Exited {
            code: Some(0),
            reason: None,
        },
    );
    sim.pod(3617.0, OLD, InstanceChange::Deleted);
    sim.tick_to(3600.0 + 600.0);
    sim
}
