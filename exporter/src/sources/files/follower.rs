//! One `[[file]]` path or glob followed: [`FileFollower`].

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memchr::memchr_iter;
use serde::{Deserialize, Serialize};

use super::config::FileSource;
use dge_core::observation::{InstanceId, Observation};
use dge_parse::lines::LineSplitter;
use dge_parse::logs::{CompiledProfile, Framing, LogStream, LogZone, Outcome};
use dge_parse::replay::instance_from_path;

const CHUNK: usize = 64 * 1024;

/// What a poll found, besides observations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollStats {
    pub matched: u64,
    pub ignored: u64,
    pub malformed: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub errors: Vec<String>,
}

/// How far a file was read: its identity and the offset after the last line handled whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

struct Tail {
    file: File,
    /// (device, inode) of the open handle: a different one at the path means rotation.
    id: (u64, u64),
    offset: u64,
    /// The end of the last physical line whose bytes are all accounted for (not pending in the
    /// splitter, not part of an unfinished CRI partial).
    committed: u64,
    lines: LineSplitter,
    stream: LogStream,
}

/// Follows every file matching one configured path or glob.
pub struct FileFollower {
    spec: FileSource,
    profile: Arc<CompiledProfile>,
    framing: Framing,
    max_line_bytes: usize,
    default_bot: Option<String>,
    /// The zone of zone-less times in the files' lines (`log_timezone`).
    zone: LogZone,
    tails: BTreeMap<PathBuf, Tail>,
    first_poll: bool,
    /// Where to start files not open yet (from a positions file).
    start: BTreeMap<PathBuf, Position>,
    /// Overrides the `file:<path>` source name.
    source: Option<String>,
}

impl FileFollower {
    pub fn new(
        spec: FileSource,
        profile: Arc<CompiledProfile>,
        max_line_bytes: usize,
        default_bot: Option<String>,
    ) -> Self {
        let framing = spec
            .framing
            .as_deref()
            .and_then(|f| f.parse().ok())
            .unwrap_or(Framing::Auto);
        Self {
            spec,
            profile,
            framing,
            max_line_bytes,
            default_bot,
            zone: LogZone::Utc,
            tails: BTreeMap::new(),
            first_poll: true,
            start: BTreeMap::new(),
            source: None,
        }
    }

    /// Read zone-less times in the files' lines as local times of `zone` (default UTC).
    pub fn with_zone(mut self, zone: LogZone) -> Self {
        self.zone = zone;
        self
    }

    /// Start files that are not open yet where these positions say (see the module doc).
    pub fn with_positions(mut self, positions: BTreeMap<PathBuf, Position>) -> Self {
        self.start = positions;
        self
    }

    /// Whether `path` is one of this source's files (a saved position belongs to it).
    pub fn claims(&self, path: &Path) -> bool {
        glob::Pattern::new(&self.spec.path).is_ok_and(|p| p.matches_path(path))
    }

    /// Name the source (observations and metrics) other than `file:<path>`.
    pub fn with_source_name(mut self, name: impl Into<String>) -> Self {
        self.source = Some(name.into());
        self
    }

    /// Where each open file was read to, and the start positions not used yet.
    pub fn positions(&self) -> BTreeMap<PathBuf, Position> {
        let mut all = self.start.clone();
        for (path, t) in &self.tails {
            all.insert(
                path.clone(),
                Position {
                    dev: t.id.0,
                    ino: t.id.1,
                    offset: t.committed,
                },
            );
        }
        all
    }

    /// The source name used in observations and metrics.
    pub fn source_name(&self) -> String {
        self.source
            .clone()
            .unwrap_or_else(|| format!("file:{}", self.spec.path))
    }

    fn instance_for(&self, path: &Path) -> InstanceId {
        let mut id = instance_from_path(path);
        if let Some(p) = &self.spec.pod {
            id.pod = p.clone();
        }
        if let Some(ns) = &self.spec.namespace {
            id.namespace = ns.clone();
        }
        id
    }

