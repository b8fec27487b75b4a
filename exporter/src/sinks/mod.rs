//! The engine's consequences -> the world: Prometheus metrics, the HTTP API, the timeline,
//! the status page.

pub mod http;
pub mod metrics;
pub mod status;
pub mod timeline;
pub mod traces;
