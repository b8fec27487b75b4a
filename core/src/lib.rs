//! The core of discord-gateway-exporter: the one input vocabulary ([`observation`]) and the
//! pure correlation [`engine`] that turns observations into sessions and findings.
//!
//! Nothing here does I/O or reads a clock: time arrives with the observations and ticks, so
//! replay and live mode run the same code and tests use simulated time.

pub mod engine;
pub mod observation;
mod privacy;

pub use privacy::{CUT, MAX_EVIDENCE_BYTES};
