//! The status page: one self-contained HTML page (no external assets, works air-gapped) with,
//! per bot, its active findings, the timeline of its pods and sessions (inline SVG) and what the
//! exporter can and cannot see of it, then the sources' health. The daemon and `demo` serve it
//! at `/`; `replay --format html` writes it for a post-mortem.
//!
//! It only renders: the findings, sessions and pods come from the engine's [`Snapshot`], the
//! rows from [`super::timeline::model`].

mod html;
mod model;
mod svg;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use dge_core::engine::Snapshot;

/// The project's documentation on GitHub: the alerts' `runbook_url`s point there too.
pub const DEFAULT_RUNBOOK_BASE: &str =
    "https://github.com/discord-gateway-exporter/discord-gateway-exporter/blob/main/";

/// `[status]`: the status page's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    /// Prepended to a kind's runbook (`docs/troubleshooting.md` and its anchor) to make its
    /// link; an empty string leaves the link relative (a copy of the docs served next to the
    /// page).
    pub runbook_base_url: String,
    /// How often the live page reloads itself, in seconds (0: never).
    pub refresh_secs: u64,
    /// How many hours of history the live page's timeline shows.
    pub window_hours: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            runbook_base_url: DEFAULT_RUNBOOK_BASE.into(),
            refresh_secs: 15,
            window_hours: 3,
        }
    }
}

impl StatusConfig {
    /// A window of at least one hour; a base URL that is empty, relative or http(s).
    pub fn validate(&self) -> Result<()> {
        if self.window_hours == 0 {
            return Err(Error::invalid("status.window_hours", "must be at least 1"));
        }
        let b = &self.runbook_base_url;
        if b.contains(['"', '<', '>', ' ']) || b.starts_with("javascript:") {
            return Err(Error::invalid(
                "status.runbook_base_url",
                "must be an http(s) URL or a relative path",
            ));
        }
        Ok(())
    }
}

/// Whether the page shows a running daemon or a recorded incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Served by `run`/`demo`: reloads itself, shows the last `window_hours`, times relative
    /// to now.
    Live,
    /// Written by `replay`: the whole capture, times relative to its end.
    Replay,
}

/// One source's health line: a live source (`/healthz`'s), or a replayed input file.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLine {
    pub name: String,
    pub up: bool,
    pub detail: String,
}

/// The whole page.
pub fn render(snap: &Snapshot, sources: &[SourceLine], cfg: &StatusConfig, mode: Mode) -> String {
    let page = model::Page::build(snap, sources, cfg, mode);
    html::page(&page)
}

#[cfg(test)]
mod tests;
