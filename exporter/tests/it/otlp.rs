//! Issue 7 acceptance: session traces over OTLP into a real OTLP/gRPC receiver
//! (opentelemetry-proto's tonic `TraceService` server inside the test).
//!
//! 1. A replayed incident (`replay --otlp examples/rollout-restart-silent`) and the live demo
//!    export the session spans with their attributes and original times, the handover span
//!    linking the old and the new session, and the silent-session finding as a span event with
//!    its explanation; the demo's long sessions show up as segments within seconds.
//! 2. With the collector refusing connections, `/metrics` and the findings keep updating and
//!    the export errors are counted in `/metrics` and `/healthz`; the daemon still stops at once.
//! 3. No span, event, link or resource attribute carries a bot token (`run` with a token file,
//!    a token variable and a token-bearing log line), and the daemon's log lines carry trace ids.

use crate::support::otlp_receiver;
use crate::support::prom;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use otlp_receiver::{Got, Receiver, all_text};
use prom::{ChildGuard, free_port, http, repo_root};

const BIN: &str = env!("CARGO_BIN_EXE_discord-gateway-exporter");
const OLD: &str = "agentbroker-6c9f7d8b4-k2x7q";
const NEW: &str = "agentbroker-5f7b9c6d8-p4m2z";

/// The binary with no OTEL_* variables of the caller's environment.
fn command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("DGE_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    c
}

fn named<'a>(spans: &'a [Got], name: &str) -> Vec<&'a Got> {
    spans.iter().filter(|g| g.span.name == name).collect()
}

fn session<'a>(spans: &'a [Got], pod: &str) -> Option<&'a Got> {
    spans.iter().find(|g| {
        g.span.name == "gateway.session" && g.attr("k8s.pod.name").as_deref() == Some(pod)
    })
}

fn ns(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap() as u64
}

