//! Node mode: the kubelet's CRI log files of this node's bot pods, read with a
//! [`FileFollower`] per pod container (`<log_root>/<namespace>_<pod>_<uid>/<container>/*.log`:
//! rotation, `P` partial lines joined), and a positions file so that a restart neither re-reads
//! nor skips lines ([`PositionsFile`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::LOGS_SOURCE;
use super::pods::PodInfo;
use crate::sources::files::{FileFollower, FileSource, PollStats, Position};
use crate::sources::positions::{self, PositionsFile};
use dge_core::observation::{Observation, Timestamp};
use dge_parse::logs::CompiledProfile;

struct PodFiles {
    follower: FileFollower,
    /// When a line of it was last read.
    last_line: Option<Timestamp>,
    /// The pod is gone: one last poll, then forgotten.
    gone: bool,
}

/// The followed pods of this node.
pub struct NodeLogs {
    root: PathBuf,
    profile: Arc<CompiledProfile>,
    max_line_bytes: usize,
    pods: HashMap<String, PodFiles>,
    positions: Option<PositionsFile>,
    /// Loaded positions not yet handed to a follower (their pod not seen yet).
    unclaimed: BTreeMap<PathBuf, Position>,
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
        let (positions, unclaimed) = PositionsFile::open(positions_file);
        Self {
            root,
            profile,
            max_line_bytes,
            pods: HashMap::new(),
            positions,
            unclaimed,
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
                last_line: None,
                gone: false,
            },
        );
    }

    /// Reads what is new in every followed file; forgets the pods that went; saves positions.
    pub fn poll(&mut self, out: &mut Vec<Observation>) -> NodePoll {
        let mut total = NodePoll::default();
        let mut done = Vec::new();
        let mut read = false;
        for (key, p) in &mut self.pods {
            let before = out.len();
            let s = p.follower.poll(out);
            if s.matched + s.ignored + s.malformed > 0 {
                p.last_line = Some(chrono::Utc::now());
            }
            read |= out.len() > before || s.matched + s.ignored + s.malformed > 0;
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
        read |= !done.is_empty();
        for k in done {
            self.pods.remove(&k);
        }
        if let Some(f) = &mut self.positions {
            f.save_if_due(read, || Self::all_positions(&self.unclaimed, &self.pods));
        }
        total
    }

    /// When a line of the pod `key` was last read, if ever.
    pub fn last_line(&self, key: &str) -> Option<Timestamp> {
        self.pods.get(key)?.last_line
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
        if let Some(f) = &mut self.positions {
            f.save(Self::all_positions(&self.unclaimed, &self.pods));
        }
    }

    /// The positions not claimed yet, and every follower's.
    fn all_positions(
        unclaimed: &BTreeMap<PathBuf, Position>,
        pods: &HashMap<String, PodFiles>,
    ) -> BTreeMap<PathBuf, Position> {
        let mut files = unclaimed.clone();
        files.extend(positions::of(pods.values().map(|p| &p.follower)));
        files
    }
}
