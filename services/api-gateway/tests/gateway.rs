//! The gateway between a real client and real stub upstreams, all axum servers on
//! loopback: proxying, request ids, body, time and rate limits, readiness, and one trace
//! from the gateway's server span through its client span to the upstream.

use api_gateway::{Config, router};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use service_runtime::{env::Env, faults::FaultInjector, problem::Problem};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The process-wide in-memory trace pipeline (with the W3C propagators).
fn exporter() -> &'static InMemorySpanExporter {
    telemetry::testing::in_memory_tracing()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A URL on which nothing listens: the port was just free and is closed again.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// What a stub upstream received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A stub upstream that records every request it gets.
#[derive(Clone, Default)]
struct Stub {
    received: Arc<Mutex<Vec<Received>>>,
    delay: Duration,
}

impl Stub {
    async fn record(&self, request: Request) {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        self.received.lock().unwrap().push(Received {
            method: parts.method.to_string(),
            path_and_query: parts.uri.path_and_query().unwrap().to_string(),
            headers: parts.headers,
            body,
        });
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the upstream received a request")
    }
}

const ORDER_CREATED: &str = r#"{"id":"order-1","status":"accepted"}"#;
const PRODUCTS: &str = r#"[{"sku":"sku-espresso"}]"#;
const PRODUCTS_CONTENT_TYPE: &str = "application/vnd.demo+json";

