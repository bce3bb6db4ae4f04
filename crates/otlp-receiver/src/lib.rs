//! An in-process OTLP receiver for tests.
//!
//! It listens on loopback for OTLP over gRPC and over HTTP/protobuf (the two protocols a
//! service may be configured with), decodes what arrives, and keeps it in a flat, easy to
//! assert form: spans, log records and metric names, each tagged with the `service.name`
//! of its resource and the transport it came over. Tests point `OTEL_EXPORTER_OTLP_*`
//! at it instead of at a collector.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{
            ExportLogsServiceRequest, ExportLogsServiceResponse,
            logs_service_server::{LogsService, LogsServiceServer},
        },
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
};
use prost::Message;
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::net::TcpListener;

/// Which OTLP transport delivered an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
}

/// A received span, flattened.
#[derive(Debug, Clone)]
pub struct Span {
    /// `service.name` of the resource.
    pub service_name: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id, empty for a root span.
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind number (1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    /// Attributes with values rendered as strings.
    pub attributes: BTreeMap<String, String>,
    /// Events: name and attributes.
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// Links: hex trace id and span id.
    pub links: Vec<(String, String)>,
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    /// Transport it arrived over.
    pub transport: Transport,
}

/// A received log record, flattened.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// `service.name` of the resource.
    pub service_name: String,
    /// Hex trace id, empty when the record has none.
    pub trace_id: String,
    /// Hex span id, empty when the record has none.
    pub span_id: String,
    /// Body rendered as a string.
    pub body: String,
    /// Severity text (`INFO`, `WARN`...).
    pub severity_text: String,
    /// Attributes with values rendered as strings.
    pub attributes: BTreeMap<String, String>,
    /// Transport it arrived over.
    pub transport: Transport,
}

/// A received metric (name only; tests assert on presence and origin).
#[derive(Debug, Clone)]
pub struct Metric {
    /// `service.name` of the resource.
    pub service_name: String,
    /// Metric name.
    pub name: String,
    /// Transport it arrived over.
    pub transport: Transport,
}

#[derive(Default)]
struct Store {
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
    metrics: Vec<Metric>,
}

/// A running receiver; it stops when dropped.
pub struct OtlpReceiver {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

impl OtlpReceiver {
    /// Starts both listeners on ephemeral loopback ports.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", "127.0.0.1:0").await
    }

    /// Starts the gRPC and HTTP listeners on the given addresses (`host:port`).
    pub async fn start_on(grpc: &str, http: &str) -> std::io::Result<Self> {
        let store = Arc::new(Mutex::new(Store::default()));
        let grpc_listener = TcpListener::bind(grpc).await?;
        let http_listener = TcpListener::bind(http).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let sink = Sink(store.clone());
        // The collector's OTLP exporter compresses with gzip by default; the SDKs do not.
        let gzip = tonic::codec::CompressionEncoding::Gzip;
        let grpc = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()).accept_compressed(gzip))
            .add_service(MetricsServiceServer::new(sink.clone()).accept_compressed(gzip))
            .add_service(LogsServiceServer::new(sink.clone()).accept_compressed(gzip))
            .serve_with_incoming(tokio_stream_from(grpc_listener));
        let http = Router::new()
            .route("/v1/traces", post(http_traces))
            .route("/v1/metrics", post(http_metrics))
            .route("/v1/logs", post(http_logs))
            .with_state(sink);
        let tasks = vec![
            tokio::spawn(async move {
                let _ = grpc.await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(http_listener, http).await;
            }),
        ];
        Ok(Self {
            grpc_addr,
            http_addr,
            store,
            tasks,
        })
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://127.0.0.1:<port>` of the HTTP listener (the base URL; `/v1/<signal>` is appended).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spans
            .clone()
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .logs
            .clone()
    }

    /// Every metric received so far (one entry per metric per export).
    pub fn metrics(&self) -> Vec<Metric> {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .metrics
            .clone()
    }

    /// Polls until `done` holds for the spans received, or `timeout` passes.
    /// Returns the spans either way, for the caller's assertion message.
    pub async fn wait_for_spans(
        &self,
        timeout: Duration,
        done: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl OtlpReceiver {
    /// Polls until `done` holds for the log records received, or `timeout` passes.
    pub async fn wait_for_logs(
        &self,
        timeout: Duration,
        done: impl Fn(&[LogRecord]) -> bool,
    ) -> Vec<LogRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if done(&logs) || tokio::time::Instant::now() >= deadline {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn tokio_stream_from(
    listener: TcpListener,
) -> impl futures_core_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_core_stream::incoming(listener)
}

/// A minimal `Stream` of accepted connections, so no extra stream crate is needed.
mod futures_core_stream {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };
    use tokio::net::{TcpListener, TcpStream};
    pub use tonic::codegen::tokio_stream::Stream;

    pub struct Incoming(TcpListener);

    pub fn incoming(listener: TcpListener) -> Incoming {
        Incoming(listener)
    }

    impl Stream for Incoming {
        type Item = std::io::Result<TcpStream>;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0
                .poll_accept(cx)
                .map(|r| Some(r.map(|(stream, _)| stream)))
        }
    }
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Store>>);

