//! The one input vocabulary: everything a source knows becomes an [`Observation`].
//!
//! Observations are plain data (serde round-trips them, which is what `run --record` writes and
//! `replay` reads back). Sources build them; only the engine interprets them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::privacy::LogLine;

/// UTC instant. Every time in the engine arrives with an observation or a tick.
pub type Timestamp = DateTime<Utc>;

/// Nanoseconds in a second, for [`nanos_between`]'s results.
pub const NANOS_PER_SEC: i128 = 1_000_000_000;

/// `later - earlier` in nanoseconds, from whole seconds and nanoseconds: the engine compares
/// times per event, and chrono's date arithmetic costs more than the rest of an event's
/// bookkeeping. A leap second (nanoseconds past a second's end) goes through chrono.
pub fn nanos_between(later: Timestamp, earlier: Timestamp) -> i128 {
    let (ln, en) = (
        later.timestamp_subsec_nanos(),
        earlier.timestamp_subsec_nanos(),
    );
    if ln < 1_000_000_000 && en < 1_000_000_000 {
        use chrono::Timelike;
        let (l, e) = (later.naive_utc(), earlier.naive_utc());
        // Nearly always the same day: seconds of the day, no day numbers.
        let secs = if l.date() == e.date() {
            i64::from(l.num_seconds_from_midnight()) - i64::from(e.num_seconds_from_midnight())
        } else {
            later.timestamp() - earlier.timestamp()
        };
        i128::from(secs) * NANOS_PER_SEC + i128::from(ln) - i128::from(en)
    } else {
        let d = later - earlier;
        i128::from(d.num_seconds()) * NANOS_PER_SEC + i128::from(d.subsec_nanos())
    }
}

/// One thing a source saw, at the time the world says it happened (not when it was read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub at: Timestamp,
    /// Which source saw it (`file:/var/log/..`, `kubernetes`, `discord:agentbroker`, ...).
    /// Shared: a source stamps it on every observation without copying it.
    pub source: Arc<str>,
    pub body: Body,
}

/// What was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Session(SessionObservation),
    Instance(InstanceObservation),
    StartLimit(StartLimit),
    SourceHealth(SourceHealth),
    /// What the remediation actor did (or would do) about a deaf session: its outcome comes
    /// back as an observation so the engine turns it into a finding, and `--record` keeps it.
    Remediation(Remediation),
    LogActivity(LogActivity),
}

/// Where a bot process runs: a pod's container, or a plain name outside Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct InstanceId {
    pub namespace: String,
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl InstanceId {
    /// An instance known only by namespace and pod name.
    pub fn pod(namespace: impl Into<String>, pod: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: None,
            container: None,
        }
    }
}

/// A line of the bot's log that says something about its gateway session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionObservation {
    /// The bot, when the line names it (`user=AgentBroker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    /// Shared: a log stream stamps its pod on every line without copying it.
    pub instance: Arc<InstanceId>,
    /// Shard id, when the line names it; a bot without sharding runs shard 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    pub event: SessionEvent,
    /// The (redacted) log line, kept as evidence; it shows only its cut text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LogLine>,
}

/// A gateway session's life, as the bot's logs tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SessionEvent {
    /// The process started its Discord client.
    Starting,
    /// IDENTIFY sent: Discord counts a new session start.
    Identifying,
    /// READY received: a new session is live.
    Ready {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
    /// An existing session resumed (no new session start).
    Resumed,
    /// Any sign that the session delivered an event to the bot.
    Dispatch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<Arc<str>>,
    },
    HeartbeatAck,
    /// A heartbeat sent, with the last sequence number the session received when the line
    /// logs it: a sequence that advances is proof of events at the gateway's own rate.
    Heartbeat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sequence: Option<u64>,
    },
    /// The previous heartbeat was never acknowledged: a zombie connection.
    HeartbeatMissed,
    /// The event loop could not keep up (a heartbeat blocked, "N ms behind").
    Stalled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        behind_ms: Option<u64>,
    },
    /// The library waits for an identify slot (its own start-limit throttle).
    IdentifyThrottled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_ms: Option<u64>,
    },
    /// RESUME sent: the library tries to continue its session (no new session start).
    Resuming,
    /// The library logged Discord's session start-limit figures itself.
    SessionLimit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remaining: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reset_after_ms: Option<u64>,
    },
    Reconnecting,
    InvalidSession {
        resumable: bool,
    },
    /// The websocket closed, with the close code when logged.
    Closed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
    },
    /// A non-recoverable gateway error (bad token, intents, sharding).
    Fatal {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
    },
    /// The bot began a graceful shutdown.
    ShuttingDown,
    /// The bot finished shutting down (its session was closed).
    Stopped,
}

impl SessionEvent {
    /// Stable short name, used in evidence, parse output and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Identifying => "identifying",
            Self::Ready { .. } => "ready",
            Self::Resumed => "resumed",
            Self::Dispatch { .. } => "dispatch",
            Self::HeartbeatAck => "heartbeat_ack",
            Self::Heartbeat { .. } => "heartbeat",
            Self::HeartbeatMissed => "heartbeat_missed",
            Self::Stalled { .. } => "stalled",
            Self::IdentifyThrottled { .. } => "identify_throttled",
            Self::Resuming => "resuming",
            Self::SessionLimit { .. } => "session_limit",
            Self::Reconnecting => "reconnecting",
            Self::InvalidSession { .. } => "invalid_session",
            Self::Closed { .. } => "closed",
            Self::Fatal { .. } => "fatal",
            Self::ShuttingDown => "shutting_down",
            Self::Stopped => "stopped",
        }
    }
}

