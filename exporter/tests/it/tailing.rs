//! Following files with the library's `FileFollower`: rotation by rename, copytruncate, a file
//! deleted and recreated, a new file matching the glob, symlinks, restarts with the positions
//! file (a rotation while nobody read, a CRI partial line across the restart). Every line is
//! numbered; each test checks that every number was counted exactly once.

use crate::support::noise;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use dge::sources::files::{FileFollower, FileSource, PollStats, Position};
use dge_core::observation::{Body, Observation};
use dge_parse::logs::builtin_profile;

fn spec(path: &Path) -> FileSource {
    FileSource {
        path: path.display().to_string(),
        pod: None,
        namespace: None,
        bot: Some("AgentBroker".into()),
        profile: None,
        framing: None,
        from_start: true,
    }
}

fn follower(path: &Path) -> FileFollower {
    FileFollower::new(spec(path), builtin_profile("auto").unwrap(), 1 << 20, None)
}

/// Line `n` as `kubectl logs --timestamps` shows an OpenAB dispatch.
fn line(n: u64) -> String {
    format!(
        "2026-04-19T04:{:02}:{:02}.{:09}Z 2026-04-19T04:00:00.000001Z  INFO dispatch{{channel=1}}: openab::dispatch: batch dispatched n={n}\n",
        (n / 60) % 60,
        n % 60,
        n
    )
}

fn append(path: &Path, range: std::ops::Range<u64>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for n in range {
        buf.push_str(&line(n));
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// Counts every line number seen, and the poll outcomes.
#[derive(Default)]
struct Seen {
    numbers: BTreeMap<u64, u32>,
    matched: u64,
    ignored: u64,
    malformed: u64,
    rotations: u64,
    truncations: u64,
}

impl Seen {
    fn poll(&mut self, f: &mut FileFollower) -> PollStats {
        let mut out = Vec::new();
        let stats = f.poll(&mut out);
        assert!(stats.errors.is_empty(), "{:?}", stats.errors);
        self.take(&out);
        self.matched += stats.matched;
        self.ignored += stats.ignored;
        self.malformed += stats.malformed;
        self.rotations += stats.rotations;
        self.truncations += stats.truncations;
        stats
    }

    fn take(&mut self, out: &[Observation]) {
        for o in out {
            let Body::Session(s) = &o.body else { continue };
            let text = s.line.as_ref().map(|l| l.text()).unwrap_or_default();
            let n: u64 = text
                .rsplit("n=")
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no number in {text:?}"));
            *self.numbers.entry(n).or_default() += 1;
        }
    }

    /// Every number in `want` exactly once, nothing else; every line counted as matched.
    fn assert_exactly(&self, want: impl IntoIterator<Item = u64>) {
        let want: Vec<u64> = want.into_iter().collect();
        let twice: Vec<(&u64, &u32)> = self.numbers.iter().filter(|(_, c)| **c > 1).collect();
        assert!(twice.is_empty(), "counted more than once: {twice:?}");
        let missing: Vec<&u64> = want
            .iter()
            .filter(|n| !self.numbers.contains_key(n))
            .collect();
        assert!(missing.is_empty(), "never counted: {missing:?}");
        assert_eq!(self.numbers.len(), want.len(), "unexpected lines counted");
        assert_eq!(
            (self.matched, self.ignored, self.malformed),
            (want.len() as u64, 0, 0),
            "outcome counts"
        );
    }
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn rotation_by_rename() {
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&d.path().join("*.log"));
    let mut seen = Seen::default();
    append(&path, 0..100);
    seen.poll(&mut f);
    append(&path, 100..150);
    // The logger renames its file, writes a little more to the handle it still holds, then
    // opens a new file under the old name.
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    std::fs::rename(&path, d.path().join("bot.log.1")).unwrap();
    let mut tail = String::new();
    for n in 150..160 {
        tail.push_str(&line(n));
    }
    old.write_all(tail.as_bytes()).unwrap();
    append(&path, 160..260);
    seen.poll(&mut f);
    assert_eq!(seen.rotations, 1);
    // Twice more, polling in between.
    for round in 0..2u64 {
        let base = 260 + round * 100;
        std::fs::rename(&path, d.path().join(format!("bot.log.{}", round + 2))).unwrap();
        append(&path, base..base + 100);
        seen.poll(&mut f);
    }
    seen.poll(&mut f);
    seen.assert_exactly(0..460);
    assert_eq!(seen.rotations, 3);
}

#[test]
fn copytruncate() {
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&path);
    let mut seen = Seen::default();
    append(&path, 0..100);
    seen.poll(&mut f);
    append(&path, 100..120);
    seen.poll(&mut f);
    // logrotate copytruncate: copy aside, truncate in place; the writer goes on (O_APPEND).
    std::fs::copy(&path, d.path().join("bot.log.1")).unwrap();
    File::create(&path).unwrap();
    append(&path, 120..150);
    let stats = seen.poll(&mut f);
    assert_eq!(stats.truncations, 1);
    append(&path, 150..170);
    seen.poll(&mut f);
    seen.assert_exactly(0..170);
}

#[test]
fn deleted_and_recreated() {
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&d.path().join("*.log"));
    let mut seen = Seen::default();
    append(&path, 0..50);
    seen.poll(&mut f);
    // Deleted with unread lines in it, noticed by a poll, then recreated.
    append(&path, 50..60);
    let mut held = OpenOptions::new().append(true).open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    held.write_all(line(60).as_bytes()).unwrap();
    drop(held);
    seen.poll(&mut f);
    assert_eq!(f.files(), 0);
    append(&path, 61..100);
    seen.poll(&mut f);
    // Deleted and recreated between two polls (a new inode under the same name).
    append(&path, 100..110);
    std::fs::remove_file(&path).unwrap();
    append(&path, 110..130);
    seen.poll(&mut f);
    seen.poll(&mut f);
    // The lines written to the deleted file after the last poll went with it, unless a handle
    // was held: what the follower had open it reads to the end (100..110 here).
    seen.assert_exactly(0..130);
}

