//! What every finding kind is, besides its detector: the metadata alerts, dashboards, the API
//! and the handover decision read. The kinds themselves are declared once, in the table of
//! `detectors/mod.rs` (the [`finding_kinds!`] invocation), next to the module of each
//! detector, so a new kind is one row there plus its detector file, and every field of the row
//! is required: a kind cannot be added without deciding all of them.

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

/// The metadata of one finding kind (a row of the kinds table).
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
}

/// Declares the finding kinds: for each, its variant, its detector module (whose name is the
/// kind's name), and its metadata. Generates the modules, [`Kind`](super::Kind), `Kind::ALL`
/// and `Kind::meta`, whose `match` has no `_` arm.
macro_rules! finding_kinds {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident => $module:ident {
            severity: $severity:ident,
            runbook: $anchor:literal,
            description: $description:literal,
            handover: $handover:expr $(,)?
        }
    )*) => {
        $( mod $module; )*

        /// The kinds of finding (DESIGN.md). Their names are a contract with alerts and
        /// dashboards.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in the table's order, for metrics that list them.
            pub const ALL: [Kind; [$(Kind::$variant),*].len()] = [$(Kind::$variant),*];

            /// The kind's row of the table.
            pub const fn meta(self) -> &'static $crate::engine::KindMeta {
                match self {
                    $(
                        Kind::$variant => {
                            const META: $crate::engine::KindMeta = $crate::engine::KindMeta {
                                name: stringify!($module),
                                severity: $crate::engine::Severity::$severity,
                                runbook: concat!("docs/troubleshooting.md#", $anchor),
                                description: $description,
                                handover: $handover,
                            };
                            &META
                        }
                    )*
                }
            }
        }
    };
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
