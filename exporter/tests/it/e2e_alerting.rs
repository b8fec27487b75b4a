//! End to end: the exporter's `demo` (a simulated fleet going through the incident) scraped
//! by a real Prometheus that loads `alerts/*.rules.yml` unchanged, alerting a real
//! Alertmanager configured with `alerts/alertmanager.yml` (receiver URLs rewritten to a
//! local webhook, exactly as docs/alerts.md tells operators to do).
//!
//! The rules are the shipped ones, `for:` included, so this test takes about three minutes:
//! the demo's `--speed` compresses the simulated incident, not Prometheus' real-time `for:`.
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager`.

use crate::support::prom;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const PAGER_PLACEHOLDER: &str = "http://pager.example.invalid/discord-gateway";
const CHAT_PLACEHOLDER: &str = "http://chat.example.invalid/discord-gateway";
const RUNBOOK_BASE: &str = "https://github.com/discord-gateway-exporter/discord-gateway-exporter/blob/main/docs/troubleshooting.md#";
/// Simulated seconds per real second. The incident (rollout at +15 s simulated) and the
/// silence window it takes to call the new session deaf then pass within seconds.
const DEMO_SPEED: &str = "20";
/// Series the demo's fleet has no reason to produce, so panels built only on them may stay
/// empty here: the demo's stories never log a gateway close code (OpenAB and discord.py do
/// not print one on a clean shutdown, and the crash-loop story is not in the demo fleet), and
/// it feeds Discord's start limit straight into the engine instead of polling
/// `GET /gateway/bot`. Every other panel must show data.
const NOT_IN_DEMO: &[&str] = &[
    "discord_gateway_close_codes_total",
    "discord_gateway_exporter_discord_requests_total",
];

/// Queries of metrics from outside the exporter that the demo cannot have, each with why. A
/// query reading one of these may stay empty here; every other query must return data.
const EXTERNAL: &[(&str, &str)] = &[
    (
        "kube_pod_deletion_timestamp",
        "kube-state-metrics: the demo runs no Kubernetes cluster",
    ),
    (
        "kube_pod_status_phase",
        "kube-state-metrics: the demo runs no Kubernetes cluster",
    ),
    (
        "kube_deployment_spec_strategy_rollingupdate_max_surge",
        "kube-state-metrics: the demo runs no Kubernetes cluster",
    ),
    (
        "kube_deployment_spec_strategy_rollingupdate_max_unavailable",
        "kube-state-metrics: the demo runs no Kubernetes cluster",
    ),
];

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn start_demo() -> (prom::ChildGuard, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("dge-demo-")
        .tempdir()
        .unwrap();
    let port = prom::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_discord-gateway-exporter"));
    cmd.arg("demo")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--speed")
        .arg(DEMO_SPEED)
        .current_dir(dir.path());
    let log = dir.path().join("demo.log");
    let mut demo = prom::ChildGuard::spawn("discord-gateway-exporter demo", cmd, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = demo.exited() {
            panic!(
                "demo exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok((200, _)) = prom::http(addr, "GET", "/readyz", None, b"") {
            return (demo, addr, dir);
        }
        assert!(
            Instant::now() < deadline,
            "demo not ready on {addr} within 60s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every alert in every notification the webhook received, with the request path (the
/// receiver) and the notification's status.
fn notified_alerts(webhook: &prom::Webhook) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for r in webhook.requests() {
        let Ok(body) = serde_json::from_str::<Value>(&r.body) else {
            continue;
        };
        for alert in body["alerts"].as_array().into_iter().flatten() {
            out.push((r.path.clone(), alert.clone()));
        }
    }
    out
}

fn label<'a>(alert: &'a Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or("")
}

/// Every PromQL expression of a dashboard: panel targets (rows included) and annotations.
fn dashboard_exprs(path: &Path) -> Vec<(String, String)> {
    fn walk(panels: &Value, file: &str, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((
                        format!("{file} panel {} {} {}", p["id"], p["title"], t["refId"]),
                        e.to_string(),
                    ));
                }
            }
            walk(&p["panels"], file, out);
        }
    }
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    walk(&d["panels"], &file, &mut out);
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push((format!("{file} annotation {}", a["name"]), e.to_string()));
        }
    }
    out
}

fn substitute(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("__rate_interval", "15s"),
        ("__interval", "15s"),
        ("__range", "10m"),
        ("namespace", ".*"),
        ("bot", ".*"),
        ("pod", ".*"),
        ("cluster", ".*"),
        ("job", ".*"),
    ] {
        e = e.replace(&format!("${{{var}}}"), value);
        e = e.replace(&format!("${var}"), value);
    }
    e
}

#[test]
fn demo_incident_pages_silent_session_and_fills_every_dashboard_panel() {
    let root = prom::repo_root();
    let started = now();

    // Alertmanager with the shipped routing, receivers pointed at a local webhook.
    let webhook = prom::Webhook::start();
    let am_config = std::fs::read_to_string(root.join("alerts/alertmanager.yml")).unwrap();
    assert!(
        am_config.contains(PAGER_PLACEHOLDER) && am_config.contains(CHAT_PLACEHOLDER),
        "alerts/alertmanager.yml no longer has the documented placeholder URLs"
    );
    let am_config = am_config
        .replace(PAGER_PLACEHOLDER, &format!("{}pager", webhook.url))
        .replace(CHAT_PLACEHOLDER, &format!("{}chat", webhook.url));
    let alertmanager = prom::Alertmanager::start(&am_config);

    let (_demo, demo_addr, _demo_dir) = start_demo();
    // The demo's AgentBroker rollout connects the new pod at +17.4 s simulated, under a
    // second of real time after the demo is ready: "within 90 s of the connect" is within
    // 90 s of this instant at the latest.
    let demo_ready = Instant::now();

    // Prometheus scraping the demo every second with the shipped rules.
    let mut files = Vec::new();
    let mut rule_names = Vec::new();
    for entry in std::fs::read_dir(root.join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".rules.yml") {
            files.push((name.clone(), std::fs::read_to_string(&path).unwrap()));
            rule_names.push(name);
        }
    }
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [{}]\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\n\
         scrape_configs:\n  - job_name: discord-gateway-exporter\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{demo_addr}']\n",
        rule_names.join(", "),
        alertmanager.addr,
    );
    let file_refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let prometheus = prom::Prometheus::start_with_files(&config, &file_refs);

    // The early warning reaches chat within 90 s of the connect, about the new pod, before
    // the silence can be confirmed.
    let (path, warning) = webhook.wait_for(
        "a DiscordBotSessionAtRisk notification",
        Duration::from_secs(90).saturating_sub(demo_ready.elapsed()),
        |_| {
            notified_alerts(&webhook).into_iter().find(|(_, a)| {
                label(a, "alertname") == "DiscordBotSessionAtRisk" && a["status"] == "firing"
            })
        },
    );
    let warned_after = demo_ready.elapsed();
    assert!(warned_after <= Duration::from_secs(90), "{warned_after:?}");
    assert_eq!(
        path, "/chat",
        "early warning not routed to chat: {warning:#}"
    );
    assert_eq!(label(&warning, "severity"), "warning", "{warning:#}");
    assert!(
        label(&warning, "bot").eq_ignore_ascii_case("agentbroker")
            && label(&warning, "pod").starts_with("agentbroker-5f7b9c6d8-"),
        "early warning about the wrong session: {warning:#}"
    );
    assert_eq!(
        warning["annotations"]["runbook_url"],
        format!("{RUNBOOK_BASE}discordbotsessionatrisk"),
        "{warning:#}"
    );
    assert!(
        !notified_alerts(&webhook)
            .iter()
            .any(|(_, a)| label(a, "alertname") == "DiscordBotSilentSession"),
        "the page came before the early warning"
    );
    eprintln!("early warning notified {warned_after:?} after the demo was ready");

    // The deaf AgentBroker session reaches the pager, with its runbook.
    let silent = webhook.wait_for(
        "a DiscordBotSilentSession notification",
        Duration::from_secs(420),
        |_| {
            notified_alerts(&webhook).into_iter().find(|(_, a)| {
                label(a, "alertname") == "DiscordBotSilentSession" && a["status"] == "firing"
            })
        },
    );
    let (path, alert) = silent;
    assert_eq!(
        path, "/pager",
        "silent session not routed to the pager: {alert:#}"
    );
    assert_eq!(label(&alert, "severity"), "critical", "{alert:#}");
    assert!(
        label(&alert, "bot").eq_ignore_ascii_case("agentbroker"),
        "silent session alert for {:?}, expected agentbroker: {alert:#}",
        label(&alert, "bot")
    );
    assert!(
        label(&alert, "pod").starts_with("agentbroker-"),
        "{alert:#}"
    );
    assert_eq!(
        alert["annotations"]["runbook_url"],
        format!("{RUNBOOK_BASE}discordbotsilentsession"),
        "{alert:#}"
    );
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    assert!(
        description.contains(label(&alert, "pod")) && description.contains(label(&alert, "bot")),
        "description does not name the bot and pod: {description}"
    );

    // Every dashboard query returns data from the demo at some point of the run.
    let end = now();
    let mut empty = Vec::new();
    let mut failed = Vec::new();
    let mut checked = 0;
    for file in ["overview.json", "bot.json"] {
        for (at, expr) in dashboard_exprs(&root.join("dashboards").join(file)) {
            let expr = substitute(&expr);
            let answer = prometheus.query_range(&expr, started, end, 1.0);
            checked += 1;
            if answer["status"] != "success" {
                failed.push(format!("{at}: {expr}\n    {}", answer["error"]));
                continue;
            }
            let has_data = answer["data"]["result"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|s| s["values"].as_array().is_some_and(|v| !v.is_empty()))
            });
            if !has_data {
                if let Some((_, why)) = EXTERNAL.iter().find(|(m, _)| expr.contains(m)) {
                    eprintln!("no data in the demo (external: {why}): {at}");
                } else if NOT_IN_DEMO.iter().any(|m| expr.contains(m)) {
                    eprintln!("no data in the demo (expected, see NOT_IN_DEMO): {at}");
                } else {
                    empty.push(format!("{at}: {expr}"));
                }
            }
        }
    }
    assert!(checked > 10);
    assert!(
        failed.is_empty(),
        "queries rejected:\n{}",
        failed.join("\n")
    );
    assert!(
        empty.is_empty(),
        "dashboard queries with no data from the demo:\n{}",
        empty.join("\n")
    );

    // The clean scale 0 -> 1 of HelperBot never notified anyone, nor is anything pending.
    let helper: Vec<_> = notified_alerts(&webhook)
        .into_iter()
        .filter(|(_, a)| label(a, "bot").eq_ignore_ascii_case("helperbot"))
        .collect();
    assert!(
        helper.is_empty(),
        "notifications about helperbot: {helper:#?}"
    );
    let helper_rules: Vec<_> = prometheus
        .alerts()
        .into_iter()
        .filter(|a| label(a, "bot").eq_ignore_ascii_case("helperbot"))
        .collect();
    assert!(
        helper_rules.is_empty(),
        "alerts (pending or firing) about helperbot: {helper_rules:#?}"
    );
}
