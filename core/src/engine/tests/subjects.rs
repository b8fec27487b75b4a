//! Subjects: what a finding is about, and the snapshot matching series by their full identity.

use super::*;
use crate::engine::findings::Assertion;

/// A READY of `bot` on pod `pod` of namespace `ns` at `secs`.
fn ready(sim: &mut Sim, secs: f64, ns: &str, pod: &str, bot: &str) {
    sim.obs(
        secs,
        Body::Session(SessionObservation {
            bot: Some(bot.into()),
            instance: InstanceId::pod(ns, pod).into(),
            shard: None,
            event: SessionEvent::Ready { session_id: None },
            line: None,
        }),
    );
}

#[test]
fn a_silent_series_is_its_own_pod_not_a_namesake_in_another_namespace() {
    let mut sim = Sim::new();
    // Pod `x-0` in two namespaces (two deployments of one chart), for two bots.
    ready(&mut sim, 0.0, "a", "x-0", "Bot");
    ready(&mut sim, 1.0, "b", "x-0", "Other");
    let ids: Vec<(u64, String)> = sim
        .engine
        .sessions()
        .map(|s| (s.id, s.namespace.clone()))
        .collect();
    assert_eq!(ids.len(), 2);
    // Both are silent-since (one flagged silent, the other only quiet), but only `a`'s
    // session has a `silent_session` finding.
    let at = sim.at(1.0);
    for (id, _) in &ids {
        sim.engine.sessions.get_mut(id).unwrap().silent_since = Some(at);
    }
    let a = sim.engine.sessions.get(&ids[0].0).unwrap().clone();
    let b = sim.engine.sessions.get(&ids[1].0).unwrap().clone();
    sim.engine.book.assert(Assertion::new(
        Key::session(Kind::SilentSession, &a),
        at,
        "silent".into(),
        vec![],
    ));
    sim.engine.book.assert(Assertion::new(
        Key::session(Kind::QuietSession, &b),
        at,
        "quiet".into(),
        vec![],
    ));
    let snap = sim.engine.snapshot();
    let silent = |ns: &str| {
        snap.series
            .iter()
            .find(|s| s.namespace == ns && s.pod == "x-0")
            .unwrap()
            .silent
    };
    assert!(silent("a"));
    assert!(!silent("b"), "b's x-0 is quiet, not silent");
}

#[test]
fn subjects_serialize_as_the_flat_fields_findings_always_had() {
    let f = |subject: Subject| {
        let v = serde_json::to_value(&subject).unwrap();
        (v["namespace"].clone(), v["pod"].clone(), v["shard"].clone())
    };
    let j = |s: &str| serde_json::Value::String(s.into());
    assert_eq!(f(Subject::BOT), (j(""), j(""), serde_json::Value::Null));
    assert_eq!(
        f(Subject::bot_in("bots")),
        (j("bots"), j(""), serde_json::Value::Null)
    );
    assert_eq!(
        f(Subject::pod("", "x-0", Some(2))),
        (j(""), j("x-0"), serde_json::json!(2))
    );
    // An empty namespace is an unknown one, not a namespace called "".
    assert_eq!(Subject::pod("", "x-0", None).namespace(), None);
    assert!(Subject::pod("", "x-0", None).is_pod("", "x-0"));
    assert!(!Subject::pod("a", "x-0", None).is_pod("b", "x-0"));
    assert!(
        Subject::BOT < Subject::pod("", "", None),
        "bot-wide keys sort first"
    );
}

#[test]
fn a_finding_of_a_pod_without_namespace_gets_it_when_the_pod_is_known() {
    let mut sim = Sim::new();
    // Log lines first (no namespace): the session is silent-at-risk next to another one.
    ready(&mut sim, 0.0, "", "x-0", "Bot");
    ready(&mut sim, 10.0, "", "x-1", "Bot");
    sim.tick_to(400.0);
    let before: Vec<Option<String>> = sim
        .engine
        .active_findings()
        .filter(|f| f.subject.pod_name() == Some("x-1"))
        .map(|f| f.subject.namespace().map(str::to_string))
        .collect();
    assert!(
        !before.is_empty() && before.iter().all(Option::is_none),
        "{before:?}"
    );
    // Then the lifecycle source names the pod's namespace.
    sim.obs(
        401.0,
        Body::Instance(InstanceObservation {
            instance: InstanceId::pod("bots", "x-1"),
            bot: None,
            workload: None,
            change: InstanceChange::Running,
        }),
    );
    let after: Vec<Option<&str>> = sim
        .engine
        .active_findings()
        .filter(|f| f.subject.pod_name() == Some("x-1"))
        .map(|f| f.subject.namespace())
        .collect();
    assert!(after.iter().all(|n| *n == Some("bots")), "{after:?}");
}
