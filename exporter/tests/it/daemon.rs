//! The daemon end to end: the demo as the README runs it, a real Prometheus scraping it,
//! `promtool check metrics`, and `run` following files through truncation and rotation.

use crate::support::exporter;
use crate::support::prom;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exporter::{Exporter, sample};

/// The README's demo command at its default speed: the rolled-out bot's new session is
/// reported silent within the first minute.
#[test]
fn demo_flags_the_silent_session_within_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let demo = Exporter::start(&["demo"], dir.path());
    let pod = demo.wait_for(Duration::from_secs(60), "silent session in /metrics", |e| {
        let m = e.get("/metrics");
        m.lines()
            .find(|l| {
                l.starts_with("discord_gateway_session_silent{")
                    && l.contains("bot=\"AgentBroker\"")
                    && l.ends_with(" 1")
            })
            .map(|l| l.to_string())
    });
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(pod.contains("pod=\"agentbroker-"), "{pod}");
    // The API says the same, with the explanation.
    let f = demo.json("/api/v1/findings?active=true");
    let silent: Vec<_> = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "silent_session")
        .collect();
    assert_eq!(silent.len(), 1, "{f}");
    assert_eq!(silent[0]["bot"], "AgentBroker");
    // The demo prints findings as they open.
    let out = demo.output();
    assert!(out.contains("OPEN  critical silent_session"), "{out}");
    // Health endpoints.
    let h = demo.json("/healthz");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["sources"]["demo:logs"]["up"], true);
    let s = demo.json("/api/v1/sessions");
    assert!(s["sessions"].as_array().unwrap().len() >= 4);
}

/// The demo runs the remediation actor in dry-run: once AgentBroker's deaf session is
/// confirmed and its old session gone, a `remediation` finding says what it would do, and
/// `discord_gateway_remediations_total` counts it. Nothing else is ever remediated.
#[test]
fn demo_shows_remediation_in_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Exporter::start(&["demo", "--speed", "30"], dir.path());
    let f = demo.wait_for(Duration::from_secs(90), "a remediation finding", |e| {
        let f = e.json("/api/v1/findings");
        f["findings"]
            .as_array()?
            .iter()
            .find(|f| f["kind"] == "remediation")
            .cloned()
    });
    assert_eq!(f["bot"], "AgentBroker", "{f}");
    assert_eq!(f["severity"], "info", "{f}");
    let text = f["explanation"].as_str().unwrap();
    assert!(text.starts_with("Dry run:"), "{text}");
    assert!(text.contains("scale agentbroker in bots to 0"), "{text}");
    let m = demo.get("/metrics");
    assert!(
        m.lines().any(|l| l
            == "discord_gateway_remediations_total{bot=\"AgentBroker\",outcome=\"dry_run\"} 1"),
        "{m}"
    );
    let all = demo.json("/api/v1/findings");
    let others: Vec<_> = all["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "remediation" && f["bot"] != "AgentBroker")
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

/// A real Prometheus scrapes the daemon; the silent-session series is queryable through its
/// HTTP API, and promtool accepts the exposition.
#[test]
fn prometheus_scrapes_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Exporter::start(&["demo", "--speed", "30"], dir.path());
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: discord-gateway-exporter\n    static_configs:\n      - targets: ['{}']\n",
        demo.addr
    );
    let prometheus = prom::Prometheus::start(&config);
    let result = prometheus.wait_for(
        "discord_gateway_session_silent == 1 in Prometheus",
        Duration::from_secs(90),
        |p| {
            let r = p.query("discord_gateway_session_silent == 1");
            let v = r["data"]["result"].as_array()?.first()?.clone();
            Some(v)
        },
    );
    assert_eq!(result["metric"]["bot"], "AgentBroker");
    assert_eq!(result["metric"]["namespace"], "bots");
    assert_eq!(result["metric"]["job"], "discord-gateway-exporter");
    // The healthy bots are scraped too, and never silent.
    let healthy =
        prometheus.query("discord_gateway_session_silent{bot=~\"HelperBot|TallyBot\"} == 1");
    assert_eq!(
        healthy["data"]["result"].as_array().unwrap().len(),
        0,
        "{healthy}"
    );
    let up = prometheus.query("discord_gateway_exporter_build_info");
    assert_eq!(up["data"]["result"].as_array().unwrap().len(), 1);

    let promtool = prom::require_tool("promtool", "prometheus");
    let metrics = demo.get("/metrics");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &std::path::Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text).unwrap();
}

const OLD: &str = "2026-11-29T10:00:00.000000Z";

fn openab(ts: &str, msg: &str) -> String {
    format!("{ts}  INFO openab::dispatch: {msg}\n")
}

