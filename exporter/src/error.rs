//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can stop a command. Bad *input lines* are not errors: they are counted and
/// skipped where they occur.
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
    #[error(transparent)]
    Capture(#[from] dge_parse::Error),
    #[error("config: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
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

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
