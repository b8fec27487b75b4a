//! Replay through the engine: every timestamped line advances time, matched or not, so a
//! capture ends, for the engine, where its last line is.

use std::path::PathBuf;

use dge_core::engine::{Engine, EngineConfig, Finding};
use dge_core::observation::Body;
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::builtin_profile;
use dge_parse::replay::{ReadOptions, open_paths};

use crate::support::ts;

/// A folder of its own under the system's temporary folder, removed when dropped.
struct Capture(PathBuf);

impl Capture {
    fn new(name: &str, files: &[(&str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("dge-parse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        Self(dir)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hms(h: u32, m: u32, s: u32) -> String {
    format!("2026-04-19T{h:02}:{m:02}:{s:02}Z")
}

/// The old pod connects at 04:00 and handles a message every 5 s until 04:02:05; the new pod
/// connects at 04:02:00 and then logs only heartbeat lines (no rule takes them) every 10 s
/// for 3 min.
fn rollout() -> Capture {
    let mut old = format!(
        "{}  INFO openab::discord: discord bot connected user=AgentBroker\n",
        hms(4, 0, 0)
    );
    for i in 1..=25 {
        let t = i * 5;
        old += &format!(
            "{}  INFO dispatch{{channel=1}}: openab::dispatch: batch dispatched thread_key=discord:1\n",
            hms(4, t / 60, t % 60)
        );
    }
    let mut new = format!(
        "{}  INFO openab::discord: discord bot connected user=AgentBroker\n",
        hms(4, 2, 0)
    );
    for i in 1..=18 {
        let t = 120 + i * 10;
        new += &format!(
            "{} DEBUG serenity::gateway::shard: [ShardInfo {{ id: ShardId(0), total: 1 }}] Sending heartbeat d: 42\n",
            hms(4, t / 60, t % 60)
        );
    }
    Capture::new(
        "rollout",
        &[
            ("agentbroker-6c9f7d8b4-k2x7q.log", old),
            ("agentbroker-5f7b9c6d8-p4m2z.log", new),
        ],
    )
}

fn replay(capture: &Capture, keep_activity: bool) -> (Engine, Vec<Finding>) {
    let attribution = PodAttribution::default();
    let opts = ReadOptions {
        profile: builtin_profile("openab").unwrap(),
        attribution: &attribution,
        default_bot: None,
        max_line_bytes: 1 << 20,
        zone: Default::default(),
    };
    let input = open_paths(std::slice::from_ref(&capture.0), &opts).unwrap();
    let mut engine = Engine::new(EngineConfig::default());
    engine.run_to_end(input.filter(|o| keep_activity || !matches!(o.body, Body::LogActivity(_))));
    let findings = engine.all_findings();
    (engine, findings)
}

fn silent_new_pod(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().find(|f| {
        f.kind.meta().name == "silent_session"
            && f.subject.pod_name() == Some("agentbroker-5f7b9c6d8-p4m2z")
    })
}

#[test]
fn a_pod_that_keeps_logging_keeps_the_capture_going() {
    let capture = rollout();
    let (engine, findings) = replay(&capture, true);
    // The engine's time reaches the new pod's last (unmatched) line ...
    assert_eq!(engine.now(), Some(ts("2026-04-19T04:05:00Z")));
    // ... where its silence since 04:02:00 is long enough for a verdict.
    let f = silent_new_pod(&findings).unwrap_or_else(|| panic!("no verdict: {findings:#?}"));
    assert_eq!(f.since, ts("2026-04-19T04:02:00Z"));

    // Without the news that its log went on, the capture ends at the last matched line, 5 s
    // after the connect: no verdict is possible.
    let (engine, findings) = replay(&capture, false);
    assert_eq!(engine.now(), Some(ts("2026-04-19T04:02:05Z")));
    assert!(silent_new_pod(&findings).is_none(), "{findings:#?}");
}
