//! The remediation actor against the in-process fake API server, on the seed incident
//! (`examples/rollout-restart-silent` replayed into the engine): the exact requests (get the
//! Deployment, get its scale, scale to 0, wait, scale back to the count it had), the wait on
//! the engine (the old pod gone and its lingering window over), the Events, the findings, and
//! each guard that only the live actor checks: dry-run writes nothing, a missing annotation,
//! a 403 (one attempt, a page, no retries), a Lease held by another instance.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use dge::actors::remediation::cluster::Cluster;
use dge::actors::remediation::lease::Leadership;
use dge::actors::remediation::{Actor, Mode, Planner, RemediationConfig, SnapshotFn};
use dge::config::Config;
use dge_core::engine::{Engine, Finding, Kind, Severity};
use dge_core::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, RemediationOutcome,
    SessionEvent, SessionObservation,
};
use dge_parse::replay::{ReadOptions, open_paths};
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::fake_apiserver::FakeApiServer;

const NS: &str = "bots";
const DEAF: &str = "agentbroker-5f7b9c6d8-p4m2z";
const NEXT: &str = "agentbroker-5f7b9c6d8-r7t2k";
const SCALE: &str = "/apis/apps/v1/namespaces/bots/deployments/agentbroker/scale";
const LEASE_NS: &str = "dge";
const LEASE: &str = "discord-gateway-exporter-remediation";

/// The engine after the seed incident: the new pod deaf, its peer gone.
fn seed_engine() -> Engine {
    let cfg = Config::default();
    let opts = ReadOptions {
        profile: cfg.compile_profile(&cfg.profile).unwrap(),
        attribution: &cfg.attribution,
        default_bot: None,
        max_line_bytes: cfg.max_line_bytes,
        zone: cfg.log_timezone,
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rollout-restart-silent");
    let mut input = open_paths(&[dir], &opts).unwrap();
    let mut engine = Engine::new(cfg.engine.clone());
    engine.run_to_end(&mut input);
    engine
}

fn config(mode: Mode) -> RemediationConfig {
    RemediationConfig {
        mode,
        wait_timeout_secs: 20,
        lease_namespace: Some(LEASE_NS.into()),
        ..RemediationConfig::default()
    }
}

fn client(fake: &FakeApiServer) -> kube::Client {
    let cfg = kube::Config::new(format!("http://{}", fake.addr).parse().unwrap());
    kube::Client::try_from(cfg).unwrap()
}

/// The engine, the actor wired to it (its reports go into the engine), and the fake.
struct Rig {
    engine: Arc<Mutex<Engine>>,
    actor: Actor,
    fake: FakeApiServer,
}

async fn rig(mode: Mode, identity: &str, annotated: bool) -> Rig {
    let fake = FakeApiServer::start().await;
    let annotations = if annotated {
        json!({"discord-gateway-exporter.dev/remediate": "true"})
    } else {
        json!({})
    };
    fake.put_workload("deployments", NS, "agentbroker", 1, annotations);
    rig_on(fake, mode, identity).await
}

async fn rig_on(fake: FakeApiServer, mode: Mode, identity: &str) -> Rig {
    let engine = Arc::new(Mutex::new(seed_engine()));
    let (tx, mut rx) = mpsc::channel::<Observation>(64);
    let e = engine.clone();
    tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            e.lock().unwrap().observe(o);
        }
    });
    let e = engine.clone();
    let snapshot: SnapshotFn = Arc::new(move || Arc::new(e.lock().unwrap().snapshot()));
    let cfg = config(mode);
    let c = client(&fake);
    let actor = Actor {
        planner: Planner::new(cfg.clone()),
        cluster: Some(Cluster::new(c.clone(), &cfg.annotation, identity)),
        leadership: Some(Leadership::new(c, LEASE_NS, LEASE, identity, 30)),
        snapshot,
        tx,
        poll: Duration::from_millis(20),
    };
    Rig {
        engine,
        actor,
        fake,
    }
}

