//! `replay` on the recorded incidents in `examples/` (written by the simulator).

use crate::support::exporter;
use crate::support::prom;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    prom::repo_root().join("examples").join(name)
}

fn replay_json(name: &str) -> Value {
    let out = exporter::run(&[
        "replay",
        "--format",
        "json",
        example(name).to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["pod"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const OLD: &str = "agentbroker-6c9f7d8b4-k2x7q";
const NEW: &str = "agentbroker-5f7b9c6d8-p4m2z";

#[test]
fn rollout_incident_flags_the_new_pod_only() {
    let r = replay_json("rollout-restart-silent");
    let f = findings(&r);
    assert!(
        f.contains(&("concurrent_sessions".into(), NEW.into())),
        "{f:?}"
    );
    assert!(f.contains(&("silent_session".into(), NEW.into())), "{f:?}");
    assert!(
        !f.iter().any(|(_, pod)| pod == OLD),
        "nothing against the old pod: {f:?}"
    );
    let silent = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "silent_session")
        .unwrap();
    assert_eq!(
        silent["until"],
        Value::Null,
        "still silent at the end of the capture"
    );
    assert_eq!(silent["severity"], "critical");
    assert_eq!(silent["bot"], "AgentBroker");
    assert_eq!(silent["namespace"], "bots");
    assert_eq!(silent["shard"], 0);
    assert!(
        silent["since"]
            .as_str()
            .unwrap()
            .starts_with("2026-04-19T04:00:03")
    );
    assert!(!silent["explanation"].as_str().unwrap().is_empty());
    assert!(!silent["evidence"].as_array().unwrap().is_empty());
    // Both sessions are reported; the old one ended cleanly (its pod exited 0 after the
    // bot's shutdown lines; the API's second-precision times put the exit first).
    let sessions = r["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let old = sessions.iter().find(|s| s["pod"] == OLD).unwrap();
    assert!(
        old["end"]["kind"] == "closed" || old["end"]["clean"] == true,
        "{old}"
    );
    let new = sessions.iter().find(|s| s["pod"] == NEW).unwrap();
    assert_eq!(new["events"], 0);
    assert_eq!(new["ended_at"], Value::Null);
    // Every input was read without problems.
    for i in r["inputs"].as_array().unwrap() {
        assert_eq!(i["malformed"], 0, "{i}");
    }
}

#[test]
fn the_workaround_is_clean() {
    let r = replay_json("scale-0-1-clean");
    let f = findings(&r);
    assert!(
        !f.iter()
            .any(|(k, _)| k == "silent_session" || k == "concurrent_sessions"),
        "{f:?}"
    );
    assert!(f.is_empty(), "the workaround raises nothing at all: {f:?}");
    assert_eq!(r["sessions"].as_array().unwrap().len(), 2);
}

#[test]
fn a_quiet_night_is_not_silent() {
    let r = replay_json("quiet-night");
    let f = findings(&r);
    assert!(!f.iter().any(|(k, _)| k == "silent_session"), "{f:?}");
}

#[test]
fn duplicate_delivery_and_the_killed_pod_lingering() {
    let r = replay_json("duplicate-delivery");
    let f = findings(&r);
    assert!(
        f.contains(&(
            "duplicate_delivery".into(),
            "tallybot-6f9b8c7d5-r2t6v".into()
        )),
        "{f:?}"
    );
    assert!(
        f.contains(&(
            "lingering_session".into(),
            "tallybot-59c8d7f6b-m4n8p".into()
        )),
        "{f:?}"
    );
    assert!(!f.iter().any(|(k, _)| k == "silent_session"), "{f:?}");
}

#[test]
fn crash_loop_on_intents_is_a_fatal_close() {
    let r = replay_json("crashloop-intents");
    let f = findings(&r);
    assert!(f.iter().any(|(k, _)| k == "fatal_close"), "{f:?}");
    assert!(f.iter().any(|(k, _)| k == "bot_offline"), "{f:?}");
}

#[test]
fn text_report_shows_the_timeline_and_explanations() {
    let out = exporter::run(&[
        "replay",
        example("rollout-restart-silent").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("== AgentBroker =="), "{text}");
    let row = text
        .lines()
        .position(|l| l.trim_start().starts_with(NEW))
        .unwrap();
    let session_row = text.lines().nth(row + 1).unwrap();
    assert!(
        session_row.contains('!'),
        "the new session is drawn silent: {session_row}"
    );
    assert!(text.contains("[critical] silent_session"), "{text}");
    assert!(text.contains("docs/troubleshooting.md#discordbotsilentsession"));
}

#[test]
fn unreadable_input_fails_naming_the_file() {
    let out = exporter::run(&["replay", "/nonexistent/capture.log"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/capture.log"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn examples_are_what_the_simulator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = exporter::run(&["demo", "--write-examples", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = prom::repo_root().join("examples");
    let mut generated = Vec::new();
    walk(dir.path(), &mut generated);
    assert!(generated.len() > 10);
    for path in generated {
        let rel = path.strip_prefix(dir.path()).unwrap();
        let want = std::fs::read(&path).unwrap();
        let have = std::fs::read(committed.join(rel))
            .unwrap_or_else(|e| panic!("examples/{} missing ({e}); run `discord-gateway-exporter demo --write-examples examples`", rel.display()));
        assert!(
            have == want,
            "examples/{} drifted from the simulator; regenerate it",
            rel.display()
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_runbook_anchor_exists() {
    let guide = std::fs::read_to_string(prom::repo_root().join("docs/troubleshooting.md")).unwrap();
    let anchors: Vec<String> = guide
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let r = replay_json("crashloop-intents");
    let mut runbooks: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["runbook"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "discordbotconcurrentsessions",
        "discordbotsilentsession",
        "discordbotquietsession",
        "discordbotduplicatedelivery",
        "discordbotlingeringsession",
        "discordbotunattributedidentify",
        "discordbotstartlimitlow",
        "discordbotfatalclose",
        "discordbotoffline",
    ] {
        runbooks.push(format!("docs/troubleshooting.md#{kind}"));
    }
    for rb in runbooks {
        let anchor = rb.split('#').nth(1).unwrap();
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{rb} has no heading in docs/troubleshooting.md"
        );
    }
}

/// The architecture work must not change what `replay` says: each example's text and JSON
/// report is compared byte for byte with the one recorded before it (tests/golden/replay/).
/// Regenerate only for an intended change of output:
/// `for d in examples/*/; do n=$(basename $d); discord-gateway-exporter replay $d > exporter/tests/golden/replay/$n.txt; ... --format json ... > $n.json; done`
#[test]
fn replay_of_every_example_matches_its_golden_report() {
    let root = prom::repo_root();
    let golden = root.join("exporter/tests/golden/replay");
    let mut checked = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        for (format, ext) in [("text", "txt"), ("json", "json")] {
            let out = std::process::Command::new(exporter::BIN)
                .args(["replay", "--format", format, &format!("examples/{name}/")])
                .current_dir(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want = std::fs::read(golden.join(format!("{name}.{ext}")))
                .unwrap_or_else(|e| panic!("golden report for {name}.{ext} missing: {e}"));
            assert!(
                out.stdout == want,
                "replay --format {format} examples/{name}/ differs from tests/golden/replay/{name}.{ext}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "5 examples x 2 formats");
}
