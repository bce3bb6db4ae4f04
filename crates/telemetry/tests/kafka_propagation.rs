//! Trace context through Kafka message headers, through librdkafka's mock broker.
//!
//! Spans are made by hand with the OpenTelemetry API, as the manual services do: the
//! producer injects its span's context into the headers, the consumer extracts it and
//! either continues the trace (child span) or starts a new one with a span link.

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::{Header, OwnedHeaders},
    mocking::MockCluster,
    producer::{FutureProducer, FutureRecord},
};
use std::time::Duration;

const TOPIC: &str = "order-events";

/// librdkafka's own log lines (emitted on its threads) reach the JSON log pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_logs_flow_through_tracing() {
    use tracing_subscriber::layer::SubscriberExt;

    let logs = telemetry::testing::CapturedLogs::default();
    // librdkafka logs from its own threads, so the subscriber must be global.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(logs.json_layer()))
        .unwrap();

    // Nothing listens on port 9: librdkafka logs the refused connection.
    let _producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9")
        .create()
        .expect("producer");
    let mut found = None;
    for _ in 0..100 {
        found = logs
            .json_lines()
            .into_iter()
            .find(|l| l["target"] == "librdkafka");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = found.expect("no librdkafka log line within 10 s");
    assert!(line["message"].as_str().unwrap().starts_with("librdkafka:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_span_is_child_of_producer_span_or_links_to_it() {
    telemetry::testing::install_w3c_propagators();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("kafka-test");

    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");

    // Producer side: a PRODUCER span whose context travels in the headers.
    let mut send_span = tracer
        .span_builder(format!("send {TOPIC}"))
        .with_kind(SpanKind::Producer)
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", TOPIC),
            KeyValue::new("messaging.operation.type", "send"),
        ])
        .start(&tracer);
    let producer_context = send_span.span_context().clone();
    let cx = Context::current().with_remote_span_context(producer_context.clone());
    let headers = telemetry::kafka::inject_context(&cx, OwnedHeaders::new());
    producer
        .send(
            FutureRecord::to(TOPIC)
                .key("order-1")
                .payload("{}")
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
    send_span.end();

    // A second message with a malformed traceparent must start a fresh trace.
    let bad = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    });
    producer
        .send(
            FutureRecord::to(TOPIC)
                .key("order-2")
                .payload("{}")
                .headers(bad),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "service-c")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");

    let first = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("no consumer error");
    let extracted = telemetry::kafka::extract_context(first.headers().expect("headers"));
    assert_eq!(
        extracted.span().span_context().trace_id(),
        producer_context.trace_id()
    );

    // Style 1 (default): continue the producer's trace.
    let mut child = tracer
        .span_builder(format!("process {TOPIC}"))
        .with_kind(SpanKind::Consumer)
        .start_with_context(&tracer, &extracted);
    child.end();
    // Style 2 (KAFKA_TRACE_MODE=link): a new trace that links to the producer's span.
    let mut linked = tracer
        .span_builder(format!("process {TOPIC}"))
        .with_kind(SpanKind::Consumer)
        .with_links(vec![Link::with_context(
            extracted.span().span_context().clone(),
        )])
        .start_with_context(&tracer, &Context::new());
    linked.end();

    let second = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a second message within 30 s")
        .expect("no consumer error");
    let malformed = telemetry::kafka::extract_context(second.headers().expect("headers"));
    assert!(!malformed.span().span_context().is_valid());

    let spans = exporter.get_finished_spans().unwrap();
    let producer_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Producer)
        .unwrap();
    let consumers: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer)
        .collect();
    assert_eq!(consumers.len(), 2);

    let child = consumers[0];
    assert_eq!(
        child.span_context.trace_id(),
        producer_span.span_context.trace_id()
    );
    assert_eq!(child.parent_span_id, producer_span.span_context.span_id());
    assert!(child.parent_span_is_remote);

    let linked = consumers[1];
    assert_ne!(
        linked.span_context.trace_id(),
        producer_span.span_context.trace_id()
    );
    assert_eq!(linked.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    let link = &linked.links.links[0];
    assert_eq!(
        link.span_context.trace_id(),
        producer_span.span_context.trace_id()
    );
    assert_eq!(
        link.span_context.span_id(),
        producer_span.span_context.span_id()
    );
}
