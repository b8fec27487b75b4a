//! `parse`: how each line of a log is classified, so a user sees why a line did or did not count.

use std::io::{Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use dge_parse::logs::write_parse_report_in;

/// Classifies every line of `path` (`-` = stdin) with `profile` and prints one row per line
/// (the text is the parse crate's, which its golden files check).
pub fn parse(cfg: &Config, profile: &str, path: &Path, out: &mut dyn Write) -> Result<()> {
    let compiled = cfg.compile_profile(profile)?;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("<stdin>", e))?;
    } else {
        bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    }
    write_parse_report_in(compiled, cfg.log_timezone, &bytes, out).map_err(output)
}

/// Writing the classified lines failed (a closed pipe, a full disk).
fn output(source: std::io::Error) -> Error {
    Error::Write {
        what: "output",
        source,
    }
}
