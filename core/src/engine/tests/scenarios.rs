//! The scenarios of the design: the incident, rollouts, quiet nights, duplicates, crash
//! loops, Discord's count.

use super::*;
use crate::observation::SourceHealth;

#[test]
fn incident_new_pod_is_concurrent_then_silent() {
    let sim = incident();
    assert!(sim.kinds_for(OLD).is_empty(), "{:#?}", sim.findings());
    let new = sim.kinds_for(NEW);
    assert!(new.contains(&Kind::ConcurrentSessions), "{new:?}");
    assert!(new.contains(&Kind::SilentSession), "{new:?}");
    let silent = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::SilentSession)
        .unwrap();
    assert_eq!(silent.severity, Severity::Critical);
    assert!(silent.until.is_none());
    assert_eq!(silent.since, sim.at(3603.0));
    assert!(silent.explanation.contains(OLD), "{}", silent.explanation);
    // Flagged within the rate-derived threshold (~138 s at one event per 20 s), not a fixed one.
    let snap = sim.engine.snapshot();
    let series = snap.series.iter().find(|s| s.pod == NEW).unwrap();
    assert!(series.live && series.silent);
    let concurrent = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::ConcurrentSessions)
        .unwrap();
    assert_eq!(concurrent.until, Some(sim.at(3615.6)));
    let bot = &snap.bots[0];
    assert_eq!(bot.overlap.count, 1);
}

#[test]
fn silent_is_flagged_at_the_learned_threshold() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.tick_to(3603.0 + 100.0);
    assert!(!sim.kinds_for(NEW).contains(&Kind::SilentSession));
    sim.tick_to(3603.0 + 160.0);
    assert!(sim.kinds_for(NEW).contains(&Kind::SilentSession));
}

#[test]
fn successful_rollout_raises_no_silence() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.log(3605.5, OLD, None, SessionEvent::Stopped);
    sim.pod(
        3606.0,
        OLD,
        InstanceChange::Exited {
            code: Some(0),
            reason: None,
        },
    );
    sim.traffic(&[NEW], 3610.0, 7200.0, 20.0);
    // Then a long quiet stretch: the new session proved itself, so at most a quiet warning.
    sim.tick_to(7200.0 + 1200.0);
    let kinds = sim.kinds_for(NEW);
    assert!(!kinds.contains(&Kind::SilentSession), "{kinds:?}");
    assert!(kinds.contains(&Kind::ConcurrentSessions));
}

#[test]
fn workaround_scale_zero_then_one_is_clean() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.pod(3600.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.log(3600.2, OLD, None, SessionEvent::ShuttingDown);
    sim.log(3600.8, OLD, None, SessionEvent::Stopped);
    sim.pod(
        3601.0,
        OLD,
        InstanceChange::Exited {
            code: Some(0),
            reason: None,
        },
    );
    sim.pod(3602.0, OLD, InstanceChange::Deleted);
    sim.start_pod(3640.0, NEW, "AgentBroker");
    sim.traffic(&[NEW], 3650.0, 5400.0, 20.0);
    sim.tick_to(5400.0);
    assert!(sim.findings().is_empty(), "{:#?}", sim.findings());
}

#[test]
fn quiet_night_without_restart_is_never_silent() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    // A busy evening, then events thin out over the night, with a 45-minute gap.
    sim.traffic(&[OLD], 10.0, 4.0 * 3600.0, 30.0);
    sim.traffic(&[OLD], 4.0 * 3600.0, 6.0 * 3600.0, 600.0);
    sim.tick_to(6.0 * 3600.0 + 2700.0);
    sim.traffic(&[OLD], 6.0 * 3600.0 + 2700.0, 8.0 * 3600.0, 900.0);
    let kinds = sim.kinds_for(OLD);
    assert!(!kinds.contains(&Kind::SilentSession), "{kinds:?}");
}

#[test]
fn quiet_session_is_a_warning_after_a_very_long_silence() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 10.0);
    sim.tick_to(3600.0 + 3.0 * 3600.0);
    let f = sim.findings();
    let quiet: Vec<_> = f.iter().filter(|f| f.kind == Kind::QuietSession).collect();
    assert_eq!(quiet.len(), 1, "{f:#?}");
    assert_eq!(quiet[0].severity, Severity::Warning);
    // The next event closes it.
    sim.log(
        3600.0 + 3.0 * 3600.0 + 1.0,
        OLD,
        None,
        SessionEvent::Dispatch { kind: None },
    );
    assert!(sim.engine.active_findings().next().is_none());
}

