//! Lists `src/engine/detectors/*.rs` (one file per finding kind) into
//! `$OUT_DIR/detectors.rs`: their `mod` lines, the `Kind` enum, `Kind::ALL`, `Kind::meta` and
//! the engine's hook dispatch. So a new finding kind is one new file, and a kind cannot be
//! half-registered: everything that lists kinds is generated from the same directory.
//!
//! Each detector file says, in fixed-format lines that this script reads:
//! - `pub(super) const ORDER: u32 = N;` its place among the kinds (the variant order, so
//!   `Kind`'s derived `Ord` and the order metrics list kinds);
//! - for each hook of the `Detector` trait it implements (`fn on_tick(` ...), a line
//!   `pub(super) const ON_TICK: u32 = N;` giving its turn among the detectors on that hook
//!   (finding ids follow it, so the turns are part of the behaviour).
//!
//! A detector that keeps state between calls declares `pub(super) struct State` (`Debug` and
//! `Default`); the engine holds it as `engine.detectors.<kind>`.
//!
//! A first line `//! test-only kind` makes the kind exist under `#[cfg(test)]` only.
//! The numbers read here are asserted against the real constants at compile time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// The hooks of the `Detector` trait (detectors/mod.rs): name, parameters, arguments.
const HOOKS: &[(&str, &str, &str)] = &[
    (
        "on_tick",
        "now: crate::observation::Timestamp, finishing: bool",
        "now, finishing",
    ),
    (
        "on_session_started",
        "id: u64, bot: &str, shard: u32, at: crate::observation::Timestamp",
        "id, bot, shard, at",
    ),
    (
        "on_session_ended",
        "id: u64, bot: &str, shard: u32, at: crate::observation::Timestamp, was_silent: bool",
        "id, bot, shard, at, was_silent",
    ),
    (
        "on_dispatch",
        "id: u64, row: usize, others: &[usize], at: crate::observation::Timestamp, \
         was_silent: bool",
        "id, row, others, at, was_silent",
    ),
    (
        "on_pod_session_ended",
        "id: u64, at: crate::observation::Timestamp, code: Option<i32>, clean: bool, \
         was_live: bool, source: &str",
        "id, at, code, clean, was_live, source",
    ),
    (
        "on_pod_deleted",
        "key: &crate::engine::state::PodKey, at: crate::observation::Timestamp",
        "key, at",
    ),
    (
        "on_fatal",
        "key: &crate::engine::state::PodKey, bot: &str, at: crate::observation::Timestamp, \
         reason: &str, code: Option<u16>, evidence: &crate::engine::findings::Evidence",
        "key, bot, at, reason, code, evidence",
    ),
    (
        "on_pod_adopted",
        "key: &crate::engine::state::PodKey",
        "key",
    ),
    (
        "on_start_limit",
        "bot: &str, at: crate::observation::Timestamp",
        "bot, at",
    ),
    (
        "on_gateway_signal",
        "key: &crate::engine::state::PodKey, bot: &str, shard: u32, \
         at: crate::observation::Timestamp, signal: &crate::engine::signals::Signal, \
         evidence: &crate::engine::findings::Evidence",
        "key, bot, shard, at, signal, evidence",
    ),
    (
        "on_remediation",
        "at: crate::observation::Timestamp, r: &crate::observation::Remediation, \
         source: &str",
        "at, r, source",
    ),
];

struct Detector {
    module: String,
    variant: String,
    path: PathBuf,
    doc: String,
    test_only: bool,
    order: u32,
    /// Hook name -> its turn.
    hooks: BTreeMap<&'static str, u32>,
    /// It keeps state of its own between calls (`pub(super) struct State`).
    state: bool,
}

/// The value of the line `pub(super) const NAME: u32 = N;`, if the file has it.
fn const_u32(text: &str, name: &str, file: &Path) -> Option<u32> {
    let prefix = format!("pub(super) const {name}: u32 = ");
    // At the start of a line: the file's own item, not one of a nested module.
    let mut found = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).and_then(|r| r.strip_suffix(';')));
    let v = found.next()?;
    assert!(found.next().is_none(), "{}: {name} twice", file.display());
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {name} = {v:?}: {e}", file.display())),
    )
}

