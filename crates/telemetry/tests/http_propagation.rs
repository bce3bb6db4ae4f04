//! A request through two real HTTP services on loopback (axum servers, reqwest client):
//! one trace, correct parents, `traceresponse`, baggage, redaction and exemplars.

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use opentelemetry::{
    baggage::BaggageExt,
    trace::{SpanKind, Status},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use reqwest_middleware::ClientWithMiddleware;
use std::time::Duration;
use telemetry::{HttpClientMiddleware, HttpServerLayer, MetricsRegistry};

/// The content type Prometheus needs to read exemplars.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The process-wide in-memory trace pipeline (with the W3C propagators).
fn exporter() -> &'static InMemorySpanExporter {
    telemetry::testing::in_memory_tracing()
}

fn spans_of(trace_id: &str) -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Downstream service: answers with the baggage it received (test-only telemetry code).
async fn start_inventory() -> (String, MetricsRegistry) {
    let registry = MetricsRegistry::new();
    let router = Router::new()
        .route(
            "/items/{sku}",
            get(|Path(sku): Path<String>| async move {
                let tenant = opentelemetry::Context::current()
                    .baggage()
                    .get("tenant")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                format!("{sku}:{tenant}")
            }),
        )
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .merge(registry.router())
        .layer(HttpServerLayer::new(&registry).skip_paths(&["/metrics"]));
    (serve(router).await, registry)
}