#[test]
fn duplicate_delivery_when_both_sessions_receive() {
    let mut sim = Sim::new();
    let (a, b) = ("tallybot-7f8d9c6b5-aaaaa", "tallybot-7f8d9c6b5-bbbbb");
    sim.start_pod(0.0, a, "TallyBot");
    sim.traffic(&[a], 10.0, 600.0, 15.0);
    sim.start_pod(600.0, b, "TallyBot");
    sim.pod(605.0, a, InstanceChange::Terminating { grace: Some(300) });
    sim.traffic(&[a, b], 610.0, 900.0, 15.0);
    // The old pod ignores SIGTERM and is killed: its session lingers.
    sim.pod(
        905.0,
        a,
        InstanceChange::Exited {
            code: Some(137),
            reason: Some("Error".into()),
        },
    );
    sim.traffic(&[b], 910.0, 1200.0, 15.0);
    let f = sim.findings();
    let dup = f
        .iter()
        .find(|f| f.kind == Kind::DuplicateDelivery)
        .expect("duplicate");
    assert_eq!(dup.subject.pod_label(), b);
    assert!(dup.until.is_some(), "closes once only one session receives");
    let linger = f
        .iter()
        .find(|f| f.kind == Kind::LingeringSession)
        .expect("lingering");
    assert_eq!(linger.subject.pod_label(), a);
    assert_eq!(linger.until, Some(sim.at(905.0 + 90.0)));
    assert!(!f.iter().any(|f| f.kind == Kind::SilentSession), "{f:#?}");
}

#[test]
fn killed_pod_leaves_a_lingering_session() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 1000.0, 20.0);
    sim.pod(1000.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.pod(
        1030.0,
        OLD,
        InstanceChange::Exited {
            code: Some(143),
            reason: Some("Error".into()),
        },
    );
    sim.start_pod(1040.0, NEW, "AgentBroker");
    sim.tick_to(1300.0);
    let f = sim.findings();
    let linger = f.iter().find(|f| f.kind == Kind::LingeringSession).unwrap();
    assert_eq!(linger.subject.pod_label(), OLD);
    assert!(linger.explanation.contains("143"));
    // The new session connected while the old one lingered on Discord's side.
    let conc = f
        .iter()
        .find(|f| f.kind == Kind::ConcurrentSessions)
        .unwrap();
    assert_eq!(conc.subject.pod_label(), NEW);
    assert_eq!(conc.until, Some(sim.at(1120.0)));
    assert!(
        f.iter()
            .any(|f| f.kind == Kind::SilentSession && f.subject.pod_label() == NEW)
    );
}

#[test]
fn crash_loop_on_disallowed_intents() {
    let mut sim = Sim::new();
    let pod = "agentbroker-6c9f7d8b4-zzzzz";
    sim.engine = Engine::new(EngineConfig::default()).with_default_bot(Some("AgentBroker".into()));
    sim.pod(0.0, pod, InstanceChange::Created);
    let mut t = 1.0;
    for i in 0..5 {
        sim.pod(t, pod, InstanceChange::Running);
        sim.log(t + 0.5, pod, None, SessionEvent::Starting);
        sim.log(
            t + 1.5,
            pod,
            None,
            SessionEvent::Fatal {
                reason: "disallowed gateway intents".into(),
                code: Some(4014),
            },
        );
        sim.pod(
            t + 2.0,
            pod,
            InstanceChange::Exited {
                code: Some(1),
                reason: Some("Error".into()),
            },
        );
        t += 10.0 * 2f64.powi(i);
    }
    sim.pod(t, pod, InstanceChange::Running);
    sim.tick_to(t + 200.0);
    let f = sim.findings();
    let fatal: Vec<_> = f.iter().filter(|f| f.kind == Kind::FatalClose).collect();
    assert_eq!(fatal.len(), 1, "one finding for the whole loop: {f:#?}");
    assert!(fatal[0].until.is_none());
    assert!(fatal[0].explanation.contains("4014"));
    assert!(
        f.iter()
            .any(|f| f.kind == Kind::BotOffline && f.bot == "AgentBroker")
    );
    let snap = sim.engine.snapshot();
    assert_eq!(snap.bots[0].close_codes.get(&4014), Some(&5));
    assert_eq!(snap.bots[0].identifies_logs, 5);
}

