//! The corpus of `parse/tests/corpus/`: per library, real log lines (from public issues, pull
//! requests and documentation; lines rebuilt from a library's format string are marked as such),
//! each with its source address and what a person reads in it (`parse/tests/corpus/README.md`).
//!
//! Every line is read as a new user gets it (`auto`) and with the library's own profile (the
//! folder's name; `json` for a layout file whose name says `json`). Per library and profile, at
//! least 95 % of the relevant lines must be read as the expectation says (event, shard, code,
//! resumable, sequence, ...), and no irrelevant line may count as an event. The counts are
//! printed (`cargo test -p dge-parse --test it corpus -- --nocapture`). Each log's
//! `<layout>.out` is what `discord-gateway-exporter parse <layout>.log` prints (the default
//! profile, `auto`), byte for byte; `UPDATE_GOLDEN=1` rewrites them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dge_core::observation::{InstanceId, SessionEvent};
use dge_parse::logs::{
    Classified, CompiledProfile, Framing, LogStream, Outcome, builtin_profile, classify_log_bytes,
    write_parse_report,
};

/// The least share of relevant lines each profile must read right.
const MIN_SHARE: f64 = 0.95;

/// Keys compared both ways: a value the parser gives and the expectation does not name is a
/// difference too. `reason` is the profile's wording, compared only when the expectation names it.
const KEYS: [&str; 12] = [
    "shard",
    "bot",
    "session_id",
    "kind",
    "sequence",
    "behind_ms",
    "wait_ms",
    "total",
    "remaining",
    "reset_after_ms",
    "resumable",
    "code",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn sorted(dir: &Path, want_dir: bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() == want_dir)
        .collect();
    v.sort();
    v
}

fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(str::to_owned).collect()
}

/// What a person reads in a line: `irrelevant`, or an event with its values.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    event: String,
    values: BTreeMap<String, String>,
}

fn parse_expectation(s: &str) -> Option<Reading> {
    let mut words = s.split_whitespace();
    let event = words.next().expect("an empty expectation");
    // `continuation`: a line of a multi-line message that completes no event (the line that
    // completes it carries the expectation).
    if event == "irrelevant" || event == "continuation" {
        return None;
    }
    let values = words
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("`{w}` in `{s}`: want key=value"));
            assert!(
                KEYS.contains(&k) || k == "reason",
                "unknown key `{k}` in `{s}`"
            );
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Some(Reading {
        event: event.to_owned(),
        values,
    })
}

/// What the parser read, in the same terms.
fn reading(c: &Classified) -> Option<Reading> {
    if c.outcome != Outcome::Matched {
        return None;
    }
    let event = c.event.as_ref()?;
    let mut v = BTreeMap::new();
    let mut put = |k: &str, x: Option<String>| {
        if let Some(x) = x {
            v.insert(k.to_owned(), x);
        }
    };
    put("shard", c.shard.map(|s| s.to_string()));
    put("bot", c.bot.clone());
    match event {
        SessionEvent::Ready { session_id } => put("session_id", session_id.clone()),
        SessionEvent::Dispatch { kind } => put("kind", kind.as_ref().map(|k| k.to_string())),
        SessionEvent::Heartbeat { sequence } => put("sequence", sequence.map(|s| s.to_string())),
        SessionEvent::Stalled { behind_ms } => put("behind_ms", behind_ms.map(|s| s.to_string())),
        SessionEvent::IdentifyThrottled { wait_ms } => {
            put("wait_ms", wait_ms.map(|s| s.to_string()))
        }
        SessionEvent::SessionLimit {
            total,
            remaining,
            reset_after_ms,
        } => {
            put("total", total.map(|s| s.to_string()));
            put("remaining", remaining.map(|s| s.to_string()));
            put("reset_after_ms", reset_after_ms.map(|s| s.to_string()));
        }
        SessionEvent::InvalidSession { resumable } => put("resumable", Some(resumable.to_string())),
        SessionEvent::Closed { code } => put("code", code.map(|s| s.to_string())),
        SessionEvent::Fatal { reason, code } => {
            put("reason", Some(reason.clone()));
            put("code", code.map(|s| s.to_string()));
        }
        _ => {}
    }
    Some(Reading {
        event: event.name().to_owned(),
        values: v,
    })
}

fn agrees(want: &Reading, got: &Reading) -> bool {
    want.event == got.event
        && KEYS
            .iter()
            .all(|k| want.values.get(*k) == got.values.get(*k))
        && want
            .values
            .get("reason")
            .is_none_or(|r| got.values.get("reason") == Some(r))
}

/// Every line of one log, classified in one stream as the exporter reads a pod's log: behind
/// the `kubectl logs --timestamps` prefix the Kubernetes API adds, so a line without a time of
/// its own has one (a file without times counts such lines as malformed instead; the `.out`
/// goldens show that reading).
fn classify(profile: &Arc<CompiledProfile>, lines: &[String]) -> Vec<Classified> {
    let mut bytes = b"2026-01-01T00:00:00.000000000Z start\n".to_vec();
    // A line pasted with its own `--timestamps` prefix keeps it (a second would hide the
    // library's layout behind the first).
    let kubectl = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) ")
        .expect("valid regex");
    for (i, l) in lines.iter().enumerate() {
        if !kubectl.is_match(l) {
            bytes.extend_from_slice(
                format!("2026-01-01T00:00:{:02}.{:09}Z ", (i / 1000) % 60, i).as_bytes(),
            );
        }
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    let mut s = LogStream::new(
        Arc::clone(profile),
        Framing::Auto,
        InstanceId::pod("", "-"),
        "corpus".into(),
    );
    let (mut rows, mut out) = (Vec::new(), Vec::new());
    classify_log_bytes(&bytes, &mut s, &mut out, |_, c| rows.push(c));
    assert_eq!(rows.len(), lines.len() + 1, "one row per line");
    rows.remove(0);
    rows
}

