//! The alerting side of the product: Prometheus rules, their promtool unit tests, the
//! Alertmanager example and the runbooks they link to.
//!
//! These run the real `promtool` (Debian package `prometheus`) and `amtool` (Debian package
//! `prometheus-alertmanager`); a missing tool fails the test with the package to install.

use crate::support::prom;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

pub(crate) const RUNBOOK_BASE: &str = "https://github.com/discord-gateway-exporter/discord-gateway-exporter/blob/main/docs/troubleshooting.md#";

fn alerts_dir() -> PathBuf {
    prom::repo_root().join("alerts")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

fn rule_files() -> Vec<PathBuf> {
    let files = files_ending(&alerts_dir(), ".rules.yml");
    assert!(!files.is_empty(), "no alerts/*.rules.yml found");
    files
}

pub(crate) fn test_files() -> Vec<PathBuf> {
    let files = files_ending(&alerts_dir().join("tests"), ".test.yml");
    assert!(!files.is_empty(), "no alerts/tests/*.test.yml found");
    files
}

pub(crate) fn yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Run a tool and fail with its output unless it succeeds.
fn run_ok(mut command: Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    format!("{stdout}{stderr}")
}

/// One alerting rule as written in a rule file.
pub(crate) struct AlertRule {
    pub(crate) file: PathBuf,
    pub(crate) name: String,
    pub(crate) rule: Value,
}

pub(crate) fn alert_rules() -> Vec<AlertRule> {
    let mut out = Vec::new();
    for file in rule_files() {
        let doc = yaml(&file);
        let groups = doc["groups"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{}: no `groups` list", file.display()));
        for group in groups {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                if let Some(name) = rule["alert"].as_str() {
                    out.push(AlertRule {
                        file: file.clone(),
                        name: name.to_string(),
                        rule: rule.clone(),
                    });
                }
            }
        }
    }
    assert!(!out.is_empty(), "the rule files define no alert");
    out
}

fn alert_names() -> BTreeSet<String> {
    alert_rules().into_iter().map(|a| a.name).collect()
}

#[test]
fn promtool_check_rules_accepts_every_rule_file() {
    let promtool = prom::require_tool("promtool", "prometheus");
    let mut cmd = Command::new(promtool);
    cmd.arg("check").arg("rules").args(rule_files());
    run_ok(cmd, "promtool check rules");
}

#[test]
fn promtool_unit_tests_pass() {
    let promtool = prom::require_tool("promtool", "prometheus");
    let mut cmd = Command::new(promtool);
    cmd.arg("test")
        .arg("rules")
        .args(test_files())
        .current_dir(alerts_dir().join("tests"));
    let out = run_ok(cmd, "promtool test rules");
    assert!(
        !out.contains("FAILED"),
        "promtool reported failures:\n{out}"
    );
}

#[test]
fn example_prometheus_config_loads_the_rules() {
    let promtool = prom::require_tool("promtool", "prometheus");
    let mut cmd = Command::new(promtool);
    cmd.arg("check")
        .arg("config")
        .arg(alerts_dir().join("prometheus.example.yml"));
    let out = run_ok(cmd, "promtool check config alerts/prometheus.example.yml");
    for file in rule_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            out.contains(&name),
            "prometheus.example.yml does not load {name}:\n{out}"
        );
    }
}

#[test]
fn amtool_check_config_accepts_the_alertmanager_example() {
    let amtool = prom::require_tool("amtool", "prometheus-alertmanager");
    let mut cmd = Command::new(amtool);
    cmd.arg("check-config")
        .arg(alerts_dir().join("alertmanager.yml"));
    run_ok(cmd, "amtool check-config alerts/alertmanager.yml");
}

