//! `docs/metrics.md` lists every metric `/metrics` serves: this test holds it to the exporter,
//! both ways. Names come from the engine's [`FAMILIES`], the daemon's registry (own counters,
//! build info, trace errors, process metrics) and every `"discord_gateway_..."` name written in
//! the exporter's source (a source's own metrics, registered only when it runs). Type, labels
//! and help are compared wherever the exporter can say them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use prometheus::proto::MetricType;

use super::Metrics;
use super::engine::FAMILIES;
use crate::self_metrics::SelfMetrics;
use dge_core::engine::Snapshot;
use dge_parse::logs::Outcome;

/// What a row of the doc says: type, labels (sorted), help.
type Row = (String, BTreeSet<String>, String);

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The rows of every table in `docs/metrics.md`: | `name` | type | labels | help |.
fn doc_rows(text: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(
            cells.len(),
            4,
            "docs/metrics.md: a row needs 4 cells: {line}"
        );
        let labels = cells[2]
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "-")
            .map(str::to_string)
            .collect();
        let name = cells[0].trim_matches('`').to_string();
        let row = (cells[1].to_string(), labels, cells[3].to_string());
        assert!(
            rows.insert(name.clone(), row).is_none(),
            "{name} listed twice"
        );
    }
    rows
}

fn type_name(t: MetricType) -> &'static str {
    match t {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

/// What the exporter itself says of its metrics: the engine's families and the daemon's
/// registry with one sample in each of its own vectors.
fn served() -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    let snap = Snapshot::default();
    for f in FAMILIES {
        let d = f.desc();
        let t = type_name(f.render(&snap).get_field_type());
        let labels = d.variable_labels.iter().cloned().collect();
        out.insert(d.fq_name.clone(), (t.to_string(), labels, d.help.clone()));
    }
    let own = SelfMetrics::new();
    let m = Metrics::new(&own, Arc::default());
    m.register_process_metrics();
    own.count_lines("s", Outcome::Matched, 1);
    own.set_source_up("s", true);
    own.discord_requests.with_label_values(&["b", "200"]).inc();
    for mf in m.registry.gather() {
        let labels = mf.get_metric().first().map_or_else(BTreeSet::new, |s| {
            s.get_label().iter().map(|l| l.name().to_string()).collect()
        });
        let row = (
            type_name(mf.get_field_type()).to_string(),
            labels,
            mf.help().to_string(),
        );
        out.insert(mf.name().to_string(), row);
    }
    out
}

/// Every whole string literal `"discord_gateway_<name>"` in `exporter/src`, but the job name.
fn names_in_source() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("exporter/src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("source file");
                for piece in text.split('"').skip(1).step_by(2) {
                    let metric_like = piece.starts_with("discord_gateway_")
                        && piece
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    if metric_like && piece != "discord_gateway_exporter" {
                        out.insert(piece.to_string());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&root().join("exporter/src"), &mut out);
    out
}

#[test]
fn docs_metrics_md_lists_exactly_what_is_served() {
    let text = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    let doc = doc_rows(&text);
    let served = served();
    let mut problems = Vec::new();
    let mut wanted: BTreeSet<String> = served.keys().cloned().collect();
    wanted.extend(names_in_source());
    // Served only where the address space is limited; the process collector declares it.
    wanted.insert("process_virtual_memory_max_bytes".into());
    for name in &wanted {
        match (doc.get(name), served.get(name)) {
            (None, _) => problems.push(format!("{name}: served but not in docs/metrics.md")),
            (Some(d), Some(s)) if d != s => problems.push(format!(
                "{name}: docs/metrics.md says {d:?}, the exporter {s:?}"
            )),
            _ => {}
        }
    }
    for name in doc.keys().filter(|n| !wanted.contains(*n)) {
        problems.push(format!("{name}: in docs/metrics.md but not served"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(doc.len() > 30, "only {} rows read", doc.len());
}

#[test]
fn the_doc_check_reads_rows_and_catches_a_difference() {
    let rows = doc_rows(
        "| metric | type | labels | help |\n|---|---|---|---|\n\
         | `a_total` | counter | bot, code | A. |\n| `b` | gauge | - | B. |\n",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows["a_total"].1,
        ["bot".to_string(), "code".to_string()].into()
    );
    assert!(rows["b"].1.is_empty());
    assert_ne!(
        rows["a_total"],
        served()["discord_gateway_close_codes_total"]
    );
}
