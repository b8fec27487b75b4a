//! The real daemon process: tokens never written, its recording replays to the live findings.

use super::*;

// ---------------------------------------------------------------------------------------------
// Acceptance 3 and 4: the real daemon, at debug level; no token anywhere; record -> replay.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Kills the child on drop, so a failing test leaves nothing running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn finding_keys(findings: &Value) -> Vec<(String, String, String, String, Option<String>)> {
    let mut v: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_string(),
                f["bot"].as_str().unwrap_or("").to_string(),
                f["pod"].as_str().unwrap_or("").to_string(),
                f["since"].as_str().unwrap_or("").to_string(),
                f["until"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_never_writes_a_token_and_replay_of_its_recording_matches() {
    let fake = FakeDiscord::start().await;
    fake.bot(TOK_A, "AgentBroker", 111);
    fake.rejected(TOK_GONE);
    let s = |remaining| Reply::Sample {
        remaining,
        reset_after_ms: 80_000_000,
    };
    // Three identifies Discord counts that no log shows, then Discord fails (so that no later
    // sample changes the findings while the test compares them).
    fake.script(TOK_A, [s(999), s(998), s(997), s(996)]);
    fake.script(
        TOK_A,
        std::iter::repeat_n(
            Reply::Json(502, r#"{"message": "bad gateway", "code": 0}"#.into()),
            50,
        ),
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One steady pod whose log the daemon follows: connected a minute ago, events since.
    let now = chrono::Utc::now();
    let line = |ago: i64, what: &str| {
        let t = (now - chrono::TimeDelta::seconds(ago))
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        match what {
            "connected" => {
                format!("{t} {t}  INFO openab::discord: discord bot connected user=AgentBroker\n")
            }
            _ => format!(
                "{t} {t}  INFO dispatch{{channel=1 adapter=\"discord\"}}: openab::dispatch: batch dispatched thread_key=discord:1 events_per_dispatch=1\n"
            ),
        }
    };
    let mut log = line(60, "connected");
    for ago in [50, 40, 30, 20, 10, 5] {
        log.push_str(&line(ago, "dispatch"));
    }
    let pod_log = d.join("agentbroker-5f7b9c6d8-p4m2z.log");
    std::fs::write(&pod_log, log).unwrap();
    std::fs::write(d.join("agentbroker.token"), format!("Bot {TOK_A}\n")).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = d.join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "{addr}"
tick_ms = 200

[engine]
identify_skew_secs = 1

[[file]]
path = "{}"
namespace = "bots"

[discord]
proxy = "{}"
use_http = true
poll_interval_secs = 10
request_timeout_secs = 2

[[bot]]
name = "AgentBroker"
token_file = "{}"

[[bot]]
name = "Gone"
token_env = "GONE_BOT_TOKEN_FOR_TEST"
"#,
            pod_log.display(),
            fake.addr,
            d.join("agentbroker.token").display()
        ),
    )
    .unwrap();
    let record = d.join("record.jsonl");
    let stdout = d.join("stdout.txt");
    let stderr = d.join("stderr.txt");
    let bin = env!("CARGO_BIN_EXE_discord-gateway-exporter");
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--record")
        .arg(&record)
        .env("RUST_LOG", "debug")
        .env("GONE_BOT_TOKEN_FOR_TEST", TOK_GONE)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let child = Child(child);
    let pid = child.0.id();

    // Four samples ~10 s apart, then the settle window.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut metrics = String::new();
    loop {
        if let Ok(r) = reqwest::get(format!("http://{addr}/metrics")).await {
            metrics = r.text().await.unwrap_or_default();
            if metric(
                &metrics,
                "discord_gateway_unattributed_identifies_total",
                &[("bot", "AgentBroker")],
            ) == Some(3.0)
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 3 unattributed identifies in 90 s; metrics:\n{metrics}\nstderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last sample's interval has settled (unattributed = 3); let a tick publish.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, metrics) = get(&addr, "/metrics").await;
    let (_, findings) = get(&addr, "/api/v1/findings").await;
    let (_, sessions) = get(&addr, "/api/v1/sessions").await;
    let (_, healthz) = get(&addr, "/healthz").await;
    let (_, readyz) = get(&addr, "/readyz").await;
    let (_, index) = get(&addr, "/").await;

    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_identifies_total",
            &[("bot", "AgentBroker"), ("seen_by", "discord")]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_exporter_source_up",
            &[("source", "discord:Gone")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "discord_gateway_exporter_discord_requests_total",
            &[("bot", "Gone"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(fake.count(TOK_GONE, "users/@me"), 1);
    let h: Value = serde_json::from_str(&healthz).unwrap();
    let gone = h["sources"]["discord:Gone"]["detail"].as_str().unwrap();
    assert!(gone.contains("token rejected"), "{healthz}");
    let live: Value = serde_json::from_str(&findings).unwrap();
    assert!(
        live["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "unattributed_identify"),
        "{findings}"
    );

    // SIGTERM: a clean shutdown flushes the recording.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Acceptance 4: replay of the recording gives the live findings.
    let out = Command::new(bin)
        .args(["replay", "--format", "json", "--config"])
        .arg(&config)
        .arg(&record)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        finding_keys(&replayed["findings"]),
        finding_keys(&live["findings"]),
        "replay of the recording vs the live run\nlive: {:#}\nreplayed: {:#}\nrecording:\n{}",
        live["findings"],
        replayed["findings"],
        std::fs::read_to_string(&record).unwrap()
    );
    let text_out = Command::new(bin)
        .arg("replay")
        .arg(&record)
        .output()
        .unwrap();
    let check = Command::new(bin)
        .arg("check-config")
        .arg(&config)
        .env("GONE_BOT_TOKEN_FOR_TEST", TOK_GONE)
        .output()
        .unwrap();

    // Acceptance 3: the tokens were used (the fake saw them) and appear in nothing the
    // exporter wrote.
    let seen = fake.tokens_seen();
    assert!(seen.iter().any(|t| t == TOK_A) && seen.iter().any(|t| t == TOK_GONE));
    let logs =
        std::fs::read_to_string(&stderr).unwrap() + &std::fs::read_to_string(&stdout).unwrap();
    assert!(
        logs.contains("DEBUG") && logs.contains("token rejected by Discord"),
        "debug logs were captured:\n{logs}"
    );
    let rejected_logged = logs
        .lines()
        .filter(|l| l.contains("token rejected by Discord") && l.contains("WARN"))
        .count();
    assert_eq!(rejected_logged, 1, "the rejection is logged once:\n{logs}");
    let everything: Vec<(&str, String)> = vec![
        ("daemon logs", logs),
        ("/metrics", metrics),
        ("/api/v1/findings", findings),
        ("/api/v1/sessions", sessions),
        ("/healthz", healthz),
        ("/readyz", readyz),
        ("/", index),
        ("recording", std::fs::read_to_string(&record).unwrap()),
        (
            "replay --format json",
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "replay stderr",
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        (
            "replay text",
            String::from_utf8_lossy(&text_out.stdout).into_owned(),
        ),
        (
            "check-config",
            String::from_utf8_lossy(&check.stdout).into_owned()
                + &String::from_utf8_lossy(&check.stderr),
        ),
    ];
    for (what, text) in &everything {
        for tok in [TOK_A, TOK_GONE] {
            // The token, and each of its dot-separated parts that is long enough to identify it.
            assert!(!text.contains(tok), "{what} contains a token");
            for part in tok.split('.').filter(|p| p.len() >= 20) {
                assert!(!text.contains(part), "{what} contains part of a token");
            }
        }
    }
}