/// Which receiver the example routing picks for an alert with these labels.
fn route(labels: &[(&str, &str)]) -> String {
    let amtool = prom::require_tool("amtool", "prometheus-alertmanager");
    let mut cmd = Command::new(amtool);
    cmd.arg("config")
        .arg("routes")
        .arg("test")
        .arg(format!(
            "--config.file={}",
            alerts_dir().join("alertmanager.yml").display()
        ))
        .args(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let output = cmd.output().expect("run amtool config routes test");
    assert!(
        output.status.success(),
        "amtool config routes test failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn every_critical_alert_pages_and_every_warning_goes_to_chat() {
    for alert in alert_rules() {
        let severity = alert.rule["labels"]["severity"].as_str().unwrap_or("");
        let receiver = route(&[
            ("alertname", &alert.name),
            ("severity", severity),
            ("bot", "agentbroker"),
        ]);
        let expected = if severity == "critical" {
            "pager"
        } else {
            "chat"
        };
        assert_eq!(
            receiver, expected,
            "{} (severity {severity}) is routed to {receiver}",
            alert.name
        );
    }
}

#[test]
fn every_alert_has_severity_summary_description_runbook_and_for() {
    let mut problems = Vec::new();
    for AlertRule { file, name, rule } in alert_rules() {
        let at = format!("{} in {}", name, file.display());
        match rule["labels"]["severity"].as_str() {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!("{at}: severity label is {other:?}")),
        }
        if rule["for"].as_str().is_none() {
            problems.push(format!("{at}: no explicit `for:`"));
        }
        let annotations = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            if annotations[key]
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
            {
                problems.push(format!("{at}: annotation `{key}` missing or empty"));
            }
        }
        let description = annotations["description"].as_str().unwrap_or("");
        let wanted = if name.starts_with("DiscordBot") {
            "$labels.bot"
        } else {
            "$labels."
        };
        if !description.contains(wanted) {
            problems.push(format!("{at}: description does not use {{{{ {wanted} }}}}"));
        }
        let runbook = annotations["runbook_url"].as_str().unwrap_or("");
        if !runbook.starts_with(RUNBOOK_BASE) || runbook.len() == RUNBOOK_BASE.len() {
            problems.push(format!(
                "{at}: runbook_url {runbook:?} is not {RUNBOOK_BASE}<anchor>"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn alert_names_are_unique() {
    let mut seen = BTreeMap::new();
    for a in alert_rules() {
        *seen.entry(a.name).or_insert(0) += 1;
    }
    let dups: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(dups.is_empty(), "alerts defined more than once: {dups:?}");
}

#[test]
fn every_alert_has_a_firing_and_a_non_firing_test_case() {
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in test_files() {
        let doc = yaml(&file);
        for test in doc["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = case["alertname"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: a case without alertname", file.display()))
                    .to_string();
                let fires = case["exp_alerts"]
                    .as_sequence()
                    .is_some_and(|alerts| !alerts.is_empty());
                if fires {
                    firing.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
        }
    }
    let names = alert_names();
    let mut problems = Vec::new();
    for name in &names {
        if !firing.contains(name) {
            problems.push(format!("{name}: no test case where it fires"));
        }
        if !quiet.contains(name) {
            problems.push(format!("{name}: no test case where it must stay quiet"));
        }
    }
    for name in firing.union(&quiet) {
        if !names.contains(name) {
            problems.push(format!(
                "test cases name {name}, which no rule file defines"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// GitHub's heading anchor: lowercase, punctuation other than `-` and `_` removed, spaces
/// to `-`; repeated anchors get `-1`, `-2`, ...
fn github_anchor(heading: &str) -> String {
    let mut out = String::new();
    for c in heading.trim().chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            out.extend(c.to_lowercase());
        } else if c == ' ' {
            out.push('-');
        }
    }
    out
}

pub(crate) fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        let rest = &line[level..];
        if level > 6 || !(rest.is_empty() || rest.starts_with(' ')) {
            continue;
        }
        // Inline code and emphasis markers are dropped by the anchor rules anyway.
        let base = github_anchor(rest.trim().trim_end_matches('#'));
        let n = counts.entry(base.clone()).or_insert(0);
        let anchor = if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        *n += 1;
        anchors.insert(anchor);
    }
    anchors
}

#[test]
fn github_anchor_follows_githubs_rules() {
    assert_eq!(
        github_anchor("DiscordBotSilentSession"),
        "discordbotsilentsession"
    );
    assert_eq!(
        github_anchor("Connected but silent: the symptom"),
        "connected-but-silent-the-symptom"
    );
    assert_eq!(github_anchor("Scale to 0, then 1"), "scale-to-0-then-1");
    assert_eq!(github_anchor("`preStop` hook (1000)"), "prestop-hook-1000");
    let anchors = markdown_anchors("# A\n## A\n```\n# not a heading\n```\n### B b\n");
    assert_eq!(
        anchors,
        ["a", "a-1", "b-b"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn every_runbook_url_resolves_to_a_troubleshooting_heading() {
    let doc = prom::repo_root().join("docs").join("troubleshooting.md");
    let text =
        std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("read {}: {e}", doc.display()));
    let anchors = markdown_anchors(&text);
    let mut problems = Vec::new();
    for alert in alert_rules() {
        let url = alert.rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or("");
        let anchor = url.strip_prefix(RUNBOOK_BASE).unwrap_or("");
        if !anchors.contains(anchor) {
            problems.push(format!(
                "{}: runbook anchor #{anchor} is not a heading of docs/troubleshooting.md",
                alert.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nheadings: {anchors:?}",
        problems.join("\n")
    );
}

/// Alert names an Alertmanager matcher list mentions (`alertname = "X"` / `=~ "A|B"`).
fn matcher_alertnames(matchers: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in matchers.as_sequence().into_iter().flatten() {
        let Some(m) = m.as_str() else { continue };
        let m = m.trim();
        let Some(rest) = m.strip_prefix("alertname") else {
            continue;
        };
        let rest = rest.trim_start();
        let value = if let Some(v) = rest.strip_prefix("=~") {
            v
        } else if let Some(v) = rest.strip_prefix("!=") {
            v
        } else if let Some(v) = rest.strip_prefix('=') {
            v
        } else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        out.extend(value.split('|').map(str::to_string));
    }
    out
}

#[test]
fn alertmanager_inhibitions_name_existing_alerts() {
    let config = yaml(&alerts_dir().join("alertmanager.yml"));
    let names = alert_names();
    let rules = config["inhibit_rules"]
        .as_sequence()
        .expect("alertmanager.yml has inhibit_rules");
    let mut problems = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        for key in ["source_matchers", "target_matchers"] {
            for name in matcher_alertnames(&rule[key]) {
                if !names.contains(&name) {
                    problems.push(format!(
                        "inhibit_rules[{i}].{key} names unknown alert {name}"
                    ));
                }
            }
        }
        if rule["equal"].as_sequence().is_none_or(|e| e.is_empty()) {
            problems.push(format!(
                "inhibit_rules[{i}] has no `equal` labels: it would inhibit across bots"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `](#anchor)` and `](troubleshooting.md#anchor)` links in a markdown text.
fn local_links(text: &str, file_prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["](#".to_string(), format!("]({file_prefix}#")] {
        let mut rest = text;
        while let Some(pos) = rest.find(&prefix) {
            rest = &rest[pos + prefix.len()..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn links_inside_the_docs_resolve() {
    let docs = prom::repo_root().join("docs");
    let guide = std::fs::read_to_string(docs.join("troubleshooting.md"))
        .expect("read docs/troubleshooting.md");
    let anchors = markdown_anchors(&guide);
    let mut problems = Vec::new();
    for link in local_links(&guide, "troubleshooting.md") {
        if !anchors.contains(&link) {
            problems.push(format!("troubleshooting.md links to missing #{link}"));
        }
    }
    if let Ok(alerts_doc) = std::fs::read_to_string(docs.join("alerts.md")) {
        for link in local_links(&alerts_doc, "troubleshooting.md") {
            if !anchors.contains(&link) && !markdown_anchors(&alerts_doc).contains(&link) {
                problems.push(format!("alerts.md links to missing #{link}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The engine's findings carry `docs/troubleshooting.md#anchor` runbooks; they must resolve too.
#[test]
fn runbooks_named_in_the_exporter_source_resolve() {
    let guide = std::fs::read_to_string(prom::repo_root().join("docs/troubleshooting.md"))
        .expect("read docs/troubleshooting.md");
    let anchors = markdown_anchors(&guide);
    let mut stack = vec![prom::repo_root().join("exporter/src")];
    let mut problems = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut rest = text.as_str();
            while let Some(pos) = rest.find("troubleshooting.md#") {
                rest = &rest[pos + "troubleshooting.md#".len()..];
                let anchor: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !anchor.is_empty() && !anchors.contains(&anchor) {
                    problems.push(format!("{}: #{anchor}", path.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "runbook anchors missing from docs/troubleshooting.md:\n{}",
        problems.join("\n")
    );
}