/// `parse <layout>.log` against `<layout>.out` (written under `UPDATE_GOLDEN=1`).
fn check_report(log: &Path, failures: &mut Vec<String>) {
    let bytes = std::fs::read(log).unwrap();
    let mut got = Vec::new();
    write_parse_report(builtin_profile("auto").unwrap(), &bytes, &mut got).unwrap();
    let path = log.with_extension("out");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let Ok(want) = std::fs::read(&path) else {
        failures.push(format!(
            "{}: missing (UPDATE_GOLDEN=1 writes it; then read it)",
            path.display()
        ));
        return;
    };
    if want != got {
        let (want, got) = (
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
        );
        let diff = want
            .lines()
            .zip(got.lines())
            .find(|(w, g)| w != g)
            .map_or_else(
                || "a different number of lines".to_owned(),
                |(w, g)| format!("want `{w}`, got `{g}`"),
            );
        failures.push(format!("{}: {diff}", path.display()));
    }
}

#[derive(Default)]
struct Tally {
    relevant: usize,
    read: usize,
    irrelevant: usize,
    real: usize,
    real_relevant: usize,
}

#[test]
fn corpus_lines_are_read_as_people_read_them() {
    let mut report = String::new();
    let mut failures = Vec::new();
    let libraries = sorted(&root(), true);
    assert!(!libraries.is_empty(), "no corpus");
    for lib_dir in libraries {
        let lib = lib_dir.file_name().unwrap().to_string_lossy().into_owned();
        let own = builtin_profile(&lib).unwrap_or_else(|| panic!("corpus/{lib}: no profile {lib}"));
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let mut lines_total = 0;
        for log in sorted(&lib_dir, false)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
        {
            let stem = log.file_stem().unwrap().to_string_lossy().into_owned();
            let lines = read_lines(&log);
            let sources = read_lines(&log.with_extension("sources"));
            let expect = read_lines(&log.with_extension("expect"));
            let at = format!("corpus/{lib}/{stem}");
            assert_eq!(sources.len(), lines.len(), "{at}.sources: one per line");
            assert_eq!(expect.len(), lines.len(), "{at}.expect: one per line");
            for (i, s) in sources.iter().enumerate() {
                assert!(
                    s.contains("https://") || s.starts_with("constructed "),
                    "{at}.sources:{}: an address (`reconstructed <address>` for a line rebuilt \
                     from a format string) or `constructed <why>`",
                    i + 1
                );
            }
            check_report(&log, &mut failures);
            let wants: Vec<Option<Reading>> = expect.iter().map(|e| parse_expectation(e)).collect();
            lines_total += lines.len();
            let second = if stem.contains("json") {
                builtin_profile("json").unwrap()
            } else {
                Arc::clone(&own)
            };
            let second_name = if stem.contains("json") { "json" } else { &lib };
            for (name, profile) in [
                ("auto", builtin_profile("auto").unwrap()),
                (second_name, second),
            ] {
                let t = tallies.entry(name.to_owned()).or_default();
                for (i, (c, want)) in classify(&profile, &lines).iter().zip(&wants).enumerate() {
                    let got = reading(c);
                    let real = sources[i].starts_with("https://");
                    if name == "auto" && real {
                        t.real += 1;
                        t.real_relevant += usize::from(want.is_some());
                    }
                    match (want, &got) {
                        (None, None) => t.irrelevant += 1,
                        (None, Some(g)) => failures.push(format!(
                            "{at}.log:{} [{name}] an irrelevant line counted as {g:?}: {}",
                            i + 1,
                            lines[i]
                        )),
                        (Some(w), g) => {
                            t.relevant += 1;
                            if g.as_ref().is_some_and(|g| agrees(w, g)) {
                                t.read += 1;
                            } else {
                                let _ = writeln!(
                                    report,
                                    "  missed {at}.log:{} [{name}] want {w:?}, got {g:?} ({:?})",
                                    i + 1,
                                    c.note
                                );
                            }
                        }
                    }
                }
            }
        }
        let real = tallies
            .get("auto")
            .map_or((0, 0), |t| (t.real, t.real_relevant));
        let _ = writeln!(
            report,
            "{lib}: {lines_total} lines ({} real, {} of them relevant)",
            real.0, real.1
        );
        for (name, t) in &tallies {
            let share = if t.relevant == 0 {
                1.0
            } else {
                t.read as f64 / t.relevant as f64
            };
            let _ = writeln!(
                report,
                "  {name:>9}: {}/{} relevant lines read ({:.1} %), {} irrelevant lines ignored",
                t.read,
                t.relevant,
                share * 100.0,
                t.irrelevant
            );
            if share < MIN_SHARE {
                failures.push(format!(
                    "{lib} [{name}]: {:.1} % of the relevant lines read (at least {:.0} % wanted)",
                    share * 100.0,
                    MIN_SHARE * 100.0
                ));
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}
