//! Following log files: globs that pick up new files, rotation by rename, truncation
//! (copytruncate), deleted and recreated files, symlinks (kubelet), bounded lines.
//!
//! Polling `stat` is deliberate: it works the same on every filesystem (including the overlay
//! and network mounts where inotify misses writes) and costs one syscall per file per poll.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lines::LineSplitter;
use super::logs::{CompiledProfile, Framing, LogStream, Outcome};
use super::replay::instance_from_path;
use crate::config::FileSource;
use crate::observation::{InstanceId, Observation};

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

struct Tail {
    file: File,
    /// (device, inode) of the open handle: a different one at the path means rotation.
    id: (u64, u64),
    offset: u64,
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
    tails: BTreeMap<PathBuf, Tail>,
    first_poll: bool,
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
            tails: BTreeMap::new(),
            first_poll: true,
        }
    }

    /// The source name used in observations and metrics.
    pub fn source_name(&self) -> String {
        format!("file:{}", self.spec.path)
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
            if rotated {
                // Finish the old file (a writer may have appended before the rename), then
                // start the new one from its beginning.
                let mut old = self.tails.remove(path).expect("present");
                read_new(&mut old, out, &mut stats);
                flush(&mut old, out, &mut stats);
                stats.rotations += 1;
            }
            if !self.tails.contains_key(path) {
                let file = match File::open(path) {
                    Ok(f) => f,
                    Err(e) => {
                        stats.errors.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                let offset = if from_start || rotated { 0 } else { meta.len() };
                let stream = LogStream::new(
                    self.profile.clone(),
                    self.framing,
                    self.instance_for(path),
                    self.source_name(),
                )
                .with_bot(self.spec.bot.clone().or_else(|| self.default_bot.clone()))
                .with_max_line_bytes(self.max_line_bytes);
                self.tails.insert(
                    path.clone(),
                    Tail {
                        file,
                        id,
                        offset,
                        lines: LineSplitter::new(self.max_line_bytes),
                        stream,
                    },
                );
            }
            let tail = self.tails.get_mut(path).expect("present");
            if meta.len() < tail.offset {
                // copytruncate: the file was emptied in place; what is there now is new.
                tail.offset = 0;
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
        t.offset += n as u64;
        let Tail { lines, stream, .. } = t;
        lines.push(&buf[..n], |line| count(stream.push_line(line, out), stats));
    }
}

fn flush(t: &mut Tail, out: &mut Vec<Observation>, stats: &mut PollStats) {
    let Tail { lines, stream, .. } = t;
    lines.finish(|line| count(stream.push_line(line, out), stats));
    stream.finish(out);
}
