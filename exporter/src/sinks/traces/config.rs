//! `[traces]`: where and how session traces are exported. The standard `OTEL_*` variables
//! override the file (read in [`super::pipeline`]).

use opentelemetry_otlp::Protocol;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `[traces]`: OTLP export of session traces. The standard `OTEL_*` variables override these;
/// with neither an endpoint nor `enabled = true`, traces are off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// `true` exports to the default endpoint (localhost:4317) when none is given; `false`
    /// turns traces off even when an endpoint is set. Unset: on when an endpoint is set.
    pub enabled: Option<bool>,
    /// Collector URL, e.g. `http://otel-collector:4317` (gRPC) or
    /// `http://otel-collector:4318` (HTTP; `/v1/traces` is appended).
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    pub protocol: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: Option<String>,
    /// Length of a long session's segment spans, in seconds; 0: no segments (the session span
    /// only, exported when the session ends).
    pub segment_secs: u64,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            endpoint: None,
            protocol: None,
            service_name: None,
            segment_secs: 300,
        }
    }
}

impl TracesConfig {
    /// Checks the protocol and the endpoint's shape.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = &self.protocol {
            parse_protocol(p).map_err(|e| Error::invalid("traces.protocol", e))?;
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Error::invalid_value(
                "traces.endpoint",
                format!("{e:?}"),
                "a URL (http://host:port)",
            ));
        }
        Ok(())
    }
}

pub(super) fn parse_protocol(p: &str) -> std::result::Result<Protocol, String> {
    match p.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpBinary),
        other => Err(format!("{other:?}: grpc or http/protobuf")),
    }
}

pub(super) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
