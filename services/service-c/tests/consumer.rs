//! service-c as a black box: its real `run`, reading librdkafka's mock Kafka cluster,
//! with Postgres found as the end-to-end tests find it (`DATABASE_URL`, else
//! `scripts/infra.sh up`: `e2e::infra`, which fails naming what is missing) and a stub
//! service-a on loopback. Messages go in through the topic; what comes out is checked:
//! the calls service-a gets, the idempotency table, the dead-letter topic, spans and logs.

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use opentelemetry::{
    Value,
    trace::{SpanContext, SpanId, SpanKind, Status, TraceId},
};
use opentelemetry_sdk::trace::SpanData;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer as _, StreamConsumer},
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    mocking::MockCluster,
    producer::{DefaultProducerContext, FutureProducer, FutureRecord},
};
use serde_json::json;
use service_runtime::{
    env::Env,
    serve::{CancellationToken, ServiceError},
};
use sqlx::PgPool;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

const TOPIC: &str = "order-events";
const DLQ: &str = "order-events.dlq";
const GROUP: &str = "service-c-test";
/// How long anything asynchronous may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A stub service-a: it records each fulfilment call and answers 200, 404 for the
/// orders it does not know, or 503 while an order has failures left.
#[derive(Clone, Default)]
struct ServiceA {
    /// Each call: the order and the `traceparent` it came with.
    calls: Arc<Mutex<Vec<(Uuid, String)>>>,
    unknown: Arc<Mutex<HashSet<Uuid>>>,
    failures: Arc<Mutex<HashMap<Uuid, u32>>>,
}

impl ServiceA {
    fn router(&self) -> Router {
        Router::new()
            .route("/orders/{id}/fulfil", post(Self::fulfil))
            .with_state(self.clone())
    }

    async fn fulfil(
        State(stub): State<Self>,
        Path(order): Path<Uuid>,
        headers: HeaderMap,
    ) -> StatusCode {
        let traceparent = headers
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        stub.calls.lock().unwrap().push((order, traceparent));
        if stub.unknown.lock().unwrap().contains(&order) {
            return StatusCode::NOT_FOUND;
        }
        match stub.failures.lock().unwrap().get_mut(&order) {
            Some(left) if *left > 0 => {
                *left -= 1;
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::OK,
        }
    }

    /// The `traceparent` of each call for `order`.
    fn calls_for(&self, order: Uuid) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(o, _)| *o == order)
            .map(|(_, tp)| tp.clone())
            .collect()
    }
}

/// One message as produced, with the producer span its `traceparent` names.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    payload: Vec<u8>,
    trace_id: TraceId,
    span_id: SpanId,
}

impl Sent {
    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// One service-c, with its own Kafka cluster, database and service-a.
struct App {
    cluster: MockCluster<'static, DefaultProducerContext>,
    producer: FutureProducer,
    service_a: ServiceA,
    database: PgPool,
    shutdown: CancellationToken,
    running: JoinHandle<Result<(), ServiceError>>,
}

/// Starts service-c's `run` with `KAFKA_TRACE_MODE=trace_mode`.
async fn spawn_app(trace_mode: &str) -> App {
    telemetry::testing::in_memory_tracing();
    let infra = e2e::infra().expect("Postgres for service-c's tests");
    let database_url = e2e::create_database(
        &infra.database_url,
        &format!("service_c_test_{}", Uuid::new_v4().simple()),
    )
    .await
    .expect("a database of the test's own");

    let cluster = MockCluster::new(1).expect("mock Kafka cluster");
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let service_a = ServiceA::default();
    let vars = HashMap::from([
        ("PORT", "0".to_owned()),
        ("KAFKA_BROKERS", cluster.bootstrap_servers()),
        ("KAFKA_TOPIC", TOPIC.to_owned()),
        ("KAFKA_GROUP_ID", GROUP.to_owned()),
        ("KAFKA_TRACE_MODE", trace_mode.to_owned()),
        ("DATABASE_URL", database_url.clone()),
        ("SERVICE_A_URL", serve(service_a.router()).await),
    ]);
    let env = Env::new(move |name: &str| vars.get(name).cloned());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service_c::run(env, shutdown.clone()));