/// `run` follows a file through copytruncate, rename rotation and bad bytes, counting every
/// line exactly once and losing none around the bad ones.
#[test]
fn run_follows_files_through_truncation_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = logs.join("agentbroker-6c9f7d8b4-k2x7q.log");
    append(
        &file,
        format!(
            "{OLD}  INFO openab::discord: discord bot connected user=AgentBroker\n{}",
            openab(
                OLD,
                "batch dispatched thread_key=discord:1 events_per_dispatch=1"
            )
        )
        .as_bytes(),
    );
    let config = dir.path().join("exporter.toml");
    std::fs::write(
        &config,
        format!("[[file]]\npath = \"{}/*.log\"\n", logs.display()),
    )
    .unwrap();
    let record = dir.path().join("record.jsonl");
    let daemon = Exporter::start(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
        dir.path(),
    );
    let source = format!("file:{}/*.log", logs.display());
    let lines = |e: &Exporter, outcome: &str| {
        sample(
            &e.get("/metrics"),
            "discord_gateway_exporter_log_lines_total",
            &[("source", source.as_str()), ("outcome", outcome)],
        )
    };
    let events = |e: &Exporter| {
        sample(
            &e.get("/metrics"),
            "discord_gateway_session_events_total",
            &[("pod", "agentbroker-6c9f7d8b4-k2x7q")],
        )
    };
    daemon.wait_for(Duration::from_secs(10), "2 matched lines", |e| {
        (lines(e, "matched") == Some(2.0)).then_some(())
    });

    // Garbage between good lines: binary bytes, invalid UTF-8, a 10 MB line.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut bad = Vec::new();
    bad.extend_from_slice(openab(&now, "batch dispatched a=1").as_bytes());
    bad.extend_from_slice(b"\x00\x01\x02\xff\xfe garbage \xc3\x28\n");
    let mut invalid = openab(&now, "batch dispatched b=").into_bytes();
    invalid.truncate(invalid.len() - 1);
    invalid.extend_from_slice(b"\xff\xfe\n");
    bad.extend_from_slice(&invalid);
    bad.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    bad.push(b'\n');
    bad.extend_from_slice(openab(&now, "batch dispatched c=3").as_bytes());
    append(&file, &bad);
    daemon.wait_for(
        Duration::from_secs(20),
        "5 events after the bad lines",
        |e| (events(e) == Some(4.0)).then_some(()),
    );
    assert_eq!(lines(&daemon, "matched"), Some(5.0));
    // The garbage line has no time (and never takes the previous line's); the 10 MB line is
    // over the limit.
    assert_eq!(
        lines(&daemon, "malformed"),
        Some(2.0),
        "the 10 MB line and the garbage line"
    );
    assert_eq!(lines(&daemon, "ignored").unwrap_or(0.0), 0.0);

    // copytruncate: the file is emptied in place and written again.
    std::fs::write(&file, openab(&now, "batch dispatched d=4")).unwrap();
    daemon.wait_for(Duration::from_secs(10), "the line after truncation", |e| {
        (events(e) == Some(5.0)).then_some(())
    });
    // Rotation by rename: the old file keeps its last lines, a new file starts.
    append(&file, openab(&now, "batch dispatched e=5").as_bytes());
    std::fs::rename(&file, logs.join("agentbroker-6c9f7d8b4-k2x7q.log.1")).unwrap();
    append(&file, openab(&now, "batch dispatched f=6").as_bytes());
    daemon.wait_for(
        Duration::from_secs(10),
        "both lines around the rotation",
        |e| (events(e) == Some(7.0)).then_some(()),
    );
    // A new file matching the glob is picked up.
    append(
        &logs.join("helperbot-7d4b9f6c5-x8k2m.log"),
        format!("{now}  INFO openab::discord: discord bot connected user=HelperBot\n").as_bytes(),
    );
    daemon.wait_for(Duration::from_secs(10), "the new file's session", |e| {
        sample(
            &e.get("/metrics"),
            "discord_gateway_session_live",
            &[("bot", "HelperBot")],
        )
        .filter(|v| *v == 1.0)
    });
    // The recording replays to the same sessions.
    drop(daemon);
    let out = exporter::run(&["replay", "--format", "json", record.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: u64 = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["events"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 7);
}

/// `run` with a positions file: lines written while the daemon was down, and a rotation
/// while it was down, are read after the restart, and nothing read before is read again.
#[test]
fn run_restarted_with_a_positions_file_reads_every_line_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = logs.join("agentbroker-6c9f7d8b4-k2x7q.log");
    let positions = dir.path().join("state/positions.json");
    let config = dir.path().join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            "positions_file = \"{}\"\n[[file]]\npath = \"{}/*.log\"\n",
            positions.display(),
            logs.display()
        ),
    )
    .unwrap();
    let source = format!("file:{}/*.log", logs.display());
    let matched = |e: &Exporter| {
        sample(
            &e.get("/metrics"),
            "discord_gateway_exporter_log_lines_total",
            &[("source", source.as_str()), ("outcome", "matched")],
        )
    };
    let start = || Exporter::start(&["run", "--config", config.to_str().unwrap()], dir.path());
    let batch = |from: u32, to: u32| -> String {
        (from..to)
            .map(|n| openab(OLD, &format!("batch dispatched n={n}")))
            .collect()
    };

    append(&file, batch(0, 3).as_bytes());
    let mut daemon = start();
    daemon.wait_for(Duration::from_secs(10), "3 matched lines", |e| {
        (matched(e) == Some(3.0)).then_some(())
    });
    assert!(daemon.sigterm(Duration::from_secs(10)).success());
    assert!(positions.exists(), "saved at shutdown");

    // While it is down: more lines, then a rename rotation and a new file with more.
    append(&file, batch(3, 5).as_bytes());
    std::fs::rename(&file, logs.join("agentbroker-6c9f7d8b4-k2x7q.log.1")).unwrap();
    append(&file, batch(5, 6).as_bytes());
    let mut daemon = start();
    daemon.wait_for(
        Duration::from_secs(10),
        "the 3 lines written while down",
        |e| (matched(e) == Some(3.0)).then_some(()),
    );
    // Nothing more arrives late (a re-read would count the first 3 again).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(matched(&daemon), Some(3.0));
    assert!(daemon.sigterm(Duration::from_secs(10)).success());

    // Without the positions file the new file is read again from its start.
    std::fs::write(
        &config,
        format!("[[file]]\npath = \"{}/*.log\"\n", logs.display()),
    )
    .unwrap();
    let daemon = start();
    daemon.wait_for(
        Duration::from_secs(10),
        "the new file from its start",
        |e| (matched(e) == Some(1.0)).then_some(()),
    );
}

