//! The decision on simulated time: the engine fed observations, the planner run every 5 s of
//! their time, as `replay` runs it. No sleeps, no cluster.

use chrono::{TimeDelta, TimeZone, Utc};

use super::config::{Mode, RemediationConfig};
use super::decide::{Decision, Planner, SkipReason, Trigger, still_running};
use super::{OfflinePlanner, Target};
use dge_core::engine::{Engine, EngineConfig, Kind, workload_of};
use dge_core::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, RemediationOutcome,
    SessionEvent, SessionObservation, SourceHealth, StartLimit, Timestamp,
};

const NS: &str = "bots";
const OLD: &str = "agentbroker-6c9f7d8b4-k2x7q";
const NEW: &str = "agentbroker-5f7b9c6d8-p4m2z";
const BOT: &str = "AgentBroker";

/// An engine and a planner on simulated time; every decision is kept with its time.
struct Sim {
    engine: Engine,
    planner: Planner,
    t0: Timestamp,
    last_plan: f64,
    decisions: Vec<(f64, Decision)>,
}

impl Sim {
    fn new(cfg: RemediationConfig) -> Self {
        Self {
            engine: Engine::new(EngineConfig::default()),
            planner: Planner::new(cfg),
            t0: Utc.with_ymd_and_hms(2026, 4, 19, 4, 0, 0).unwrap(),
            last_plan: 0.0,
            decisions: Vec::new(),
        }
    }

    fn on() -> Self {
        Self::new(RemediationConfig {
            mode: Mode::On,
            ..RemediationConfig::default()
        })
    }

    fn at(&self, secs: f64) -> Timestamp {
        self.t0 + TimeDelta::milliseconds((secs * 1000.0) as i64)
    }

    /// Ticks each second up to `secs`, planning every 5 s; an action ends at once.
    fn tick_to(&mut self, secs: f64) {
        let mut t = self
            .engine
            .now()
            .map_or(0.0, |n| (n - self.t0).num_milliseconds() as f64 / 1000.0);
        while t < secs {
            t = (t + 1.0).min(secs);
            self.engine.tick(self.at(t));
            if t - self.last_plan >= 5.0 {
                self.last_plan = t;
                let snap = self.engine.snapshot();
                for d in self.planner.plan(&snap, self.at(t)) {
                    if let Decision::Act(target) = &d {
                        self.planner.guards.end(&target.bot);
                    }
                    self.decisions.push((t, d));
                }
            }
        }
    }

    fn obs(&mut self, secs: f64, body: Body) {
        self.tick_to(secs);
        self.engine.observe(Observation {
            at: self.at(secs),
            source: "test".into(),
            body,
        });
    }

    fn log(&mut self, secs: f64, pod: &str, event: SessionEvent) {
        self.obs(
            secs,
            Body::Session(SessionObservation {
                bot: Some(BOT.into()),
                instance: InstanceId::pod(NS, pod).into(),
                shard: None,
                event,
                line: None,
            }),
        );
    }

    fn pod(&mut self, secs: f64, pod: &str, change: InstanceChange) {
        self.obs(
            secs,
            Body::Instance(InstanceObservation {
                instance: InstanceId::pod(NS, pod),
                bot: Some(BOT.into()),
                workload: Some(workload_of(pod)),
                change,
            }),
        );
    }

    fn start_pod(&mut self, t: f64, pod: &str) {
        self.pod(t, pod, InstanceChange::Created);
        self.pod(t + 1.0, pod, InstanceChange::Running);
        self.log(t + 3.0, pod, SessionEvent::Ready { session_id: None });
        self.pod(t + 4.0, pod, InstanceChange::Ready);
    }

    fn traffic(&mut self, pod: &str, from: f64, to: f64, every: f64) {
        let mut t = from;
        while t < to {
            self.log(t, pod, SessionEvent::Dispatch { kind: None });
            t += every;
        }
    }

    fn acts(&self) -> Vec<(f64, &Target)> {
        self.decisions
            .iter()
            .filter_map(|(t, d)| match d {
                Decision::Act(x) => Some((*t, x)),
                _ => None,
            })
            .collect()
    }

    fn skips(&self) -> Vec<SkipReason> {
        self.decisions
            .iter()
            .filter_map(|(_, d)| match d {
                Decision::Skip(_, r) => Some(*r),
                _ => None,
            })
            .collect()
    }
}

