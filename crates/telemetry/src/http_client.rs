//! The client side of HTTP instrumentation: a reqwest-middleware middleware.
//!
//! [`HttpClientMiddleware`] opens the client span, injects `traceparent`, `tracestate` and
//! `baggage` into the outgoing request (with the client span as parent, so the server's
//! span hangs under it), and records the client RED histogram. It does both jobs itself:
//! reqwest-tracing 0.7 has no feature for opentelemetry 0.33 and silently sends no
//! `traceparent` (`tests/http_propagation.rs` checks the header arrives).

use crate::{
    metrics::{
        EXEMPLAR_ATTRIBUTE, HttpClientLabels, HttpClientMetrics, MetricsRegistry, method_label,
    },
    propagation,
    redaction::redact_url,
};
use http::Extensions;
use opentelemetry::trace::TraceContextExt;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use std::time::Instant;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Middleware that traces, propagates and measures every outgoing request: the one way to
/// build an instrumented client.
///
/// ```
/// # let registry = telemetry::MetricsRegistry::new();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(telemetry::HttpClientMiddleware::new(&registry))
///     .build();
/// ```
///
/// Put a circuit breaker ([`crate::breaker::BreakerMiddleware`]) before it: a rejected
/// call then makes no request and no client span.
#[derive(Clone)]
pub struct HttpClientMiddleware {
    metrics: HttpClientMetrics,
}

impl HttpClientMiddleware {
    /// Records into `registry`'s client histogram (one family however many clients).
    pub fn new(registry: &MetricsRegistry) -> Self {
        Self {
            metrics: HttpClientMetrics::new(registry),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for HttpClientMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let method = method_label(req.method()).to_owned();
        let host = req.url().host_str().unwrap_or_default().to_owned();
        let port = req.url().port_or_known_default().unwrap_or_default();
        let span = tracing::info_span!(
            "HTTP client request",
            otel.name = %method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %method,
            server.address = %host,
            server.port = i64::from(port),
            url.full = %redact_url(req.url().as_str()),
            http.response.status_code = Empty,
            error.type = Empty,
            { EXEMPLAR_ATTRIBUTE } = Empty,
        );
        // Inject the client span's own context: the callee becomes its child.
        let cx = span.context();
        propagation::inject_into_headers(&cx, req.headers_mut());

        let start = Instant::now();
        let result = next.run(req, extensions).instrument(span.clone()).await;
        let elapsed = start.elapsed();

        let (status, error_type) = match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", i64::from(status));
                // For a client, 4xx and 5xx are both errors (semantic conventions).
                let error = (status >= 400).then(|| status.to_string());
                (status, error)
            }
            Err(error) => (0, Some(classify_error(error).to_owned())),
        };
        if let Some(error_type) = &error_type {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error_type.as_str());
        }
        let labels = HttpClientLabels {
            http_request_method: method,
            server_address: host,
            server_port: port,
            http_response_status_code: status,
            error_type: error_type.unwrap_or_default(),
        };
        let span_context = cx.span().span_context().clone();
        if self.metrics.record(&labels, elapsed, Some(&span_context)) {
            span.record(EXEMPLAR_ATTRIBUTE, true);
        }
        result
    }
}

/// A low-cardinality `error.type` for a failed request.
fn classify_error(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(_) => "transport",
        reqwest_middleware::Error::Middleware(e) if e.is::<crate::breaker::BreakerOpen>() => {
            "circuit_open"
        }
        reqwest_middleware::Error::Middleware(_) => "middleware",
    }
}