#[test]
fn unattributed_identifies_are_exactly_the_unexplained_drops() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.sample(5.0, "AgentBroker", 999);
    let mut remaining = 999;
    for i in 1..=10 {
        let t = 5.0 + 60.0 * i as f64;
        sim.log(t - 30.0, OLD, None, SessionEvent::Dispatch { kind: None });
        if [3, 6, 8].contains(&i) {
            remaining -= 1;
        }
        sim.sample(t, "AgentBroker", remaining);
    }
    sim.tick_to(2000.0);
    let snap = sim.engine.snapshot();
    assert_eq!(snap.bots[0].unattributed, 3);
    assert_eq!(snap.bots[0].identifies_discord, 3);
    assert_eq!(
        sim.findings()
            .iter()
            .filter(|f| f.kind == Kind::UnattributedIdentify)
            .count(),
        3
    );
}

#[test]
fn a_visible_rollout_explains_the_drop() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.sample(5.0, "AgentBroker", 999);
    sim.sample(65.0, "AgentBroker", 999);
    sim.start_pod(100.0, NEW, "AgentBroker");
    sim.sample(125.0, "AgentBroker", 998);
    sim.sample(185.0, "AgentBroker", 998);
    sim.tick_to(600.0);
    let snap = sim.engine.snapshot();
    assert_eq!(snap.bots[0].identifies_discord, 1);
    assert_eq!(snap.bots[0].unattributed, 0);
    assert!(
        !sim.findings()
            .iter()
            .any(|f| f.kind == Kind::UnattributedIdentify)
    );
}

#[test]
fn start_limit_low_and_window_reset() {
    let mut sim = Sim::new();
    sim.sample(0.0, "AgentBroker", 50);
    assert!(sim.findings().iter().any(|f| f.kind == Kind::StartLimitLow));
    // A reset: remaining back up, not a negative drop.
    sim.obs(
        100.0,
        Body::StartLimit(StartLimit {
            bot: "AgentBroker".into(),
            total: 1000,
            remaining: 1000,
            reset_after_ms: 86_400_000,
            max_concurrency: 1,
            recommended_shards: 1,
        }),
    );
    let f = sim.findings();
    assert!(f.iter().all(|f| f.until.is_some()), "{f:#?}");
    assert_eq!(sim.engine.snapshot().bots[0].identifies_discord, 0);
}

#[test]
fn source_health_and_out_of_order_input_do_not_panic() {
    let mut sim = Sim::new();
    sim.obs(
        10.0,
        Body::SourceHealth(SourceHealth {
            disabled: false,
            source: "x".into(),
            up: false,
            detail: "gone".into(),
        }),
    );
    sim.log(5.0, OLD, None, SessionEvent::Dispatch { kind: None });
    sim.log(1.0, OLD, None, SessionEvent::Stopped);
    sim.pod(0.5, OLD, InstanceChange::Deleted);
    sim.tick_to(5000.0);
}

#[test]
fn workload_names() {
    assert_eq!(workload_of("agentbroker-7d9f8c6b5d-x2x9k"), "agentbroker");
    assert_eq!(workload_of("tally-0"), "tally");
    assert_eq!(workload_of("standalone"), "standalone");
}

#[test]
fn log_lines_before_the_pod_object_join_its_namespace() {
    let mut sim = Sim::new();
    sim.obs(
        0.0,
        Body::Session(SessionObservation {
            bot: Some("AgentBroker".into()),
            instance: InstanceId::pod("", OLD).into(),
            shard: None,
            event: SessionEvent::Ready { session_id: None },
            line: None,
        }),
    );
    sim.pod(1.0, OLD, InstanceChange::Running);
    let snap = sim.engine.snapshot();
    assert_eq!(snap.series.len(), 1);
    assert_eq!(snap.series[0].namespace, NS);
    assert_eq!(sim.engine.instances().count(), 1);
}

