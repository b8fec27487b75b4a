//! Verdicts no stronger than the evidence (bots whose logs show no events, heartbeat
//! sequences), attribution of a crash loop to the bot its later run names, and the
//! gateway-health findings (resume loop, zombie connection, close codes per pod).

use super::*;

fn severities(sim: &Sim) -> Vec<(Kind, Severity, String)> {
    sim.findings()
        .iter()
        .map(|f| (f.kind, f.severity, f.subject.pod_label().to_string()))
        .collect()
}

/// Heartbeat acknowledgements every 41.25 s on `pod` in [from, to): what a discord.js bot
/// logs at debug level, with no line per received event.
fn acks(sim: &mut Sim, pod: &str, from: f64, to: f64) {
    let mut t = from;
    while t < to {
        sim.log(t, pod, None, SessionEvent::HeartbeatAck);
        t += 41.25;
    }
}

/// A rolling update of a bot whose logs show connects and heartbeat ACKs but no events.
fn blind_rollout() -> Sim {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    acks(&mut sim, OLD, 45.0, 3620.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    sim.log(3606.0, OLD, None, SessionEvent::Closed { code: Some(1000) });
    sim.pod(
        3607.0,
        OLD,
        InstanceChange::Exited {
            code: Some(0),
            reason: None,
        },
    );
    acks(&mut sim, NEW, 3645.0, 5400.0);
    sim.tick_to(5400.0);
    sim
}

#[test]
fn a_rollout_the_logs_cannot_verify_is_a_warning_not_a_page() {
    let sim = blind_rollout();
    let all = severities(&sim);
    assert!(
        all.iter().all(|(_, s, _)| *s != Severity::Critical),
        "no critical finding: {all:#?}"
    );
    let new = sim.kinds_for(NEW);
    assert!(new.contains(&Kind::ConcurrentSessions), "{new:?}");
    assert!(new.contains(&Kind::UnverifiedSession), "{new:?}");
    assert!(!new.contains(&Kind::SilentSession), "{new:?}");
    let f = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::UnverifiedSession)
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.until.is_none(), "open while the session is unverified");
    assert!(f.explanation.contains(OLD), "{}", f.explanation);
    assert!(
        f.explanation.contains("DEBUG heartbeat"),
        "{}",
        f.explanation
    );
}

#[test]
fn the_first_event_line_verifies_the_session() {
    let mut sim = blind_rollout();
    sim.log(5410.0, NEW, None, SessionEvent::Dispatch { kind: None });
    sim.tick_to(5420.0);
    let f = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::UnverifiedSession)
        .unwrap();
    assert!(f.until.is_some(), "closed by the event: {f:#?}");
}

#[test]
fn a_bot_declared_blind_never_pages_even_once_an_old_event_was_seen() {
    let mut sim = Sim::new();
    sim.engine.declare_events_visible("AgentBroker", false);
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 60.0, 10.0);
    acks(&mut sim, OLD, 45.0, 3620.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.tick_to(3603.0 + 600.0);
    let new = sim.kinds_for(NEW);
    assert!(new.contains(&Kind::UnverifiedSession), "{new:?}");
    assert!(!new.contains(&Kind::SilentSession), "{new:?}");
    let f = sim.findings();
    let f = f
        .iter()
        .find(|f| f.kind == Kind::UnverifiedSession)
        .unwrap();
    assert!(
        f.explanation.contains("configuration says"),
        "{}",
        f.explanation
    );
}

#[test]
fn a_bot_declared_visible_is_judged_by_its_silence() {
    // The same blind rollout, declared visible: judged as silent (the declaration is trusted).
    let mut sim = Sim::new();
    sim.engine.declare_events_visible("AgentBroker", true);
    sim.start_pod(0.0, OLD, "AgentBroker");
    acks(&mut sim, OLD, 45.0, 3620.0);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.tick_to(3603.0 + 310.0);
    assert!(sim.kinds_for(NEW).contains(&Kind::SilentSession));
}

/// Heartbeats with sequence numbers every 41.25 s on `pod` in [from, to), the sequence
/// starting at `seq` and advancing by `step` each time.
fn beats(sim: &mut Sim, pod: &str, from: f64, to: f64, seq: u64, step: u64) {
    let (mut t, mut n) = (from, seq);
    while t < to {
        let event = SessionEvent::Heartbeat { sequence: Some(n) };
        sim.log(t, pod, None, event);
        t += 41.25;
        n += step;
    }
}

