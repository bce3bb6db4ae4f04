//! The HTTP server span, by hand, with the OpenTelemetry API.
//!
//! This is what `telemetry::http_server::HttpServerLayer` does for the auto services,
//! written out so each step can be read.

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    KeyValue, global,
    trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, URL_PATH, URL_SCHEME,
};
use std::time::Instant;
use telemetry::{
    http_server::{TRACERESPONSE, traceresponse},
    metrics::{EXEMPLAR_ATTRIBUTE, HttpServerLabels, HttpServerMetrics, method_label},
    propagation::HeaderExtractor,
};

/// axum middleware: one SERVER span per request, made by hand.
pub async fn server_span(
    State(metrics): State<HttpServerMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();

    // 1. Continue the caller's trace: read traceparent/tracestate/baggage from the headers.
    let parent =
        global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));

    // 2. Start the SERVER span as a child of that context, with the HTTP conventions.
    let tracer = global::tracer("service-b");
    let span = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new(HTTP_REQUEST_METHOD, method.clone()),
            KeyValue::new(HTTP_ROUTE, route.clone()),
            KeyValue::new(URL_PATH, request.uri().path().to_owned()),
            KeyValue::new(URL_SCHEME, "http"),
        ])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);

    // 3. Run the handler with the span's context current, so the producer span becomes
    //    its child and every log line carries its trace id.
    let mut response = next.run(request).with_context(cx.clone()).await;

    // 4. Record the outcome on the span: status code, and an error status for 5xx.
    let span = cx.span();
    let status = response.status().as_u16();
    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
    if status >= 500 {
        span.set_attribute(KeyValue::new(ERROR_TYPE, status.to_string()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }

    // 5. RED metrics by hand; if this request's trace became an exemplar, mark the span
    //    so tail sampling keeps the trace the exemplar points at.
    let labels = HttpServerLabels {
        http_request_method: method,
        http_route: route,
        http_response_status_code: status,
    };
    let span_context = span.span_context().clone();
    let elapsed = started.elapsed();
    // The access-log line, written while the span's context is current so it carries
    // the trace id (the same line HttpServerLayer writes for the auto services).
    {
        let _current = cx.clone().attach();
        tracing::info!(
            http.request.method = %labels.http_request_method,
            http.route = %labels.http_route,
            http.response.status_code = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
    }
    if metrics.record(&labels, elapsed, Some(&span_context)) {
        span.set_attribute(KeyValue::new(EXEMPLAR_ATTRIBUTE, true));
    }

    // 6. Tell the client which trace served it (W3C Trace Context Level 2).
    if let Some(value) = traceresponse(&span_context) {
        response.headers_mut().insert(TRACERESPONSE, value);
    }

    // 7. End the span: nothing is exported until it ends.
    span.end();
    response
}
