//! The HTTP server span, by hand, with the OpenTelemetry API.
//!
//! This is what `telemetry::HttpServerLayer` does for the auto services, written out so
//! each step can be read. It still runs as an axum middleware (something must wrap the
//! handler), but none of it comes from the telemetry crate's layers: every span call
//! below is the OpenTelemetry API. The span has the same name, kind, status and
//! attribute keys as the layer's (`tests/parity.rs` compares them).

use axum::{
    extract::{MatchedPath, Request, State},
    http::{Version, header, uri::Authority},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    KeyValue, global,
    trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE,
    NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT, URL_PATH, URL_QUERY, URL_SCHEME,
    USER_AGENT_ORIGINAL,
};
use std::time::Instant;
use telemetry::manual::{
    EXEMPLAR_ATTRIBUTE, HeaderExtractor, HttpServerLabels, HttpServerMetrics, TRACERESPONSE,
    method_label, traceresponse,
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
        .span_builder(if route.is_empty() {
            method.clone()
        } else {
            format!("{method} {route}")
        })
        .with_kind(SpanKind::Server)
        .with_attributes(request_attributes(&request, &method, &route))
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
        // No description: the HTTP conventions say the status code already tells it.
        span.set_status(Status::error(""));
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

/// The request attributes of the stable HTTP server conventions. `url.query` goes in as it
/// came; the telemetry crate's span processor redacts secret values before export.
fn request_attributes(request: &Request, method: &str, route: &str) -> Vec<KeyValue> {
    let uri = request.uri();
    let mut attributes = vec![
        KeyValue::new(HTTP_REQUEST_METHOD, method.to_owned()),
        KeyValue::new(URL_PATH, uri.path().to_owned()),
        KeyValue::new(URL_SCHEME, uri.scheme_str().unwrap_or("http").to_owned()),
        KeyValue::new(
            NETWORK_PROTOCOL_VERSION,
            match request.version() {
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2",
                _ => "1.1",
            },
        ),
    ];
    if !route.is_empty() {
        attributes.push(KeyValue::new(HTTP_ROUTE, route.to_owned()));
    }
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new(URL_QUERY, query.to_owned()));
    }
    // `Host: name:port` (HTTP/1.1) or the URI's authority (HTTP/2).
    let authority = uri.authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    if let Some(authority) = authority.and_then(|a| a.parse::<Authority>().ok()) {
        attributes.push(KeyValue::new(SERVER_ADDRESS, authority.host().to_owned()));
        if let Some(port) = authority.port_u16() {
            attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
    }
    if let Some(agent) = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(USER_AGENT_ORIGINAL, agent.to_owned()));
    }
    attributes
}