#[test]
fn a_stalled_sequence_next_to_an_advancing_one_is_silent_within_three_heartbeats() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    beats(&mut sim, OLD, 40.0, 3600.0, 2, 25);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    // The old pod keeps its session and its events (the sequence advances); the new one's
    // heartbeats report the same sequence.
    beats(&mut sim, OLD, 3620.0, 3900.0, 2160, 25);
    beats(&mut sim, NEW, 3603.0 + 41.25, 3900.0, 4, 0);
    let silent = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::SilentSession)
        .expect("silent_session");
    assert_eq!(silent.severity, Severity::Critical);
    assert_eq!(silent.subject.pod_label(), NEW);
    assert_eq!(
        silent.since,
        sim.at(3603.0 + 41.25),
        "silent since its first heartbeat"
    );
    assert!(
        silent
            .explanation
            .contains("heartbeat sequence kept advancing"),
        "{}",
        silent.explanation
    );
    assert!(!sim.kinds_for(NEW).contains(&Kind::UnverifiedSession));
}

#[test]
fn sequence_silence_is_noticed_by_the_third_heartbeat() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    beats(&mut sim, OLD, 40.0, 3600.0, 2, 25);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    let ready = 3603.0;
    let mut t = 3600.0 + 41.25 * 0.5;
    let (mut old_seq, mut n) = (2200, 0);
    while t < ready + 3.0 * 41.25 + 1.0 {
        sim.log(
            t,
            OLD,
            None,
            SessionEvent::Heartbeat {
                sequence: Some(old_seq),
            },
        );
        old_seq += 25;
        t += 41.25;
        n += 1;
        let nt = ready + 41.25 * f64::from(n);
        sim.log(nt, NEW, None, SessionEvent::Heartbeat { sequence: Some(4) });
    }
    sim.tick_to(ready + 3.0 * 41.25);
    assert!(
        sim.kinds_for(NEW).contains(&Kind::SilentSession),
        "{:#?}",
        sim.findings()
    );
}

#[test]
fn advancing_sequences_on_both_sides_are_no_silence() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    beats(&mut sim, OLD, 40.0, 3600.0, 2, 25);
    sim.start_pod(3600.0, NEW, "AgentBroker");
    sim.pod(3605.0, OLD, InstanceChange::Terminating { grace: Some(30) });
    beats(&mut sim, OLD, 3620.0, 3630.0, 2160, 25);
    sim.log(3631.0, OLD, None, SessionEvent::Closed { code: Some(1000) });
    beats(&mut sim, NEW, 3603.0 + 41.25, 5400.0, 4, 20);
    sim.tick_to(5400.0);
    let new = sim.kinds_for(NEW);
    assert!(!new.contains(&Kind::SilentSession), "{new:?}");
    assert!(!new.contains(&Kind::UnverifiedSession), "{new:?}");
}

#[test]
fn a_crash_loop_before_the_first_ready_belongs_to_the_bot_its_later_run_names() {
    let mut sim = Sim::new();
    // The Deployment is "broker"; the bot calls itself AgentBroker. Nothing names the bot
    // until the fixed rollout's READY.
    let crash = "broker-6c9f7d8b4-zzzzz";
    let good = "broker-7d8e9f0a1-yyyyy";
    sim.pod(0.0, crash, InstanceChange::Created);
    let mut t = 1.0;
    for _ in 0..4 {
        sim.pod(t, crash, InstanceChange::Running);
        sim.log(t + 0.5, crash, None, SessionEvent::Starting);
        sim.log(t + 1.0, crash, None, SessionEvent::Identifying);
        let fatal = SessionEvent::Fatal {
            reason: "disallowed intents".into(),
            code: Some(4014),
        };
        sim.log(t + 1.5, crash, None, fatal);
        let exited = InstanceChange::Exited {
            code: Some(1),
            reason: None,
        };
        sim.pod(t + 2.0, crash, exited);
        t += 20.0;
    }
    sim.start_pod(t + 10.0, good, "AgentBroker");
    sim.pod(
        t + 15.0,
        crash,
        InstanceChange::Terminating { grace: Some(30) },
    );
    sim.pod(t + 16.0, crash, InstanceChange::Deleted);
    sim.traffic(&[good], t + 20.0, t + 400.0, 10.0);
    let bots: Vec<&String> = sim.engine.bots().keys().collect();
    assert_eq!(bots, ["AgentBroker"], "one bot");
    let f = sim.findings();
    let fatal: Vec<_> = f.iter().filter(|f| f.kind == Kind::FatalClose).collect();
    assert_eq!(fatal.len(), 1, "{f:#?}");
    assert_eq!(fatal[0].bot, "AgentBroker");
    assert!(
        fatal[0].explanation.contains("AgentBroker's"),
        "{}",
        fatal[0].explanation
    );
    assert!(fatal[0].explanation.contains("4014"));
    assert!(f.iter().all(|f| f.bot == "AgentBroker"), "{f:#?}");
    let b = &sim.engine.bots()["AgentBroker"];
    assert_eq!(
        b.identifies_logs, 5,
        "four refused identifies and the good one"
    );
    assert_eq!(b.close_codes.get(&4014), Some(&4));
}

