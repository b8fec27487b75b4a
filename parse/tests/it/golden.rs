//! The golden files of `parse/tests/golden/`: per profile, `<profile>.log` (its library's real
//! lines and look-alikes; where each line comes from is in `<profile>.sources`) and
//! `<profile>.out`, what `discord-gateway-exporter parse --profile <profile> <profile>.log`
//! prints, byte for byte (the same function renders both). Any difference fails;
//! `UPDATE_GOLDEN=1 cargo test -p dge-parse --test it golden` rewrites the `.out` files (then
//! read the diff).
//!
//! Profiles come from `parse/profiles/*.toml` and, for tests only, `parse/tests/profiles/*.toml`,
//! read by the same loader: no profile needs Rust. Every golden log is also checked for what
//! must hold of any log, so a new profile's pair gets these checks for free:
//! - the same rows with the colour codes removed, and the same evidence;
//! - the same rows read with plain framing, behind `kubectl logs --timestamps` and in CRI
//!   files, each line then at its container's time (a line without a time of its own, counted
//!   malformed where it stands, then reads as `parse` said it would);
//! - a library profile's log reads the same under `auto` (no other library's rule takes a
//!   line, a look-alike stays ignored);
//! - no evidence keeps an escape code or a `\r`;
//! - every rule of every profile matches some golden line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use dge_core::observation::{Body, InstanceId, Observation, SessionEvent};
use dge_parse::logs::{
    Builtins, Classified, CompiledProfile, Framing, LogStream, Outcome, builtin_names,
    builtin_profile, classify_log_bytes, for_each_line, write_parse_report,
};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(sub)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// The compiled-in profile files plus the test-only ones, through the one loader.
fn registry() -> Builtins {
    let extra: Vec<(String, String)> = files(&dir("profiles"), "toml")
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    let texts = dge_parse::logs::profile::builtin_toml()
        .iter()
        .copied()
        .chain(extra.iter().map(|(o, t)| (o.as_str(), t.as_str())));
    Builtins::from_texts(texts).expect("the profile files load")
}

/// What `parse --profile name` uses: the compiled-in profile, else the test registry's.
fn profile(reg: &Builtins, name: &str) -> Arc<CompiledProfile> {
    builtin_profile(name).unwrap_or_else(|| {
        Arc::new(
            reg.compile(name)
                .unwrap_or_else(|e| panic!("golden {name}.log: {e}")),
        )
    })
}

/// The `auto` that holds `name` (the test registry's for a test-only library).
fn auto_for(reg: &Builtins, name: &str) -> Arc<CompiledProfile> {
    if builtin_names().contains(&name) {
        builtin_profile("auto").unwrap()
    } else {
        Arc::new(reg.compile("auto").unwrap())
    }
}

fn report(p: &Arc<CompiledProfile>, bytes: &[u8]) -> String {
    let mut out = Vec::new();
    write_parse_report(Arc::clone(p), bytes, &mut out).unwrap();
    String::from_utf8(out).expect("the report is UTF-8")
}

fn classify(
    p: &Arc<CompiledProfile>,
    framing: Framing,
    bytes: &[u8],
) -> (Vec<Classified>, Vec<Observation>) {
    let mut s = LogStream::new(
        Arc::clone(p),
        framing,
        InstanceId::pod("", "-"),
        "golden".into(),
    );
    let (mut rows, mut out) = (Vec::new(), Vec::new());
    classify_log_bytes(bytes, &mut s, &mut out, |_, c| rows.push(c));
    (rows, out)
}

/// What a line means, without its time.
type Meaning = (
    Outcome,
    Option<String>,
    Option<SessionEvent>,
    Option<String>,
    Option<u32>,
    Vec<(String, String)>,
    Option<&'static str>,
);

fn meaning(c: &Classified) -> Meaning {
    (
        c.outcome,
        c.rule.clone(),
        c.event.clone(),
        c.bot.clone(),
        c.shard,
        c.captures.clone(),
        c.note,
    )
}

fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for_each_line(bytes, |l| v.push(l.to_vec()));
    v
}

fn evidence(out: &[Observation]) -> Vec<String> {
    out.iter()
        .map(|o| match &o.body {
            Body::Session(s) => s.line.as_ref().map(|l| l.text()).unwrap_or_default(),
            other => panic!("not a session observation: {other:?}"),
        })
        .collect()
}

