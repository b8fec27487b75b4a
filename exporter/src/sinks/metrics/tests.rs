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
    render_example_with(name, Config::default())
}

/// [`render_example`] with `[remediation] mode = "dry-run"`: the actor's reports counted.
fn render_remediation_dry_run() -> String {
    let mut cfg = Config::default();
    cfg.remediation.mode = crate::actors::remediation::Mode::DryRun;
    render_example_with("rollout-restart-silent", cfg)
}

/// The exposition after replaying one folder of `examples/` with `cfg`.
fn render_example_with(name: &str, cfg: Config) -> String {
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
    let mut planner = crate::actors::remediation::OfflinePlanner::new(cfg.remediation.clone());
    engine.run_to_end_with(&mut input, |e| {
        planner.after(e);
        e.take_changes();
    });
    masked(&Metrics::new(
        &SelfMetrics::new(),
        Arc::new(RwLock::new(Arc::new(engine.snapshot()))),
    ))
}

/// The exposition with the build facts, the process-wide trace error counter and the
/// process metrics' values masked.
fn masked(metrics: &Metrics) -> String {
    let [version, revision, rustc] = super::BUILD_INFO;
    metrics
        .render()
        .lines()
        // Served only where the address space is limited (ulimit -v): not on every machine.
        .filter(|l| !l.contains("process_virtual_memory_max_bytes"))
        .map(|l| {
            if l.starts_with("discord_gateway_exporter_trace_export_errors_total ") {
                "discord_gateway_exporter_trace_export_errors_total N".to_string()
            } else if l.starts_with("process_") {
                let name = l.split([' ', '{']).next().unwrap_or(l);
                format!("{name} N")
            } else if l.starts_with("discord_gateway_exporter_build_info{") {
                l.replace(&format!("revision=\"{revision}\""), "revision=\"REVISION\"")
                    .replace(
                        &format!("rustc_version=\"{rustc}\""),
                        "rustc_version=\"RUSTC\"",
                    )
                    .replace(&format!("version=\"{version}\""), "version=\"VERSION\"")
            } else {
                l.to_string()
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
    m.register_process_metrics();
    own.count_lines("kubernetes", Outcome::Matched, 3);
    own.count_lines("kubernetes", Outcome::Malformed, 0);
    own.set_source_up("kubernetes", true);
    own.discord_requests
        .with_label_values(&["AgentBroker", "200"])
        .inc();
    // The Kubernetes source's own families (registered when it starts).
    let kube = crate::sources::kubernetes::KubeMetrics::new(&own);
    kube.pods.set(2);
    kube.streams.with_label_values(&["waiting"]).set(1);
    kube.pods_without_lines.set(1);
    masked(&m)
}

/// Byte-for-byte against `exporter/tests/golden/metrics/*.prom`; `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn exposition_of_every_example_is_pinned() {
    let mut diffs = Vec::new();
    let renders = EXAMPLES
        .iter()
        .map(|&name| (name, render_example(name)))
        .chain([
            ("self", render_self_metrics()),
            ("remediation-dry-run", render_remediation_dry_run()),
        ]);
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
    let mut all: String = EXAMPLES.iter().map(|&name| render_example(name)).collect();
    all.push_str(&render_remediation_dry_run());
    let missing: Vec<String> = super::engine::FAMILIES
        .iter()
        .map(|f| f.desc().fq_name)
        .filter(|name| !all.contains(&format!("# TYPE {name} ")))
        .collect();
    assert!(missing.is_empty(), "no example produces {missing:?}");
}
