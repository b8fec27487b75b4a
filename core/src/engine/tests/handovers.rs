//! Handovers decided in the engine, on simulated time: the outcome every sink reads.

use super::*;

/// The handovers started and decided, in order.
fn handovers(changes: &[Change]) -> (Vec<Handover>, Vec<Handover>) {
    let mut started = Vec::new();
    let mut decided = Vec::new();
    for c in changes {
        match c {
            Change::HandoverStarted { handover } => started.push((**handover).clone()),
            Change::Handover { handover } => decided.push((**handover).clone()),
            _ => {}
        }
    }
    (started, decided)
}

/// The old pod stops cleanly, `gap` seconds before the new one is ready at 3600 + `gap`.
fn scale_zero_then_one(new_traffic: bool) -> Sim {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.pod(3600.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.log(3600.8, OLD, None, SessionEvent::Stopped);
    sim.pod(
        3601.0,
        OLD,
        InstanceChange::Exited {
            code: Some(0),
            reason: None,
        },
    );
    sim.start_pod(3640.0, NEW, "AgentBroker");
    if new_traffic {
        sim.traffic(&[NEW], 3650.0, 3700.0, 20.0);
    }
    sim
}

#[test]
fn the_incident_is_a_handover_to_a_silent_session() {
    let mut sim = incident();
    let changes = sim.engine.take_changes();
    let (started, decided) = handovers(&changes);
    assert_eq!(started.len(), 1, "{started:#?}");
    let h = &started[0];
    assert_eq!((h.from_pod.as_str(), h.to_pod.as_str()), (OLD, NEW));
    assert_eq!(h.kind, HandoverKind::Overlap);
    assert_eq!(h.started_at, sim.at(3603.0));
    assert_eq!(h.outcome, None);
    // Concurrent sessions first, then the silence overrides it.
    assert_eq!(decided.len(), 1, "{decided:#?}");
    let d = &decided[0];
    assert_eq!(d.id, h.id);
    assert_eq!(d.named, Some(HandoverOutcome::NewSessionSilent));
    assert_eq!(d.outcome, Some(HandoverOutcome::NewSessionSilent));
    // Decided once the old session was gone (3615.6) and the new one found silent.
    let end = d.ended_at.unwrap();
    assert!(end > sim.at(3615.6) && end <= sim.at(4200.0), "{end}");
    // The started change follows its session's start, the decision follows the finding.
    let pos = |p: &dyn Fn(&Change) -> bool| changes.iter().position(p).unwrap();
    let new_started =
        pos(&|c| matches!(c, Change::SessionStarted { session, .. } if session.pod == NEW));
    let silent = pos(&|c| matches!(c, Change::Opened(f) if f.kind == Kind::SilentSession));
    assert_eq!(
        pos(&|c| matches!(c, Change::HandoverStarted { .. })),
        new_started + 1
    );
    assert!(pos(&|c| matches!(c, Change::Handover { .. })) > silent);
    // The snapshot shows it, and counts it per bot and outcome.
    let snap = sim.engine.snapshot();
    assert_eq!(snap.handovers.len(), 1);
    let bot = snap.bots.iter().find(|b| b.bot == "AgentBroker").unwrap();
    assert_eq!(
        bot.handovers.get(&HandoverOutcome::NewSessionSilent),
        Some(&1)
    );
}

#[test]
fn an_overlapping_rollout_that_works_is_decided_at_the_first_event() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.log(3605.5, OLD, None, SessionEvent::Stopped);
    sim.traffic(&[NEW], 3610.0, 3700.0, 20.0);
    let (_, decided) = handovers(&sim.engine.take_changes());
    assert_eq!(decided.len(), 1, "{decided:#?}");
    // The overlap was reported (concurrent sessions), then both settled.
    assert_eq!(
        decided[0].outcome,
        Some(HandoverOutcome::ConcurrentSessions)
    );
    assert_eq!(decided[0].ended_at, Some(sim.at(3610.0)));
}

#[test]
fn scale_zero_then_one_is_a_clean_gap() {
    let mut sim = scale_zero_then_one(true);
    let (started, decided) = handovers(&sim.engine.take_changes());
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].kind, HandoverKind::Gap);
    // A gap starts when the old session ended.
    assert_eq!(started[0].started_at, sim.at(3600.8));
    assert_eq!(started[0].old_ended_at, Some(sim.at(3600.8)));
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, Some(HandoverOutcome::Clean));
    assert_eq!(decided[0].ended_at, Some(sim.at(3650.0)));
}

#[test]
fn a_new_session_that_ends_before_any_event() {
    let mut sim = scale_zero_then_one(false);
    sim.log(3700.0, NEW, None, SessionEvent::Stopped);
    let (_, decided) = handovers(&sim.engine.take_changes());
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, Some(HandoverOutcome::NewSessionEnded));
    assert_eq!(decided[0].ended_at, Some(sim.at(3700.0)));
}

#[test]
fn the_end_of_input_decides_what_is_still_open() {
    let mut sim = scale_zero_then_one(false);
    let (started, decided) = handovers(&sim.engine.take_changes());
    assert_eq!((started.len(), decided.len()), (1, 0));
    assert!(sim.engine.handovers().all(|h| h.outcome.is_none()));
    sim.engine.finish();
    let (_, decided) = handovers(&sim.engine.take_changes());
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, Some(HandoverOutcome::Unresolved));
    assert_eq!(decided[0].ended_at, Some(sim.at(3644.0)));
    // Decided once: finishing again changes nothing.
    sim.engine.finish();
    assert!(handovers(&sim.engine.take_changes()).1.is_empty());
}

#[test]
fn a_handover_unsettled_for_an_hour_is_unresolved() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 3600.0, 20.0);
    sim.log(3600.8, OLD, None, SessionEvent::Stopped);
    // The new pod's session is known only by a RESUME: nothing judges its silence.
    sim.pod(3640.0, NEW, InstanceChange::Running);
    sim.log(3641.0, NEW, Some("AgentBroker"), SessionEvent::Resumed);
    sim.tick_to(3600.8 + 3600.0 - 1.0);
    let (started, decided) = handovers(&sim.engine.take_changes());
    assert_eq!((started.len(), decided.len()), (1, 0));
    sim.tick_to(3600.8 + 3600.0 + 5.0);
    let (_, decided) = handovers(&sim.engine.take_changes());
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, Some(HandoverOutcome::Unresolved));
    assert_eq!(decided[0].ended_at, Some(sim.at(3600.8 + 3600.0)));
}

#[test]
fn a_reconnect_on_the_same_pod_is_no_handover() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 100.0, 20.0);
    sim.log(
        200.0,
        OLD,
        None,
        SessionEvent::Ready {
            session_id: Some("b".into()),
        },
    );
    let (started, decided) = handovers(&sim.engine.take_changes());
    assert!(started.is_empty() && decided.is_empty());
}