#[test]
fn new_file_matching_the_glob() {
    let d = dir();
    let mut f = follower(&d.path().join("*.log"));
    let mut seen = Seen::default();
    append(&d.path().join("a.log"), 0..10);
    seen.poll(&mut f);
    assert_eq!(f.files(), 1);
    append(&d.path().join("b.log"), 10..30);
    append(&d.path().join("ignored.txt"), 1000..1010);
    seen.poll(&mut f);
    assert_eq!(f.files(), 2);
    append(&d.path().join("a.log"), 30..35);
    append(&d.path().join("b.log"), 35..40);
    seen.poll(&mut f);
    seen.assert_exactly(0..40);
}

#[test]
fn symlinked_files_as_the_kubelet_keeps_them() {
    let d = dir();
    let real = d.path().join("containers");
    std::fs::create_dir(&real).unwrap();
    let links = d.path().join("pods");
    std::fs::create_dir(&links).unwrap();
    append(&real.join("c1.log"), 0..20);
    std::os::unix::fs::symlink(real.join("c1.log"), links.join("0.log")).unwrap();
    let mut f = follower(&links.join("*.log"));
    let mut seen = Seen::default();
    seen.poll(&mut f);
    append(&real.join("c1.log"), 20..30);
    seen.poll(&mut f);
    // The container restarts: the link now points at a new file.
    append(&real.join("c2.log"), 30..45);
    std::fs::remove_file(links.join("0.log")).unwrap();
    std::os::unix::fs::symlink(real.join("c2.log"), links.join("0.log")).unwrap();
    seen.poll(&mut f);
    seen.assert_exactly(0..45);
}

#[test]
fn lines_written_in_pieces_and_a_last_line_without_newline() {
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&path);
    let mut seen = Seen::default();
    let l = line(0);
    let mut w = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    for piece in l.as_bytes().chunks(7) {
        w.write_all(piece).unwrap();
        seen.poll(&mut f);
    }
    append(&path, 1..3);
    // The last line has no newline yet: not counted until it is complete.
    let last = line(3);
    w.write_all(&last.as_bytes()[..last.len() - 1]).unwrap();
    seen.poll(&mut f);
    assert!(!seen.numbers.contains_key(&3));
    w.write_all(b"\n").unwrap();
    seen.poll(&mut f);
    seen.assert_exactly(0..4);
}

fn save(positions: &BTreeMap<PathBuf, Position>, file: &Path) {
    std::fs::write(file, serde_json::to_vec(positions).unwrap()).unwrap();
}