    fn paths(&self) -> Vec<PathBuf> {
        match glob::glob(&self.spec.path) {
            Ok(it) => it.filter_map(|p| p.ok()).filter(|p| p.is_file()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Reads whatever is new in every matching file.
    pub fn poll(&mut self, out: &mut Vec<Observation>) -> PollStats {
        let mut stats = PollStats::default();
        let from_start = self.spec.from_start || !self.first_poll;
        let paths = self.paths();
        for path in &paths {
            let meta = match std::fs::metadata(path) {
                Ok(m) => m,
                Err(_) => continue,
            };
            let id = (meta.dev(), meta.ino());
            let rotated = self.tails.get(path).is_some_and(|t| t.id != id);
            // A stream carried over from the file before a rotation (a CRI partial line may
            // go on in the new file).
            let mut carried = None;
            if rotated {
                // Finish the old file (a writer may have appended before the rename), then
                // start the new one from its beginning.
                let mut old = self.tails.remove(path).expect("present");
                read_new(&mut old, out, &mut stats);
                carried = Some(end_of_file(old, out, &mut stats));
                stats.rotations += 1;
            }
            let mut resumed = None;
            if !rotated
                && !self.tails.contains_key(path)
                && let Some(pos) = self.start.remove(path)
            {
                if (pos.dev, pos.ino) == id {
                    // The same file: on from where the last run stopped (from 0 if it shrank).
                    resumed = Some(if pos.offset <= meta.len() {
                        pos.offset
                    } else {
                        0
                    });
                } else {
                    // Rotated while nobody read it: finish the old file where it went.
                    resumed = Some(0);
                    if let Some(old) = self.reopen_rotated(path, pos) {
                        let mut old = old;
                        read_new(&mut old, out, &mut stats);
                        carried = Some(end_of_file(old, out, &mut stats));
                        stats.rotations += 1;
                    }
                }
            }
            if !self.tails.contains_key(path) {
                let file = match File::open(path) {
                    Ok(f) => f,
                    Err(e) => {
                        stats.errors.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                let offset = match resumed {
                    Some(o) => o,
                    None if from_start || rotated => 0,
                    None => meta.len(),
                };
                let stream = match carried {
                    Some(s) => s,
                    None => self.new_stream(path),
                };
                self.tails.insert(
                    path.clone(),
                    Tail {
                        file,
                        id,
                        offset,
                        committed: offset,
                        lines: LineSplitter::new(self.max_line_bytes),
                        stream,
                    },
                );
            }
            let tail = self.tails.get_mut(path).expect("present");
            if meta.len() < tail.offset {
                // copytruncate: the file was emptied in place; what is there now is new.
                tail.offset = 0;
                tail.committed = 0;
                tail.lines.reset();
                stats.truncations += 1;
            }
            read_new(tail, out, &mut stats);
        }
        // Files gone from the glob: read what is left in the open handle, then forget them.
        let gone: Vec<PathBuf> = self
            .tails
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for p in gone {
            let mut t = self.tails.remove(&p).expect("present");
            read_new(&mut t, out, &mut stats);
            flush(&mut t, out, &mut stats);
        }
        self.first_poll = false;
        stats
    }

    /// Files currently followed.
    pub fn files(&self) -> usize {
        self.tails.len()
    }

    fn new_stream(&self, path: &Path) -> LogStream {
        LogStream::new(
            self.profile.clone(),
            self.framing,
            self.instance_for(path),
            self.source_name(),
        )
        .with_bot(self.spec.bot.clone().or_else(|| self.default_bot.clone()))
        .with_max_line_bytes(self.max_line_bytes)
        .with_zone(self.zone)
    }

    /// The file that was at `path` when `pos` was saved, now renamed in the same directory.
    fn reopen_rotated(&self, path: &Path, pos: Position) -> Option<Tail> {
        let dir = path.parent()?;
        let found = std::fs::read_dir(dir).ok()?.find_map(|e| {
            let e = e.ok()?;
            let m: Metadata = e.metadata().ok()?;
            (m.is_file() && (m.dev(), m.ino()) == (pos.dev, pos.ino)).then(|| (e.path(), m))
        });
        let (old_path, m) = found?;
        let file = File::open(&old_path).ok()?;
        let offset = if pos.offset <= m.len() { pos.offset } else { 0 };
        Some(Tail {
            file,
            id: (pos.dev, pos.ino),
            offset,
            committed: offset,
            lines: LineSplitter::new(self.max_line_bytes),
            stream: self.new_stream(path),
        })
    }
}

/// The end of a rotated file: its last line even without a newline; the stream (with a CRI
/// partial line still open) goes on in the file that replaced it.
fn end_of_file(mut t: Tail, out: &mut Vec<Observation>, stats: &mut PollStats) -> LogStream {
    let Tail { lines, stream, .. } = &mut t;
    lines.finish(|line| count(stream.push_line(line, out), stats));
    t.stream
}

fn count(outcome: Outcome, stats: &mut PollStats) {
    match outcome {
        Outcome::Matched => stats.matched += 1,
        Outcome::Ignored => stats.ignored += 1,
        Outcome::Malformed => stats.malformed += 1,
    }
}

fn read_new(t: &mut Tail, out: &mut Vec<Observation>, stats: &mut PollStats) {
    if t.file.seek(SeekFrom::Start(t.offset)).is_err() {
        return;
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match t.file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                stats.errors.push(e.to_string());
                break;
            }
        };
        let base = t.offset;
        t.offset += n as u64;
        let Tail {
            lines,
            stream,
            committed,
            ..
        } = t;
        // Line by line, so that the offset after each whole line is known.
        let chunk = &buf[..n];
        let mut start = 0;
        for nl in memchr_iter(b'\n', chunk) {
            lines.push(&chunk[start..=nl], |line| {
                count(stream.push_line(line, out), stats)
            });
            if !stream.has_pending() {
                *committed = base + nl as u64 + 1;
            }
            start = nl + 1;
        }
        if start < n {
            lines.push(&chunk[start..], |line| {
                count(stream.push_line(line, out), stats)
            });
        }
    }
}

fn flush(t: &mut Tail, out: &mut Vec<Observation>, stats: &mut PollStats) {
    let Tail { lines, stream, .. } = t;
    lines.finish(|line| count(stream.push_line(line, out), stats));
    stream.finish(out);
}