impl Sink {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn traces(&self, req: ExportTraceServiceRequest, transport: Transport) {
        let mut store = self.store();
        for rs in req.resource_spans {
            let service_name = service_name(rs.resource.as_ref());
            for ss in rs.scope_spans {
                for s in ss.spans {
                    store.spans.push(Span {
                        service_name: service_name.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        name: s.name,
                        kind: s.kind,
                        attributes: attributes(&s.attributes),
                        events: s
                            .events
                            .iter()
                            .map(|e| (e.name.clone(), attributes(&e.attributes)))
                            .collect(),
                        links: s
                            .links
                            .iter()
                            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                            .collect(),
                        status_code: s.status.map(|st| st.code).unwrap_or_default(),
                        transport,
                    });
                }
            }
        }
    }

    fn logs(&self, req: ExportLogsServiceRequest, transport: Transport) {
        let mut store = self.store();
        for rl in req.resource_logs {
            let service_name = service_name(rl.resource.as_ref());
            for sl in rl.scope_logs {
                for l in sl.log_records {
                    store.logs.push(LogRecord {
                        service_name: service_name.clone(),
                        trace_id: hex(&l.trace_id),
                        span_id: hex(&l.span_id),
                        body: l.body.as_ref().map(render).unwrap_or_default(),
                        severity_text: l.severity_text,
                        attributes: attributes(&l.attributes),
                        transport,
                    });
                }
            }
        }
    }

    fn metrics(&self, req: ExportMetricsServiceRequest, transport: Transport) {
        let mut store = self.store();
        for rm in req.resource_metrics {
            let service_name = service_name(rm.resource.as_ref());
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    store.metrics.push(Metric {
                        service_name: service_name.clone(),
                        name: m.name,
                        transport,
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn http_traces(State(sink): State<Sink>, body: Bytes) -> (StatusCode, Vec<u8>) {
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            sink.traces(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_metrics(State(sink): State<Sink>, body: Bytes) -> (StatusCode, Vec<u8>) {
    match ExportMetricsServiceRequest::decode(body) {
        Ok(req) => {
            sink.metrics(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportMetricsServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_logs(State(sink): State<Sink>, body: Bytes) -> (StatusCode, Vec<u8>) {
    match ExportLogsServiceRequest::decode(body) {
        Ok(req) => {
            sink.logs(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportLogsServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref())
        .map(render)
        .unwrap_or_default()
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(render).unwrap_or_default(),
            )
        })
        .collect()
}

fn render(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(render).collect();
            format!("[{}]", items.join(","))
        }
        Some(Value::KvlistValue(kvs)) => format!("{:?}", attributes(&kvs.values)),
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