fn camel(module: &str) -> String {
    module
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn read(path: PathBuf) -> Detector {
    let module = path
        .file_stem()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file names")
        .to_string();
    assert!(
        module.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{}: a kind's file name is its snake_case name",
        path.display()
    );
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let test_only = text.lines().next() == Some("//! test-only kind");
    // The variant's doc: the file's first paragraph.
    let doc = text
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .filter(|l| *l != "test-only kind")
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let order = const_u32(&text, "ORDER", &path)
        .unwrap_or_else(|| panic!("{}: no `pub(super) const ORDER: u32 = N;`", path.display()));
    let mut hooks = BTreeMap::new();
    for (hook, _, _) in HOOKS {
        let implements = text.contains(&format!("fn {hook}("));
        let turn = const_u32(&text, &hook.to_ascii_uppercase(), &path);
        match (implements, turn) {
            (true, Some(t)) => {
                hooks.insert(*hook, t);
            }
            (false, None) => {}
            (true, None) => panic!(
                "{}: implements {hook} but has no `pub(super) const {}: u32 = N;` (its turn)",
                path.display(),
                hook.to_ascii_uppercase()
            ),
            (false, Some(_)) => panic!(
                "{}: has a turn for {hook} but does not implement it",
                path.display()
            ),
        }
    }
    let state = text.lines().any(|l| {
        l.strip_prefix("pub(super) struct State")
            .is_some_and(|r| r.trim_start().starts_with(['{', '(', ';']))
    });
    Detector {
        state,
        variant: camel(&module),
        module,
        path,
        doc,
        test_only,
        order,
        hooks,
    }
}

fn cfg(d: &Detector) -> &'static str {
    if d.test_only { "#[cfg(test)] " } else { "" }
}

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("src/engine/detectors");
    // The directory's own time changes when a file is added or removed; each file is
    // listed too, since its ORDER and hook turns are read here.
    println!("cargo:rerun-if-changed=src/engine/detectors");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable detectors directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter(|p| p.file_name().is_some_and(|n| n != "mod.rs"))
        .collect();
    paths.sort();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let mut kinds: Vec<Detector> = paths.into_iter().map(read).collect();
    kinds.sort_by_key(|d| d.order);
    for w in kinds.windows(2) {
        assert!(
            w[0].order != w[1].order,
            "{} and {} have the same ORDER",
            w[0].module,
            w[1].module
        );
    }

    let mut out = String::from("// Generated by core/build.rs from src/engine/detectors/*.rs.\n\n");
    for d in &kinds {
        let path = d.path.to_str().expect("a UTF-8 path");
        let _ = writeln!(out, "{}#[path = {path:?}]\nmod {};", cfg(d), d.module);
    }
    out += "\n/// The kinds of finding (docs/detection.md), one per file of `detectors/`, in their \
            `ORDER`.\n/// Their names are a contract with alerts and dashboards.\n\
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]\n\
            #[serde(rename_all = \"snake_case\")]\npub enum Kind {\n";
    for d in &kinds {
        let _ = writeln!(
            out,
            "    #[doc = {:?}]\n    {}{},",
            d.doc,
            cfg(d),
            d.variant
        );
    }
    out += "}\n\nimpl Kind {\n";
    for (attr, test) in [("not(test)", false), ("test", true)] {
        let listed: Vec<String> = kinds
            .iter()
            .filter(|d| test || !d.test_only)
            .map(|d| format!("Kind::{}", d.variant))
            .collect();
        let _ = writeln!(
            out,
            "    /// Every kind, in their order, for metrics that list them.\n    \
             #[cfg({attr})]\n    pub const ALL: [Kind; {}] = [{}];",
            listed.len(),
            listed.join(", ")
        );
    }
    out += "\n    /// The kind's metadata (the `META` of its file).\n    \
            pub const fn meta(self) -> &'static crate::engine::KindMeta {\n        match self {\n";
    for d in &kinds {
        let _ = writeln!(
            out,
            "            {}Kind::{} => &{}::META,",
            cfg(d),
            d.variant,
            d.module
        );
    }
    out += "        }\n    }\n}\n\n";
    // What was read above is what the compiler sees.
    for d in &kinds {
        let _ = writeln!(
            out,
            "{}const _: () = {{\n    assert!(str_eq({m}::META.name, {m:?}), \"META.name is the file name\");\n    \
             assert!({m}::ORDER == {});",
            cfg(d),
            d.order,
            m = d.module
        );
        for (hook, turn) in &d.hooks {
            let _ = writeln!(
                out,
                "    assert!({}::{} == {turn});",
                d.module,
                hook.to_ascii_uppercase()
            );
        }
        out += "};\n";
    }
    out += "\n/// Each detector's own state (the `State` of its file), which the engine keeps.\n\
            #[derive(Debug, Default)]\npub(super) struct States {\n";
    for d in kinds.iter().filter(|d| d.state) {
        let _ = writeln!(out, "    {}{m}: {m}::State,", cfg(d), m = d.module);
    }
    out += "}\n";
    out += "\nimpl Engine {\n";
    for (hook, params, args) in HOOKS {
        let mut turns: Vec<(u32, &Detector)> = kinds
            .iter()
            .filter_map(|d| d.hooks.get(hook).map(|t| (*t, d)))
            .collect();
        turns.sort_by_key(|(t, _)| *t);
        for w in turns.windows(2) {
            assert!(
                w[0].0 != w[1].0,
                "{} and {} have the same turn on {hook}",
                w[0].1.module,
                w[1].1.module
            );
        }
        let _ = writeln!(
            out,
            "    /// Runs [`Detector::{hook}`] of every detector that has it, in their turns.\n    \
             #[allow(unused_variables)]\n    \
             pub(super) fn detectors_{hook}(&mut self, {params}) {{"
        );
        for (_, d) in turns {
            let _ = writeln!(
                out,
                "        {}<{}::{} as Detector>::{hook}(self, {args});",
                cfg(d),
                d.module,
                d.variant
            );
        }
        out += "    }\n";
    }
    out += "}\n";
    let target = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("detectors.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}
