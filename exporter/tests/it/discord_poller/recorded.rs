//! Discord's samples next to the logs, through `replay`.

use super::*;

// ---------------------------------------------------------------------------------------------
// Acceptance 2: unexplained drops vs a visible rollout, end to end through `replay`.

const T0: &str = "2026-04-19T04:00:00Z";

fn ts(secs: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).unwrap();
    (t0 + chrono::TimeDelta::seconds(secs))
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// An openab log line as `kubectl logs --timestamps` shows it.
fn openab(secs: i64, what: &str) -> String {
    let t = ts(secs);
    match what {
        "connected" => {
            format!("{t} {t}  INFO openab::discord: discord bot connected user=AgentBroker\n")
        }
        _ => format!(
            "{t} {t}  INFO dispatch{{channel=1496011987654321102 adapter=\"discord\"}}: openab::dispatch: batch dispatched thread_key=discord:1 events_per_dispatch=1\n"
        ),
    }
}

fn sample_line(secs: i64, remaining: u32) -> String {
    format!(
        "{{\"at\": \"{}\", \"bot\": \"AgentBroker\", \"gateway_bot\": {{\"url\": \"wss://gateway.discord.gg\", \"shards\": 1, \"session_start_limit\": {{\"total\": 1000, \"remaining\": {remaining}, \"reset_after\": 80000000, \"max_concurrency\": 1}}}}}}\n",
        ts(secs)
    )
}

fn replay_json(dir: &Path) -> Value {
    let cfg = dge::config::Config::default();
    let mut out = Vec::new();
    dge::cmd::replay::replay(
        &cfg,
        &[dir.to_path_buf()],
        dge::cmd::replay::Format::Json,
        None,
        &mut out,
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn kinds(doc: &Value, kind: &str) -> usize {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .count()
}

#[test]
fn unexplained_drops_are_exactly_the_unattributed_identifies() {
    let dir = tempfile::tempdir().unwrap();
    // One steady pod: connected at 0, events every 30 s, no other connect.
    let mut log = openab(0, "connected");
    for t in (30..700).step_by(30) {
        log.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-5f7b9c6d8-p4m2z.log"), log).unwrap();
    // Samples every 60 s; remaining drops three times (after polls 3, 6 and 8).
    let mut samples = sample_line(5, 999);
    let mut remaining = 999;
    for i in 1..=10 {
        if [3, 6, 8].contains(&i) {
            remaining -= 1;
        }
        samples.push_str(&sample_line(5 + 60 * i, remaining));
    }
    std::fs::write(dir.path().join("gateway-bot.jsonl"), samples).unwrap();
    let doc = replay_json(dir.path());
    assert_eq!(kinds(&doc, "unattributed_identify"), 3, "{doc:#}");
    for f in doc["findings"].as_array().unwrap() {
        if f["kind"] == "unattributed_identify" {
            assert_eq!(f["bot"], "AgentBroker");
            assert!(
                f["explanation"].as_str().unwrap().contains("logs show 0"),
                "{f:#}"
            );
        }
    }
}

#[test]
fn a_visible_rollout_explains_its_drop() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = openab(0, "connected");
    for t in (30..300).step_by(30) {
        old.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-5f7b9c6d8-p4m2z.log"), old).unwrap();
    // The rollout: a new pod connects at 100 s (one IDENTIFY) and gets events.
    let mut new = openab(100, "connected");
    for t in (115..300).step_by(30) {
        new.push_str(&openab(t, "dispatch"));
    }
    std::fs::write(dir.path().join("agentbroker-6c9f7d8b4-k2x7q.log"), new).unwrap();
    let samples: String = [(5, 999), (65, 999), (125, 998), (185, 998), (245, 998)]
        .iter()
        .map(|(t, r)| sample_line(*t, *r))
        .collect();
    std::fs::write(dir.path().join("gateway-bot.jsonl"), samples).unwrap();
    let doc = replay_json(dir.path());
    assert_eq!(kinds(&doc, "unattributed_identify"), 0, "{doc:#}");
}
