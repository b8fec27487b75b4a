//! Pins the `/metrics` exposition: names, help, types, labels and values are a contract that
//! dashboards and alerts are written against.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dge_core::engine::Engine;
use dge_parse::replay::{ReadOptions, open_paths};

use super::Metrics;
use crate::config::Config;
use crate::self_metrics::SelfMetrics;
use dge_parse::logs::Outcome;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The exposition after replaying one folder of `examples/` (as `replay` runs it).
fn render_example(name: &str) -> String {
    let cfg = Config::default();
    let opts = ReadOptions {
        profile: cfg.compile_profile(&cfg.profile).expect("built-in profile"),
        attribution: &cfg.attribution,
        default_bot: cfg.default_bot.clone(),
        max_line_bytes: cfg.max_line_bytes,
        zone: cfg.log_timezone,
    };
    let mut input = open_paths(&[repo().join("examples").join(name)], &opts).expect("example");
    let mut engine_cfg = cfg.engine.clone();
    engine_cfg.retention_secs = u64::MAX;
    engine_cfg.max_closed_findings = usize::MAX;
    let mut engine = Engine::new(engine_cfg).with_default_bot(cfg.default_bot.clone());
    engine.run_to_end(&mut input);
    masked(&Metrics::new(
        &SelfMetrics::new(),
        Arc::new(RwLock::new(Arc::new(engine.snapshot()))),
    ))
}

/// The exposition with the version and the process-wide trace error counter masked.
fn masked(metrics: &Metrics) -> String {
    metrics
        .render()
        .lines()
        .map(|l| {
            if l.starts_with("discord_gateway_exporter_trace_export_errors_total ") {
                "discord_gateway_exporter_trace_export_errors_total N".to_string()
            } else {
                l.replace(env!("CARGO_PKG_VERSION"), "VERSION")
            }
        })
        .map(|l| l + "\n")
        .collect()
}

const EXAMPLES: [&str; 5] = [
    "crashloop-intents",
    "duplicate-delivery",
    "quiet-night",
    "rollout-restart-silent",
    "scale-0-1-clean",
];

fn golden(name: &str) -> PathBuf {
    repo()
        .join("exporter/tests/golden/metrics")
        .join(format!("{name}.prom"))
}

/// The exporter's own metrics with one sample each, next to an empty engine snapshot.
fn render_self_metrics() -> String {
    let own = SelfMetrics::new();
    let m = Metrics::new(&own, Arc::default());
    own.count_lines("kubernetes", Outcome::Matched, 3);
    own.count_lines("kubernetes", Outcome::Malformed, 0);
    own.set_source_up("kubernetes", true);
    own.discord_requests
        .with_label_values(&["AgentBroker", "200"])
        .inc();
    masked(&m)
}

/// Byte-for-byte against `exporter/tests/golden/metrics/*.prom`; `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn exposition_of_every_example_is_pinned() {
    let mut diffs = Vec::new();
    let renders = EXAMPLES
        .iter()
        .map(|&name| (name, render_example(name)))
        .chain([("self", render_self_metrics())]);
    for (name, got) in renders {
        let path = golden(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .find(|(g, w)| g != w)
                .map(|(g, w)| format!("got  {g}\nwant {w}"))
                .unwrap_or_else(|| "one is a prefix of the other".into());
            diffs.push(format!("{name}:\n{first}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A family added to `engine.rs` must show up in some golden file, so its values are pinned
/// too (extend an example or [`render_self_metrics`] if none produces it).
#[test]
fn every_engine_family_is_in_a_golden_file() {
    let all: String = EXAMPLES.iter().map(|&name| render_example(name)).collect();
    let missing: Vec<String> = super::engine::FAMILIES
        .iter()
        .map(|f| f.desc().fq_name)
        .filter(|name| !all.contains(&format!("# TYPE {name} ")))
        .collect();
    assert!(missing.is_empty(), "no example produces {missing:?}");
}
