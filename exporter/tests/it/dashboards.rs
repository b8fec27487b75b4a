//! The Grafana dashboards: valid JSON, unique panel ids, a templated Prometheus data source
//! used by every query, and every PromQL expression accepted by a real Prometheus
//! (Debian package `prometheus`; a missing binary fails the test); every metric that a
//! dashboard or an alert reads is one the exporter serves.

use crate::support::prom;

use std::collections::{BTreeMap, BTreeSet};
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
        ("cluster", ".*"),
        ("job", ".*"),
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
            // `$1` in a label_replace replacement is Prometheus', not a Grafana variable.
            let variable = expr.split('$').skip(1).any(|rest| {
                rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '{')
            });
            if variable {
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

/// Metric names (no recording rules: those have colons) that a PromQL expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("discord_") && !t.contains(':'))
        .map(str::to_string)
        .collect()
}

/// Every name the exporter serves, with a histogram's series suffixes: the `# TYPE` lines of
/// `exporter/tests/golden/metrics/*.prom`, which a unit test pins to the real `/metrics`.
fn served_metrics() -> BTreeSet<String> {
    let dir = prom::repo_root().join("exporter/tests/golden/metrics");
    let mut served = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("golden file");
        for line in text.lines() {
            let mut words = line
                .strip_prefix("# TYPE ")
                .into_iter()
                .flat_map(str::split_whitespace);
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            served.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    served.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    served
}

/// The `expr` of every alerting and recording rule in `alerts/*.rules.yml`, with where it is.
fn rule_exprs() -> Vec<(String, String)> {
    let dir = prom::repo_root().join("alerts");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = e.expect("entry").path();
        if !path.to_string_lossy().ends_with(".rules.yml") {
            continue;
        }
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("rules file"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for group in doc["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                let rule_name = rule["alert"].as_str().or(rule["record"].as_str());
                out.push((
                    format!("{} {}", name(&path), rule_name.unwrap_or("?")),
                    rule["expr"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// Metric names are a contract: a family renamed or dropped in the exporter fails here, not
/// silently as an empty panel or an alert that can never fire.
#[test]
fn every_metric_a_dashboard_or_alert_reads_is_served() {
    let served = served_metrics();
    assert!(
        served.contains("discord_gateway_session_live"),
        "golden files: {served:?}"
    );
    let mut exprs = rule_exprs();
    assert!(exprs.len() > 10, "only {} rules found", exprs.len());
    for file in dashboard_files() {
        let d = load(&file);
        exprs.extend(queries(&file, &d).into_iter().map(|q| (q.at, q.expr)));
    }
    let mut unknown = Vec::new();
    for (at, expr) in &exprs {
        for m in metric_names(expr) {
            if !served.contains(&m) {
                unknown.push(format!("{at}: {m}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not served by the exporter (exporter/src/sinks/metrics/engine.rs):\n{}",
        unknown.join("\n")
    );
}

/// `dashboards/*.json` are written by `dashboards/generate.py` (grafana-foundation-sdk, pinned
/// in deploy/requirements.txt): run it into a temporary folder and compare byte for byte, so a
/// hand edit of the JSON or a generator change without its output fails here.
#[test]
fn dashboards_are_what_generate_py_writes() {
    let root = prom::repo_root();
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new("python3")
        .arg(root.join("dashboards/generate.py"))
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("python3 (and `python3 -m pip install -r deploy/requirements.txt`)");
    assert!(
        run.status.success(),
        "dashboards/generate.py failed (is grafana-foundation-sdk installed? \
         python3 -m pip install -r deploy/requirements.txt):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut generated = 0;
    for file in dashboard_files() {
        let fresh = std::fs::read_to_string(out.path().join(file.file_name().unwrap()))
            .unwrap_or_else(|e| panic!("generate.py did not write {}: {e}", name(&file)));
        let committed = std::fs::read_to_string(&file).unwrap();
        assert!(
            fresh == committed,
            "dashboards/{} differs from what dashboards/generate.py writes: edit the generator \
             and run `python3 dashboards/generate.py` (then `python3 deploy/generate.py`)",
            name(&file)
        );
        generated += 1;
    }
    let written = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(
        written, generated,
        "generate.py writes a dashboard not in dashboards/"
    );
}

/// The `label_replace` arguments that turn a finding's `kind` into its runbook `anchor` in the
/// findings tables (`dashboards/generate.py`, ANCHOR).
fn anchor_args(dashboard: &Value) -> String {
    let exprs: Vec<String> = all_panels(dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    let e = exprs
        .iter()
        .find(|e| e.contains("\"anchor\", "))
        .expect("a findings query with an anchor label");
    let start = e.find("\"anchor\", ").unwrap();
    let kind = start + e[start..].find("\"kind\", \"").unwrap();
    let end = kind + e[kind..].find("\")").unwrap() + 1;
    e[start..end].to_string()
}

/// The dashboards link a finding to `${runbook_base}#discordbot<kind without a leading "bot_"
/// and without underscores>`:
/// every kind's runbook follows that rule, and a real Prometheus turns each kind into exactly
/// its anchor with the dashboards' own `label_replace`. A new kind whose runbook breaks the
/// rule fails here, not as a dead link.
#[test]
fn every_kinds_runbook_is_the_anchor_the_dashboards_link_to() {
    let prometheus = prom::Prometheus::start("scrape_configs: []\n");
    for file in dashboard_files() {
        let args = anchor_args(&load(&file));
        for kind in dge_core::engine::Kind::ALL {
            let kind_name = kind.as_str();
            let anchor = format!(
                "discordbot{}",
                kind_name
                    .strip_prefix("bot_")
                    .unwrap_or(kind_name)
                    .replace('_', "")
            );
            assert_eq!(
                kind.meta().runbook,
                format!("docs/troubleshooting.md#{anchor}"),
                "{kind:?}: its runbook does not follow the dashboards' anchor rule"
            );
            let expr = format!(
                "label_replace(label_replace(vector(1), \"kind\", \"{}\", \"\", \"\"), {args})",
                kind.as_str()
            );
            let answer = prometheus.query(&expr);
            assert_eq!(
                answer["data"]["result"][0]["metric"]["anchor"],
                anchor,
                "{}: {expr}\n{answer}",
                name(&file)
            );
        }
    }
}

#[test]
fn metric_names_skip_recording_rules_labels_and_strings() {
    assert_eq!(
        metric_names(
            r#"sum by (bot) (rate(discord_gateway_session_events_total{job="discord-gateway-exporter"}[5m])) > bot:discord_gateway_session_start_limit_remaining:min"#
        ),
        ["discord_gateway_session_events_total"]
    );
}