/// Front service: calls the downstream one with the instrumented client.
async fn start_orders(inventory: String) -> (String, MetricsRegistry) {
    let registry = MetricsRegistry::new();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::new(&registry))
        .build();
    let router = Router::new()
        .route(
            "/orders/{id}",
            get(
                |State((client, inventory)): State<(ClientWithMiddleware, String)>,
                 Path(id): Path<u32>| async move {
                    let body = client
                        .get(format!("{inventory}/items/sku-{id}"))
                        .send()
                        .await
                        .map_err(|_| StatusCode::BAD_GATEWAY)?
                        .text()
                        .await
                        .map_err(|_| StatusCode::BAD_GATEWAY)?;
                    Ok::<_, StatusCode>(body)
                },
            ),
        )
        .with_state((client, inventory))
        .merge(registry.router())
        .layer(
            HttpServerLayer::new(&registry)
                .capture_request_headers(&["authorization", "x-request-id"])
                .skip_paths(&["/metrics"]),
        );
    (serve(router).await, registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_through_two_services_is_one_correctly_parented_trace() {
    exporter();
    let (inventory, _) = start_inventory().await;
    let (orders, orders_metrics) = start_orders(inventory).await;

    let response = reqwest::Client::new()
        .get(format!("{orders}/orders/42?token=s3cr3t&page=1"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("baggage", "tenant=acme")
        .header("authorization", "Bearer topsecret")
        .header("x-request-id", "req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.text().await.unwrap(),
        "sku-42:acme",
        "baggage crossed both hops"
    );

    // Spans end after the response is written; allow the exporter a moment.
    let mut spans = Vec::new();
    for _ in 0..50 {
        spans = spans_of(TRACE_ID);
        if spans.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let find = |kind: SpanKind, name: &str| {
        spans
            .iter()
            .find(|s| s.span_kind == kind && s.name == name)
            .unwrap_or_else(|| panic!("no {kind:?} span {name}: {spans:#?}"))
    };
    let orders_server = find(SpanKind::Server, "GET /orders/{id}");
    let client = find(SpanKind::Client, "GET");
    let inventory_server = find(SpanKind::Server, "GET /items/{sku}");

    assert_eq!(orders_server.parent_span_id.to_string(), PARENT_ID);
    assert!(orders_server.parent_span_is_remote);
    assert_eq!(client.parent_span_id, orders_server.span_context.span_id());
    assert_eq!(
        inventory_server.parent_span_id,
        client.span_context.span_id()
    );
    assert_eq!(
        traceresponse,
        format!("00-{TRACE_ID}-{}-01", orders_server.span_context.span_id())
    );

    // Stable HTTP semantic conventions, with secrets removed.
    assert_eq!(
        attr(orders_server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr(orders_server, "http.route").as_deref(),
        Some("/orders/{id}")
    );
    assert_eq!(
        attr(orders_server, "url.path").as_deref(),
        Some("/orders/42")
    );
    assert_eq!(
        attr(orders_server, "url.query").as_deref(),
        Some("token=[REDACTED]&page=1")
    );
    assert_eq!(
        attr(orders_server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(orders_server, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr(orders_server, "http.request.header.authorization").as_deref(),
        Some(r#"["[REDACTED]"]"#)
    );
    assert_eq!(
        attr(orders_server, "http.request.header.x-request-id").as_deref(),
        Some(r#"["req-1"]"#)
    );
    assert_eq!(attr(client, "http.request.method").as_deref(), Some("GET"));
    assert!(attr(client, "url.full").unwrap().ends_with("/items/sku-42"));
    assert_eq!(
        attr(client, "http.response.status_code").as_deref(),
        Some("200")
    );
    let everything = format!("{spans:?}");
    assert!(!everything.contains("topsecret") && !everything.contains("s3cr3t"));

    // The request's trace is an exemplar on /metrics, labelled by route template.
    let metrics = reqwest::get(format!("{orders}/metrics")).await.unwrap();
    assert_eq!(metrics.headers()["content-type"], OPENMETRICS_CONTENT_TYPE);
    let text = metrics.text().await.unwrap();
    assert!(orders_metrics.encode().starts_with("# HELP"));
    let exemplars = parse_exemplars(&text);
    assert!(
        exemplars.iter().any(|(metric, labels, trace)| metric
            == "http_server_request_duration_seconds"
            && labels.contains(&("http_route".into(), "/orders/{id}".into()))
            && trace == TRACE_ID),
        "no server exemplar for the trace: {exemplars:?}\n{text}"
    );
    assert!(
        exemplars.iter().any(
            |(metric, _, trace)| metric == "http_client_request_duration_seconds"
                && trace == TRACE_ID
        ),
        "no client exemplar for the trace: {exemplars:?}"
    );
    assert!(
        !text.contains("/orders/42"),
        "raw paths must never be labels"
    );
    // The span whose trace became an exemplar is marked for the tail sampler.
    assert_eq!(
        attr(orders_server, "demo.exemplar").as_deref(),
        Some("true")
    );
}

/// (family name, sample labels, exemplar trace id).
type FoundExemplar = (String, Vec<(String, String)>, String);

/// Exemplars as found by the OpenMetrics reference parser (Python `prometheus_client`),
/// which also rejects the text if it is not valid OpenMetrics:
/// (family name, sample labels, exemplar trace id). `scripts/test.sh` installs the parser
/// and sets `OPENMETRICS_PYTHON`; otherwise a `python3` that has `prometheus_client` is used.
fn parse_exemplars(text: &str) -> Vec<FoundExemplar> {
    use std::io::Write;
    let python = std::env::var("OPENMETRICS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/openmetrics_exemplars.py"
    );
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (see scripts/test.sh): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the OpenMetrics reference parser rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    found
        .iter()
        .map(|e| {
            let labels = e["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                e["family"].as_str().unwrap().to_owned(),
                labels,
                e["exemplar"]["trace_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_starts_a_new_trace() {
    exporter();
    let (inventory, _) = start_inventory().await;
    for bad in [
        format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
        format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
        format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
        format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        format!("00-{}-{PARENT_ID}-01", &TRACE_ID[1..]),
        format!("00-{TRACE_ID}-{PARENT_ID}-0x"),
    ] {
        let response = reqwest::Client::new()
            .get(format!("{inventory}/items/a"))
            .header("traceparent", &bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "a bad traceparent is not an error");
        let traceresponse = response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned();
        let new_trace = traceresponse.split('-').nth(1).unwrap().to_owned();
        assert_ne!(
            new_trace,
            TRACE_ID.to_lowercase(),
            "{bad} continued the trace"
        );
        let mut spans = Vec::new();
        for _ in 0..50 {
            spans = spans_of(&new_trace);
            if !spans.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(spans.len(), 1, "{bad}");
        assert_eq!(
            spans[0].parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "{bad}: must be a root span"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_mark_the_span_and_unmatched_routes_have_no_route() {
    exporter();
    let (inventory, registry) = start_inventory().await;
    let response = reqwest::get(format!("{inventory}/boom")).await.unwrap();
    assert_eq!(response.status(), 500);
    let trace = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap()
        .to_owned();
    let response = reqwest::get(format!("{inventory}/no/such/path/123"))
        .await
        .unwrap();
    let _ = reqwest::get(format!("{inventory}/metrics")).await.unwrap();
    assert!(
        response.headers().contains_key("traceresponse"),
        "404s are instrumented too"
    );
    assert_eq!(response.status(), 404);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let spans = spans_of(&trace);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "GET /boom");
    assert!(
        matches!(spans[0].status, Status::Error { .. }),
        "{:?}",
        spans[0].status
    );
    assert_eq!(attr(&spans[0], "error.type").as_deref(), Some("500"));

    let text = registry.encode();
    assert!(
        text.contains(r#"http_route="/boom",http_response_status_code="500""#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_route="",http_response_status_code="404""#),
        "{text}"
    );
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(
        !text.contains(r#"http_route="/metrics""#),
        "skipped paths are not measured: {text}"
    );
}
