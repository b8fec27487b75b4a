//! `[[file]]`: a followed log file (or glob of them).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sources::LogSettings;

/// A followed log file (or glob of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// A path or glob (`/var/log/bots/*.log`); new matches are picked up.
    pub path: String,
    /// Pod (instance) name; default: from the file name or the kubelet path.
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub bot: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    /// `auto`, `kubectl`, `cri` or `plain`.
    #[serde(default)]
    pub framing: Option<String>,
    /// Read an existing file from its start (true) or only what is appended (false).
    #[serde(default = "yes")]
    pub from_start: bool,
}

fn yes() -> bool {
    true
}

impl FileSource {
    /// Checks what serde cannot: the profile compiles, the framing and the glob parse.
    pub fn validate(&self, log: &LogSettings) -> Result<()> {
        if let Some(p) = &self.profile {
            log.compile(p)?;
        }
        if let Some(fr) = &self.framing {
            fr.parse::<dge_parse::logs::Framing>().map_err(|e| {
                Error::invalid(format!("file {:?}", self.path), format!("framing: {e}"))
            })?;
        }
        glob::Pattern::new(&self.path).map_err(|source| Error::FilePattern {
            path: self.path.clone(),
            source,
        })?;
        Ok(())
    }
}
