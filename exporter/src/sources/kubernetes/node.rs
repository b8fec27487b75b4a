//! Node mode: the kubelet's CRI log files of this node's bot pods, read with a
//! [`FileFollower`] per pod container (`<log_root>/<namespace>_<pod>_<uid>/<container>/*.log`:
//! rotation, `P` partial lines joined), and a positions file so that a restart neither re-reads
//! nor skips lines.
//!
//! The positions file is JSON (`{"version": 1, "files": {path: {dev, ino, offset}}}`), written
//! to a temporary file and renamed over the old one (a crash leaves the old or the new, never
//! half), at most once a second while lines come in and once at shutdown.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::LOGS_SOURCE;
use super::pods::PodInfo;
use crate::config::FileSource;
use crate::observation::Observation;
use crate::sources::files::{FileFollower, PollStats, Position};
use crate::sources::logs::CompiledProfile;

const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Serialize, Deserialize)]
struct PositionsFile {
    version: u32,
    files: BTreeMap<PathBuf, Position>,
}

struct PodFiles {
    follower: FileFollower,
    /// The pod is gone: one last poll, then forgotten.
    gone: bool,
}

/// The followed pods of this node.
pub struct NodeLogs {
    root: PathBuf,
    profile: Arc<CompiledProfile>,
    max_line_bytes: usize,
    pods: HashMap<String, PodFiles>,
    positions_file: Option<PathBuf>,
    /// Loaded positions not yet handed to a follower (their pod not seen yet).
    unclaimed: BTreeMap<PathBuf, Position>,
    last_saved: Option<Instant>,
    dirty: bool,
}

/// Totals of one poll.
#[derive(Debug, Default)]
pub struct NodePoll {
    pub stats: PollStats,
    pub files: usize,
}

impl NodeLogs {
    /// Loads the positions file (a missing or unreadable one: every file from its start, and a
    /// warning for the unreadable one).
    pub fn new(
        root: PathBuf,
        profile: Arc<CompiledProfile>,
        max_line_bytes: usize,
        positions_file: Option<PathBuf>,
    ) -> Self {
        let unclaimed = positions_file
            .as_deref()
            .map(load_positions)
            .unwrap_or_default();
        Self {
            root,
            profile,
            max_line_bytes,
            pods: HashMap::new(),
            positions_file,
            unclaimed,
            last_saved: None,
            dirty: false,
        }
    }

    /// The directory of a pod's container logs.
    pub fn dir_of(&self, info: &PodInfo) -> Option<PathBuf> {
        let uid = info.uid.as_deref()?;
        let container = info.container.as_deref()?;
        Some(
            self.root
                .join(format!("{}_{}_{uid}", info.namespace, info.name))
                .join(container),
        )
    }

    /// A pod changed (or appeared, or went).
    pub fn update(&mut self, info: &PodInfo) {
        if let Some(p) = self.pods.get_mut(&info.key) {
            p.gone |= info.gone;
            return;
        }
        if info.gone {
            return;
        }
        let Some(dir) = self.dir_of(info) else {
            return;
        };
        let pattern = format!("{}/*.log", glob::Pattern::escape(&dir.to_string_lossy()));
        let mine: BTreeMap<PathBuf, Position> = self
            .unclaimed
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir.as_path()))
            .map(|(p, pos)| (p.clone(), *pos))
            .collect();
        for p in mine.keys() {
            self.unclaimed.remove(p);
        }
        let spec = FileSource {
            path: pattern,
            pod: None,
            namespace: None,
            bot: info.bot.clone(),
            profile: None,
            framing: Some("cri".into()),
            from_start: true,
        };
        let follower = FileFollower::new(spec, self.profile.clone(), self.max_line_bytes, None)
            .with_positions(mine)
            .with_source_name(LOGS_SOURCE);
        self.pods.insert(
            info.key.clone(),
            PodFiles {
                follower,
                gone: false,
            },
        );
    }

    /// Reads what is new in every followed file; forgets the pods that went; saves positions.
    pub fn poll(&mut self, out: &mut Vec<Observation>) -> NodePoll {
        let mut total = NodePoll::default();
        let mut done = Vec::new();
        for (key, p) in &mut self.pods {
            let before = out.len();
            let s = p.follower.poll(out);
            if out.len() > before || s.matched + s.ignored + s.malformed > 0 {
                self.dirty = true;
            }
            total.stats.matched += s.matched;
            total.stats.ignored += s.ignored;
            total.stats.malformed += s.malformed;
            total.stats.rotations += s.rotations;
            total.stats.truncations += s.truncations;
            total.stats.errors.extend(s.errors);
            total.files += p.follower.files();
            if p.gone {
                done.push(key.clone());
            }
        }
        for k in done {
            self.pods.remove(&k);
            self.dirty = true;
        }
        if self.dirty && self.last_saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            self.save();
        }
        total
    }

    /// Pods followed.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Writes the positions file now (also at shutdown).
    pub fn save(&mut self) {
        let Some(path) = self.positions_file.clone() else {
            return;
        };
        let mut files: BTreeMap<PathBuf, Position> = self
            .unclaimed
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, pos)| (p.clone(), *pos))
            .collect();
        for p in self.pods.values() {
            files.extend(p.follower.positions());
        }
        match save_positions(&path, &PositionsFile { version: 1, files }) {
            Ok(()) => {
                self.dirty = false;
                self.last_saved = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot save log positions")
            }
        }
    }
}

fn load_positions(path: &Path) -> BTreeMap<PathBuf, Position> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<PositionsFile>(&bytes) {
            Ok(f) => f.files,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "positions file unreadable: log files are read from their start");
                BTreeMap::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "positions file unreadable: log files are read from their start");
            BTreeMap::new()
        }
    }
}

fn save_positions(path: &Path, f: &PositionsFile) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(f).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
