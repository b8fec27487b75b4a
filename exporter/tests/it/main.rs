//! The exporter crate's integration tests, one binary: each module is one area.

mod alerts_rules;
mod bad_input;
mod config_profiles;
mod daemon;
mod dashboards;
mod deploy;
mod discord_poller;
mod e2e_alerting;
mod evidence;
mod finding_kinds;
mod kubernetes;
mod layering;
mod otlp;
mod privacy;
mod remediation;
mod replay_examples;
mod sources;
mod status_page;
mod support;
mod tailing;
