//! An in-process OTLP receiver for tests.
//!
//! It listens on loopback for OTLP over gRPC and over HTTP/protobuf (the two protocols a
//! service may be configured with), decodes what arrives, and keeps it in a flat, easy to
//! assert form: spans, log records and metric names, each tagged with the `service.name`
//! of its resource and the transport it came over, plus one [`Request`] per export call
//! (path and compression). Tests point `OTEL_EXPORTER_OTLP_*` at it instead of at a
//! collector; the `otlp-sink` binary puts it where the collector exports to Tempo and Loki.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use axum::http::{HeaderMap, Uri};
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
use std::io::Read as _;
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
    /// Attributes of its resource.
    pub resource: BTreeMap<String, String>,
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
    /// Attributes of its resource.
    pub resource: BTreeMap<String, String>,
    /// Transport it arrived over.
    pub transport: Transport,
}

/// One export call, as it arrived: what a backend would see of the sender's settings.
#[derive(Debug, Clone)]
pub struct Request {
    /// `traces`, `logs` or `metrics`.
    pub signal: &'static str,
    /// The HTTP path, or the gRPC method's path.
    pub path: String,
    /// `Content-Encoding` (HTTP) or `grpc-encoding` (gRPC); empty when uncompressed.
    pub encoding: String,
    /// Transport it arrived over.
    pub transport: Transport,
}

/// What [`OtlpReceiver::drain`] took out of the receiver.
#[derive(Debug, Default)]
pub struct Received {
    /// Spans, in arrival order.
    pub spans: Vec<Span>,
    /// Log records, in arrival order.
    pub logs: Vec<LogRecord>,
    /// Export calls, in arrival order.
    pub requests: Vec<Request>,
}

/// A received metric (name only; tests assert on presence and origin).
#[derive(Debug, Clone)]
pub struct Metric {
    /// `service.name` of the resource.
    pub service_name: String,
    /// Metric name.
    pub name: String,
    /// Its data points (attributes, values, exemplars) in `Debug` form: enough to check
    /// what a metric carried, for example that no secret reached an attribute.
    pub data: String,
    /// Transport it arrived over.
    pub transport: Transport,
}

#[derive(Default)]
struct Store {
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
    metrics: Vec<Metric>,
    requests: Vec<Request>,
}

