//! What the parse crate's tests share: a stream on a built-in profile, the instance and source
//! it names, and reading an observation back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dge_core::observation::{Body, InstanceId, Observation, SessionObservation};
use dge_parse::logs::{CompiledProfile, Framing, LogStream, builtin_profile};

/// A Discord-token-shaped string (not a real token).
pub const TOKEN: &str = "MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB";
/// A timestamped line no rule matches: gives the lines after it a time.
pub const PRIME: &str = "2026-04-19T04:00:00Z  INFO openab: config loaded discord=true";

pub fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn instance() -> InstanceId {
    InstanceId::pod("bots", "agentbroker-7d9f8-x2x4q")
}

pub fn stream_with(profile: Arc<CompiledProfile>, framing: Framing) -> LogStream {
    LogStream::new(profile, framing, instance(), "file:test.log".into())
}

/// A stream on `auto`.
pub fn stream(framing: Framing) -> LogStream {
    stream_with(builtin_profile("auto").unwrap(), framing)
}

pub fn session(o: &Observation) -> &SessionObservation {
    match &o.body {
        Body::Session(s) => s,
        other => panic!("not a session observation: {other:?}"),
    }
}