/// The seed incident up to the new pod's connection: an hour of one event every 20 s on the
/// old pod, the rollout, the old pod still receiving, then killed without a clean close (so
/// Discord keeps its session for the lingering window, 90 s).
fn incident(sim: &mut Sim) {
    sim.start_pod(0.0, OLD);
    sim.traffic(OLD, 10.0, 3600.0, 20.0);
    sim.start_pod(3600.0, NEW);
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.traffic(OLD, 3606.0, 3630.0, 3.0);
    let exit = InstanceChange::Exited {
        code: Some(137),
        reason: None,
    };
    sim.pod(3636.0, OLD, exit);
    sim.pod(3637.0, OLD, InstanceChange::Deleted);
}

/// The deaf session is acted on once, after the peer's lingering window and after ln(1000)
/// expected intervals of silence, on the right workload.
#[test]
fn the_incident_is_acted_on_once_after_the_peer_is_gone() {
    let mut sim = Sim::on();
    incident(&mut sim);
    sim.tick_to(3600.0 + 3600.0);
    let acts = sim.acts();
    assert_eq!(acts.len(), 1, "{:?}", sim.decisions);
    let (t, target) = acts[0];
    assert_eq!(target.workload, "agentbroker");
    assert_eq!(target.namespace, NS);
    assert_eq!(target.pod, NEW);
    assert_eq!(target.peers, vec![OLD.to_string()]);
    assert_eq!(target.trigger, Trigger::Silent);
    // The old pod died at 3636 s without a clean close: its session lingers until 3726 s.
    assert!(
        t >= 3726.0,
        "acted at {t}, before the peer's lingering window ended"
    );
    // And the silence lasted ln(1000) expected intervals (~20 s each): about 138 s.
    assert!(t >= 3603.0 + 130.0, "acted at {t}");
    assert!(t <= 3760.0, "acted late, at {t}");
    assert!(sim.skips().is_empty(), "{:?}", sim.skips());
}

/// Each guard that holds the action names itself, once.
#[test]
fn each_guard_prevents_the_action_and_says_which() {
    // Discord's budget is low.
    let mut sim = Sim::on();
    sim.obs(
        5.0,
        Body::StartLimit(StartLimit {
            bot: BOT.into(),
            total: 1000,
            remaining: 3,
            reset_after_ms: 3_600_000,
            max_concurrency: 1,
            recommended_shards: 1,
        }),
    );
    incident(&mut sim);
    sim.tick_to(5000.0);
    assert!(sim.acts().is_empty());
    assert_eq!(sim.skips(), vec![SkipReason::IdentifyBudget]);

    // A source is down.
    let mut sim = Sim::on();
    incident(&mut sim);
    let down = SourceHealth {
        source: "kubernetes".into(),
        up: false,
        detail: "watch failing".into(),
        disabled: false,
    };
    sim.obs(3700.0, Body::SourceHealth(down));
    sim.tick_to(5000.0);
    assert!(sim.acts().is_empty());
    assert_eq!(sim.skips(), vec![SkipReason::SourceUnhealthy]);

    // The new pod's container restarted (and connected deaf again): a crash loop, for
    // `crash_window_secs` after the restart.
    let mut sim = Sim::on();
    incident(&mut sim);
    let exit = InstanceChange::Exited {
        code: Some(1),
        reason: Some("Error".into()),
    };
    sim.pod(3688.0, NEW, exit);
    sim.pod(3690.0, NEW, InstanceChange::Running);
    sim.log(3692.0, NEW, SessionEvent::Ready { session_id: None });
    sim.tick_to(3690.0 + 590.0);
    assert!(sim.acts().is_empty());
    assert_eq!(sim.skips(), vec![SkipReason::CrashLoop]);

    // Two actions of the bot in the last hour already.
    let mut sim = Sim::on();
    let earlier = |s: u64| Target {
        bot: BOT.into(),
        namespace: NS.into(),
        workload: "agentbroker".into(),
        pod: "x".into(),
        shard: 0,
        session: 1000 + s,
        trigger: Trigger::Silent,
        peers: vec![],
        silent_since: Utc::now(),
    };
    let t = sim.at(3000.0);
    sim.planner
        .guards
        .begin(&earlier(1), t - TimeDelta::minutes(40));
    sim.planner.guards.end(BOT);
    sim.planner.guards.begin(&earlier(2), t);
    sim.planner.guards.end(BOT);
    incident(&mut sim);
    sim.tick_to(5000.0);
    // Held by the hourly limit, then (an hour after the first) by the 30 min back-off after
    // the second, then acted on when that passed.
    assert_eq!(
        sim.skips(),
        vec![SkipReason::RateLimit, SkipReason::Backoff],
        "{:?}",
        sim.decisions
    );
    let acts: Vec<f64> = sim.acts().iter().map(|(t, _)| *t).collect();
    assert_eq!(acts, vec![3000.0 + 1800.0]);
}

