//! Auto versus manual, kept honest: the same request through `telemetry::HttpServerLayer`
//! and through service-b's hand-written middleware gives the same span name, kind, status
//! and attribute keys. Each deliberate difference would be listed here; there is none.

use axum::{
    Router,
    http::StatusCode,
    middleware::from_fn_with_state,
    routing::{get, post},
};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use std::collections::BTreeSet;
use telemetry::{HttpServerLayer, MetricsRegistry, manual::HttpServerMetrics};

/// Two routes: one that succeeds and one that fails on the server side.
fn business() -> Router {
    Router::new()
        .route("/events/{id}", post(|| async { StatusCode::ACCEPTED }))
        .route("/broken", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The one span of the trace the request started (its parent comes from `traceparent`).
async fn server_span_of(
    base: &str,
    method: reqwest::Method,
    path: &str,
    trace_id: &str,
) -> SpanData {
    let exporter = telemetry::testing::in_memory_tracing();
    let response = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("user-agent", "parity-test/1.0")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("traceresponse"));
    // The span ends after the response is written: wait for it.
    for _ in 0..100 {
        let spans: Vec<SpanData> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .collect();
        if let [span] = spans.as_slice() {
            return span.clone();
        }
        assert!(spans.len() < 2, "more than one span: {spans:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no span for trace {trace_id}");
}

/// Each attribute key with the type of its value (`server.port` is an integer, not text).
fn keys(span: &SpanData) -> BTreeSet<String> {
    span.attributes
        .iter()
        .map(|kv| {
            let kind = match kv.value {
                opentelemetry::Value::Bool(_) => "bool",
                opentelemetry::Value::I64(_) => "int",
                opentelemetry::Value::F64(_) => "double",
                opentelemetry::Value::String(_) => "string",
                _ => "array",
            };
            format!("{}: {kind}", kv.key.as_str())
        })
        .collect()
}

#[tokio::test]
async fn manual_and_auto_server_spans_carry_the_same_conventions() {
    let registry = MetricsRegistry::new();
    let auto = serve(business().layer(HttpServerLayer::new(&registry))).await;
    let manual = serve(business().layer(from_fn_with_state(
        HttpServerMetrics::new(&MetricsRegistry::new()),
        service_b::manual_http::server_span,
    )))
    .await;

    let requests = [
        (reqwest::Method::POST, "/events/42?tenant=acme", "1"),
        (reqwest::Method::GET, "/broken", "2"),
    ];
    for (method, path, n) in requests {
        let auto_span = server_span_of(&auto, method.clone(), path, &format!("{n:0>32}")).await;
        let manual_span = server_span_of(&manual, method, path, &format!("{n:f>32}")).await;

        assert_eq!(auto_span.name, manual_span.name, "{path}");
        assert_eq!(auto_span.span_kind, SpanKind::Server);
        assert_eq!(manual_span.span_kind, SpanKind::Server);
        assert_eq!(auto_span.status, manual_span.status, "{path}");
        // The attribute keys, minus the exemplar mark (set on whichever request wins a
        // histogram bucket's slot, so it depends on timing, not on the style).
        let without_exemplar = |span: &SpanData| {
            let mut keys = keys(span);
            keys.remove("demo.exemplar: bool");
            keys
        };
        assert_eq!(
            without_exemplar(&auto_span),
            without_exemplar(&manual_span),
            "{path}: auto {:?} manual {:?}",
            auto_span.attributes,
            manual_span.attributes
        );
    }
    // The failing route: an error status without a description, as the HTTP conventions ask.
    let failed = server_span_of(
        &manual,
        reqwest::Method::GET,
        "/broken",
        &format!("{:e>32}", 3),
    )
    .await;
    assert_eq!(failed.status, Status::error(""));
    assert!(keys(&failed).contains("error.type: string"));
}
