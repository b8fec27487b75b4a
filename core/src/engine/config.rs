//! Engine parameters. Every threshold has a reason; docs/detection.md gives them.

use serde::{Deserialize, Serialize};

/// Tunables of the detectors. Times are seconds so that TOML stays readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How long Discord keeps a session alive after its pod died without a clean close.
    pub lingering_secs: u64,
    /// False-alarm bound for `silent_session` (per silence, under the learned Poisson rate).
    pub silent_false_alarm: f64,
    /// False-alarm bound for `quiet_session`.
    pub quiet_false_alarm: f64,
    /// Bounds of the at-risk silence threshold.
    pub silent_min_secs: u64,
    pub silent_max_secs: u64,
    /// Threshold used while a bot's rate is not learned yet (too few events).
    pub silent_fallback_secs: u64,
    /// The quiet threshold is never below this.
    pub quiet_min_secs: u64,
    /// Multiplier on the longest recent gap for `quiet_session` (burstiness guard).
    pub quiet_gap_factor: f64,
    /// Events needed before a bot's rate counts as learned.
    pub rate_min_events: u64,
    /// The window the event rate is learned over.
    pub rate_window_secs: u64,
    /// Two sessions receiving events within this window of each other deliver twice.
    pub duplicate_window_secs: u64,
    /// Events each session must receive during an overlap to call it duplicate delivery.
    pub duplicate_min_events: u64,
    /// A running bot with no live session for this long is offline.
    pub offline_grace_secs: u64,
    /// Slack for Discord's count vs the logs: the poll interval plus clock skew.
    pub identify_skew_secs: u64,
    /// `start_limit_low` below this fraction of `total`.
    pub start_limit_low_fraction: f64,
    /// How long series and state of a deleted pod are kept.
    pub retention_secs: u64,
    /// Closed findings kept for the API.
    pub max_closed_findings: usize,
    /// The window gateway-health signals (reconnects, re-identifies, missed heartbeat
    /// acknowledgements, stalls) are counted over; a finding closes after a quiet window.
    pub health_window_secs: u64,
    /// `resume_loop`: this many re-identifies after lost connections within the window
    /// (critical: each spends a session start), or twice as many reconnects (warning).
    pub resume_loop_min: u64,
    /// `zombie_connection` turns critical at this many signals within the window.
    pub zombie_critical_count: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lingering_secs: 90,
            silent_false_alarm: 1e-3,
            quiet_false_alarm: 1e-6,
            silent_min_secs: 30,
            silent_max_secs: 1800,
            silent_fallback_secs: 300,
            quiet_min_secs: 900,
            quiet_gap_factor: 3.0,
            rate_min_events: 20,
            rate_window_secs: 6 * 3600,
            duplicate_window_secs: 60,
            duplicate_min_events: 2,
            offline_grace_secs: 120,
            identify_skew_secs: 90,
            start_limit_low_fraction: 0.1,
            retention_secs: 900,
            max_closed_findings: 1000,
            health_window_secs: 600,
            resume_loop_min: 3,
            zombie_critical_count: 3,
        }
    }
}
