//! Hostile input through `replay`: every bad piece is counted or reported per file, nothing
//! panics, and the good lines around it are all used.

use crate::support::exporter;
use crate::support::noise;
use crate::support::prom;

use serde_json::Value;

const POD: &str = "agentbroker-6c9f7d8b4-k2x7q";

fn line(ts: &str, msg: &str) -> Vec<u8> {
    format!("2026-04-19T04:{ts}.000000000Z 2026-04-19T04:{ts}.000000Z  INFO {msg}\n").into_bytes()
}

fn replay(dir: &std::path::Path) -> Value {
    let out = exporter::run(&["replay", "--format", "json", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn input<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no input {name} in {report}"))
}

#[test]
fn garbage_around_good_lines_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    log.extend(line(
        "00:00",
        "openab::discord: discord bot connected user=AgentBroker",
    ));
    log.extend(line("00:10", "openab::dispatch: batch dispatched n=1"));
    // Binary garbage and invalid UTF-8 on their own lines.
    log.extend_from_slice(b"\x00\x01\x02\x03\xff\xfe\xfd garbage\n");
    log.extend_from_slice(b"2026-04-19T04:00:15.000000000Z \xc3\x28\xa0\xa1 not utf-8\n");
    log.extend(line(
        "00:20",
        "openab::dispatch: batch dispatched n=2 \u{1F600}",
    ));
    // A 10 MB line in the middle.
    log.extend(std::iter::repeat_n(b'y', 10 * 1024 * 1024));
    log.push(b'\n');
    log.extend(line("00:30", "openab::dispatch: batch dispatched n=3"));
    let mut invalid = line("00:40", "openab::dispatch: batch dispatched n=4 ");
    invalid.insert(invalid.len() - 1, 0xff);
    log.extend(invalid);
    // The last line has no newline.
    let mut last = line("00:50", "openab::dispatch: batch dispatched n=5");
    last.pop();
    log.extend(last);
    std::fs::write(dir.path().join(format!("{POD}.log")), &log).unwrap();
    // A file of random bytes.
    let random = noise::xorshift_bytes(0x9E37_79B9_7F4A_7C15, 200_000);
    std::fs::write(dir.path().join("random.bin"), &random).unwrap();

    let r = replay(dir.path());
    let sessions = r["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{r}");
    assert_eq!(sessions[0]["events"], 5, "every good dispatch line counted");
    let i = input(&r, &format!("{POD}.log"));
    assert_eq!(i["matched"], 6);
    assert_eq!(
        i["malformed"], 2,
        "the 10 MB line and the garbage line without a time"
    );
    assert_eq!(i["ignored"], 1, "the garbage line behind a kubectl prefix");
    let problems = i["problems"].as_array().unwrap();
    assert!(
        problems[0].as_str().unwrap().contains("too long"),
        "{problems:?}"
    );
    // Random bytes: read, counted, nothing invented.
    let rnd = input(&r, "random.bin");
    assert_eq!(rnd["matched"], 0);
    let total = rnd["matched"].as_u64().unwrap()
        + rnd["ignored"].as_u64().unwrap()
        + rnd["malformed"].as_u64().unwrap();
    assert!(total > 0);
}

#[test]
fn truncated_json_objects_keep_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let examples = prom::repo_root().join("examples/rollout-restart-silent");
    // The pod watch stream with a corrupt object in the middle and a truncated last one.
    let watch = std::fs::read_to_string(examples.join("pods.watch.json")).unwrap();
    let objects: Vec<&str> = watch.split("\n{").collect();
    assert!(objects.len() > 6);
    let mut broken = String::new();
    for (n, o) in objects.iter().enumerate() {
        if n > 0 {
            broken.push_str("\n{");
        }
        if n == 3 {
            broken
                .push_str("\"type\": \"MODIFIED\", \"object\": {\"kind\": \"Pod\", \"metadata\": ");
            broken.push('\n');
            continue;
        }
        broken.push_str(o);
    }
    let cut = broken.len() - 40;
    std::fs::write(dir.path().join("pods.watch.json"), &broken[..cut]).unwrap();
    for f in [
        "agentbroker-6c9f7d8b4-k2x7q.log",
        "agentbroker-5f7b9c6d8-p4m2z.log",
    ] {
        std::fs::copy(examples.join(f), dir.path().join(f)).unwrap();
    }
    // Gateway samples with a broken line and a hostile one.
    let samples = std::fs::read_to_string(examples.join("gateway-bot.jsonl")).unwrap();
    let mut lines: Vec<String> = samples.lines().map(str::to_string).collect();
    lines.insert(5, "{\"at\": \"2026-04-19T03:05:00Z\", \"bot\": \"AgentBroker\", \"gateway_bot\": {\"session_st".into());
    lines.insert(
        9,
        "{\"at\": \"not a time\", \"bot\": 7, \"gateway_bot\": []}".into(),
    );
    std::fs::write(
        dir.path().join("gateway-bot.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();

    let r = replay(dir.path());
    let pods = input(&r, "pods.watch.json");
    assert!(pods["malformed"].as_u64().unwrap() >= 2, "{pods}");
    assert!(!pods["problems"].as_array().unwrap().is_empty());
    let gw = input(&r, "gateway-bot.jsonl");
    assert_eq!(gw["malformed"], 2, "{gw}");
    // The incident is still found from what was good.
    let kinds: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["pod"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("silent_session", "agentbroker-5f7b9c6d8-p4m2z")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("concurrent_sessions", "agentbroker-5f7b9c6d8-p4m2z")),
        "{kinds:?}"
    );
}