    App {
        producer: ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap(),
        cluster,
        service_a,
        database: PgPool::connect(&database_url).await.unwrap(),
        shutdown,
        running,
    }
}

impl App {
    /// Produces `payload` keyed by `key`, as from a fresh producer span.
    async fn produce(&self, key: &str, payload: &[u8]) -> Sent {
        let sent = Sent {
            key: key.to_owned(),
            payload: payload.to_owned(),
            trace_id: TraceId::from_bytes(*Uuid::new_v4().as_bytes()),
            span_id: SpanId::from_bytes(Uuid::new_v4().as_bytes()[..8].try_into().unwrap()),
        };
        let headers = OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some(&sent.traceparent()),
        });
        self.producer
            .send(
                FutureRecord::to(TOPIC)
                    .key(key)
                    .payload(payload)
                    .headers(headers),
                PATIENCE,
            )
            .await
            .expect("delivered");
        sent
    }

    /// Produces an `order.created` event.
    async fn produce_event(&self, event_id: Uuid, order: Uuid) -> Sent {
        let event = json!({
            "event_id": event_id,
            "event_type": "order.created",
            "order_id": order,
            "created_at_ms": 1_700_000_000_000_u64,
        });
        self.produce(&order.to_string(), event.to_string().as_bytes())
            .await
    }

    /// How many times `event` is recorded as processed.
    async fn processed(&self, event: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM fulfilment.processed_events WHERE event_id = $1")
            .bind(event)
            .fetch_one(&self.database)
            .await
            .unwrap()
    }

    /// The first `n` messages on the dead-letter topic.
    async fn dead_letters(&self, n: usize) -> Vec<OwnedMessage> {
        let reader: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .set("group.id", "dlq-reader")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        reader.subscribe(&[DLQ]).unwrap();
        let mut messages = Vec::new();
        while messages.len() < n {
            let message = tokio::time::timeout(PATIENCE, reader.recv())
                .await
                .expect("a dead letter in time")
                .unwrap();
            messages.push(message.detach());
        }
        messages
    }

    /// Stops the service as SIGTERM would; it must finish cleanly, in bounded time.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.running)
            .await
            .expect("service-c stops in time")
            .unwrap()
            .expect("service-c stops without an error");
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The one finished span that `matches`, once it has ended.
async fn span_where(what: &str, matches: impl Fn(&SpanData) -> bool) -> SpanData {
    let exporter = telemetry::testing::in_memory_tracing();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut found: Vec<SpanData> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| matches(s))
            .collect();
        assert!(found.len() < 2, "more than one {what}: {found:#?}");
        if let Some(span) = found.pop() {
            return span;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CONSUMER span of the message `sent`, made as a child of its producer span.
async fn consumer_span(sent: &Sent) -> SpanData {
    span_where("consumer span", |s| {
        s.span_kind == SpanKind::Consumer && s.parent_span_id == sent.span_id
    })
    .await
}

/// The finished spans whose parent is `parent`.
fn children(parent: &SpanData) -> Vec<SpanData> {
    telemetry::testing::in_memory_tracing()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| {
            s.span_context.trace_id() == parent.span_context.trace_id()
                && s.parent_span_id == parent.span_context.span_id()
        })
        .collect()
}