/// The back-off doubles with each recent action; in flight blocks a second one.
#[test]
fn back_off_grows_and_one_action_is_in_flight() {
    let cfg = RemediationConfig::default();
    let mut p = Planner::new(cfg.clone());
    let t0 = Utc.with_ymd_and_hms(2026, 4, 19, 4, 0, 0).unwrap();
    let target = |s: u64| Target {
        bot: BOT.into(),
        namespace: NS.into(),
        workload: "agentbroker".into(),
        pod: "x".into(),
        shard: 0,
        session: s,
        trigger: Trigger::Silent,
        peers: vec![],
        silent_since: t0,
    };
    let g = &mut p.guards;
    assert_eq!(g.check(&target(1), &cfg, t0), Ok(()));
    g.begin(&target(1), t0);
    assert_eq!(g.check(&target(2), &cfg, t0), Err(SkipReason::InFlight));
    g.end(BOT);
    let m = |min: i64| t0 + TimeDelta::minutes(min);
    assert_eq!(g.check(&target(2), &cfg, m(14)), Err(SkipReason::Backoff));
    assert_eq!(g.check(&target(2), &cfg, m(15)), Ok(()));
    g.begin(&target(2), m(15));
    g.end(BOT);
    // Two in the last hour: the hourly limit, then a 30 min back-off.
    assert_eq!(g.check(&target(3), &cfg, m(50)), Err(SkipReason::RateLimit));
    assert_eq!(g.check(&target(3), &cfg, m(61)), Ok(()));
    g.begin(&target(3), m(61));
    g.end(BOT);
    // Three in 6 h: 60 min after the last.
    assert_eq!(
        g.check(&target(4), &cfg, m(61 + 59)),
        Err(SkipReason::Backoff)
    );
    assert_eq!(g.check(&target(4), &cfg, m(61 + 60)), Ok(()));
    assert!(g.decided(1) && g.decided(3) && !g.decided(4));
}

/// An unverifiable finding (the session was inferred: no READY seen) is never acted on.
#[test]
fn an_unverified_session_is_not_acted_on() {
    let mut sim = Sim::on();
    sim.start_pod(0.0, OLD);
    sim.traffic(OLD, 10.0, 3600.0, 20.0);
    sim.pod(3600.0, NEW, InstanceChange::Created);
    sim.pod(3601.0, NEW, InstanceChange::Running);
    sim.log(3603.0, NEW, SessionEvent::Resumed);
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.traffic(OLD, 3606.0, 3630.0, 3.0);
    sim.pod(3637.0, OLD, InstanceChange::Deleted);
    sim.tick_to(6000.0);
    assert!(sim.acts().is_empty(), "{:?}", sim.decisions);
}

/// After the scale-down, the engine says what still stands: the pod, then its lingering
/// session, then nothing.
#[test]
fn the_wait_follows_the_pods_and_their_lingering_window() {
    let mut sim = Sim::on();
    incident(&mut sim);
    sim.tick_to(3800.0);
    let now = sim.at(3800.0);
    let left = still_running(&sim.engine.snapshot(), NS, "agentbroker", BOT, now);
    assert!(left.is_some_and(|l| l.contains(NEW)));
    sim.pod(3801.0, NEW, InstanceChange::Terminating { grace: Some(30) });
    let exit = InstanceChange::Exited {
        code: Some(137),
        reason: None,
    };
    sim.pod(3805.0, NEW, exit);
    sim.pod(3806.0, NEW, InstanceChange::Deleted);
    let snap = sim.engine.snapshot();
    let left = still_running(&snap, NS, "agentbroker", BOT, sim.at(3810.0));
    assert!(left.is_some_and(|l| l.contains("lingers")), "{snap:?}");
    assert_eq!(
        still_running(&snap, NS, "agentbroker", BOT, sim.at(3896.0)),
        None
    );
}

