//! `[remediation]`: whether and how the exporter heals a deaf session itself (off by default).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Whether the actor acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Nothing is decided or reported (the global switch).
    #[default]
    Off,
    /// Everything but the write: decisions, guards, annotation and replica checks, findings.
    DryRun,
    /// Scales annotated workloads to 0 and back.
    On,
}

/// The `[remediation]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemediationConfig {
    pub mode: Mode,
    /// Also act on a session that started during an overlap in which its peer kept receiving
    /// events, once the peer's session has ended (before its silence is confirmed).
    pub preemptive: bool,
    /// The annotation a Deployment or StatefulSet carries, set to `"true"`, to allow it.
    pub annotation: String,
    /// The chance, under the bot's learned Poisson event rate, that a healthy session stays
    /// as silent as required before acting: the silence must last ln(1/p) expected intervals,
    /// without the `[engine]` silence threshold's 30 min clamp (so the bound holds for quiet
    /// bots too).
    pub false_alarm: f64,
    /// No action while Discord's `session_start_limit.remaining` is below this (when known).
    pub min_identify_remaining: u32,
    /// At most this many actions per bot in any hour.
    pub max_per_hour: u32,
    /// The wait after a bot's action before the next one; doubles with every action of the
    /// bot in the last `backoff_reset_secs`.
    pub backoff_secs: u64,
    pub backoff_reset_secs: u64,
    /// A pod of the workload that restarted within this window is crash-looping: no action.
    pub crash_window_secs: u64,
    /// Longest wait for the old pods to be gone and their lingering window to pass.
    pub wait_timeout_secs: u64,
    /// The Lease only whose holder acts (two replicas, or node mode, never act twice).
    pub lease_name: String,
    /// Its namespace (default: `POD_NAMESPACE`, else `default`).
    pub lease_namespace: Option<String>,
    pub lease_duration_secs: u64,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            preemptive: false,
            false_alarm: 1e-3,
            annotation: "discord-gateway-exporter.dev/remediate".into(),
            min_identify_remaining: 10,
            max_per_hour: 2,
            backoff_secs: 900,
            backoff_reset_secs: 6 * 3600,
            crash_window_secs: 600,
            wait_timeout_secs: 900,
            lease_name: "discord-gateway-exporter-remediation".into(),
            lease_namespace: None,
            lease_duration_secs: 30,
        }
    }
}

impl RemediationConfig {
    /// What serde cannot check.
    pub fn validate(&self) -> Result<()> {
        if self.max_per_hour == 0 && self.mode != Mode::Off {
            return Err(Error::invalid(
                "remediation.max_per_hour",
                "must be at least 1 (set mode = \"off\" to turn remediation off)",
            ));
        }
        if !(self.false_alarm > 0.0 && self.false_alarm < 1.0) {
            return Err(Error::invalid(
                "remediation.false_alarm",
                "must be between 0 and 1 (exclusive)",
            ));
        }
        if self.annotation.trim().is_empty() {
            return Err(Error::invalid(
                "remediation.annotation",
                "must not be empty",
            ));
        }
        if self.lease_duration_secs < 5 {
            return Err(Error::invalid(
                "remediation.lease_duration_secs",
                "must be at least 5",
            ));
        }
        if self.wait_timeout_secs == 0 {
            return Err(Error::invalid(
                "remediation.wait_timeout_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
