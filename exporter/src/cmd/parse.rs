//! `parse`: how each line of a log is classified, so a user sees why a line did or did not count.

use std::io::{Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use dge_core::observation::InstanceId;
use dge_parse::logs::{Framing, LogStream, classify_log_bytes};

/// Classifies every line of `path` (`-` = stdin) with `profile` and prints one row per line.
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
    let mut stream = LogStream::new(
        compiled,
        Framing::Auto,
        InstanceId::pod("", "-"),
        "parse".into(),
    );
    let mut observations = Vec::new();
    let mut rows = Vec::new();
    classify_log_bytes(&bytes, &mut stream, &mut observations, |n, c| {
        rows.push((n, c))
    });
    for (n, c) in &rows {
        let mut line = format!("{:>6} {:<9}", n, c.outcome.as_str());
        if let Some(ev) = &c.event {
            line.push_str(&format!(" {:<14}", ev.name()));
        }
        if let Some(r) = &c.rule {
            line.push_str(&format!(" rule={r}"));
        }
        if let Some(b) = &c.bot {
            line.push_str(&format!(" bot={b}"));
        }
        if let Some(s) = c.shard {
            line.push_str(&format!(" shard={s}"));
        }
        for (k, v) in &c.captures {
            line.push_str(&format!(" {k}={v:?}"));
        }
        if let Some(at) = c.at {
            line.push_str(&format!(" at={}", at.to_rfc3339()));
        }
        if let Some(note) = c.note {
            line.push_str(&format!(" ({note})"));
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(output)?;
    }
    let c = stream.counts();
    writeln!(
        out,
        "total: {} matched, {} ignored, {} malformed",
        c.matched, c.ignored, c.malformed
    )
    .map_err(output)?;
    // Which libraries auto-detection settled on (multi-library profiles only).
    if let Some(families) = stream.detected() {
        writeln!(out, "detected: {}", families.join(", ")).map_err(output)?;
    }
    Ok(())
}

/// Writing the classified lines failed (a closed pipe, a full disk).
fn output(source: std::io::Error) -> Error {
    Error::Write {
        what: "output",
        source,
    }
}
