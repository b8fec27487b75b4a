//! Test support: a real OTLP/gRPC trace receiver (opentelemetry-proto's tonic `TraceService`
//! server on 127.0.0.1) that keeps everything it is sent.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;

/// One received span with its resource's attributes.
#[derive(Clone, Debug)]
pub struct Got {
    pub resource: Vec<KeyValue>,
    pub scope: String,
    pub span: Span,
}

impl Got {
    pub fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        attr(&self.resource, key)
    }

    /// Events named `name`.
    pub fn events(&self, name: &str) -> Vec<&opentelemetry_proto::tonic::trace::v1::span::Event> {
        self.span.events.iter().filter(|e| e.name == name).collect()
    }

    pub fn start_ns(&self) -> u64 {
        self.span.start_time_unix_nano
    }
}

/// An attribute's value as text.
pub fn attr(kvs: &[KeyValue], key: &str) -> Option<String> {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(value_text)
}

pub fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(value_text)
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::KvlistValue(l)) => l
            .values
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    kv.key,
                    kv.value.as_ref().map(value_text).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Every string a span carries: name, status, attribute keys and values (resource, scope,
/// span, events, links).
pub fn all_text(g: &Got) -> Vec<String> {
    let mut out = vec![g.span.name.clone(), g.scope.clone()];
    let kv = |out: &mut Vec<String>, kvs: &[KeyValue]| {
        for k in kvs {
            out.push(k.key.clone());
            out.push(k.value.as_ref().map(value_text).unwrap_or_default());
        }
    };
    kv(&mut out, &g.resource);
    kv(&mut out, &g.span.attributes);
    for e in &g.span.events {
        out.push(e.name.clone());
        kv(&mut out, &e.attributes);
    }
    for l in &g.span.links {
        kv(&mut out, &l.attributes);
        out.push(l.trace_state.clone());
    }
    out.push(g.span.trace_state.clone());
    if let Some(s) = &g.span.status {
        out.push(s.message.clone());
    }
    out
}

#[derive(Clone, Default)]
struct Store(Arc<Mutex<Vec<Got>>>);

impl Store {
    fn push(&self, request: ExportTraceServiceRequest) {
        let mut got = self.0.lock().unwrap();
        for rs in request.resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            for ss in rs.scope_spans {
                let scope = ss.scope.map(|s| s.name).unwrap_or_default();
                for span in ss.spans {
                    got.push(Got {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span,
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let svc = TraceServiceServer::new(store.clone());
        rt.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            store,
            stop: Some(stop),
            rt: Some(rt),
        }
    }

    /// The same receiver speaking OTLP/HTTP with protobuf bodies (`POST /v1/traces`).
    pub fn start_http() -> Receiver {
        use prost::Message;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = store.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(req) => {
                            s.push(req);
                            (
                                axum::http::StatusCode::OK,
                                ExportTraceServiceResponse::default().encode_to_vec(),
                            )
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                    }
                }
            }),
        );
        rt.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            store,
            stop: Some(stop),
            rt: Some(rt),
        }
    }

    /// `http://127.0.0.1:PORT`, for OTEL_EXPORTER_OTLP_ENDPOINT.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Got> {
        self.store.0.lock().unwrap().clone()
    }

    /// Polls until `f` finds what it wants in the spans received so far.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&[Got]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(&self.spans()) {
                return v;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = self
                    .spans()
                    .iter()
                    .map(|g| format!("{} {:?}", g.span.name, g.attr("k8s.pod.name")))
                    .collect();
                panic!("timed out waiting for {what}; received: {names:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
