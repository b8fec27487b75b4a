//! What the engine tells its sinks: every finding opened or closed, every step of a session's
//! life, and every handover from its start to its outcome, in the order they happened.

use serde::Serialize;

use super::findings::Finding;
use super::handovers::Handover;
use super::state::{Session, SessionState};
use crate::observation::Timestamp;

/// What changed since the last [`super::Engine::take_changes`]. Sinks (the daemon's log, the
/// demo's printer, traces) consume these; every time in them comes from the observations.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Opened(Finding),
    Closed(Finding),
    /// A session became live (READY, RESUMED, or inferred from its first event).
    SessionStarted {
        session: Box<Session>,
        /// The session of the same bot and shard this one takes over from: still live when
        /// this one started, or ended within [`super::HANDOVER_WINDOW_SECS`] before.
        predecessor: Option<u64>,
        /// Whether that is a handover (a rollout, a restart: another pod or another run of the
        /// pod) rather than a reconnect of the same process; a
        /// [`Change::HandoverStarted`] follows.
        handover: bool,
    },
    /// A step of a live session (first event, resume, reconnect, pod terminating, ...).
    SessionUpdate {
        id: u64,
        at: Timestamp,
        state: SessionState,
    },
    /// A session ended (its `end`, `ended_at` and `live_until` are set).
    SessionEnded {
        session: Box<Session>,
    },
    /// A handover began (its `outcome` is not decided yet): right after the new session's
    /// [`Change::SessionStarted`].
    HandoverStarted {
        handover: Box<Handover>,
    },
    /// A handover's outcome was decided (`outcome` and `ended_at` are set).
    Handover {
        handover: Box<Handover>,
    },
}