fn load(file: &Path) -> BTreeMap<PathBuf, Position> {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

#[test]
fn restart_with_the_positions_file() {
    let d = dir();
    let path = d.path().join("bot.log");
    let positions = d.path().join("positions.json");
    let glob = d.path().join("*.log");
    let mut seen = Seen::default();
    append(&path, 0..100);
    {
        let mut f = follower(&glob);
        seen.poll(&mut f);
        save(&f.positions(), &positions);
    }
    // While the exporter is down: more lines.
    append(&path, 100..150);
    {
        let mut f = follower(&glob).with_positions(load(&positions));
        seen.poll(&mut f);
        append(&path, 150..160);
        seen.poll(&mut f);
        save(&f.positions(), &positions);
    }
    // Down again, and the file is rotated meanwhile (renamed in the same directory, as the
    // kubelet does): the rest of the old file, then the new one.
    append(&path, 160..170);
    std::fs::rename(&path, d.path().join("bot.log.20260419-041200")).unwrap();
    append(&path, 170..200);
    {
        let mut f = follower(&glob).with_positions(load(&positions));
        seen.poll(&mut f);
        save(&f.positions(), &positions);
    }
    // A restart with nothing new reads nothing.
    {
        let mut f = follower(&glob).with_positions(load(&positions));
        let stats = seen.poll(&mut f);
        assert_eq!(stats.matched + stats.ignored + stats.malformed, 0);
    }
    seen.assert_exactly(0..200);
}

#[test]
fn restart_inside_a_cri_partial_line() {
    let d = dir();
    let path = d.path().join("0.log");
    let positions = d.path().join("positions.json");
    let msg = |n: u64| {
        format!(
            "2026-04-19T04:00:00.000000001Z  INFO dispatch{{channel=1}}: openab::dispatch: batch dispatched n={n}"
        )
    };
    let cri = |n: u64| format!("2026-04-19T04:00:{:02}Z stdout F {}\n", n % 60, msg(n));
    let mut s = String::new();
    for n in 0..10 {
        s.push_str(&cri(n));
    }
    // Line 10 is split by the runtime; the exporter stops after its first part.
    let whole = msg(10);
    let (a, b) = whole.split_at(40);
    s.push_str(&format!("2026-04-19T04:00:10Z stdout P {a}\n"));
    std::fs::write(&path, &s).unwrap();
    let mut spec = spec(&path);
    spec.framing = Some("cri".into());
    let mk = || {
        FileFollower::new(
            spec.clone(),
            builtin_profile("auto").unwrap(),
            1 << 20,
            None,
        )
    };
    let mut seen = Seen::default();
    {
        let mut f = mk();
        let stats = seen.poll(&mut f);
        // The P part is counted (ignored) now; its line is not complete yet.
        assert_eq!((stats.matched, stats.ignored), (10, 1));
        save(&f.positions(), &positions);
    }
    let mut w = OpenOptions::new().append(true).open(&path).unwrap();
    w.write_all(format!("2026-04-19T04:00:10Z stdout F {b}\n").as_bytes())
        .unwrap();
    w.write_all(cri(11).as_bytes()).unwrap();
    {
        let mut f = mk().with_positions(load(&positions));
        seen.poll(&mut f);
    }
    // The position stayed before the partial: the joined line is read whole after the restart.
    // Its P part is read again by the second run (counted `ignored` by each run: the one
    // physical line the outcome counters see twice); every message is matched exactly once.
    assert_eq!(seen.ignored, 2);
    seen.ignored = 0;
    seen.assert_exactly(0..12);
}

#[test]
fn many_rotations_while_a_writer_runs() {
    // Interleaved deterministically: the writer appends bursts, rotates by rename every 1,000
    // lines (keeping 3 old files), the follower polls after every burst.
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&d.path().join("*.log"));
    let mut seen = Seen::default();
    let mut n = 0;
    for burst in 0..100u64 {
        append(&path, n..n + 100);
        n += 100;
        if burst % 10 == 9 {
            for k in (1..3).rev() {
                let from = d.path().join(format!("bot.{k}.old"));
                if from.exists() {
                    std::fs::rename(&from, d.path().join(format!("bot.{}.old", k + 1))).unwrap();
                }
            }
            std::fs::rename(&path, d.path().join("bot.1.old")).unwrap();
        }
        if burst % 3 != 1 {
            seen.poll(&mut f);
        }
    }
    seen.poll(&mut f);
    seen.assert_exactly(0..n);
}

#[test]
fn huge_line_random_bytes_and_an_unterminated_last_line() {
    // Bounded lines (1 MiB here): a 10 MB line is counted as one malformed line, random bytes
    // as the lines their newlines make, the good lines around them exactly once.
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&path);
    let mut seen = Seen::default();
    append(&path, 0..5);
    let mut w = OpenOptions::new().append(true).open(&path).unwrap();
    let mut huge = vec![b'x'; 10 << 20];
    huge.push(b'\n');
    w.write_all(&huge).unwrap();
    append(&path, 5..10);
    // 1 MiB of xorshift bytes.
    let noise = noise::xorshift_bytes(0x9e37_79b9_7f4a_7c15, 1 << 20);
    let noise_lines = noise.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    w.write_all(&noise).unwrap();
    w.write_all(b"\n").unwrap();
    append(&path, 10..15);
    // The last line has no newline: a tail waits for it...
    let last = line(15);
    w.write_all(&last.as_bytes()[..last.len() - 1]).unwrap();
    for _ in 0..3 {
        seen.poll(&mut f);
    }
    assert!(!seen.numbers.contains_key(&15));
    // ...and counts it when the file goes away.
    std::fs::remove_file(&path).unwrap();
    seen.poll(&mut f);
    let physical = 16 + 1 + noise_lines;
    assert_eq!(seen.matched + seen.ignored + seen.malformed, physical);
    assert!(
        seen.malformed >= 1,
        "the 10 MB line is malformed (too long)"
    );
    let good = seen.matched;
    seen.matched = 16;
    seen.ignored = 0;
    seen.malformed = 0;
    seen.assert_exactly(0..16);
    assert!(good >= 16);
}

/// Known limit of size-based truncation detection (`files.rs`): copytruncate followed by more
/// bytes than had been read, all between two polls, looks like growth. Run with `--ignored`.
#[test]
#[ignore = "known limit: a truncation refilled past the old offset between two polls is not seen"]
fn copytruncate_refilled_past_the_old_offset_between_polls() {
    let d = dir();
    let path = d.path().join("bot.log");
    let mut f = follower(&path);
    let mut seen = Seen::default();
    append(&path, 0..10);
    seen.poll(&mut f);
    File::create(&path).unwrap();
    append(&path, 10..40);
    seen.poll(&mut f);
    seen.assert_exactly(0..40);
}
