//! The OTLP pipeline: the exporter (gRPC or HTTP, configured by `[traces]` and `OTEL_*`), the
//! batch processor, the resource, and the export state that `/healthz` and `/metrics` show.
//!
//! Export never blocks the engine: spans go to the SDK's batch processor (a bounded queue; a
//! full queue drops spans) whose own thread talks to the collector; failed exports are
//! counted in `discord_gateway_exporter_trace_export_errors_total` and shown in `/healthz`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use prometheus::IntCounter;
use serde::Serialize;

use super::config::{TracesConfig, env, parse_protocol};
use super::spans::TraceSink;
use super::{DEFAULT_SERVICE_NAME, SCOPE};
use crate::error::{Error, Result};
use dge_core::observation::Timestamp;

/// What `/healthz` shows about the trace export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportStatus {
    pub enabled: bool,
    pub endpoint: String,
    pub protocol: String,
    pub spans_exported: u64,
    pub export_errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// The last export failed.
    pub failing: bool,
}

/// The trace export's state: its status for `/healthz` and its failure counter for
/// `/metrics`. One per pipeline, owned by whoever builds it and handed (cloned: it is shared)
/// to the exporter's batch thread and to the HTTP surface; no process-wide statics, so two
/// pipelines in one process (tests) keep their own counts.
#[derive(Debug, Clone)]
pub struct TraceExport {
    inner: Arc<ExportInner>,
}

#[derive(Debug)]
struct ExportInner {
    status: Mutex<ExportStatus>,
    /// `discord_gateway_exporter_trace_export_errors_total`: failed export calls (one per
    /// batch that could not be delivered after the exporter's own retries).
    errors: IntCounter,
}

impl Default for TraceExport {
    /// Traces off: the counter exists (and stays 0), the status says disabled.
    fn default() -> Self {
        let errors = IntCounter::new(
            "discord_gateway_exporter_trace_export_errors_total",
            "Batches of spans the OTLP exporter failed to deliver (after its retries).",
        )
        .expect("valid metric");
        Self {
            inner: Arc::new(ExportInner {
                status: Mutex::default(),
                errors,
            }),
        }
    }
}

impl TraceExport {
    /// The export's state now, for `/healthz`.
    pub fn status(&self) -> ExportStatus {
        self.lock().clone()
    }

    /// The failure counter, for a Prometheus registry.
    pub fn errors(&self) -> IntCounter {
        self.inner.errors.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExportStatus> {
        self.inner.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Wraps the OTLP exporter to count and remember failures.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    export: TraceExport,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let r = self.inner.export(batch).await;
        let mut s = self.export.lock();
        match &r {
            Ok(()) => {
                if s.failing {
                    tracing::info!("trace export recovered");
                    s.failing = false;
                }
                s.spans_exported += n;
            }
            Err(e) => {
                self.export.inner.errors.inc();
                s.export_errors += 1;
                let msg = dge_parse::logs::redact_tokens(&e.to_string()).into_owned();
                // Once per failure streak or change of reason, not once per batch.
                if !s.failing || s.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, spans = n, "trace export failed");
                }
                s.failing = true;
                s.last_error = Some(msg);
                s.last_error_at = Some(chrono::Utc::now());
            }
        }
        r
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP trace pipeline: a tracer provider with a batch processor, and its export state.
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
    segment: Option<TimeDelta>,
    export: TraceExport,
}