impl Rig {
    fn remediation_findings(&self) -> Vec<Finding> {
        let e = self.engine.lock().unwrap();
        e.all_findings()
            .into_iter()
            .filter(|f| f.kind == Kind::Remediation)
            .collect()
    }

    /// Calls to the workload (not the Lease or Events).
    fn workload_calls(&self) -> Vec<String> {
        self.fake
            .calls()
            .into_iter()
            .filter(|c| c.contains("/apis/apps/"))
            .collect()
    }

    /// Until the reports sent so far are in the engine (the forwarder received them all).
    async fn settle(&self) {
        let tx = &self.actor.tx;
        for _ in 0..500 {
            if tx.capacity() == tx.max_capacity() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The last one received is observed under the engine's lock right after.
        let _ = self.engine.lock().unwrap().now();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn obs(at: DateTime<Utc>, body: Body) -> Observation {
    Observation {
        at,
        source: "world".into(),
        body,
    }
}

fn pod(at: DateTime<Utc>, name: &str, change: InstanceChange) -> Observation {
    obs(
        at,
        Body::Instance(InstanceObservation {
            instance: InstanceId::pod(NS, name),
            bot: Some("AgentBroker".into()),
            workload: Some("agentbroker".into()),
            change,
        }),
    )
}

fn log(at: DateTime<Utc>, name: &str, event: SessionEvent) -> Observation {
    obs(
        at,
        Body::Session(SessionObservation {
            bot: Some("AgentBroker".into()),
            instance: InstanceId::pod(NS, name).into(),
            shard: None,
            event,
            line: None,
        }),
    )
}

/// The cluster as the engine sees it, reacting to the scale: at 0 the deaf pod is killed
/// without a clean close (so Discord keeps its session 90 s); engine time runs 5 s per 10 ms;
/// at 1 again a new pod connects and receives events. Returns the engine time at which the
/// restore was seen, and when the deaf pod exited.
async fn world(fake: FakeApiServer, engine: Arc<Mutex<Engine>>) -> (DateTime<Utc>, DateTime<Utc>) {
    let mut exited = None;
    for _ in 0..4000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let replicas = fake.replicas("deployments", NS, "agentbroker");
        let mut e = engine.lock().unwrap();
        let now = e.now().unwrap();
        match (replicas, exited) {
            (Some(0), None) => {
                e.observe(pod(
                    now,
                    DEAF,
                    InstanceChange::Terminating { grace: Some(30) },
                ));
                let exit = InstanceChange::Exited {
                    code: Some(137),
                    reason: None,
                };
                e.observe(pod(now + TimeDelta::seconds(1), DEAF, exit));
                e.observe(pod(
                    now + TimeDelta::seconds(2),
                    DEAF,
                    InstanceChange::Deleted,
                ));
                exited = Some(now + TimeDelta::seconds(1));
            }
            (Some(1), Some(x)) => {
                let t = now + TimeDelta::seconds(1);
                e.observe(pod(t, NEXT, InstanceChange::Created));
                e.observe(pod(t, NEXT, InstanceChange::Running));
                e.observe(log(
                    t + TimeDelta::seconds(2),
                    NEXT,
                    SessionEvent::Ready { session_id: None },
                ));
                for i in 0..5 {
                    let at = t + TimeDelta::seconds(10 + 15 * i);
                    e.observe(log(at, NEXT, SessionEvent::Dispatch { kind: None }));
                }
                e.tick(t + TimeDelta::seconds(100));
                return (now, x);
            }
            _ => {}
        }
        e.tick(now + TimeDelta::seconds(5));
    }
    panic!("the workload was never restored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_heals_the_seed_incident_with_the_exact_requests() {
    let mut rig = rig(Mode::On, "exporter-a", true).await;
    let w = tokio::spawn(world(rig.fake.clone(), rig.engine.clone()));
    rig.actor.round().await;
    let (restored_at, exited_at) = w.await.unwrap();
    rig.settle().await;
    assert_eq!(
        rig.workload_calls(),
        vec![
            "GET /apis/apps/v1/namespaces/bots/deployments/agentbroker".to_string(),
            format!("GET {SCALE}"),
            format!("PATCH {SCALE} {{\"spec\":{{\"replicas\":0}}}}"),
            format!("PATCH {SCALE} {{\"spec\":{{\"replicas\":1}}}}"),
        ]
    );
    // The restore waited for the killed pod's session to stop lingering (90 s).
    assert!(
        restored_at >= exited_at + TimeDelta::seconds(90),
        "restored at {restored_at}, the pod exited at {exited_at}"
    );
    let reasons: Vec<String> = rig
        .fake
        .kube_events()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        reasons,
        [
            "DeafSessionScaledDown",
            "DeafSessionOldSessionsGone",
            "DeafSessionRestored"
        ]
    );
    assert_eq!(
        rig.fake.lease_holder(LEASE_NS, LEASE).as_deref(),
        Some("exporter-a")
    );
    // The finding: started, done, and closed once the next session was the only one.
    let f = rig.remediation_findings();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].explanation
            .starts_with("Restored deployment/agentbroker to 1 replicas")
    );
    assert!(f[0].until.is_some(), "still open: {f:#?}");
    let e = rig.engine.lock().unwrap();
    let now = e.now().unwrap();
    let live: Vec<_> = e
        .sessions()
        .filter(|s| s.is_live(now))
        .map(|s| s.pod.clone())
        .collect();
    assert_eq!(live, [NEXT]);
    assert!(e.active_findings().all(|f| f.kind != Kind::SilentSession));
    let totals = e.remediation_totals();
    for o in [RemediationOutcome::Started, RemediationOutcome::Done] {
        assert_eq!(
            totals.get(&("AgentBroker".into(), o)),
            Some(&1),
            "{totals:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_but_never_writes() {
    let mut rig = rig(Mode::DryRun, "exporter-a", true).await;
    rig.actor.round().await;
    rig.actor.round().await;
    rig.settle().await;
    assert_eq!(
        rig.workload_calls(),
        vec![
            "GET /apis/apps/v1/namespaces/bots/deployments/agentbroker".to_string(),
            format!("GET {SCALE}"),
        ]
    );
    assert!(rig.fake.kube_events().is_empty());
    assert_eq!(rig.fake.replicas("deployments", NS, "agentbroker"), Some(1));
    let f = rig.remediation_findings();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Info);
    assert!(
        f[0].explanation
            .contains("would now scale deployment/agentbroker in bots to 0")
    );
    assert!(
        f[0].explanation.contains("restore its 1 replicas"),
        "{}",
        f[0].explanation
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_without_the_annotation_is_left_alone() {
    let mut rig = rig(Mode::On, "exporter-a", false).await;
    rig.actor.round().await;
    rig.actor.round().await;
    rig.settle().await;
    assert_eq!(
        rig.workload_calls(),
        ["GET /apis/apps/v1/namespaces/bots/deployments/agentbroker"]
    );
    let f = rig.remediation_findings();
    assert_eq!(f.len(), 1);
    assert!(
        f[0].explanation.contains("does not carry the annotation"),
        "{}",
        f[0].explanation
    );
    assert!(f[0].evidence[0].text.contains("(not_allowed)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_refusal_pages_once_and_is_not_retried() {
    let mut rig = rig(Mode::On, "exporter-a", true).await;
    rig.fake.forbid("PATCH /apis/apps/v1/");
    for _ in 0..5 {
        rig.actor.round().await;
    }
    rig.settle().await;
    let patches = rig
        .workload_calls()
        .iter()
        .filter(|c| c.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 1, "{:?}", rig.workload_calls());
    let f = rig.remediation_findings();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(
        f[0].explanation.contains("forbidden by RBAC"),
        "{}",
        f[0].explanation
    );
    assert!(f[0].explanation.contains("deploy/components/remediation"));
    assert_eq!(rig.fake.replicas("deployments", NS, "agentbroker"), Some(1));
    let reasons: Vec<_> = rig
        .fake
        .kube_events()
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("DeafSessionRemediationFailed")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_elsewhere_stops_a_second_instance() {
    let fake = FakeApiServer::start().await;
    fake.put_workload(
        "deployments",
        NS,
        "agentbroker",
        1,
        json!({"discord-gateway-exporter.dev/remediate": "true"}),
    );
    let renewed = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    fake.put_lease(LEASE_NS, LEASE, "exporter-a", &renewed);
    let mut rig = rig_on(fake, Mode::On, "exporter-b").await;
    for _ in 0..3 {
        rig.actor.round().await;
    }
    rig.settle().await;
    assert!(
        rig.workload_calls().is_empty(),
        "{:?}",
        rig.workload_calls()
    );
    assert!(rig.remediation_findings().is_empty());
    assert_eq!(
        rig.fake.lease_holder(LEASE_NS, LEASE).as_deref(),
        Some("exporter-a")
    );
    // An expired Lease is taken over.
    let old =
        (Utc::now() - TimeDelta::seconds(120)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    rig.fake.put_lease(LEASE_NS, LEASE, "exporter-a", &old);
    let lease = Leadership::new(client(&rig.fake), LEASE_NS, LEASE, "exporter-b", 30);
    assert_eq!(lease.acquire().await, Ok(true));
    assert_eq!(
        rig.fake.lease_holder(LEASE_NS, LEASE).as_deref(),
        Some("exporter-b")
    );
    // The holder renews it (a PUT with the resourceVersion it read), and the former holder,
    // now behind, cannot take it back.
    assert_eq!(lease.acquire().await, Ok(true));
    let puts = rig
        .fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("PUT /apis/coordination.k8s.io/"))
        .count();
    assert_eq!(puts, 2);
    let a = Leadership::new(client(&rig.fake), LEASE_NS, LEASE, "exporter-a", 30);
    assert_eq!(a.acquire().await, Ok(false));
    assert_eq!(
        rig.fake.lease_holder(LEASE_NS, LEASE).as_deref(),
        Some("exporter-b")
    );
}

/// `replay` of the seed incident with `mode = "dry-run"`: the action that would have been
/// taken, and when (the capture's time: the deaf session confirmed and the old session's
/// lingering window over); the quiet night: nothing.
#[test]
fn replay_in_dry_run_shows_the_action_and_when() {
    use crate::support::exporter::run;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dry-run.toml");
    std::fs::write(&cfg, "[remediation]\nmode = \"dry-run\"\n").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let replay = |example: &str| {
        let path = root.join("examples").join(example);
        let out = run(&[
            "replay",
            "--format",
            "json",
            "--config",
            cfg.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "remediation")
            .cloned()
            .collect::<Vec<_>>()
    };
    let f = replay("rollout-restart-silent");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["bot"], "AgentBroker");
    assert_eq!(f[0]["namespace"], "bots");
    // Silent since 04:00:03 for ln(1000) of the bot's learned intervals (~19 s): confirmed at
    // 04:02:14, when the old pod's session (its pod gone at 04:00:15 without a logged close,
    // lingering 90 s) was already over; the planner runs every 5 s of the capture's time.
    assert_eq!(f[0]["since"], "2026-04-19T04:02:15Z", "{f:#?}");
    let text = f[0]["explanation"].as_str().unwrap();
    assert!(text.starts_with("Dry run:"), "{text}");
    assert!(text.contains("deaf since 04:00:03"), "{text}");
    assert!(text.contains("scale agentbroker in bots to 0"), "{text}");
    for quiet in [
        "quiet-night",
        "scale-0-1-clean",
        "duplicate-delivery",
        "crashloop-intents",
    ] {
        let f = replay(quiet);
        assert!(
            f.iter().all(|f| f["explanation"]
                .as_str()
                .is_some_and(|t| !t.starts_with("Dry run"))),
            "{quiet}: {f:#?}"
        );
    }
}
