//! The server side of HTTP instrumentation: one tower layer, no code in handlers.
//!
//! For each request [`HttpServerLayer`] extracts the W3C context from the headers, opens
//! the server span (stable HTTP semantic conventions), runs the handler inside it, records
//! the RED histogram with an exemplar, and answers with a `traceresponse` header (W3C
//! Trace Context Level 2) so the client can find its trace.
//!
//! Add it with `Router::layer` as the **last** step, after every `route`, `merge` and
//! `fallback`: axum applies a layer only to what the router holds at that point, and
//! `MatchedPath` (the route template) is known inside it. Paths given to
//! [`HttpServerLayer::skip_paths`] (scrapes, probes) pass through untouched.

use crate::{
    metrics::{
        EXEMPLAR_ATTRIBUTE, HttpServerLabels, HttpServerMetrics, MetricsRegistry, method_label,
    },
    propagation,
    redaction::{REDACTED, is_sensitive_header, redact_query},
};
use axum::extract::MatchedPath;
use http::{HeaderName, HeaderValue, Request, Response};
use opentelemetry::{
    Array, StringValue, Value,
    trace::{SpanContext, TraceContextExt},
};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `target` of the access-log line (this module's path, as `tracing` sets it).
pub(crate) const ACCESS_LOG_TARGET: &str = module_path!();

/// Response header carrying the server span's context (W3C Trace Context Level 2).
pub const TRACERESPONSE: &str = "traceresponse";

/// Tower layer that instruments an HTTP server. Cheap to clone.
#[derive(Clone)]
pub struct HttpServerLayer {
    metrics: HttpServerMetrics,
    captured_headers: Arc<[HeaderName]>,
    skipped_paths: Arc<[String]>,
}

impl HttpServerLayer {
    /// A layer recording into `registry`'s server histogram (one family per registry).
    pub fn new(registry: &MetricsRegistry) -> Self {
        Self {
            metrics: HttpServerMetrics::new(registry),
            captured_headers: Arc::from([]),
            skipped_paths: Arc::from([]),
        }
    }

    /// Requests to exactly these paths get no span, metric or header: `/metrics`
    /// scrapes and `/healthz` probes would otherwise fill the traces with noise.
    pub fn skip_paths(mut self, paths: &[&str]) -> Self {
        self.skipped_paths = paths.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Records these request headers as `http.request.header.<name>` span attributes.
    /// Credentials (`authorization`, `cookie`, ...) are recorded as `[REDACTED]`.
    pub fn capture_request_headers(mut self, names: &[&str]) -> Self {
        self.captured_headers = names
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        self
    }
}

impl<S> Layer<S> for HttpServerLayer {
    type Service = HttpServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`HttpServerLayer`].
#[derive(Clone)]
pub struct HttpServerService<S> {
    inner: S,
    layer: HttpServerLayer,
}

impl<S, B, RB> Service<Request<B>> for HttpServerService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self
            .layer
            .skipped_paths
            .iter()
            .any(|p| p == req.uri().path())
        {
            return Box::pin(self.inner.call(req));
        }
        let start = Instant::now();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        let method = method_label(req.method()).to_owned();
        let span = server_span(&req, &method, route.as_deref());
        // The remote parent must be set before the span is first entered.
        let _ = span.set_parent(propagation::extract_from_headers(req.headers()));
        record_captured_headers(&span, &req, &self.layer.captured_headers);

        // Take the service that was polled ready and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.layer.metrics.clone();

        // Everything from the inner `call` to the access log runs inside the span
        // (`instrument` enters it on each poll): the handler's spans and logs are its
        // children, and neither the call nor the log line needs an entering of its own.
        let handle = span.clone();
        Box::pin(
            async move {
                let result = inner.call(req).await;
                let span = handle;
                let span_context = span.context().span().span_context().clone();
                let status = match &result {
                    Ok(response) => response.status().as_u16(),
                    // axum services are infallible; another stack's error counts as a 500.
                    Err(_) => 500,
                };
                // Integers as the conventions type them (a bare u16 would export as a string).
                span.record("http.response.status_code", i64::from(status));
                if status >= 500 {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", status.to_string());
                }
                if let Err(error) = &result {
                    span.record("error.type", error.to_string());
                }
                let labels = HttpServerLabels {
                    http_request_method: method,
                    http_route: route.unwrap_or_default(),
                    http_response_status_code: status,
                };
                let elapsed = start.elapsed();
                // One access-log line per request, inside the span: it carries the trace id
                // on stdout and over OTLP, so Loki can lead from a request to its trace.
                tracing::info!(
                    http.request.method = labels.http_request_method.as_str(),
                    http.route = labels.http_route.as_str(),
                    http.response.status_code = status,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "request completed"
                );
                if metrics.record(&labels, elapsed, Some(&span_context)) {
                    span.record(EXEMPLAR_ATTRIBUTE, true);
                }
                result.map(|mut response| {
                    if let Some(value) = traceresponse(&span_context) {
                        response.headers_mut().insert(TRACERESPONSE, value);
                    }
                    response
                })
            }
            .instrument(span),
        )
    }
}