#[test]
fn a_configured_bot_claims_its_workload_from_the_first_line() {
    let mut sim = Sim::new();
    sim.engine = Engine::new(EngineConfig::default()).with_known_bots(["AgentBroker".into()]);
    let pod = "agent-broker-6c9f7d8b4-zzzzz";
    sim.pod(0.0, pod, InstanceChange::Created);
    sim.pod(1.0, pod, InstanceChange::Running);
    let fatal = SessionEvent::Fatal {
        reason: "disallowed intents".into(),
        code: Some(4014),
    };
    sim.log(2.0, pod, None, fatal);
    let f = sim.findings();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].bot, "AgentBroker");
}

/// One failed resume: the connection drops, RESUME is refused, the bot identifies anew.
fn failed_resume(sim: &mut Sim, pod: &str, t: f64) {
    sim.log(t, pod, None, SessionEvent::Closed { code: Some(4009) });
    sim.log(t + 1.0, pod, None, SessionEvent::Resuming);
    let invalid = SessionEvent::InvalidSession { resumable: false };
    sim.log(t + 2.0, pod, None, invalid);
    sim.log(t + 7.0, pod, None, SessionEvent::Identifying);
    sim.log(t + 8.0, pod, None, SessionEvent::Ready { session_id: None });
}

#[test]
fn a_resume_loop_spends_identifies_and_pages() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.traffic(&[OLD], 10.0, 600.0, 10.0);
    for i in 0..2 {
        failed_resume(&mut sim, OLD, 600.0 + 60.0 * f64::from(i));
    }
    assert!(
        !sim.kinds_for(OLD).contains(&Kind::ResumeLoop),
        "two are not a loop"
    );
    failed_resume(&mut sim, OLD, 720.0);
    let f = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::ResumeLoop)
        .expect("resume_loop");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.explanation.contains("identified anew 3 times"),
        "{}",
        f.explanation
    );
    let b = &sim.engine.bots()["AgentBroker"];
    assert_eq!(
        b.identifies_logs, 4,
        "the first READY and three re-identifies"
    );
    assert_eq!(
        b.pod_close_codes.get(&(NS.into(), OLD.into(), 4009)),
        Some(&3)
    );
    // One lost connection per cycle (a close, a RESUME and an invalid session tell the same
    // loss), one re-identify per cycle.
    let signals = b.pod_signals[&(NS.to_string(), OLD.to_string())];
    assert_eq!(signals[..2], [3, 3], "{signals:?}");
    // Quiet for a window: closed.
    sim.traffic(&[OLD], 730.0, 1500.0, 10.0);
    let f = sim
        .findings()
        .into_iter()
        .find(|f| f.kind == Kind::ResumeLoop)
        .unwrap();
    assert!(f.until.is_some());
}

#[test]
fn resumes_that_succeed_are_no_loop() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    for i in 0..3 {
        let t = 100.0 + 60.0 * f64::from(i);
        sim.log(t, OLD, None, SessionEvent::Closed { code: Some(4200) });
        sim.log(t + 1.0, OLD, None, SessionEvent::Resuming);
        sim.log(t + 2.0, OLD, None, SessionEvent::Resumed);
    }
    assert!(sim.findings().is_empty(), "{:#?}", sim.findings());
    assert_eq!(sim.engine.bots()["AgentBroker"].identifies_logs, 1);
}