/// A running receiver; it stops when dropped.
pub struct OtlpReceiver {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
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
        Self::start_with(Some(grpc), Some(http), "").await
    }

    /// Starts the listeners given; HTTP serves `<http_prefix>/v1/{traces,metrics,logs}`
    /// (Loki's OTLP endpoint has the prefix `/otlp`) and answers 404 on any other path,
    /// as the real backend would.
    pub async fn start_with(
        grpc: Option<&str>,
        http: Option<&str>,
        http_prefix: &str,
    ) -> std::io::Result<Self> {
        let store = Arc::new(Mutex::new(Store::default()));
        let sink = Sink(store.clone());
        let (mut tasks, mut grpc_addr, mut http_addr) = (Vec::new(), None, None);
        if let Some(address) = grpc {
            let listener = TcpListener::bind(address).await?;
            grpc_addr = Some(listener.local_addr()?);
            // The collector's OTLP exporter compresses with gzip by default; the SDKs do not.
            let gzip = tonic::codec::CompressionEncoding::Gzip;
            let server = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(sink.clone()).accept_compressed(gzip))
                .add_service(MetricsServiceServer::new(sink.clone()).accept_compressed(gzip))
                .add_service(LogsServiceServer::new(sink.clone()).accept_compressed(gzip))
                .serve_with_incoming(tokio_stream_from(listener));
            tasks.push(tokio::spawn(async move {
                let _ = server.await;
            }));
        }
        if let Some(address) = http {
            let listener = TcpListener::bind(address).await?;
            http_addr = Some(listener.local_addr()?);
            let router = Router::new()
                .route(&format!("{http_prefix}/v1/traces"), post(http_traces))
                .route(&format!("{http_prefix}/v1/metrics"), post(http_metrics))
                .route(&format!("{http_prefix}/v1/logs"), post(http_logs))
                .with_state(sink);
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        Ok(Self {
            grpc_addr,
            http_addr,
            store,
            tasks,
        })
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn grpc_endpoint(&self) -> String {
        format!(
            "http://{}",
            self.grpc_addr.expect("started with a gRPC listener")
        )
    }

    /// `http://127.0.0.1:<port>` of the HTTP listener (the base URL; `/v1/<signal>` is appended).
    pub fn http_endpoint(&self) -> String {
        format!(
            "http://{}",
            self.http_addr.expect("started with an HTTP listener")
        )
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

    /// Every export call received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .clone()
    }

    /// Takes everything received since the last call out of the receiver, so a
    /// long-running sink keeps neither a growing store nor copies it on every read.
    pub fn drain(&self) -> Received {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        Received {
            spans: std::mem::take(&mut store.spans),
            logs: std::mem::take(&mut store.logs),
            requests: std::mem::take(&mut store.requests),
        }
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

    fn request(&self, signal: &'static str, path: String, encoding: String, transport: Transport) {
        self.store().requests.push(Request {
            signal,
            path,
            encoding,
            transport,
        });
    }

    /// Records a gRPC call; the method path is fixed by the service.
    fn grpc_request<T>(&self, signal: &'static str, path: &str, request: &tonic::Request<T>) {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.request(signal, path.to_owned(), encoding, Transport::Grpc);
    }

    fn traces(&self, req: ExportTraceServiceRequest, transport: Transport) {
        let mut store = self.store();
        for rs in req.resource_spans {
            let service_name = service_name(rs.resource.as_ref());
            let resource = resource_attributes(rs.resource.as_ref());
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
                        resource: resource.clone(),
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
            let resource = resource_attributes(rl.resource.as_ref());
            for sl in rl.scope_logs {
                for l in sl.log_records {
                    store.logs.push(LogRecord {
                        service_name: service_name.clone(),
                        trace_id: hex(&l.trace_id),
                        span_id: hex(&l.span_id),
                        body: l.body.as_ref().map(render).unwrap_or_default(),
                        severity_text: l.severity_text,
                        attributes: attributes(&l.attributes),
                        resource: resource.clone(),
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
                        data: format!("{:?}", m.data),
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
        self.grpc_request(
            "traces",
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            &request,
        );
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
        self.grpc_request(
            "logs",
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            &request,
        );
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
        self.grpc_request(
            "metrics",
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            &request,
        );
        self.metrics(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The body of an HTTP export, recorded as a [`Request`] and decompressed: the
/// collector's `otlp_http` exporter sends gzip by default, the SDKs send it plain.
fn http_body(
    sink: &Sink,
    signal: &'static str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Option<Vec<u8>> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    sink.request(
        signal,
        uri.path().to_owned(),
        encoding.clone(),
        Transport::HttpProtobuf,
    );
    match encoding.as_str() {
        "" | "identity" => Some(body.to_vec()),
        "gzip" => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .ok()?;
            Some(plain)
        }
        _ => None,
    }
}

async fn http_traces(
    State(sink): State<Sink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let body = http_body(&sink, "traces", &uri, &headers, body);
    match body.map(|b| ExportTraceServiceRequest::decode(&b[..])) {
        Some(Ok(req)) => {
            sink.traces(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        _ => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_metrics(
    State(sink): State<Sink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let body = http_body(&sink, "metrics", &uri, &headers, body);
    match body.map(|b| ExportMetricsServiceRequest::decode(&b[..])) {
        Some(Ok(req)) => {
            sink.metrics(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportMetricsServiceResponse::default().encode_to_vec(),
            )
        }
        _ => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_logs(
    State(sink): State<Sink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let body = http_body(&sink, "logs", &uri, &headers, body);
    match body.map(|b| ExportLogsServiceRequest::decode(&b[..])) {
        Some(Ok(req)) => {
            sink.logs(req, Transport::HttpProtobuf);
            (
                StatusCode::OK,
                ExportLogsServiceResponse::default().encode_to_vec(),
            )
        }
        _ => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref())
        .map(render)
        .unwrap_or_default()
}

fn resource_attributes(resource: Option<&Resource>) -> BTreeMap<String, String> {
    resource
        .map(|r| attributes(&r.attributes))
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