/// An upstream playing service-a and service-d at once; `delay` slows `/products`.
async fn start_stub(delay: Duration) -> (String, Stub) {
    let stub = Stub {
        delay,
        ..Stub::default()
    };
    let router = Router::new()
        .route(
            "/orders",
            post(|State(stub): State<Stub>, request: Request| async move {
                stub.record(request).await;
                (
                    StatusCode::CREATED,
                    [(header::CONTENT_TYPE, "application/json")],
                    ORDER_CREATED,
                )
            }),
        )
        .route(
            "/orders/{id}",
            get(
                |State(stub): State<Stub>, Path(id): Path<String>, request: Request| async move {
                    stub.record(request).await;
                    Problem::not_found(format!("no order {id}"))
                },
            ),
        )
        .route(
            "/products",
            get(|State(stub): State<Stub>, request: Request| async move {
                stub.record(request).await;
                tokio::time::sleep(stub.delay).await;
                ([(header::CONTENT_TYPE, PRODUCTS_CONTENT_TYPE)], PRODUCTS).into_response()
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(stub.clone());
    (serve(router).await, stub)
}

/// A gateway configured by `vars` (as environment variables), on a free port.
async fn start_gateway(vars: &[(&str, &str)]) -> String {
    exporter();
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = Env::new(move |name: &str| vars.get(name).cloned());
    let config = Config::from_env(&env).unwrap();
    serve(router(&config, FaultInjector::from_env(&env).unwrap()).unwrap()).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn text(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn problem(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        text(response.headers(), "content-type"),
        "application/problem+json"
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn post_and_get_keep_status_body_and_content_type() {
    let (a, service_a) = start_stub(Duration::ZERO).await;
    let (d, service_d) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &a), ("SERVICE_D_URL", &d)]).await;
    let order = r#"{"customer_id":"c-1","items":[{"sku":"sku-kettle","quantity":1}]}"#;

    let created = client()
        .post(format!("{gateway}/api/orders"))
        .header("content-type", "application/json; charset=utf-8")
        .body(order)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(text(created.headers(), "content-type"), "application/json");
    assert_eq!(created.text().await.unwrap(), ORDER_CREATED);
    let sent = service_a.last();
    assert_eq!(
        (sent.method.as_str(), sent.path_and_query.as_str()),
        ("POST", "/orders")
    );
    assert_eq!(sent.body, order.as_bytes());
    assert_eq!(
        sent.headers["content-type"],
        "application/json; charset=utf-8"
    );

    // An upstream problem comes back as it was, not rewrapped by the gateway.
    let missing = client()
        .get(format!("{gateway}/api/orders/o-404"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body = problem(missing).await;
    assert_eq!(body["detail"], "no order o-404");
    assert_eq!(service_a.last().path_and_query, "/orders/o-404");

    let products = client()
        .get(format!("{gateway}/api/products?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(products.status(), 200);
    assert_eq!(
        text(products.headers(), "content-type"),
        PRODUCTS_CONTENT_TYPE
    );
    assert_eq!(products.text().await.unwrap(), PRODUCTS);
    assert_eq!(service_d.last().path_and_query, "/products?page=2");
    assert_eq!(
        service_a.received().len(),
        2,
        "products went to service-d only"
    );
    assert_eq!(service_d.received().len(), 1);
}

#[tokio::test]
async fn request_ids_are_generated_or_kept_and_reach_the_upstream() {
    let (a, service_a) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &a)]).await;
    let get = |id: Option<String>| {
        let mut request = client().get(format!("{gateway}/api/orders/o-1"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };

    let generated = text(get(None).await.unwrap().headers(), "x-request-id");
    let uuid = uuid::Uuid::parse_str(&generated).expect("a generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(service_a.last().headers["x-request-id"], generated.as_str());

    let kept = text(
        get(Some("client-id-42".into())).await.unwrap().headers(),
        "x-request-id",
    );
    assert_eq!(kept, "client-id-42");
    assert_eq!(service_a.last().headers["x-request-id"], "client-id-42");

    for unacceptable in ["x".repeat(129), "two words".into()] {
        let replaced = text(
            get(Some(unacceptable.clone())).await.unwrap().headers(),
            "x-request-id",
        );
        assert!(
            uuid::Uuid::parse_str(&replaced).is_ok(),
            "{unacceptable:?} -> {replaced}"
        );
        assert_eq!(service_a.last().headers["x-request-id"], replaced.as_str());
    }
}

/// Sends raw HTTP/1.1 bytes and returns the status code, the response text and how long
/// the answer took: for bodies reqwest cannot send (chunked, or never finished).
async fn raw_request(gateway: &str, head: &str, body: &[u8]) -> (u16, String, Duration) {
    let mut stream = tokio::net::TcpStream::connect(gateway.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read until the head and the problem body are in; the gateway may keep the socket open.
    while !String::from_utf8_lossy(&answer).contains("\"status\"") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer, started.elapsed())
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_never_reaches_the_upstream() {
    let (a, service_a) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &a)]).await;
    let post = |size: usize| {
        client()
            .post(format!("{gateway}/api/orders"))
            .header("content-type", "application/json")
            .body(vec![b' '; size])
            .send()
    };

    let too_large = post(65 * 1024).await.unwrap();
    assert_eq!(too_large.status(), 413);
    let body = problem(too_large).await;
    assert_eq!(body["type"], "urn:problem-type:payload-too-large");
    assert_eq!(body["limit_bytes"], 65_536);
    assert!(
        service_a.received().is_empty(),
        "the upstream saw the large body"
    );

    // Chunked: no Content-Length to check up front, so the limit holds while reading.
    let chunk = vec![b' '; 65 * 1024];
    let mut chunked = format!("{:x}\r\n", chunk.len()).into_bytes();
    chunked.extend_from_slice(&chunk);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = "POST /api/orders HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\n\r\n";
    let (status, answer, _) = raw_request(&gateway, head, &chunked).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("payload-too-large"), "{answer}");
    assert!(
        service_a.received().is_empty(),
        "the upstream saw the chunked body"
    );

    // Exactly at the limit is fine.
    assert_eq!(post(64 * 1024).await.unwrap().status(), 201);
    assert_eq!(service_a.last().body.len(), 64 * 1024);
}

#[tokio::test]
async fn a_body_that_never_finishes_is_408_within_the_timeout() {
    let (a, service_a) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &a), ("GATEWAY_TIMEOUT_MS", "300")]).await;
    let head = "POST /api/orders HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n";
    let (status, answer, took) = raw_request(&gateway, head, b"{\"cust").await;
    assert_eq!(status, 408, "{answer}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(service_a.received().is_empty());
}

#[tokio::test]
async fn after_the_burst_requests_get_429_with_retry_after() {
    let (d, service_d) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[
        ("SERVICE_D_URL", &d),
        ("RATE_LIMIT_RPS", "1"),
        ("RATE_LIMIT_BURST", "3"),
    ])
    .await;
    for _ in 0..3 {
        let response = client()
            .get(format!("{gateway}/api/products"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let limited = client()
        .get(format!("{gateway}/api/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = text(limited.headers(), "retry-after").parse().unwrap();
    assert_eq!(
        retry_after, 1,
        "one token per second: the next is at most a second away"
    );
    let body = problem(limited).await;
    assert_eq!(body["type"], "urn:problem-type:rate-limited");
    assert_eq!(
        service_d.received().len(),
        3,
        "the limited request was not forwarded"
    );

    // Probes and scrapes are never limited.
    for path in ["/healthz", "/metrics"] {
        let response = client()
            .get(format!("{gateway}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_closed_upstream_port_is_a_502_problem_naming_the_dependency() {
    let dead = closed_port_url().await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &dead)]).await;
    let response = client()
        .post(format!("{gateway}/api/orders"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers().contains_key("x-request-id"));
    let body = problem(response).await;
    assert_eq!(body["dependency"], "service-a");
    assert_eq!(body["status"], 502);
    assert!(
        !body.to_string().contains(&dead),
        "the internal URL is not shown: {body}"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_within_about_the_timeout() {
    let (d, service_d) = start_stub(Duration::from_secs(5)).await;
    let gateway = start_gateway(&[("SERVICE_D_URL", &d), ("GATEWAY_TIMEOUT_MS", "300")]).await;
    let started = Instant::now();
    let response = client()
        .get(format!("{gateway}/api/products"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let body = problem(response).await;
    assert_eq!(body["dependency"], "service-d");
    assert_eq!(
        service_d.received().len(),
        1,
        "the request did reach the slow upstream"
    );
}

#[tokio::test]
async fn readyz_follows_the_upstreams_health() {
    let (a, _) = start_stub(Duration::ZERO).await;
    let (d, _) = start_stub(Duration::ZERO).await;
    let ready = start_gateway(&[("SERVICE_A_URL", &a), ("SERVICE_D_URL", &d)]).await;
    let response = client()
        .get(format!("{ready}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let dead = closed_port_url().await;
    let unready = start_gateway(&[("SERVICE_A_URL", &dead), ("SERVICE_D_URL", &d)]).await;
    let response = client()
        .get(format!("{unready}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = problem(response).await;
    assert_eq!(body["checks"]["service-d"], "ok");
    assert_eq!(body["checks"]["service-a"], "cannot connect");
}

/// `00-<trace id>-<span id>-<flags>` -> (trace id, span id).
fn ids(header: &str) -> (String, String) {
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    (parts[1].to_owned(), parts[2].to_owned())
}

async fn spans_of(trace_id: &str, at_least: usize) -> Vec<SpanData> {
    let mut spans = Vec::new();
    // Spans end after the response is written; allow the exporter a moment.
    for _ in 0..50 {
        spans = exporter()
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .collect();
        if spans.len() >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_crosses_the_gateway_under_its_client_span() {
    let (a, service_a) = start_stub(Duration::ZERO).await;
    let gateway = start_gateway(&[("SERVICE_A_URL", &a)]).await;
    let response = client()
        .post(format!("{gateway}/api/orders"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (trace_id, server_span_id) = ids(&text(response.headers(), "traceresponse"));
    let generated_request_id = text(response.headers(), "x-request-id");
    let upstream_traceparent = service_a.last().headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let (upstream_trace_id, upstream_parent_id) = ids(&upstream_traceparent);
    assert_eq!(
        upstream_trace_id, trace_id,
        "the upstream continues the gateway's trace"
    );

    let spans = spans_of(&trace_id, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("a server span");
    let client_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .expect("a client span");
    assert_eq!(server.name, "POST /api/orders");
    assert_eq!(
        server.parent_span_id,
        SpanId::INVALID,
        "no incoming traceparent: a new trace"
    );
    assert_eq!(server.span_context.span_id().to_string(), server_span_id);
    assert_eq!(client_span.parent_span_id, server.span_context.span_id());
    assert_eq!(
        client_span.span_context.span_id().to_string(),
        upstream_parent_id,
        "the upstream's parent is the client span"
    );
    // The request-id layer runs before the telemetry layer, so the span has the id even
    // when the gateway generated it.
    let request_id = server
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "http.request.header.x-request-id")
        .map(|kv| kv.value.to_string());
    assert_eq!(request_id, Some(format!(r#"["{generated_request_id}"]"#)));

    // An incoming traceparent is continued through the gateway to the upstream.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    client()
        .get(format!("{gateway}/api/orders/o-1"))
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .send()
        .await
        .unwrap();
    let (continued, _) = ids(service_a.last().headers["traceparent"].to_str().unwrap());
    assert_eq!(continued, caller_trace);
}