impl Traces {
    /// Builds the pipeline when traces are configured (by `OTEL_*` variables or `cfg`); `None`
    /// when they are off. `force` (replay's `--otlp`) turns them on with the defaults. The gRPC
    /// exporter needs a Tokio runtime entered.
    pub fn from_config(cfg: &TracesConfig, force: bool) -> Result<Option<Self>> {
        cfg.validate()?;
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let env_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let on = !disabled
            && (force
                || match cfg.enabled {
                    Some(e) => e,
                    None => env_endpoint || cfg.endpoint.is_some(),
                });
        if !on {
            return Ok(None);
        }
        let protocol_text = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .or_else(|| cfg.protocol.clone())
            .unwrap_or_else(|| "grpc".to_string());
        let protocol =
            parse_protocol(&protocol_text).map_err(|e| Error::invalid("OTLP protocol", e))?;
        // The variables win over the file; the exporter reads them itself.
        let endpoint = if env_endpoint {
            None
        } else {
            cfg.endpoint.clone()
        };
        let shown_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .or_else(|| endpoint.clone())
            .unwrap_or_else(|| match protocol {
                Protocol::Grpc => "http://localhost:4317".into(),
                _ => "http://localhost:4318".into(),
            });
        let exporter = match protocol {
            Protocol::Grpc => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build()
            }
            _ => {
                let endpoint = endpoint.map(|e| {
                    if e.trim_end_matches('/').ends_with("/v1/traces") {
                        e
                    } else {
                        format!("{}/v1/traces", e.trim_end_matches('/'))
                    }
                });
                // The blocking HTTP client must not be made on a runtime's thread.
                std::thread::spawn(move || {
                    let mut b = opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpBinary);
                    if let Some(e) = endpoint {
                        b = b.with_endpoint(e);
                    }
                    b.build()
                })
                .join()
                .map_err(|_| Error::TraceExporterPanicked)?
            }
        }
        .map_err(Error::TraceExporter)?;

        // Resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (read by the SDK), else the
        // config's or our name.
        let detected = Resource::builder().build();
        let named = detected
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .map(|v| !v.as_str().starts_with("unknown_service"))
            .unwrap_or(false);
        let mut resource = Resource::builder();
        if !named {
            resource = resource.with_service_name(
                cfg.service_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string()),
            );
        }
        let resource = resource
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        // OTEL_BSP_* tune the queue (default 2048 spans) and the delay (default 5 s).
        let export = TraceExport::default();
        *export.lock() = ExportStatus {
            enabled: true,
            endpoint: shown_endpoint,
            protocol: protocol_text,
            ..ExportStatus::default()
        };
        let processor = BatchSpanProcessor::builder(Counting {
            inner: exporter,
            export: export.clone(),
        })
        .with_batch_config(BatchConfigBuilder::default().build())
        .build();
        // OTEL_TRACES_SAMPLER(_ARG) choose the sampler (read by the SDK's default config).
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let segment = (cfg.segment_secs > 0).then(|| TimeDelta::seconds(cfg.segment_secs as i64));
        Ok(Some(Self {
            provider,
            segment,
            export,
        }))
    }

    /// The export's state (status and failure counter), for `/healthz` and `/metrics`.
    pub fn export(&self) -> &TraceExport {
        &self.export
    }

    /// A tracer of this pipeline (the daemon's own spans use one via tracing-opentelemetry).
    pub fn tracer(&self, scope: &'static str) -> SdkTracer {
        self.provider.tracer(scope)
    }

    /// The sink that turns engine changes into spans; `segments: false` for replay, where
    /// every session's whole span is exported at once anyway.
    pub fn sink(&self, segments: bool) -> TraceSink {
        TraceSink::new(
            self.tracer(SCOPE),
            if segments { self.segment } else { None },
        )
    }

    /// Exports what is queued and stops the pipeline, waiting at most `timeout`.
    pub fn shutdown(&self, timeout: Duration) {
        let _ = self.provider.force_flush();
        if let Err(e) = self.provider.shutdown_with_timeout(timeout) {
            tracing::debug!(error = %e, "trace pipeline shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pipeline has its own state: nothing is process-wide.
    #[test]
    fn export_states_are_separate_values() {
        let (a, b) = (TraceExport::default(), TraceExport::default());
        a.errors().inc();
        a.lock().failing = true;
        assert_eq!((a.errors().get(), b.errors().get()), (1, 0));
        assert!(a.status().failing && !b.status().failing);
        // A clone is the same state (the batch thread's and /healthz's view).
        let c = a.clone();
        c.errors().inc();
        assert_eq!(a.errors().get(), 2);
        assert!(!b.status().enabled);
    }
}