/// Opens the server span with every value known before the handler runs set at once: a
/// field declared `Empty` and `record`ed later costs a pass through every layer per
/// `record`. `None` fields stay unset; only the response's fields are recorded later.
fn server_span<B>(req: &Request<B>, method: &str, route: Option<&str>) -> Span {
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let (host, port) = host_and_port(req);
    let query = req.uri().query().map(redact_query);
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    // Values as `&str`, not `%` (Display): the bridge copies a `&str`, but runs a Display
    // value through the formatting machinery (`format!("{:?}")`) first.
    tracing::info_span!(
        "HTTP request",
        otel.name = name.as_str(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        url.path = req.uri().path(),
        url.query = query.as_deref(),
        url.scheme = req.uri().scheme_str().unwrap_or("http"),
        server.address = host,
        server.port = port.map(i64::from),
        network.protocol.version = network_protocol_version(req.version()),
        user_agent.original = user_agent,
        error.type = Empty,
        { EXEMPLAR_ATTRIBUTE } = Empty,
    )
}

fn host_and_port<B>(req: &Request<B>) -> (Option<&str>, Option<u16>) {
    let authority = req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    let Some(authority) = authority else {
        return (None, None);
    };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (Some(host), port.parse().ok())
        }
        _ => (Some(authority), None),
    }
}

fn network_protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn record_captured_headers<B>(span: &Span, req: &Request<B>, names: &[HeaderName]) {
    for name in names {
        let values: Vec<StringValue> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| {
                if is_sensitive_header(name.as_str()) {
                    StringValue::from(REDACTED)
                } else {
                    StringValue::from(String::from_utf8_lossy(v.as_bytes()).into_owned())
                }
            })
            .collect();
        if !values.is_empty() {
            span.set_attribute(
                format!("http.request.header.{}", name.as_str()),
                Value::Array(Array::String(values)),
            );
        }
    }
}

/// `traceresponse` value for a span context: `00-<trace id>-<span id>-<flags>`.
pub fn traceresponse(span: &SpanContext) -> Option<HeaderValue> {
    if !span.is_valid() {
        return None;
    }
    // Hex by hand into a fixed buffer: `format!` of the ids cost more than the rest of this.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut value = [b'-'; 55];
    let trace_id = span.trace_id().to_bytes();
    let span_id = span.span_id().to_bytes();
    let flags = [if span.is_sampled() { 1 } else { 0 }];
    for (bytes, at) in [
        (&[0][..], 0),
        (&trace_id[..], 3),
        (&span_id[..], 36),
        (&flags, 53),
    ] {
        for (i, byte) in bytes.iter().enumerate() {
            value[at + 2 * i] = HEX[usize::from(byte >> 4)];
            value[at + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
    }
    HeaderValue::from_bytes(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn traceresponse_is_version_trace_id_span_id_and_flags() {
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        for (flags, text) in [(TraceFlags::SAMPLED, "01"), (TraceFlags::default(), "00")] {
            let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
            assert_eq!(
                traceresponse(&sc).unwrap(),
                format!("00-{trace_id}-{span_id}-{text}").as_str()
            );
        }
        assert!(traceresponse(&SpanContext::empty_context()).is_none());
    }
}