#[test]
fn missed_acknowledgements_are_a_zombie_connection_that_pages_when_it_repeats() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    sim.log(50.0, OLD, None, SessionEvent::HeartbeatAck);
    // Two heartbeats with no acknowledgement in between (derived), then the library's own.
    sim.log(91.0, OLD, None, SessionEvent::Heartbeat { sequence: None });
    sim.log(132.0, OLD, None, SessionEvent::Heartbeat { sequence: None });
    let f = sim.findings();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::ZombieConnection, Severity::Warning)
    );
    sim.log(133.0, OLD, None, SessionEvent::HeartbeatMissed);
    let stalled = SessionEvent::Stalled {
        behind_ms: Some(12_500),
    };
    sim.log(140.0, OLD, None, stalled);
    let f = sim.findings();
    assert_eq!(f[0].severity, Severity::Critical, "{f:#?}");
    assert!(f[0].explanation.contains("blocked"), "{}", f[0].explanation);
    sim.tick_to(140.0 + 601.0);
    assert!(sim.findings()[0].until.is_some());
}

#[test]
fn the_librarys_start_limit_lines_are_samples_without_a_token() {
    let mut sim = Sim::new();
    let limit = |remaining| SessionEvent::SessionLimit {
        total: Some(1000),
        remaining: Some(remaining),
        reset_after_ms: Some(80_000_000),
    };
    sim.log(0.0, OLD, Some("AgentBroker"), limit(990));
    sim.log(300.0, OLD, Some("AgentBroker"), limit(985));
    sim.tick_to(500.0);
    let b = &sim.engine.bots()["AgentBroker"];
    assert_eq!(b.identifies_discord, 5);
    assert!(sim.kinds_for("").contains(&Kind::UnattributedIdentify));
    // With Discord's own count polled, the library's lines are not used.
    let mut sim = Sim::new();
    sim.sample(0.0, "AgentBroker", 990);
    sim.log(1.0, OLD, Some("AgentBroker"), limit(900));
    assert_eq!(sim.engine.bots()["AgentBroker"].identifies_discord, 0);
}

#[test]
fn identifies_of_a_pod_not_yet_named_explain_the_discord_count() {
    let mut sim = Sim::new();
    // Deployment `broker`, bot AgentBroker: nothing matches the names until the good run.
    let crash = "broker-6c9f7d8b4-zzzzz";
    sim.sample(0.0, "AgentBroker", 990);
    sim.pod(1.0, crash, InstanceChange::Created);
    for i in 0..4 {
        let t = 10.0 + 40.0 * f64::from(i);
        sim.pod(t, crash, InstanceChange::Running);
        sim.log(t + 1.0, crash, None, SessionEvent::Identifying);
        let fatal = SessionEvent::Fatal {
            reason: "disallowed intents".into(),
            code: Some(4014),
        };
        sim.log(t + 1.5, crash, None, fatal);
    }
    // Discord polled every 5 min: the interval settles long before anything names the bot.
    sim.sample(300.0, "AgentBroker", 986);
    sim.sample(600.0, "AgentBroker", 986);
    sim.tick_to(1200.0);
    let f = sim.findings();
    assert!(
        f.iter().all(|f| f.kind != Kind::UnattributedIdentify),
        "{f:#?}"
    );
}

#[test]
fn close_codes_per_pod_are_bounded() {
    let mut sim = Sim::new();
    sim.start_pod(0.0, OLD, "AgentBroker");
    for (i, code) in (4100..4140).chain([65_000]).enumerate() {
        sim.log(
            10.0 + i as f64,
            OLD,
            None,
            SessionEvent::Closed { code: Some(code) },
        );
    }
    let b = &sim.engine.bots()["AgentBroker"];
    let codes: Vec<u16> = b.pod_close_codes.keys().map(|k| k.2).collect();
    assert_eq!(codes.len(), 25, "24 codes and the overflow: {codes:?}");
    assert_eq!(codes[0], 0);
    let overflow = b.pod_close_codes[&(NS.to_string(), OLD.to_string(), 0)];
    assert_eq!(
        overflow,
        41 - 24,
        "the rest and the code that is no close code"
    );
    assert_eq!(b.close_codes.len(), 41, "the bot's totals keep every code");
}
