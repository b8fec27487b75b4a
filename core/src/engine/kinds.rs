//! What every finding kind is, besides its detector: the metadata alerts, dashboards, the API,
//! the timeline and the handover decision read. Each kind declares it in its own file,
//! `detectors/<kind>.rs` (`pub(super) const META: KindMeta`), and core/build.rs lists those
//! files into [`Kind`](super::Kind), so a new kind is that one file, and every field of
//! [`KindMeta`] is required: a kind cannot be added without deciding all of them.

use serde::Serialize;

use super::handovers::HandoverOutcome;

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The name in metrics, alerts and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a finding of a kind means for a handover whose old or new session it concerns
/// (see [`super::Handover`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverEffect {
    /// The finding says nothing about how the handover went.
    None,
    /// The handover's outcome, unless an earlier finding already named one.
    Marks(HandoverOutcome),
    /// Of the new session: the handover settled with this outcome, whatever was named before.
    SettlesNew(HandoverOutcome),
}

/// How a kind's findings show on their pod's session row in `replay`'s timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineMark {
    /// Not on the row (the findings list tells it).
    None,
    /// `mark` over the finding's duration.
    Span(Legend),
    /// `mark` at its start only.
    Point(Legend),
}

/// A timeline mark and how the legend explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Legend {
    /// The character on the row.
    pub mark: char,
    /// The legend's words for it.
    pub means: &'static str,
    /// Its place in the legend (the legend predates the kinds' order and keeps its own).
    pub rank: u8,
}

/// The metadata of one finding kind (the `META` of its detector file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindMeta {
    /// The name in metrics, alerts, the API and the docs (the detector module's name).
    pub name: &'static str,
    /// The severity a finding of this kind has unless its detector says otherwise.
    pub severity: Severity,
    /// The troubleshooting guide's section (its runbook).
    pub runbook: &'static str,
    /// One sentence: what the kind means (DESIGN.md's table).
    pub description: &'static str,
    /// What it means for a handover in progress.
    pub handover: HandoverEffect,
    /// How `replay`'s timeline draws it.
    pub timeline: TimelineMark,
}

impl super::Kind {
    /// The kind's name (as in metrics and the API).
    pub fn as_str(self) -> &'static str {
        self.meta().name
    }

    /// The troubleshooting guide's section for this kind.
    pub fn runbook(self) -> &'static str {
        self.meta().runbook
    }
}
