//! Replay inputs: files and folders of captures, each recognised by its content.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::kube_json::{PodAttribution, read_json_capture};
use super::lines::LineSplitter;
use super::logs::{CompiledProfile, Framing, LogStream, LogZone, Outcome};
use crate::error::{Error, Result};
use dge_core::observation::{Body, InstanceId, Observation, Timestamp};

/// What one input file was and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// `log` or `json`.
    pub kind: &'static str,
    pub observations: usize,
    pub matched: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// Problems worth telling the user (bad JSON objects, malformed lines), bounded.
    pub problems: Vec<String>,
}

/// The inputs as one time-ordered stream of observations: log files are read in chunks as
/// the merge needs them (memory stays flat whatever their size); JSON captures are small and
/// read whole.
pub struct Replay {
    readers: Vec<Reader>,
    /// (time of the reader's next observation, reader index), smallest first.
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
}

enum Reader {
    Log(Box<LogReader>),
    Json {
        report: FileReport,
        items: std::vec::IntoIter<Observation>,
    },
}

struct LogReader {
    path: PathBuf,
    file: File,
    lines: LineSplitter,
    stream: LogStream,
    pending: VecDeque<Observation>,
    observations: usize,
    done: bool,
    /// Read but not yet split: `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

/// Observations parsed at a time per file: enough to keep one file's parsing state hot in
/// the CPU's caches, few enough that the allocator recycles their evidence lines.
const BATCH: usize = 16;

/// Read size per file (each open file holds one such buffer).
const CHUNK: usize = 64 * 1024;

impl LogReader {
    /// Makes sure an observation is pending unless the file is done, reading more of it when
    /// needed. Lines are parsed only until [`BATCH`] observations are made: the engine consumes
    /// them before the next are made, so memory holds a few observations per file, not a
    /// chunk's worth (and the allocator reuses their evidence lines' memory for the next).
    fn fill(&mut self) {
        if !self.pending.is_empty() || self.done {
            return;
        }
        let mut out: Vec<Observation> = std::mem::take(&mut self.pending).into();
        while out.len() < BATCH && !self.done {
            if self.pos == self.end {
                if self.buf.is_empty() {
                    self.buf.resize(CHUNK, 0);
                }
                match self.file.read(&mut self.buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(0) | Err(_) => {
                        let Self { lines, stream, .. } = self;
                        lines.finish(|l| {
                            stream.push_line(l, &mut out);
                        });
                        stream.finish(&mut out);
                        self.done = true;
                        self.buf = Vec::new();
                        continue;
                    }
                    Ok(n) => {
                        self.pos = 0;
                        self.end = n;
                    }
                }
            }
            let Self {
                lines,
                stream,
                buf,
                pos,
                end,
                ..
            } = self;
            *pos += lines.push_until(&buf[*pos..*end], |l| {
                stream.push_line(l, &mut out);
                out.len() >= BATCH
            });
        }
        // Session observations only: the news that a log goes on is not one.
        self.observations += out
            .iter()
            .filter(|o| !matches!(o.body, Body::LogActivity(_)))
            .count();
        self.pending = out.into();
    }

    fn report(&self) -> FileReport {
        let c = self.stream.counts();
        let mut problems = Vec::new();
        if c.get(Outcome::Malformed) > 0 {
            problems.push(format!(
                "{} malformed line(s) skipped (last reason: {})",
                c.get(Outcome::Malformed),
                self.stream.last_malformed_reason().unwrap_or("unknown")
            ));
        }
        FileReport {
            path: self.path.clone(),
            kind: "log",
            observations: self.observations,
            matched: c.get(Outcome::Matched),
            ignored: c.get(Outcome::Ignored),
            malformed: c.get(Outcome::Malformed),
            problems,
        }
    }
}

impl Reader {
    /// The time of the next observation (reading ahead when needed).
    fn peek_at(&mut self) -> Option<Timestamp> {
        match self {
            Reader::Log(l) => {
                l.fill();
                l.pending.front().map(|o| o.at)
            }
            Reader::Json { items, .. } => items.as_slice().first().map(|o| o.at),
        }
    }

    fn take(&mut self) -> Option<Observation> {
        match self {
            Reader::Log(l) => l.pending.pop_front(),
            Reader::Json { items, .. } => items.next(),
        }
    }
}

impl Iterator for Replay {
    type Item = Observation;

    fn next(&mut self) -> Option<Observation> {
        // The reader with the earliest observation stays at the top with its next time (one
        // sift), or leaves the heap when it is done.
        let mut top = self.heap.peek_mut()?;
        let i = top.0.1;
        let o = self.readers[i].take();
        match self.readers[i].peek_at() {
            Some(at) => top.0.0 = at,
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
        o
    }
}

impl Replay {
    /// Puts reader `i`'s next observation time into the heap.
    fn refill(&mut self, i: usize) {
        if let Some(at) = self.readers[i].peek_at() {
            self.heap.push(Reverse((at, i)));
        }
    }