#[test]
fn replay_exports_the_incident_with_its_original_times() {
    let rx = Receiver::start();
    let out = command()
        .args(["replay", "--otlp"])
        .arg(repo_root().join("examples/rollout-restart-silent"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .env("OTEL_SERVICE_NAME", "agentbroker-postmortem")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The timeline is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("silent_session"));
    // replay flushes before it exits: everything is there already.
    let spans = rx.spans();

    let old = session(&spans, OLD).expect("old session span");
    let new = session(&spans, NEW).expect("new session span");
    for s in [old, new] {
        assert_eq!(s.attr("discord.bot").as_deref(), Some("AgentBroker"));
        assert_eq!(s.attr("k8s.namespace.name").as_deref(), Some("bots"));
        assert_eq!(s.attr("discord.shard").as_deref(), Some("0"));
        assert_eq!(
            s.resource_attr("service.name").as_deref(),
            Some("agentbroker-postmortem")
        );
        assert_eq!(
            s.resource_attr("deployment.environment").as_deref(),
            Some("test")
        );
        assert_eq!(s.scope, "discord-gateway-exporter");
    }
    // Original times: the new pod logged its connection at 04:00:03.4 on 2026-04-19.
    assert_eq!(new.start_ns(), ns("2026-04-19T04:00:03.400Z"));
    assert_eq!(old.start_ns(), ns("2026-04-19T02:59:58.400Z"));
    assert!(old.span.end_time_unix_nano > ns("2026-04-19T04:00:03.400Z"));
    assert!(old.span.end_time_unix_nano < ns("2026-04-19T04:01:00Z"));
    // Outcomes: the old one ended, the new one was still live when the capture ends.
    assert_ne!(old.attr("discord.session.outcome").as_deref(), Some("open"));
    assert_eq!(new.attr("discord.session.outcome").as_deref(), Some("open"));
    assert!(new.events("session.first_event").is_empty());
    assert_eq!(old.events("session.pod_terminating").len(), 1);
    assert_eq!(new.events("session.predecessor_active").len(), 1);

    // The silent-session finding is an event of the new session, with its explanation.
    let silent = new
        .events("finding.opened")
        .into_iter()
        .find(|e| {
            otlp_receiver::attr(&e.attributes, "finding.kind").as_deref() == Some("silent_session")
        })
        .expect("silent_session event on the new session");
    let explanation = otlp_receiver::attr(&silent.attributes, "finding.explanation").unwrap();
    assert!(explanation.contains("connected but deaf"), "{explanation}");
    assert!(explanation.contains(OLD), "{explanation}");
    assert_eq!(
        otlp_receiver::attr(&silent.attributes, "finding.severity").as_deref(),
        Some("critical")
    );
    assert_eq!(
        new.span.status.as_ref().map(|s| s.code),
        Some(2),
        "status error"
    );

    // The handover relates the old and the new session by links.
    let handovers = named(&spans, "gateway.handover");
    assert_eq!(handovers.len(), 1, "{handovers:#?}");
    let h = handovers[0];
    assert_eq!(h.attr("discord.handover.old_pod").as_deref(), Some(OLD));
    assert_eq!(h.attr("discord.handover.new_pod").as_deref(), Some(NEW));
    assert_eq!(h.attr("discord.handover.kind").as_deref(), Some("overlap"));
    assert_eq!(
        h.attr("discord.handover.outcome").as_deref(),
        Some("new_session_silent")
    );
    let link_to = |g: &Got, role: &str| {
        h.span
            .links
            .iter()
            .find(|l| otlp_receiver::attr(&l.attributes, "discord.link").as_deref() == Some(role))
            .map(|l| l.trace_id == g.span.trace_id && l.span_id == g.span.span_id)
    };
    assert_eq!(link_to(old, "old_session"), Some(true));
    assert_eq!(link_to(new, "new_session"), Some(true));
    // ... and tells the story as events, the silence included.
    let names: Vec<&str> = h.span.events.iter().map(|e| e.name.as_str()).collect();
    for want in [
        "new.session.ready",
        "old.session.pod_terminating",
        "new.session.predecessor_active",
        "old.session.ended",
        "finding.opened",
    ] {
        assert!(names.contains(&want), "{want} missing in {names:?}");
    }
    assert_eq!(h.start_ns(), ns("2026-04-19T04:00:03.400Z"));
    // The new session links back to its predecessor and its handover.
    assert_eq!(new.span.links.len(), 2);
    assert!(new.span.links.iter().any(|l| l.span_id == old.span.span_id));
    assert!(new.span.links.iter().any(|l| l.span_id == h.span.span_id));
    // Without --otlp nothing is exported.
    let before = rx.spans().len();
    let out = command()
        .arg("replay")
        .arg(repo_root().join("examples/rollout-restart-silent"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.spans().len(), before);
}

/// `[traces] protocol = "http/protobuf"` in the config file: the same spans over OTLP/HTTP.
#[test]
fn replay_exports_over_http_protobuf_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start_http();
    let cfg = dir.path().join("exporter.toml");
    std::fs::write(
        &cfg,
        format!(
            "[traces]\nendpoint = \"{}\"\nprotocol = \"http/protobuf\"\n",
            rx.endpoint()
        ),
    )
    .unwrap();
    let out = command()
        .args(["replay", "--otlp", "--config"])
        .arg(&cfg)
        .arg(repo_root().join("examples/rollout-restart-silent"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = rx.spans();
    assert!(session(&spans, OLD).is_some() && session(&spans, NEW).is_some());
    assert_eq!(named(&spans, "gateway.handover").len(), 1);
    assert_eq!(
        spans[0].resource_attr("service.name").as_deref(),
        Some("discord-gateway-exporter")
    );
    // A bad protocol is a config error, said plainly.
    std::fs::write(&cfg, "[traces]\nprotocol = \"carrier-pigeon\"\n").unwrap();
    let out = command()
        .args(["replay", "--otlp", "--config"])
        .arg(&cfg)
        .arg(repo_root().join("examples/rollout-restart-silent"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("traces.protocol") && err.contains("http/protobuf"),
        "{err}"
    );
}

/// A spawned daemon (`demo` or `run`) with its HTTP address and log.
struct Daemon {
    addr: SocketAddr,
    log: std::path::PathBuf,
    child: ChildGuard,
}

impl Daemon {
    fn start(cmd: Command, addr: SocketAddr, dir: &Path) -> Daemon {
        let log = dir.join(format!("daemon-{}.log", addr.port()));
        let mut child = ChildGuard::spawn("discord-gateway-exporter", cmd, &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.exited() {
                panic!(
                    "exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = http(addr, "GET", "/readyz", None, b"") {
                return Daemon { addr, log, child };
            }
            assert!(Instant::now() < deadline, "not ready on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> String {
        let (status, body) = http(self.addr, "GET", path, None, b"").expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path)).unwrap()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the time it took to exit.
    fn stop(&mut self) -> Duration {
        let t = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.pid().to_string()])
            .status()
            .unwrap();
        while self.child.exited().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t.elapsed()
    }
}

fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn demo(endpoint: &str, dir: &Path) -> Daemon {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = command();
    cmd.args(["demo", "--speed", "30", "--listen", &addr.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .current_dir(dir);
    Daemon::start(cmd, addr, dir)
}

#[test]
fn demo_exports_sessions_handover_and_segments_live() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let mut d = demo(&rx.endpoint(), dir.path());
    // The rolled-out AgentBroker: a handover that ends as silent once the finding opens.
    let h = rx.wait_for(Duration::from_secs(90), "AgentBroker's handover", |spans| {
        named(spans, "gateway.handover")
            .into_iter()
            .find(|g| {
                g.attr("discord.bot").as_deref() == Some("AgentBroker")
                    && g.attr("discord.handover.outcome").as_deref() == Some("new_session_silent")
            })
            .cloned()
    });
    let new_pod = h.attr("discord.handover.new_pod").unwrap();
    // The new session is still open (silent), so it is seen through its segments: one carries
    // the finding, within seconds of it (segments are 5 simulated minutes, 10 s here).
    let seg = rx.wait_for(
        Duration::from_secs(60),
        "a segment with the finding",
        |spans| {
            named(spans, "gateway.session.segment")
                .into_iter()
                .find(|g| {
                    g.attr("k8s.pod.name").as_deref() == Some(new_pod.as_str())
                        && g.events("finding.opened").iter().any(|e| {
                            otlp_receiver::attr(&e.attributes, "finding.kind").as_deref()
                                == Some("silent_session")
                        })
                })
                .cloned()
        },
    );
    assert_eq!(seg.attr("discord.bot").as_deref(), Some("AgentBroker"));
    let new_link = h
        .span
        .links
        .iter()
        .find(|l| {
            otlp_receiver::attr(&l.attributes, "discord.link").as_deref() == Some("new_session")
        })
        .unwrap();
    // The segment is a child of the new session's span (same trace, parent = session).
    assert_eq!(seg.span.trace_id, new_link.trace_id);
    assert_eq!(seg.span.parent_span_id, new_link.span_id);
    // The old sessions of the healthy bots' handovers are ended spans with an outcome.
    let helper = rx.wait_for(Duration::from_secs(60), "HelperBot's handover", |spans| {
        named(spans, "gateway.handover")
            .into_iter()
            .find(|g| g.attr("discord.bot").as_deref() == Some("HelperBot"))
            .cloned()
    });
    assert_eq!(helper.attr("discord.handover.kind").as_deref(), Some("gap"));
    let stopped = d.stop();
    assert!(stopped < Duration::from_secs(10), "{stopped:?}");
    // On the way out the open sessions end, marked open.
    let spans = rx.spans();
    let open = session(&spans, &new_pod).expect("new session span flushed at exit");
    assert_eq!(
        open.attr("discord.session.outcome").as_deref(),
        Some("open")
    );
    assert!(!open.events("finding.opened").is_empty());
    assert!(d.output().contains("OPEN  critical silent_session"));
}

#[test]
fn a_refusing_collector_blocks_neither_metrics_nor_findings() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every export is refused.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut d = demo(&closed, dir.path());
    let events =
        |d: &Daemon| metric_sum(&d.get("/metrics"), "discord_gateway_session_events_total");
    let errors = |d: &Daemon| {
        metric_sum(
            &d.get("/metrics"),
            "discord_gateway_exporter_trace_export_errors_total",
        )
    };
    let first_events = events(&d);
    // Findings still open: the rolled-out bot's silent session.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let f = d.json("/api/v1/findings?active=true");
        if f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "silent_session")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no silent_session finding:\n{}",
            d.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Metrics keep moving, and the failed exports are counted.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first_errors = loop {
        let e = errors(&d);
        if e >= 1.0 && events(&d) > first_events {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no export error counted:\n{}",
            d.get("/metrics")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let later_events = events(&d);
    let deadline = Instant::now() + Duration::from_secs(60);
    while errors(&d) <= first_errors || events(&d) <= later_events {
        assert!(
            Instant::now() < deadline,
            "errors or events stopped rising:\n{}",
            d.get("/metrics")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let h = d.json("/healthz");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["traces"]["enabled"], true);
    assert!(h["traces"]["export_errors"].as_u64().unwrap() >= 2, "{h}");
    let last = h["traces"]["last_error"].as_str().unwrap();
    assert!(!last.is_empty(), "{h}");
    assert_eq!(h["traces"]["endpoint"], closed.as_str());
    // Stopping does not wait for the collector beyond a bound.
    let stopped = d.stop();
    assert!(stopped < Duration::from_secs(12), "{stopped:?}");
}

/// Token-shaped strings (Discord's three dot-separated parts).
const TOKEN_FILE: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB";
const TOKEN_ENV: &str = "OTg3NjU0MzIxMDk4NzY1NDMyMQ.ZyXwVu.ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zz";
const TOKEN_LOG: &str = "NTU1NTU1NTU1NTU1NTU1NTU1NQ.QqQqQq.loggedtokenloggedtokenloggedtoken0000";

#[test]
fn no_token_reaches_any_span_and_log_lines_carry_trace_ids() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let example = repo_root().join("examples/rollout-restart-silent");
    for pod in [OLD, NEW] {
        let mut text = std::fs::read_to_string(example.join(format!("{pod}.log"))).unwrap();
        // A bot that logs its token: the line is redacted on the way in.
        text = text.replace(
            "discord bot connected",
            &format!("discord bot connected token={TOKEN_LOG}"),
        );
        std::fs::write(logs.join(format!("{pod}.log")), text).unwrap();
    }
    std::fs::write(dir.path().join("token"), format!("Bot {TOKEN_FILE}\n")).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = format!(
        r#"listen = "{addr}"

[[file]]
path = "{logs}/*.log"

[[bot]]
name = "AgentBroker"
token_file = "{token}"

[[bot]]
name = "TallyBot"
token_env = "DISCORD_TOKEN_TALLY"

[discord]
proxy = "127.0.0.1:{closed}"
use_http = true

[traces]
endpoint = "{endpoint}"
service_name = "dge-token-test"
segment_secs = 60
"#,
        logs = logs.display(),
        token = dir.path().join("token").display(),
        closed = free_port(),
        endpoint = rx.endpoint(),
    );
    let cfg = dir.path().join("exporter.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = command();
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .env("DISCORD_TOKEN_TALLY", TOKEN_ENV)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .current_dir(dir.path());
    let mut d = Daemon::start(cmd, addr, dir.path());
    // Configured by the file alone: sessions, a segment of the open session, and the daemon's
    // own startup span. (One glob reads the new pod's file before the old one's, so the
    // engine sees no handover here; the replay and demo tests cover handovers.)
    rx.wait_for(
        Duration::from_secs(60),
        "session and segment spans",
        |spans| {
            (session(spans, OLD).is_some()
                && named(spans, "gateway.session.segment")
                    .iter()
                    .any(|g| g.attr("k8s.pod.name").as_deref() == Some(NEW)))
            .then_some(())
        },
    );
    // The silent finding's log line is in the new session's trace.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.output().contains("finding opened") {
        assert!(Instant::now() < deadline, "{}", d.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    d.stop();
    let spans = rx.spans();
    assert!(spans.len() >= 4, "{}", spans.len());
    assert_eq!(
        spans[0].resource_attr("service.name").as_deref(),
        Some("dge-token-test")
    );
    let startup = named(&spans, "startup");
    assert_eq!(startup.len(), 1, "the daemon's own startup span");
    assert_eq!(startup[0].scope, "discord-gateway-exporter.daemon");

    // Nothing anywhere carries a token or a part of one.
    let secrets: Vec<&str> = [TOKEN_FILE, TOKEN_ENV, TOKEN_LOG]
        .iter()
        .flat_map(|t| std::iter::once(*t).chain(t.split('.')))
        .collect();
    let mut checked = 0;
    for g in &spans {
        for text in all_text(g) {
            checked += 1;
            for s in &secrets {
                assert!(!text.contains(s), "{s:?} in span {:?}: {text}", g.span.name);
            }
        }
    }
    assert!(checked > 100, "{checked}");

    // Log lines: the startup ones carry the startup span's trace id, the finding ones the
    // session's; no token in them either.
    let out = d.output();
    for s in &secrets {
        assert!(!out.contains(s), "{s:?} in the daemon's log");
    }
    let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let startup_trace = hex(&startup[0].span.trace_id);
    assert!(
        out.lines()
            .any(|l| l.contains("listening") && l.contains(&startup_trace)),
        "{out}"
    );
    let finding_line = out
        .lines()
        .find(|l| l.contains("finding opened") && l.contains("silent_session"))
        .unwrap_or_else(|| panic!("{out}"));
    let new = session(&spans, NEW).expect("new session span");
    assert!(
        finding_line.contains(&hex(&new.span.trace_id)),
        "{finding_line}"
    );
}
