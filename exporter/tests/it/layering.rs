//! The architecture's rules that the compiler alone does not keep (docs/architecture.md,
//! "Crates"): the core and the parsing crate stay free of I/O frameworks, however deep the
//! dependency, and no Rust file grows past what a reader can hold in their head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::prom::repo_root;

/// Crates that mean I/O, a runtime or telemetry: none may be reachable from `dge-core` or
/// `dge-parse`, directly or through another crate.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "axum",
    "hyper",
    "kube",
    "kube-client",
    "k8s-openapi",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry-otlp",
    "prometheus",
    "twilight-http",
    "twilight-model",
    "tonic",
    "reqwest",
];

/// Every package of Cargo.lock reachable from `root` (dev-dependencies included: the lock does
/// not tell them apart, so this is stricter than the build).
fn reachable(lock: &toml::Value, root: &str) -> BTreeSet<String> {
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock["package"].as_array().expect("[[package]]") {
        let name = p["name"].as_str().expect("name").to_owned();
        let list: Vec<String> = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    // "name" or "name version" when two versions are locked.
                    .filter_map(|x| x.as_str()?.split(' ').next().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone()) {
            todo.extend(deps.get(&n).cloned().unwrap_or_default());
        }
    }
    assert!(seen.len() > 1, "{root} not found in Cargo.lock");
    seen
}

#[test]
fn core_and_parse_reach_no_io_runtime_or_telemetry_crate() {
    let text = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    for root in ["dge-core", "dge-parse"] {
        let all = reachable(&lock, root);
        let bad: Vec<&&str> = FORBIDDEN.iter().filter(|f| all.contains(**f)).collect();
        assert!(bad.is_empty(), "{root} reaches {bad:?}");
    }
    // The check can fail: the exporter does reach them.
    let exporter = reachable(&lock, "discord-gateway-exporter");
    assert!(exporter.contains("tokio") && exporter.contains("kube"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_rust_file_is_over_800_lines() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["core", "parse", "exporter", "fuzz/fuzz_targets"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found the sources: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{} ({n} lines)", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:?}");
}
