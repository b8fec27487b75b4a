//! `[[file]]` and `positions_file`: the followed log files (or globs of them).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::FilesSource;
use crate::error::{Error, Result};
use crate::sources::{LogSettings, Source, SourceConfig};

/// The files source's keys: every `[[file]]`, and where their read positions are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesSection {
    /// Log files to follow (`run`).
    #[serde(rename = "file")]
    pub files: Vec<FileSource>,
    /// Where `run` keeps how far each `[[file]]` was read, so that a restart neither re-reads
    /// nor skips lines; unset: every start reads as `from_start` says.
    pub positions_file: Option<PathBuf>,
}

impl SourceConfig for FilesSection {
    fn validate(&self, log: &LogSettings) -> Result<()> {
        for f in &self.files {
            f.validate(log)?;
        }
        if let Some(p) = &self.positions_file
            && p.is_dir()
        {
            return Err(Error::invalid(
                format!("positions_file {:?}", p.display().to_string()),
                "is a directory (name the file to keep the positions in)",
            ));
        }
        Ok(())
    }

    fn build(&self, log: &LogSettings) -> Result<Option<Box<dyn Source>>> {
        let s = FilesSource::new(&self.files, self.positions_file.clone(), log)?;
        Ok(s.map(|s| Box::new(s) as Box<dyn Source>))
    }
}

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
