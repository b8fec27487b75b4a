//! discord-gateway-exporter: correlates Discord bots' logs, their pods' lifecycle and Discord's
//! session start-limit into findings (silent, concurrent, duplicate sessions, ...), Prometheus
//! metrics and a readable timeline.
//!
//! Data flows one way: [`sources`] -> `Observation`s -> the engine (`dge_core`) -> [`sinks`].
//! [`self_metrics`] and [`clock`] sit beside both sides: sources count into the one and read
//! the other without knowing about the sinks or the [`daemon`] that wires them.

pub mod actors;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod error;
pub mod self_metrics;
pub mod sinks;
pub mod sources;
pub mod telemetry;

pub use error::Error;