    /// What each input was and what came of it (complete once the stream is drained).
    pub fn reports(&self) -> Vec<FileReport> {
        self.readers
            .iter()
            .map(|r| match r {
                Reader::Log(l) => l.report(),
                Reader::Json { report, .. } => report.clone(),
            })
            .collect()
    }
}

/// Options of the readers.
pub struct ReadOptions<'a> {
    pub profile: Arc<CompiledProfile>,
    pub attribution: &'a PodAttribution,
    pub default_bot: Option<String>,
    pub max_line_bytes: usize,
    /// The zone of zone-less times in plain logs (`log_timezone`).
    pub zone: LogZone,
}

const MAX_PROBLEMS_PER_FILE: usize = 20;

/// Opens files and folders (recursively, in name order; hidden files and `*.md` skipped).
/// Fails, naming the file, only when an input cannot be read at all.
pub fn open_paths(paths: &[PathBuf], opts: &ReadOptions<'_>) -> Result<Replay> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    let mut replay = Replay {
        readers: Vec::new(),
        heap: BinaryHeap::new(),
    };
    for f in files {
        let mut file = File::open(&f).map_err(|e| Error::io(&f, e))?;
        let mut head = vec![0u8; 512];
        let n = read_full(&mut file, &mut head).map_err(|e| Error::io(&f, e))?;
        head.truncate(n);
        let reader = if looks_like_json(&head) {
            let mut bytes = head;
            file.read_to_end(&mut bytes).map_err(|e| Error::io(&f, e))?;
            let (report, mut obs) = read_json(&f, &bytes, opts);
            obs.sort_by_key(|o| o.at);
            Reader::Json {
                report,
                items: obs.into_iter(),
            }
        } else {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(&f, e))?;
            let stream = LogStream::new(
                opts.profile.clone(),
                Framing::Auto,
                instance_from_path(&f),
                format!("file:{}", f.display()),
            )
            .with_bot(opts.default_bot.clone())
            .with_max_line_bytes(opts.max_line_bytes)
            .with_zone(opts.zone)
            .with_activity(true);
            Reader::Log(Box::new(LogReader {
                path: f.clone(),
                file,
                lines: LineSplitter::new(opts.max_line_bytes),
                stream,
                pending: VecDeque::new(),
                observations: 0,
                done: false,
                buf: Vec::new(),
                pos: 0,
                end: 0,
            }))
        };
        replay.readers.push(reader);
        let i = replay.readers.len() - 1;
        replay.refill(i);
    }
    Ok(replay)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(Error::Unreadable {
            path: p.to_path_buf(),
            reason: "neither a file nor a folder".into(),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| Error::io(p, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    entries.sort();
    for e in entries {
        collect(&e, out)?;
    }
    Ok(())
}

/// Whether the bytes are JSON (a pod list, a watch stream, JSON lines) rather than a log.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    let mut it = bytes.iter().skip_while(|b| b.is_ascii_whitespace());
    match it.next() {
        Some(b'{') => true,
        // discord.py lines start with `[2026-...`; a JSON array starts with `[{`, `[]` or `[\n`.
        Some(b'[') => matches!(
            it.find(|b| !b.is_ascii_whitespace()),
            Some(b'{') | Some(b']')
        ),
        _ => false,
    }
}

/// Where a log file's lines come from: the kubelet path names namespace, pod, uid and
/// container; otherwise the file name is the pod (`kubectl logs --timestamps POD > POD.log`).
pub fn instance_from_path(path: &Path) -> InstanceId {
    let comps: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    if comps.len() >= 3 {
        let dir = comps[comps.len() - 3];
        let parts: Vec<&str> = dir.splitn(3, '_').collect();
        let file = comps[comps.len() - 1];
        if parts.len() == 3
            && file.ends_with(".log")
            && file[..file.len() - 4].parse::<u32>().is_ok()
        {
            return InstanceId {
                namespace: parts[0].into(),
                pod: parts[1].into(),
                uid: Some(parts[2].into()),
                container: Some(comps[comps.len() - 2].into()),
            };
        }
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unknown");
    let mut pod = name;
    for ext in [".gz", ".log", ".txt", ".previous"] {
        pod = pod.strip_suffix(ext).unwrap_or(pod);
    }
    InstanceId::pod("", pod)
}

fn read_json(path: &Path, bytes: &[u8], opts: &ReadOptions<'_>) -> (FileReport, Vec<Observation>) {
    let source = format!("file:{}", path.display());
    let cap = read_json_capture(bytes, &source, opts.attribution);
    let problems = cap
        .problems
        .iter()
        .take(MAX_PROBLEMS_PER_FILE)
        .map(|p| format!("line {}: {}", p.line, p.reason))
        .collect();
    let report = FileReport {
        path: path.to_path_buf(),
        kind: "json",
        observations: cap.observations.len(),
        matched: cap.objects.saturating_sub(cap.problems.len() + cap.ignored) as u64,
        ignored: cap.ignored as u64,
        malformed: cap.problems.len() as u64,
        problems,
    };
    (report, cap.observations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_name_the_pod() {
        let i = instance_from_path(Path::new(
            "/var/log/pods/bots_agentbroker-5f7b9c6d8-p4m2z_1234-abcd/agentbroker/0.log",
        ));
        assert_eq!(i.namespace, "bots");
        assert_eq!(i.pod, "agentbroker-5f7b9c6d8-p4m2z");
        assert_eq!(i.uid.as_deref(), Some("1234-abcd"));
        assert_eq!(i.container.as_deref(), Some("agentbroker"));
        let i = instance_from_path(Path::new("capture/agentbroker-5f7b9c6d8-p4m2z.log"));
        assert_eq!(
            (i.namespace.as_str(), i.pod.as_str()),
            ("", "agentbroker-5f7b9c6d8-p4m2z")
        );
    }

    #[test]
    fn json_is_recognised_by_content() {
        assert!(looks_like_json(b"  {\"kind\":\"List\"}"));
        assert!(looks_like_json(b"[\n {}]"));
        assert!(!looks_like_json(
            b"[2026-04-19 04:12:26] [INFO    ] discord.client: x"
        ));
        assert!(!looks_like_json(
            b"2026-04-19T04:12:03.481227Z  INFO openab: x"
        ));
    }
}