/// Session lifecycle changes, in order, as (what, pod) pairs; findings as their kind.
fn lifecycle(changes: &[Change]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|c| match c {
            Change::Opened(f) => (
                format!("opened {}", f.kind.as_str()),
                f.subject.pod_label().to_string(),
            ),
            Change::Closed(f) => (
                format!("closed {}", f.kind.as_str()),
                f.subject.pod_label().to_string(),
            ),
            Change::SessionStarted { session, .. } => ("started".into(), session.pod.clone()),
            Change::SessionUpdate { state, .. } => (state.name().into(), String::new()),
            Change::SessionEnded { session } => (
                format!("ended {}", session.end.as_ref().unwrap().outcome()),
                session.pod.clone(),
            ),
            Change::HandoverStarted { handover } => {
                ("handover started".into(), handover.to_pod.clone())
            }
            Change::Handover { handover } => (
                format!("handover {}", handover.outcome.unwrap().as_str()),
                handover.to_pod.clone(),
            ),
        })
        .collect()
}

#[test]
fn session_changes_tell_the_handover() {
    let mut sim = incident();
    let changes = sim.engine.take_changes();
    let seq = lifecycle(&changes);
    let pos = |what: &str, pod: &str| {
        seq.iter()
            .position(|(w, p)| w == what && (pod.is_empty() || p == pod))
            .unwrap_or_else(|| panic!("{what} {pod} missing in {seq:?}"))
    };
    let started_old = pos("started", OLD);
    let started_new = pos("started", NEW);
    assert!(started_old < pos("first_event", "") && pos("first_event", "") < started_new);
    assert!(started_new < pos("opened concurrent_sessions", NEW));
    assert!(started_new < pos("pod_terminating", ""));
    assert!(pos("pod_terminating", "") < pos("shutting_down", ""));
    assert!(pos("shutting_down", "") < pos("ended closed", OLD));
    assert!(pos("ended closed", OLD) < pos("opened silent_session", NEW));

    // The new session names its predecessor, and it is a handover (another pod).
    let ids: Vec<(u64, Option<u64>, bool)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::SessionStarted {
                session,
                predecessor,
                handover,
            } => Some((session.id, *predecessor, *handover)),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0].1, None);
    assert_eq!(ids[1].1, Some(ids[0].0));
    assert!(ids[1].2);
    // The old pod kept receiving events after the new session connected: said once, of the
    // new session.
    let predecessor_active: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::SessionUpdate {
                id,
                state: SessionState::PredecessorActive { other_pod },
                ..
            } => Some((*id, other_pod.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(predecessor_active, vec![(ids[1].0, OLD.to_string())]);
    // One first event per session that received any: the new one never did.
    let firsts = changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::SessionUpdate {
                    state: SessionState::FirstEvent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(firsts, 1);
    // Times come from the observations.
    let ended = changes
        .iter()
        .find_map(|c| match c {
            Change::SessionEnded { session } => Some(session.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ended.ended_at, Some(sim.at(3615.6)));
    assert!(sim.engine.take_changes().is_empty());
}

#[test]
fn reconnect_on_the_same_pod_is_not_a_handover_and_restart_is() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 100.0, 20.0);
    sim.log(100.0, OLD, None, SessionEvent::Closed { code: Some(4000) });
    sim.log(101.0, OLD, None, SessionEvent::Resumed);
    sim.log(
        200.0,
        OLD,
        None,
        SessionEvent::Ready {
            session_id: Some("b".into()),
        },
    );
    sim.pod(
        300.0,
        OLD,
        InstanceChange::Exited {
            code: Some(137),
            reason: None,
        },
    );
    sim.pod(310.0, OLD, InstanceChange::Running);
    sim.log(
        315.0,
        OLD,
        None,
        SessionEvent::Ready {
            session_id: Some("c".into()),
        },
    );
    let changes = sim.engine.take_changes();
    let seq = lifecycle(&changes);
    assert!(seq.iter().any(|(w, _)| w == "reconnecting"), "{seq:?}");
    assert!(seq.iter().any(|(w, _)| w == "resumed"), "{seq:?}");
    assert!(seq.iter().any(|(w, _)| w == "ended replaced"), "{seq:?}");
    assert!(
        seq.iter().any(|(w, _)| w == "ended pod_ended_unclean"),
        "{seq:?}"
    );
    let starts: Vec<(Option<u64>, bool)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::SessionStarted {
                predecessor,
                handover,
                ..
            } => Some((*predecessor, *handover)),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        vec![(None, false), (Some(1), false), (Some(2), true)]
    );
}