/// 24 hours of a quiet fleet: a bot with one event every 1–4 min and one with one every
/// 10–40 min, each restarted cleanly (scale 0 then 1) and rolled out (overlap, clean close):
/// no action, whatever the silences.
#[test]
fn a_quiet_fleet_for_24_hours_causes_no_action() {
    let mut sim = Sim::on();
    let mut rng = fastrand::Rng::with_seed(16);
    let pods = [
        "agentbroker-6c9f7d8b4-k2x7q",
        "agentbroker-5f7b9c6d8-p4m2z",
        "agentbroker-7d8e9f0a1-q9w8e",
    ];
    sim.start_pod(0.0, pods[0]);
    let mut t = 10.0;
    let mut current = 0;
    let day = 24.0 * 3600.0;
    let (mut restarted, mut rolled) = (false, false);
    while t < day {
        sim.log(t, pods[current], SessionEvent::Dispatch { kind: None });
        t += 60.0 * (1.0 + rng.f64() * 39.0);
        if !restarted && t > 3.0 * 3600.0 {
            // Scale 0 then 1: the old pod closes, goes, then the new one starts.
            restarted = true;
            sim.log(t, pods[current], SessionEvent::ShuttingDown);
            sim.log(t + 1.0, pods[current], SessionEvent::Stopped);
            sim.pod(
                t + 2.0,
                pods[current],
                InstanceChange::Exited {
                    code: Some(0),
                    reason: None,
                },
            );
            sim.pod(t + 3.0, pods[current], InstanceChange::Deleted);
            current = 1;
            sim.start_pod(t + 10.0, pods[current]);
            t += 20.0;
        } else if !rolled && t > 12.0 * 3600.0 {
            // A rollout: the new pod connects while the old one still holds the shard.
            rolled = true;
            sim.start_pod(t, pods[2]);
            sim.pod(
                t + 5.0,
                pods[current],
                InstanceChange::Terminating { grace: Some(30) },
            );
            sim.log(t + 6.0, pods[current], SessionEvent::ShuttingDown);
            sim.log(t + 7.0, pods[current], SessionEvent::Stopped);
            sim.pod(
                t + 8.0,
                pods[current],
                InstanceChange::Exited {
                    code: Some(0),
                    reason: None,
                },
            );
            sim.pod(t + 9.0, pods[current], InstanceChange::Deleted);
            current = 2;
            t += 20.0;
        }
    }
    sim.tick_to(day);
    assert!(restarted && rolled);
    assert!(sim.acts().is_empty(), "{:?}", sim.acts());
}

/// `replay`'s planner: a dry run in the engine's findings, counted, and nothing when off.
#[test]
fn offline_planning_reports_a_dry_run_finding() {
    let mut sim = Sim::on();
    let mut offline = OfflinePlanner::new(RemediationConfig {
        mode: Mode::DryRun,
        ..RemediationConfig::default()
    });
    incident(&mut sim);
    let mut engine = std::mem::replace(&mut sim.engine, Engine::new(EngineConfig::default()));
    let mut t = engine.now().unwrap();
    for _ in 0..600 {
        t += TimeDelta::seconds(1);
        engine.tick(t);
        offline.after(&mut engine);
    }
    let f: Vec<_> = engine
        .all_findings()
        .into_iter()
        .filter(|f| f.kind == Kind::Remediation)
        .collect();
    assert_eq!(f.len(), 1);
    assert!(
        f[0].explanation.starts_with("Dry run:"),
        "{}",
        f[0].explanation
    );
    assert_eq!(
        engine
            .remediation_totals()
            .get(&(BOT.to_string(), RemediationOutcome::DryRun)),
        Some(&1)
    );
}

/// `preemptive = true`: the new session started next to a peer that kept receiving; once the
/// peer's session is gone (its lingering window over) it is acted on at once, before its
/// silence is confirmed. Off by default: the same incident waits for the confirmed silence.
#[test]
fn preemptive_acts_once_the_peer_is_gone() {
    let mut sim = Sim::new(RemediationConfig {
        mode: Mode::On,
        preemptive: true,
        ..RemediationConfig::default()
    });
    incident(&mut sim);
    sim.tick_to(3600.0 + 3600.0);
    let acts = sim.acts();
    assert_eq!(acts.len(), 1, "{:?}", sim.decisions);
    let (t, target) = acts[0];
    assert_eq!(target.trigger, Trigger::Preemptive);
    assert!((3726.0..3735.0).contains(&t), "acted at {t}");
}

/// `[remediation]` is a top-level section of the config; its unknown keys and bad values are
/// rejected by name.
#[test]
fn the_section_loads_and_rejects_unknown_keys() {
    use crate::config::Config;
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};
    let load = |text: &str| {
        Config::from_figment(
            &Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    };
    let cfg = load("[remediation]\nmode = \"dry-run\"\nmax_per_hour = 1\n").unwrap();
    assert_eq!(cfg.remediation.mode, Mode::DryRun);
    assert_eq!(cfg.remediation.max_per_hour, 1);
    assert_eq!(load("").unwrap().remediation.mode, Mode::Off);
    let e = load("[remediation]\nmode = \"on\"\nretries = 3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("retries"), "{e}");
    let e = load("[remediation]\nmode = \"maybe\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("maybe"), "{e}");
    let e = load("[remediation]\nmode = \"on\"\nmax_per_hour = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_per_hour"), "{e}");
}