/// A CLIENT span of an HTTP call (the database statements make CLIENT spans too).
fn is_http_client(span: &SpanData) -> bool {
    span.span_kind == SpanKind::Client && attribute(span, "http.request.method").is_some()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// The messages of the log lines written in trace `trace_id`.
fn log_messages(trace_id: TraceId) -> Vec<String> {
    telemetry::testing::pipeline_logs()
        .json_lines()
        .into_iter()
        .filter(|line| line["trace_id"] == trace_id.to_string())
        .map(|line| line["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn header<'a>(message: &'a OwnedMessage, key: &str) -> &'a str {
    let headers = message.headers().expect("headers");
    let header = headers
        .iter()
        .find(|h| h.key == key)
        .unwrap_or_else(|| panic!("no {key} header"));
    std::str::from_utf8(header.value.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_fulfilled_once_and_its_duplicate_dropped() {
    let app = spawn_app("child").await;
    let (event, order) = (Uuid::new_v4(), Uuid::new_v4());

    let first = app.produce_event(event, order).await;
    let again = app.produce_event(event, order).await;
    let outcomes = [
        attribute(&consumer_span(&first).await, "demo.message.outcome"),
        attribute(&consumer_span(&again).await, "demo.message.outcome"),
    ];
    assert_eq!(
        outcomes,
        [Some("fulfilled".into()), Some("duplicate".into())]
    );

    assert_eq!(
        app.service_a.calls_for(order).len(),
        1,
        "service-a asked once"
    );
    assert_eq!(app.processed(event).await, 1);
    assert!(log_messages(first.trace_id).contains(&"order fulfilled".to_owned()));
    assert!(log_messages(again.trace_id).contains(&"duplicate event ignored".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dlq_with_a_reason_and_the_consumer_keeps_going() {
    let app = spawn_app("child").await;
    let unknown_order = Uuid::new_v4();
    app.service_a.unknown.lock().unwrap().insert(unknown_order);
    let cancelled = json!({
        "event_id": Uuid::new_v4(),
        "event_type": "order.cancelled",
        "order_id": Uuid::new_v4(),
    })
    .to_string();

    let poison = [
        app.produce("not-json", b"{oops").await,
        app.produce("cancelled", cancelled.as_bytes()).await,
        app.produce_event(Uuid::new_v4(), unknown_order).await,
    ];
    let (event, order) = (Uuid::new_v4(), Uuid::new_v4());
    let good = app.produce_event(event, order).await;

    // The consumer went past the three: the good event after them is fulfilled.
    consumer_span(&good).await;
    assert_eq!(app.service_a.calls_for(order).len(), 1);
    assert_eq!(app.processed(event).await, 1);

    let dead = app.dead_letters(3).await;
    let reasons: Vec<&str> = dead.iter().map(|m| header(m, "dlq.reason")).collect();
    assert!(reasons[0].starts_with("undecodable: "), "{}", reasons[0]);
    assert_eq!(reasons[1], "unsupported event_type order.cancelled");
    assert_eq!(reasons[2], format!("order {unknown_order} does not exist"));
    for (offset, (message, sent)) in dead.iter().zip(&poison).enumerate() {
        // The message as it came (key, payload, trace context), and where it came from.
        assert_eq!(message.key(), Some(sent.key.as_bytes()));
        assert_eq!(message.payload(), Some(sent.payload.as_slice()));
        assert_eq!(header(message, "traceparent"), sent.traceparent());
        assert_eq!(header(message, "dlq.original.topic"), TOPIC);
        assert_eq!(header(message, "dlq.original.partition"), "0");
        assert_eq!(header(message, "dlq.original.offset"), offset.to_string());

        // Its CONSUMER span failed, and the DLQ write is a PRODUCER span inside it.
        let span = consumer_span(sent).await;
        assert_eq!(
            span.status,
            Status::error("message sent to the dead-letter queue")
        );
        assert_eq!(attribute(&span, "error.type"), Some("dead_lettered".into()));
        assert_eq!(
            attribute(&span, "demo.message.outcome"),
            Some("dead_lettered".into())
        );
        let sends: Vec<SpanData> = children(&span)
            .into_iter()
            .filter(|s| s.span_kind == SpanKind::Producer)
            .collect();
        assert_eq!(sends.len(), 1, "{sends:#?}");
        assert_eq!(sends[0].name, format!("send {DLQ}"));
        assert_eq!(
            attribute(&sends[0], "messaging.destination.name"),
            Some(DLQ.into())
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fulfilment_is_retried_with_growing_waits_until_it_succeeds() {
    let app = spawn_app("child").await;
    let (event, order) = (Uuid::new_v4(), Uuid::new_v4());
    app.service_a.failures.lock().unwrap().insert(order, 2);

    let sent = app.produce_event(event, order).await;
    let span = consumer_span(&sent).await;

    assert_eq!(app.service_a.calls_for(order).len(), 3);
    assert_eq!(
        app.processed(event).await,
        1,
        "the failed tries left no record"
    );
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        attribute(&span, "demo.message.outcome"),
        Some("fulfilled".into())
    );
    let waits: Vec<u64> = telemetry::testing::pipeline_logs()
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["trace_id"] == sent.trace_id.to_string()
                && l["message"] == "fulfilment failed, retrying"
        })
        .map(|l| l["fields"]["retry_in_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(waits, [200, 400]);
    let took = span.end_time.duration_since(span.start_time).unwrap();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    // Each try is an HTTP client span of its own inside the CONSUMER span.
    let tries = children(&span).iter().filter(|s| is_http_client(s)).count();
    assert_eq!(tries, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_continues_the_producers_trace() {
    let app = spawn_app("child").await;
    let (event, order) = (Uuid::new_v4(), Uuid::new_v4());

    let sent = app.produce_event(event, order).await;
    let span = consumer_span(&sent).await;

    assert_eq!(span.name, format!("process {TOPIC}"));
    assert_eq!(span.span_context.trace_id(), sent.trace_id);
    assert!(span.parent_span_is_remote);
    assert!(span.links.is_empty());
    let expected: [(&str, Value); 9] = [
        ("messaging.system", "kafka".into()),
        ("messaging.operation.type", "process".into()),
        ("messaging.operation.name", "process".into()),
        ("messaging.destination.name", TOPIC.into()),
        ("messaging.consumer.group.name", GROUP.into()),
        ("messaging.destination.partition.id", "0".into()),
        ("messaging.kafka.offset", 0_i64.into()),
        ("messaging.kafka.message.key", order.to_string().into()),
        (
            "messaging.message.body.size",
            (sent.payload.len() as i64).into(),
        ),
    ];
    for (key, value) in expected {
        assert_eq!(attribute(&span, key), Some(value), "{key}");
    }
    // The call to service-a continues the same trace from a client span in this one.
    let calls = app.service_a.calls_for(order);
    assert_eq!(calls.len(), 1);
    let client = span_where("HTTP client span", |s| {
        is_http_client(s) && s.parent_span_id == span.span_context.span_id()
    })
    .await;
    assert_eq!(
        calls[0],
        format!("00-{}-{}-01", sent.trace_id, client.span_context.span_id())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_link_mode_the_consumer_span_starts_a_trace_linking_to_the_producer() {
    let app = spawn_app("link").await;
    let (event, order) = (Uuid::new_v4(), Uuid::new_v4());

    let sent = app.produce_event(event, order).await;
    let span = span_where("linked consumer span", |s| {
        s.span_kind == SpanKind::Consumer
            && s.links
                .iter()
                .any(|l| l.span_context.span_id() == sent.span_id)
    })
    .await;

    assert_ne!(
        span.span_context.trace_id(),
        sent.trace_id,
        "a trace of its own"
    );
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    let link: &SpanContext = &span.links.links[0].span_context;
    assert_eq!(
        (link.trace_id(), link.span_id()),
        (sent.trace_id, sent.span_id)
    );
    // The new trace is the one service-a and the log lines see.
    let calls = app.service_a.calls_for(order);
    assert!(
        calls[0].contains(&span.span_context.trace_id().to_string()),
        "{calls:?}"
    );
    assert!(log_messages(span.span_context.trace_id()).contains(&"order fulfilled".to_owned()));
    assert!(log_messages(sent.trace_id).is_empty());
    app.stop().await;
}
