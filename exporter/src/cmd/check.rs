//! `check-config`: load a config and say what is wrong, and where.

use std::path::Path;

use crate::config::Config;
use crate::error::Result;

/// Loads and validates; returns a one-paragraph summary of what it would do.
pub fn check(path: Option<&Path>) -> Result<String> {
    let cfg = Config::load(path)?;
    let profile = cfg.compile_profile(&cfg.profile)?;
    let files = &cfg.sources.files;
    let positions = match &files.positions_file {
        Some(p) => format!(" (positions in {})", p.display()),
        None => String::new(),
    };
    Ok(format!(
        "config OK: listen {}, profile {} ({} rules, {} user rules), {} file source(s){positions}, default bot {}",
        cfg.listen,
        cfg.profile,
        profile.rule_names().count(),
        cfg.rules.len(),
        files.files.len(),
        cfg.default_bot.as_deref().unwrap_or("(none)")
    ))
}