/// `check-config [FILE]` with `env` set: its exit code, stdout and stderr.
fn check_config(
    file: Option<&std::path::Path>,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(exporter::BIN);
    cmd.arg("check-config").args(file).envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error of a `check-config` that must fail (exit 2).
fn rejected(file: Option<&std::path::Path>, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let (code, _, err) = check_config(file, env);
    assert_eq!(code, Some(2), "{err}");
    err
}

#[test]
fn check_config_explains_what_is_wrong_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let file = Some(bad.as_path());
    std::fs::write(&bad, "listen = \"127.0.0.1:9464\"\ntick_ms = \"often\"\n").unwrap();
    let err = rejected(file, &[]);
    assert!(err.contains("tick_ms"), "{err}");
    std::fs::write(
        &bad,
        "[[rule]]\nname = \"mine\"\nliteral = \"x\"\nregex = \"x(\"\nevent = \"dispatch\"\n",
    )
    .unwrap();
    let err = rejected(file, &[]);
    assert!(err.contains("mine"), "names the rule: {err}");
    // Environment overrides are checked like the file.
    let err = rejected(None, &[("DGE_LISTEN", "not an address".as_ref())]);
    assert!(err.contains("listen"), "{err}");
    std::fs::write(
        &bad,
        format!("positions_file = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let err = rejected(file, &[]);
    assert!(
        err.contains("positions_file") && err.contains("directory"),
        "{err}"
    );
    // A key no part of the config owns is named, whether from the file or a `DGE_` variable.
    std::fs::write(&bad, "listen_addr = \"127.0.0.1:9464\"\n").unwrap();
    let err = rejected(file, &[]);
    assert!(
        err.contains("key `listen_addr`: unknown field") && err.contains("TOML file"),
        "{err}"
    );
    let err = rejected(None, &[("DGE_LISTEN_ADDR", "127.0.0.1:9464".as_ref())]);
    assert!(
        err.contains("key `listen_addr`: unknown field") && err.contains("DGE_"),
        "{err}"
    );
    // `DGE_CONFIG` names the file (`run --config`); it is no key of the config.
    std::fs::write(&bad, "[[file]]\npath = \"/var/log/*.log\"\n").unwrap();
    let (code, out, err) = check_config(file, &[("DGE_CONFIG", bad.as_os_str())]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("config OK"));
}

/// SIGTERM stops the daemon cleanly (exit 0), flushing its recording.
#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("exporter.toml");
    std::fs::write(&config, "").unwrap();
    let record = dir.path().join("record.jsonl");
    let mut daemon = Exporter::start(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
        dir.path(),
    );
    let exit = daemon.sigterm(Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit}: {}", daemon.output());
    assert!(daemon.output().contains("shutting down"));
}
