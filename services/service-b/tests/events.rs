//! service-b's `POST /events` as a client sees it: its router on loopback, producing to
//! librdkafka's mock Kafka cluster (or to a port where no broker listens). What comes out
//! is checked: the answer, the message on the topic, the spans and the log lines.

use axum::Router;
use opentelemetry::{
    Value,
    trace::{SpanId, SpanKind, Status, TraceId},
};
use opentelemetry_sdk::trace::SpanData;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer as _, StreamConsumer},
    message::{Headers, OwnedMessage},
    mocking::MockCluster,
    producer::DefaultProducerContext,
    types::{RDKafkaApiKey, RDKafkaRespErr},
};
use serde_json::json;
use service_b::{Config, producer::Producer, router};
use service_runtime::{env::Env, faults::FaultInjector, health::Readiness, serve::ServiceParts};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use telemetry::{MetricsRegistry, manual::HttpServerMetrics};
use uuid::Uuid;

const TOPIC: &str = "order-events";

/// A Kafka cluster of one broker, in this process, with the topic created.
fn kafka() -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock Kafka cluster");
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    cluster
}

/// A broker address where nothing listens: the port was just free and is closed again.
fn no_broker() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// service-b's router, as `run` builds it, on a free loopback port; returns its URL.
async fn spawn_app(brokers: &str, produce_timeout: Duration) -> String {
    telemetry::testing::in_memory_tracing();
    let vars = HashMap::from([
        ("KAFKA_BROKERS", brokers.to_owned()),
        ("KAFKA_TOPIC", TOPIC.to_owned()),
        (
            "KAFKA_PRODUCE_TIMEOUT_MS",
            produce_timeout.as_millis().to_string(),
        ),
    ]);
    let env = Env::new(move |name: &str| vars.get(name).cloned());
    let config = Config::from_env(&env).unwrap();
    let producer = Producer::new(&config.brokers, &config.topic, config.produce_timeout).unwrap();
    let registry = MetricsRegistry::new();
    let metrics = HttpServerMetrics::new(&registry);
    let parts = ServiceParts {
        metrics: registry,
        readiness: Readiness::new(),
        faults: FaultInjector::from_env(&env).unwrap(),
    };
    serve(router(Arc::new(producer), &parts, metrics)).await
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The caller's side of one request: its own trace, so its spans and log lines can be
/// told apart from other tests'.
struct Call {
    trace_id: TraceId,
    parent: SpanId,
    status: u16,
    content_type: String,
    body: serde_json::Value,
    took: Duration,
}

/// `POST /events` with `body` as `content_type`, from a fresh caller span.
async fn post(app: &str, content_type: &str, body: impl Into<String>) -> Call {
    let trace_id = TraceId::from_bytes(*Uuid::new_v4().as_bytes());
    let parent = SpanId::from_bytes(Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{app}/events"))
        .header("content-type", content_type)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .body(body.into())
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    Call {
        trace_id,
        parent,
        status,
        content_type,
        body,
        took,
    }
}

fn event(order_id: &str, event_id: &str) -> String {
    json!({
        "event_id": event_id,
        "event_type": "order.created",
        "order_id": order_id,
        "total_cents": 1250,
    })
    .to_string()
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

/// The spans of `call`'s trace, once its SERVER span has ended (it ends last).
async fn spans_of(call: &Call) -> Vec<SpanData> {
    let exporter = telemetry::testing::in_memory_tracing();
    for _ in 0..200 {
        let spans: Vec<SpanData> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == call.trace_id)
            .collect();
        if spans.iter().any(|s| s.span_kind == SpanKind::Server) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no server span in trace {}", call.trace_id);
}

/// The one span of `kind` in `spans`.
fn one(spans: &[SpanData], kind: SpanKind) -> &SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.span_kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind:?} span in {spans:#?}");
    found[0]
}

fn attributes(span: &SpanData) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

/// The log lines written in `call`'s trace.
fn logs_of(call: &Call) -> Vec<serde_json::Value> {
    telemetry::testing::pipeline_logs()
        .json_lines()
        .into_iter()
        .filter(|line| line["trace_id"] == call.trace_id.to_string())
        .collect()
}

/// The first message on the topic.
async fn first_message(cluster: &MockCluster<'static, DefaultProducerContext>) -> OwnedMessage {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[TOPIC]).unwrap();
    tokio::time::timeout(Duration::from_secs(30), reader.recv())
        .await
        .expect("a message within 30 s")
        .unwrap()
        .detach()
}

fn assert_problem(call: &Call, status: u16, problem_type: &str) {
    assert_eq!(call.status, status, "{}", call.body);
    assert_eq!(call.content_type, "application/problem+json");
    assert_eq!(call.body["status"], status);
    assert_eq!(
        call.body["type"],
        format!("urn:problem-type:{problem_type}")
    );
}

#[tokio::test]
async fn a_valid_event_is_on_the_topic_with_its_key_and_trace_context_before_the_202() {
    let cluster = kafka();
    let app = spawn_app(&cluster.bootstrap_servers(), Duration::from_secs(5)).await;
    let (order_id, event_id) = (new_id(), new_id());
    let body = event(&order_id, &event_id);

    let call = post(&app, "application/json", body.clone()).await;

    // Where the broker stored it: known only from its acknowledgement.
    assert_eq!(call.status, 202, "{}", call.body);
    assert_eq!(
        call.body,
        json!({"topic": TOPIC, "partition": 0, "offset": 0})
    );
    let message = first_message(&cluster).await;
    assert_eq!(message.key(), Some(order_id.as_bytes()));
    let payload: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
    assert_eq!(
        payload,
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    );
    // The message carries the PRODUCER span's context, in the caller's trace.
    let spans = spans_of(&call).await;
    let producer = one(&spans, SpanKind::Producer);
    let traceparent = message
        .headers()
        .expect("headers")
        .iter()
        .find(|h| h.key == "traceparent")
        .and_then(|h| h.value)
        .expect("a traceparent header");
    assert_eq!(
        std::str::from_utf8(traceparent).unwrap(),
        format!(
            "00-{}-{}-01",
            call.trace_id,
            producer.span_context.span_id()
        )
    );
}

#[tokio::test]
async fn the_producer_span_carries_the_messaging_conventions() {
    let cluster = kafka();
    let brokers = cluster.bootstrap_servers();
    let app = spawn_app(&brokers, Duration::from_secs(5)).await;
    let (order_id, event_id) = (new_id(), new_id());
    let body = event(&order_id, &event_id);

    let call = post(&app, "application/json", body.clone()).await;
    assert_eq!(call.status, 202, "{}", call.body);

    let spans = spans_of(&call).await;
    let server = one(&spans, SpanKind::Server);
    let producer = one(&spans, SpanKind::Producer);
    assert_eq!(server.parent_span_id, call.parent);
    assert_eq!(producer.parent_span_id, server.span_context.span_id());
    assert_eq!(producer.name, format!("send {TOPIC}"));
    assert_eq!(producer.status, Status::Unset);
    // serde_json writes the event back as it read it: the same length.
    let expected: HashMap<String, Value> = [
        ("messaging.system", "kafka".into()),
        ("messaging.operation.type", "send".into()),
        ("messaging.operation.name", "send".into()),
        ("messaging.destination.name", TOPIC.into()),
        ("messaging.kafka.message.key", order_id.clone().into()),
        ("messaging.message.id", event_id.into()),
        ("messaging.message.body.size", (body.len() as i64).into()),
        ("server.address", brokers.into()),
        ("messaging.destination.partition.id", "0".into()),
        ("messaging.kafka.offset", 0_i64.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(attributes(producer), expected);

    // The log line of the write is in the request's trace, naming the key.
    let logs = logs_of(&call);
    let produced = logs
        .iter()
        .find(|l| l["message"] == "event produced")
        .unwrap_or_else(|| panic!("no `event produced` line in {logs:#?}"));
    assert_eq!(produced["fields"]["key"], order_id);
    assert_eq!(produced["fields"]["topic"], TOPIC);
}

#[tokio::test]
async fn bad_bodies_and_ids_are_problems_and_nothing_is_produced() {
    let cluster = kafka();
    let app = spawn_app(&cluster.bootstrap_servers(), Duration::from_secs(5)).await;

    let malformed = post(&app, "application/json", "{oops").await;
    assert_problem(&malformed, 400, "bad-request");

    let not_json = post(&app, "text/plain", event(&new_id(), &new_id())).await;
    assert_problem(&not_json, 415, "unsupported-media-type");

    let ids = [
        (json!({"event_id": new_id()}).to_string(), "order_id"),
        (event("order-42", &new_id()), "order_id"),
        (event(&new_id(), "event-7"), "event_id"),
        ("[]".to_owned(), "order_id"),
    ];
    let mut calls = vec![malformed, not_json];
    for (body, field) in ids {
        let call = post(&app, "application/json", body).await;
        assert_problem(&call, 422, "validation-error");
        assert_eq!(call.body["field"], field);
        assert_eq!(call.body["detail"], "must be a UUID");
        calls.push(call);
    }
    for call in &calls {
        let spans = spans_of(call).await;
        assert!(
            spans.iter().all(|s| s.span_kind != SpanKind::Producer),
            "a refused body made a PRODUCER span: {spans:#?}"
        );
        // A client's mistake is not the server's error.
        assert_eq!(one(&spans, SpanKind::Server).status, Status::Unset);
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_a_504_within_the_produce_timeout() {
    let timeout = Duration::from_millis(1500);
    let app = spawn_app(&no_broker(), timeout).await;

    let call = post(&app, "application/json", event(&new_id(), &new_id())).await;

    assert_problem(&call, 504, "dependency-failure");
    assert_eq!(call.body["dependency"], "kafka");
    assert!(
        call.took >= timeout && call.took < timeout + Duration::from_secs(2),
        "answered after {:?}, the timeout is {timeout:?}",
        call.took
    );
    let spans = spans_of(&call).await;
    let producer = one(&spans, SpanKind::Producer);
    assert_eq!(attributes(producer)["error.type"], "timeout".into());
    assert!(matches!(producer.status, Status::Error { .. }));
    let logs = logs_of(&call);
    assert!(
        logs.iter().any(|l| l["message"] == "produce failed"),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn a_broker_that_refuses_the_write_is_a_503_at_once() {
    let cluster = kafka();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let timeout = Duration::from_secs(10);
    let app = spawn_app(&cluster.bootstrap_servers(), timeout).await;

    let call = post(&app, "application/json", event(&new_id(), &new_id())).await;

    assert_problem(&call, 503, "dependency-failure");
    assert_eq!(call.body["dependency"], "kafka");
    assert!(
        call.took < Duration::from_secs(5),
        "a refusal is not a timeout: answered after {:?}",
        call.took
    );
    let spans = spans_of(&call).await;
    let producer = one(&spans, SpanKind::Producer);
    assert_eq!(attributes(producer)["error.type"], "kafka_error".into());
}
