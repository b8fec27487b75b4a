//! The Grafana dashboards: valid JSON, unique panel ids, a templated Prometheus data source
//! used by every query, and every PromQL expression accepted by a real Prometheus
//! (Debian package `prometheus`; a missing binary fails the test).

use crate::support::prom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn dashboard_files() -> Vec<PathBuf> {
    let dir = prom::repo_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for wanted in ["overview.json", "bot.json"] {
        assert!(
            files.iter().any(|f| f.ends_with(wanted)),
            "dashboards/{wanted} is missing"
        );
    }
    files
}

fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every panel, rows' nested panels included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A query: where it is (for messages), its data source and its PromQL.
struct Query {
    at: String,
    datasource: Value,
    expr: String,
}

fn queries(file: &Path, dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                at: format!(
                    "{} panel {} ({:?}) target {}",
                    name(file),
                    panel["id"],
                    panel["title"].as_str().unwrap_or(""),
                    target["refId"]
                ),
                datasource: if target["datasource"].is_null() {
                    panel["datasource"].clone()
                } else {
                    target["datasource"].clone()
                },
                expr: target["expr"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if a["builtIn"].as_i64() == Some(1) {
            continue;
        }
        out.push(Query {
            at: format!(
                "{} annotation {:?}",
                name(file),
                a["name"].as_str().unwrap_or("")
            ),
            datasource: a["datasource"].clone(),
            expr: a["expr"].as_str().unwrap_or("").to_string(),
        });
    }
    out
}

fn is_templated_datasource(ds: &Value) -> bool {
    match ds {
        Value::String(s) => s == "${datasource}" || s == "$datasource",
        Value::Object(_) => {
            let uid = ds["uid"].as_str().unwrap_or("");
            (uid == "${datasource}" || uid == "$datasource")
                && ds["type"].as_str().is_none_or(|t| t == "prometheus")
        }
        _ => false,
    }
}

/// Grafana's variables replaced by values Prometheus accepts in the same places.
fn substitute(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("__rate_interval", "1m"),
        ("__interval_ms", "60000"),
        ("__interval", "1m"),
        ("__range_s", "3600"),
        ("__range_ms", "3600000"),
        ("__range", "1h"),
        ("namespace", ".*"),
        ("bot", ".*"),
        ("pod", ".*"),
    ] {
        e = e.replace(&format!("${{{var}}}"), value);
        e = e.replace(&format!("${var}"), value);
    }
    e
}

#[test]
fn dashboards_are_valid_json_with_uid_title_and_schema() {
    let mut uids = BTreeMap::new();
    for file in dashboard_files() {
        let d = load(&file);
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no uid", name(&file)));
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{}: bad uid {uid:?}",
            name(&file)
        );
        if let Some(other) = uids.insert(uid.to_string(), name(&file)) {
            panic!("{} and {other} share uid {uid}", name(&file));
        }
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}: no title",
            name(&file)
        );
        let schema = d["schemaVersion"].as_i64().unwrap_or(0);
        assert!(
            (36..=41).contains(&schema),
            "{}: schemaVersion {schema}",
            name(&file)
        );
        assert!(
            d["id"].is_null(),
            "{}: `id` must be null for provisioning",
            name(&file)
        );
    }
}

#[test]
fn panel_ids_are_unique_including_rows() {
    for file in dashboard_files() {
        let d = load(&file);
        let mut seen = BTreeMap::new();
        for p in all_panels(&d) {
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}: a panel without id: {}", name(&file), p["title"]));
            if let Some(title) = seen.insert(id, p["title"].clone()) {
                panic!(
                    "{}: panel id {id} used by {title} and {}",
                    name(&file),
                    p["title"]
                );
            }
            assert!(
                p["gridPos"].is_object(),
                "{}: panel {id} has no gridPos",
                name(&file)
            );
        }
        assert!(seen.len() > 5, "{}: hardly any panels", name(&file));
    }
}

#[test]
fn datasource_is_a_template_variable_used_by_every_query() {
    for file in dashboard_files() {
        let d = load(&file);
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ds_var = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{}: no `datasource` variable", name(&file)));
        assert_eq!(ds_var["type"], "datasource", "{}", name(&file));
        assert_eq!(ds_var["query"], "prometheus", "{}", name(&file));
        for wanted in ["bot", "namespace", "pod"] {
            let v = vars
                .iter()
                .find(|v| v["name"] == wanted)
                .unwrap_or_else(|| panic!("{}: no `{wanted}` variable", name(&file)));
            assert!(
                is_templated_datasource(&v["datasource"]),
                "{}: variable {wanted} does not use ${{datasource}}",
                name(&file)
            );
        }
        for p in all_panels(&d) {
            if p["type"] == "row" || p["type"] == "text" {
                continue;
            }
            assert!(
                is_templated_datasource(&p["datasource"]),
                "{}: panel {} ({}) datasource is {}",
                name(&file),
                p["id"],
                p["title"],
                p["datasource"]
            );
        }
        let qs = queries(&file, &d);
        assert!(!qs.is_empty(), "{}: no queries", name(&file));
        for q in qs {
            assert!(
                is_templated_datasource(&q.datasource),
                "{}: datasource is {}, not ${{datasource}}",
                q.at,
                q.datasource
            );
            assert!(!q.expr.trim().is_empty(), "{}: empty expr", q.at);
        }
    }
}

#[test]
fn every_query_is_valid_promql_for_a_real_prometheus() {
    let prometheus = prom::Prometheus::start(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs: []\n",
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in dashboard_files() {
        let d = load(&file);
        for q in queries(&file, &d) {
            let expr = substitute(&q.expr);
            if expr.contains('$') {
                problems.push(format!("{}: unsubstituted variable in {expr}", q.at));
                continue;
            }
            let answer = prometheus.query(&expr);
            checked += 1;
            if answer["status"] != "success" {
                problems.push(format!(
                    "{}: Prometheus rejected {expr}\n    {}: {}",
                    q.at, answer["errorType"], answer["error"]
                ));
            }
        }
    }
    assert!(checked > 10, "only {checked} queries checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_query_check_does_catch_a_bad_expression() {
    let prometheus = prom::Prometheus::start("scrape_configs: []\n");
    let answer = prometheus.query("sum by (bot) (rate(discord_gateway_session_events_total[1m])");
    assert_eq!(answer["status"], "error", "{answer}");
    assert_eq!(answer["errorType"], "bad_data", "{answer}");
    let answer = prometheus.query("sum by (bot) (rate(discord_gateway_session_events_total[1m]))");
    assert_eq!(answer["status"], "success", "{answer}");
}

#[test]
fn provisioning_files_point_at_the_dashboards_and_prometheus() {
    let dir = prom::repo_root().join("dashboards").join("provisioning");
    let dashboards = std::fs::read_to_string(dir.join("dashboards.yml")).expect("dashboards.yml");
    assert!(dashboards.contains("apiVersion: 1"), "dashboards.yml");
    assert!(dashboards.contains("type: file"), "dashboards.yml");
    assert!(dashboards.contains("path:"), "dashboards.yml");
    let datasource = std::fs::read_to_string(dir.join("datasource.yml")).expect("datasource.yml");
    assert!(datasource.contains("apiVersion: 1"), "datasource.yml");
    assert!(datasource.contains("type: prometheus"), "datasource.yml");
}
