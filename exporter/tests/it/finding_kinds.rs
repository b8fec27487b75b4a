//! The part of "add a finding kind" (docs/architecture.md) that is not Rust: for every kind the
//! engine has, its runbook section, an alert that selects it and links that section, a promtool
//! test case that feeds the kind's series to that alert, and its entry in docs/detection.md.
//! The Rust part (one file in core/src/engine/detectors/) is walked by core's test-only kind.

use dge_core::engine::Kind;

use crate::alerts_rules::{RUNBOOK_BASE, alert_rules, markdown_anchors, test_files, yaml};
use crate::support::prom;

/// Text of a file of the repository.
fn read(path: &str) -> String {
    let p = prom::repo_root().join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn every_kind_has_its_runbook_alert_rule_test_and_detection_docs() {
    let anchors = markdown_anchors(&read("docs/troubleshooting.md"));
    let detection = read("docs/detection.md");
    let rules = alert_rules();
    let cases: Vec<serde_yaml::Value> = test_files()
        .iter()
        .flat_map(|f| yaml(f)["tests"].as_sequence().cloned().unwrap_or_default())
        .collect();
    let mut missing = Vec::new();
    for kind in Kind::ALL {
        let name = kind.as_str();
        let anchor = kind
            .runbook()
            .strip_prefix("docs/troubleshooting.md#")
            .unwrap_or_else(|| {
                panic!(
                    "{name}: runbook {:?} is not a troubleshooting section",
                    kind.runbook()
                )
            });
        if !anchors.contains(anchor) {
            missing.push(format!(
                "{name}: docs/troubleshooting.md has no heading #{anchor}"
            ));
        }
        // The alerts that select the kind's finding and send the reader to its section.
        let selector = format!("kind=\"{name}\"");
        let alerts: Vec<&str> = rules
            .iter()
            .filter(|a| {
                a.rule["expr"]
                    .as_str()
                    .is_some_and(|e| e.contains(&selector))
            })
            .filter(|a| {
                a.rule["annotations"]["runbook_url"].as_str()
                    == Some(&format!("{RUNBOOK_BASE}{anchor}"))
            })
            .map(|a| a.name.as_str())
            .collect();
        if alerts.is_empty() {
            missing.push(format!(
                "{name}: no alert in alerts/*.rules.yml selects {selector} with runbook_url {RUNBOOK_BASE}{anchor}"
            ));
        }
        // A promtool case that feeds a series of the kind and evaluates one of those alerts.
        let tested = cases.iter().any(|case| {
            let feeds = case["input_series"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|s| s["series"].as_str().is_some_and(|s| s.contains(&selector)));
            let evaluates = case["alert_rule_test"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|t| t["alertname"].as_str().is_some_and(|n| alerts.contains(&n)));
            feeds && evaluates
        });
        if !tested {
            missing.push(format!(
                "{name}: no case in alerts/tests/*.test.yml feeds a {selector} series to {alerts:?}"
            ));
        }
        if !detection.contains(&format!("`{name}`")) {
            missing.push(format!(
                "{name}: docs/detection.md does not describe `{name}`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "kinds without their recipe:\n{}",
        missing.join("\n")
    );
}
