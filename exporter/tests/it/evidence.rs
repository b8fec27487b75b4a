//! Issue 14's replays: verdicts no stronger than the evidence, attribution of a crash loop,
//! and the gateway-health findings, on captures in the libraries' own log formats
//! (`exporter/tests/fixtures/evidence/`, written by its `generate.py`).

use crate::support::exporter;
use crate::support::prom;

use chrono::{DateTime, Utc};
use serde_json::Value;

fn replay(name: &str) -> Value {
    let dir = prom::repo_root()
        .join("exporter/tests/fixtures/evidence")
        .join(name);
    let out = exporter::run(&["replay", "--format", "json", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().unwrap()
}

fn of_kind<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    findings(r).iter().filter(|f| f["kind"] == kind).collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// A rollout of a bot whose logs show no events: the overlap and a warning that the new
/// session cannot be verified, never a critical finding.
fn blind_rollout(name: &str, new_pod: &str) {
    let r = replay(name);
    let critical: Vec<_> = findings(&r)
        .iter()
        .filter(|f| f["severity"] == "critical")
        .collect();
    assert!(critical.is_empty(), "no page: {critical:#?}");
    let concurrent = of_kind(&r, "concurrent_sessions");
    assert_eq!(concurrent.len(), 1, "{r:#}");
    assert_eq!(concurrent[0]["pod"], new_pod);
    let unverified = of_kind(&r, "unverified_session");
    assert_eq!(unverified.len(), 1, "{r:#}");
    assert_eq!(unverified[0]["pod"], new_pod);
    assert_eq!(unverified[0]["severity"], "warning");
    let why = unverified[0]["explanation"].as_str().unwrap();
    assert!(why.contains("cannot be verified"), "{why}");
    assert!(of_kind(&r, "silent_session").is_empty());
    assert!(of_kind(&r, "unattributed_identify").is_empty());
}

#[test]
fn a_discordjs_rollout_without_event_lines_is_a_warning() {
    blind_rollout("djs-rollout", "tallybot-7a8b9c0d1-k3m4n");
}

#[test]
fn a_jda_rollout_without_event_lines_is_a_warning() {
    blind_rollout("jda-rollout", "ticketbot-6d7e8f9a0-m9n0p");
    // Discord's count names the bot TicketBot: the pods of Deployment `ticketbot` are its.
    let r = replay("jda-rollout");
    assert!(
        findings(&r).iter().all(|f| f["bot"] == "TicketBot"),
        "{r:#}"
    );
}

#[test]
fn a_stalled_heartbeat_sequence_is_silent_within_three_heartbeat_intervals() {
    let r = replay("dpy-sequence-stall");
    let silent = of_kind(&r, "silent_session");
    assert_eq!(silent.len(), 1, "{r:#}");
    let s = silent[0];
    assert_eq!(s["pod"], "helperbot-8e5c0a7d6-q7w3n");
    assert_eq!(s["severity"], "critical");
    assert_eq!(s["bot"], "HelperBot");
    let why = s["explanation"].as_str().unwrap();
    assert!(why.contains("heartbeat sequence kept advancing"), "{why}");
    // The new session's READY, and when the finding was opened: its `since` is the first
    // heartbeat of the stall; the engine flags it once its own next heartbeat proves the
    // stall, so its first heartbeat plus one interval bounds the opening.
    let ready: DateTime<Utc> = "2026-04-19T04:00:04Z".parse().unwrap();
    let since = time(&s["since"]);
    let interval = chrono::TimeDelta::milliseconds(41_250);
    assert!(
        since >= ready && since + interval <= ready + interval * 3,
        "{since}"
    );
    let session = r["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["pod"] == "helperbot-8e5c0a7d6-q7w3n")
        .unwrap();
    assert_eq!(session["sequence"]["last"], 4);
    assert!(of_kind(&r, "unverified_session").is_empty());
    assert!(
        findings(&r)
            .iter()
            .all(|f| f["pod"] != "helperbot-7d4b9f6c5-x8k2m" || f["kind"] == "lingering_session"),
        "nothing but its lingering against the old pod: {r:#}"
    );
}

#[test]
fn a_crash_loop_before_the_first_ready_is_filed_under_the_bots_real_name() {
    let r = replay("dpy-crashloop-then-good-run");
    let fatal = of_kind(&r, "fatal_close");
    assert_eq!(fatal.len(), 1, "{r:#}");
    assert_eq!(fatal[0]["bot"], "HelperBot");
    assert_eq!(fatal[0]["pod"], "helper-5d6c7b8a9-q2w3e");
    assert!(fatal[0]["explanation"].as_str().unwrap().contains("4014"));
    assert!(of_kind(&r, "unattributed_identify").is_empty(), "{r:#}");
    let bots: std::collections::BTreeSet<&str> = findings(&r)
        .iter()
        .map(|f| f["bot"].as_str().unwrap())
        .chain(
            r["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["bot"].as_str().unwrap()),
        )
        .collect();
    assert_eq!(
        bots.into_iter().collect::<Vec<_>>(),
        ["HelperBot"],
        "one bot"
    );
}

#[test]
fn a_resume_loop_gives_its_finding() {
    let r = replay("djs-resume-loop");
    let f = of_kind(&r, "resume_loop");
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0]["severity"], "critical");
    assert_eq!(f[0]["pod"], "tallybot-7a8b9c0d1-k3m4n");
    let why = f[0]["explanation"].as_str().unwrap();
    assert!(why.contains("identified anew 4 times"), "{why}");
}
