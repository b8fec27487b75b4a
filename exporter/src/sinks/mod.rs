//! The engine's consequences -> the world: Prometheus metrics, the HTTP API, the timeline.

pub mod http;
pub mod metrics;
pub mod timeline;
pub mod traces;
