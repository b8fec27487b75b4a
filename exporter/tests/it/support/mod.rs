//! Shared test support: real counterparts (Prometheus, a fake API server, a fake Discord, an OTLP receiver) and the exporter binary.

pub mod exporter;
pub mod fake_apiserver;
pub mod fake_discord;
pub mod noise;
pub mod otlp_receiver;
pub mod prom;