/// A change in a bot instance's lifecycle (from the Kubernetes API or a capture of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceObservation {
    pub instance: InstanceId,
    /// The bot this pod runs, when its labels say so via the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    /// The workload the pod belongs to (Deployment/StatefulSet name), when known: pods of one
    /// workload run the same bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    pub change: InstanceChange,
}

/// Pod lifecycle vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum InstanceChange {
    Created,
    /// A container (re)started.
    Running,
    Ready,
    /// Deletion requested; `grace` is the termination grace period in seconds.
    Terminating {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace: Option<u64>,
    },
    /// The container exited.
    Exited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Deleted,
}

impl InstanceChange {
    /// Stable short name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Terminating { .. } => "terminating",
            Self::Exited { .. } => "exited",
            Self::Deleted => "deleted",
        }
    }
}

/// Discord's `GET /gateway/bot` answer for one bot token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLimit {
    pub bot: String,
    pub total: u32,
    pub remaining: u32,
    /// Milliseconds until `remaining` resets to `total`.
    pub reset_after_ms: u64,
    pub max_concurrency: u32,
    pub recommended_shards: u32,
}

/// One step of the remediation actor (scale the workload to 0, wait, restore), or why it
/// did not act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub bot: String,
    pub namespace: String,
    /// The workload acted on, `deployment/<name>` or `statefulset/<name>` (or the bare name
    /// when its kind is not known yet).
    pub workload: String,
    /// The pod of the deaf session that triggered it.
    pub pod: String,
    pub shard: u32,
    pub outcome: RemediationOutcome,
    /// Why (a skip's or a failure's reason: `rate_limit`, `identify_budget`, `forbidden`, ...),
    /// or the step (`scaled_down`, `restored`).
    pub reason: String,
    /// One plain sentence for the finding.
    pub detail: String,
}

/// What became of one remediation decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationOutcome {
    /// `mode = "dry-run"`: everything but the write.
    DryRun,
    /// The sequence began (the workload is being scaled to 0).
    Started,
    /// The replica count was restored.
    Done,
    /// A guard prevented the action (`reason` says which).
    Skipped,
    /// A step failed or timed out; what could be restored was.
    Failed,
}

impl RemediationOutcome {
    /// The name in metrics and findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DryRun => "dry_run",
            Self::Started => "started",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}
/// A pod's log went on up to `at` with lines that said nothing about a session (heartbeat
/// chatter, the bot's own work): time passes for the engine, and the pod is alive, up to its
/// last line. A log stream sends one at most every [`LOG_ACTIVITY_EVERY_SECS`] of log time,
/// and one for its last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogActivity {
    /// Shared with the stream's session observations.
    pub instance: Arc<InstanceId>,
}

/// Log time between two [`LogActivity`] observations of one stream.
pub const LOG_ACTIVITY_EVERY_SECS: i64 = 30;

/// A source's own health, for `source_up` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceHealth {
    pub source: String,
    pub up: bool,
    #[serde(default)]
    pub detail: String,
    /// Not in use by configuration (an optional token that is not there): neither up nor down,
    /// so it has no `source_up` series and pages nobody. `up` is false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    /// The recording format of a log's activity: its pod, no text.
    #[test]
    fn log_activity_round_trips() {
        let o = Observation {
            at: Utc.with_ymd_and_hms(2026, 4, 19, 4, 5, 0).unwrap(),
            source: "file:/var/log/bots/a.log".into(),
            body: Body::LogActivity(LogActivity {
                instance: Arc::new(InstanceId::pod("bots", "agentbroker-5f7b9c6d8-p4m2z")),
            }),
        };
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            json,
            r#"{"at":"2026-04-19T04:05:00Z","source":"file:/var/log/bots/a.log","body":{"type":"log_activity","instance":{"namespace":"bots","pod":"agentbroker-5f7b9c6d8-p4m2z"}}}"#
        );
        assert_eq!(serde_json::from_str::<Observation>(&json).unwrap(), o);
    }

    /// Agrees with chrono's own subtraction, both ways round, across seconds and days, and on
    /// a leap second.
    #[test]
    fn nanos_between_agrees_with_chrono() {
        let t = |s: i64, ns: u32| Utc.timestamp_opt(1_776_000_000 + s, ns).unwrap();
        let times = [
            t(0, 0),
            t(3, 250),
            t(-2, 999_999_999),
            t(0, 999_999_999),
            t(1, 1),
            t(-86_401, 500),
            t(86_400 * 400, 7),
        ];
        for &a in &times {
            for &b in &times {
                let d = a - b;
                let want =
                    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos());
                assert_eq!(nanos_between(a, b), want, "{a} - {b}");
            }
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let before = Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap();
        let d = leap - before;
        assert_eq!(
            nanos_between(leap, before),
            i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
        );
    }
}
