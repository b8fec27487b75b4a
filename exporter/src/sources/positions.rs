//! The positions file: how far each followed log file was read (its identity and offset), so
//! that a restart neither re-reads nor skips lines. `[[file]]` sources (`positions_file`) and
//! node mode (`[kubernetes] positions_file`) each keep one.
//!
//! JSON (`{"version": 1, "files": {path: {dev, ino, offset}}}`), written to a temporary file
//! and renamed over the old one (a crash leaves the old or the new, never half), at most once
//! a second while lines come in, and once at shutdown. Files that no longer exist are dropped
//! when it is written, so it does not grow with every rotated file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::files::{FileFollower, Position};

const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    version: u32,
    files: BTreeMap<PathBuf, Position>,
}

/// One positions file and when it was last written.
#[derive(Debug)]
pub struct PositionsFile {
    path: PathBuf,
    last_saved: Option<Instant>,
    dirty: bool,
}

impl PositionsFile {
    /// [`load`](Self::load) when a positions file is configured; none and no positions when not.
    pub fn open(path: Option<PathBuf>) -> (Option<Self>, BTreeMap<PathBuf, Position>) {
        match path.map(Self::load) {
            Some((f, files)) => (Some(f), files),
            None => (None, BTreeMap::new()),
        }
    }

    /// Opens `path` and returns the positions saved there: none when it is missing, none and a
    /// warning when it cannot be read or parsed (every file is then read as if new).
    pub fn load(path: PathBuf) -> (Self, BTreeMap<PathBuf, Position>) {
        let warn = |e: &dyn std::fmt::Display| {
            tracing::warn!(path = %path.display(), error = %e,
                "positions file unreadable: log files are read as if new");
        };
        let files = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Contents>(&bytes) {
                Ok(c) => c.files,
                Err(e) => {
                    warn(&e);
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                warn(&e);
                BTreeMap::new()
            }
        };
        let file = Self {
            path,
            last_saved: None,
            dirty: false,
        };
        (file, files)
    }

    /// Notes whether lines were read (or files went) since the last poll, and saves `files()`
    /// when something changed since the last save and that is at least a second old.
    pub fn save_if_due(&mut self, read: bool, files: impl FnOnce() -> BTreeMap<PathBuf, Position>) {
        self.dirty |= read;
        if self.dirty && self.last_saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            self.save(files());
        }
    }

    /// Saves now (a failure is logged and retried at the next save).
    pub fn save(&mut self, mut files: BTreeMap<PathBuf, Position>) {
        files.retain(|p, _| p.exists());
        match write(&self.path, &Contents { version: 1, files }) {
            Ok(()) => {
                self.dirty = false;
                self.last_saved = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot save log positions")
            }
        }
    }
}

/// Every follower's positions in one map (what a positions file holds).
pub fn of<'a>(
    followers: impl IntoIterator<Item = &'a FileFollower>,
) -> BTreeMap<PathBuf, Position> {
    let mut all = BTreeMap::new();
    for f in followers {
        all.extend(f.positions());
    }
    all
}

fn write(path: &Path, c: &Contents) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(c).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_drops_missing_files_and_survives_garbage() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        std::fs::write(&log, "x\n").unwrap();
        let path = d.path().join("state/positions.json");
        let (mut f, loaded) = PositionsFile::load(path.clone());
        assert!(loaded.is_empty(), "no file yet");
        let pos = Position {
            dev: 1,
            ino: 2,
            offset: 2,
        };
        let mut files = BTreeMap::new();
        files.insert(log.clone(), pos);
        files.insert(d.path().join("gone.log"), pos);
        f.save_if_due(true, || files);
        let (_, loaded) = PositionsFile::load(path.clone());
        assert_eq!(loaded.into_iter().collect::<Vec<_>>(), vec![(log, pos)]);
        // Not due again within the second, and not dirty: nothing written.
        std::fs::write(&path, b"{ not json").unwrap();
        f.save_if_due(false, || unreachable!("not dirty"));
        let (_, loaded) = PositionsFile::load(path);
        assert!(loaded.is_empty(), "garbage reads as no positions");
    }
}