/// The checks that hold of any log (see the module docs).
fn check_invariants(name: &str, p: &Arc<CompiledProfile>, bytes: &[u8]) {
    let (rows, out) = classify(p, Framing::Auto, bytes);
    for e in evidence(&out) {
        assert!(!e.contains('\x1b') && !e.ends_with('\r'), "{name}: {e:?}");
    }
    // Colours removed: the same rows; plain-framed, the same evidence (the line as it reads
    // without colours).
    let plain = strip_ansi(bytes);
    if plain != bytes {
        let (prows, _) = classify(p, Framing::Auto, &plain);
        assert_eq!(prows, rows, "{name}: the rows depend on colour codes");
        let (_, coloured) = classify(p, Framing::Plain, bytes);
        let (_, uncoloured) = classify(p, Framing::Plain, &plain);
        assert_eq!(
            evidence(&coloured),
            evidence(&uncoloured),
            "{name}: evidence"
        );
    }
    let (plain_rows, _) = classify(p, Framing::Plain, bytes);
    let physical = lines(bytes);
    let base: DateTime<Utc> = "2026-04-19T09:00:00Z".parse().unwrap();
    let at = |i: usize| base + Duration::milliseconds(i as i64);
    let mut kubectl = Vec::new();
    let mut cri = Vec::new();
    for (i, l) in physical.iter().enumerate() {
        let ts = at(i).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string();
        kubectl.extend_from_slice(format!("{ts} ").as_bytes());
        kubectl.extend_from_slice(l);
        kubectl.push(b'\n');
        cri.extend_from_slice(format!("{ts} stdout F ").as_bytes());
        cri.extend_from_slice(l);
        cri.push(b'\n');
    }
    let variants = [
        ("plain framing", plain_rows, false),
        ("kubectl", classify(p, Framing::Kubectl, &kubectl).0, true),
        (
            "kubectl, auto",
            classify(p, Framing::Auto, &kubectl).0,
            true,
        ),
        ("CRI", classify(p, Framing::Cri, &cri).0, true),
        ("CRI, auto", classify(p, Framing::Auto, &cri).0, true),
    ];
    for (what, got, timed) in variants {
        assert_eq!(got.len(), rows.len(), "{name} ({what}): rows");
        for (i, (want, got)) in rows.iter().zip(&got).enumerate() {
            let line = String::from_utf8_lossy(&physical[i]);
            // A line without a time (malformed where it stands) reads, behind a container's
            // timestamp, as `parse` said it would.
            let (want_meaning, got_meaning) = match (want.would_be, timed) {
                (Some(would_be), true) => {
                    let mut w = meaning(want);
                    (w.0, w.6) = (would_be, None);
                    let mut g = meaning(got);
                    g.6 = None;
                    (w, g)
                }
                _ if want.outcome == Outcome::Malformed => continue,
                _ => (meaning(want), meaning(got)),
            };
            assert_eq!(
                got_meaning,
                want_meaning,
                "{name}.log line {} ({what}): {line}",
                i + 1
            );
            if timed {
                assert_eq!(
                    got.at,
                    Some(at(i)),
                    "{name}.log line {} ({what}): time",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn golden_parse_output() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let reg = registry();
    let golden = dir("golden");
    let logs = files(&golden, "log");
    let names: BTreeSet<String> = logs
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in reg.names() {
        assert!(
            names.contains(n),
            "profile {n} has no golden pair (tests/golden/{n}.log and .out)"
        );
    }
    for other in files(&golden, "out")
        .into_iter()
        .chain(files(&golden, "sources"))
    {
        let stem = other.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(names.contains(&stem), "{}: no {stem}.log", other.display());
    }
    let libraries: Vec<&str> = reg.library_names().collect();
    let mut seen = BTreeSet::new();
    let mut stale = Vec::new();
    for log in &logs {
        let name = log.file_stem().unwrap().to_string_lossy().into_owned();
        let p = profile(&reg, &name);
        let bytes = std::fs::read(log).unwrap();
        let text = report(&p, &bytes);
        let out_path = log.with_extension("out");
        let sources = log.with_extension("sources");
        assert!(
            sources.exists(),
            "{}: where the lines come from",
            sources.display()
        );
        if update {
            std::fs::write(&out_path, &text).unwrap();
        } else {
            let want = std::fs::read_to_string(&out_path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (UPDATE_GOLDEN=1 writes it; then read it)",
                    out_path.display()
                )
            });
            if want != text {
                let at = want
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.lines().count().min(text.lines().count()));
                stale.push(format!(
                    "{}: first difference at line {}\n  want: {:?}\n  got:  {:?}",
                    out_path.display(),
                    at + 1,
                    want.lines().nth(at),
                    text.lines().nth(at)
                ));
            }
        }
        check_invariants(&name, &p, &bytes);
        if libraries.contains(&name.as_str()) {
            let auto = report(&auto_for(&reg, &name), &bytes);
            let auto: String = auto
                .lines()
                .filter(|l| !l.starts_with("detected: "))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(auto, text, "{name}.log reads differently under auto");
        }
        let (rows, _) = classify(&p, Framing::Auto, &bytes);
        seen.extend(rows.into_iter().filter_map(|c| c.rule));
    }
    assert!(
        stale.is_empty(),
        "golden output differs (UPDATE_GOLDEN=1 rewrites it; then review the diff):\n{}",
        stale.join("\n")
    );
    for n in reg.names() {
        let missing: Vec<String> = profile(&reg, n)
            .rule_names()
            .filter(|r| !seen.contains(*r))
            .map(str::to_owned)
            .collect();
        assert!(
            missing.is_empty(),
            "{n}: rules without a golden line: {missing:?}"
        );
    }
}
