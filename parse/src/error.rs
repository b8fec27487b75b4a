//! Why a capture could not be read at all. Bad *lines* and *objects* inside a readable file are
//! not errors: they are counted and skipped where they occur.

use std::path::PathBuf;

/// A capture file or folder that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

impl Error {
    /// An I/O error on a named file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
