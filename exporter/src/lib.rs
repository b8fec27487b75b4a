//! discord-gateway-exporter: correlates Discord bots' logs, their pods' lifecycle and Discord's
//! session start-limit into findings (silent, concurrent, duplicate sessions, ...), Prometheus
//! metrics and a readable timeline.
//!
//! Data flows one way: [`sources`] -> [`observation::Observation`]s -> [`engine`] -> [`sinks`].

pub mod cmd;
pub mod config;
pub mod daemon;
pub mod error;
pub mod sinks;
pub mod sources;
pub mod telemetry;

pub use error::Error;
