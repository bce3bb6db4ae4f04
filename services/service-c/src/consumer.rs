//! Consuming `order-events` with hand-made CONSUMER spans.

use crate::{
    Config,
    fulfilment::{Fulfilment, FulfilmentError, OrderEvent, Outcome},
};
use opentelemetry::{
    Context, KeyValue, global,
    metrics::{Counter, Gauge, Histogram},
    trace::{FutureExt, Link, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, MESSAGING_CONSUMER_GROUP_NAME, MESSAGING_DESTINATION_NAME,
    MESSAGING_DESTINATION_PARTITION_ID, MESSAGING_KAFKA_MESSAGE_KEY, MESSAGING_KAFKA_OFFSET,
    MESSAGING_MESSAGE_BODY_SIZE, MESSAGING_OPERATION_NAME, MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
};
use rdkafka::{
    ClientConfig, ClientContext, Message,
    consumer::{Consumer as _, ConsumerContext, StreamConsumer},
    error::KafkaError,
    message::{BorrowedMessage, Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    statistics::Statistics,
    util::Timeout,
};
use service_runtime::{backoff::Backoff, serve::CancellationToken};
use std::{str::FromStr, time::Duration};

/// How a consumer span relates to the producer's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// Child of the producer span: one trace from the gateway to the consumer.
    Child,
    /// Root of a new trace with a span link to the producer span.
    Link,
}

impl FromStr for TraceMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "child" => Ok(Self::Child),
            "link" => Ok(Self::Link),
            _ => Err("expected child or link".into()),
        }
    }
}

/// Reports consumer lag from librdkafka's statistics (every 5 s) as a gauge.
struct LagReporter {
    lag: Gauge<i64>,
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // librdkafka uses -1 for "unknown" and partition -1 for its internal UA partition.
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.lag.record(
                        p.consumer_lag,
                        &[
                            KeyValue::new(MESSAGING_DESTINATION_NAME, topic.clone()),
                            KeyValue::new(
                                MESSAGING_DESTINATION_PARTITION_ID,
                                partition.to_string(),
                            ),
                        ],
                    );
                }
            }
        }
    }
}

impl ConsumerContext for LagReporter {}

/// What became of one message.
/// The outcomes of a message that is done with, as `Handled::Done` and the metrics name them.
const OUTCOMES: [&str; 3] = ["fulfilled", "duplicate", "dead_lettered"];

enum Handled {
    /// Done (processed, duplicate or dead-lettered): store the offset.
    Done(&'static str),
    /// Shutdown interrupted a retry: leave the offset so the message comes again.
    Interrupted,
}

struct ConsumerMetrics {
    process_duration: Histogram<f64>,
    outcomes: Counter<u64>,
    fulfilment_time: Histogram<f64>,
}

/// The `order-events` consumer.
pub struct Consumer {
    inner: StreamConsumer<LagReporter>,
    dlq: FutureProducer,
    topic: String,
    dlq_topic: String,
    group: String,
    mode: TraceMode,
    fulfilment: Fulfilment,
    metrics: ConsumerMetrics,
}

/// Waits between two tries of a failing message (fulfilment or the DLQ write).
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

impl Consumer {
    /// Creates the consumer (it connects when it runs).
    pub fn new(config: &Config, fulfilment: Fulfilment) -> Result<Self, KafkaError> {
        let meter = global::meter("service-c");
        let inner: StreamConsumer<LagReporter> = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("auto.offset.reset", "earliest")
            // At-least-once: offsets are stored by hand after processing and committed
            // by the background auto-commit.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("statistics.interval.ms", "5000")
            // A consumer that dies without leaving the group (SIGKILL, OOM) holds its
            // partitions until the session times out: librdkafka's 45 s default stalled
            // every order that long (docs/RELIABILITY.md, scenario 5).
            .set("session.timeout.ms", "10000")
            .create_with_context(LagReporter {
                lag: meter
                    .i64_gauge("messaging.kafka.consumer.lag")
                    .with_description("Messages not yet consumed, per partition.")
                    .build(),
            })?;
        let dlq: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("message.timeout.ms", "5000")
            .create()?;
        let outcomes = meter
            .u64_counter("messaging.process.messages")
            .with_description(
                "Messages processed, by outcome (fulfilled, duplicate, dead_lettered).",
            )
            .build();
        // Every outcome's series exists from the start, at 0: a series that first appears
        // at 1 has no increase in Prometheus, so the first dead letter of a process would
        // never fire MessagesDeadLettered (tests/stack checks that one poison message does).
        for outcome in OUTCOMES {
            outcomes.add(0, &[KeyValue::new("outcome", outcome)]);
        }
        Ok(Self {
            inner,
            dlq,
            dlq_topic: format!("{}.dlq", config.topic),
            topic: config.topic.clone(),
            group: config.group_id.clone(),
            mode: config.trace_mode,
            fulfilment,
            metrics: ConsumerMetrics {
                process_duration: meter
                    .f64_histogram("messaging.process.duration")
                    .with_unit("s")
                    .with_description("Time to process one message, by outcome.")
                    .build(),
                outcomes,
                fulfilment_time: meter
                    .f64_histogram("orders.fulfilment.duration")
                    .with_unit("s")
                    .with_description("Time from order accepted to order fulfilled.")
                    .build(),
            },
        })
    }

    /// Readiness: the broker answers a metadata request.
    pub async fn check_broker(&self) -> Result<(), String> {
        service_runtime::health::kafka_broker_reachable(&self.dlq, &self.topic).await
    }

    /// Consumes until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) {
        if let Err(error) = self.inner.subscribe(&[&self.topic]) {
            tracing::error!(error = %error, topic = %self.topic, "cannot subscribe");
            return;
        }
        tracing::info!(topic = %self.topic, group = %self.group, mode = ?self.mode, "consuming");
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = self.inner.recv() => message,
            };
            match message {
                Ok(message) => {
                    if let Handled::Done(_) = self.handle(&message, &shutdown).await
                        && let Err(error) = self.inner.store_offset_from_message(&message)
                    {
                        tracing::warn!(error = %error, "cannot store the offset");
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "consume error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One message, inside its CONSUMER span.
    async fn handle(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> Handled {
        let started = std::time::Instant::now();

        // 1. Extract the producer's context from the message headers.
        let producer_cx = message
            .headers()
            .map(telemetry::kafka::extract_context)
            .unwrap_or_default();

        // 2. The CONSUMER span with the messaging conventions, set by hand.
        let tracer = global::tracer("service-c");
        let mut builder = tracer
            .span_builder(format!("process {}", self.topic))
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new(MESSAGING_SYSTEM, "kafka"),
                KeyValue::new(MESSAGING_OPERATION_TYPE, "process"),
                KeyValue::new(MESSAGING_OPERATION_NAME, "process"),
                KeyValue::new(MESSAGING_DESTINATION_NAME, self.topic.clone()),
                KeyValue::new(MESSAGING_CONSUMER_GROUP_NAME, self.group.clone()),
                KeyValue::new(
                    MESSAGING_DESTINATION_PARTITION_ID,
                    message.partition().to_string(),
                ),
                KeyValue::new(MESSAGING_KAFKA_OFFSET, message.offset()),
                KeyValue::new(
                    MESSAGING_KAFKA_MESSAGE_KEY,
                    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                ),
                KeyValue::new(MESSAGING_MESSAGE_BODY_SIZE, message.payload_len() as i64),
            ]);

        // 3. Child of the producer span, or a new trace that links to it.
        let parent = match self.mode {
            TraceMode::Child => producer_cx,
            TraceMode::Link => {
                let producer_span = producer_cx.span().span_context().clone();
                if producer_span.is_valid() {
                    builder = builder.with_links(vec![Link::with_context(producer_span)]);
                }
                Context::new()
            }
        };
        let cx = parent.with_span(builder.start_with_context(&tracer, &parent));

        // 4. Process with the span current (logs and the HTTP call to service-a join it).
        let handled = self
            .process(message, shutdown)
            .with_context(cx.clone())
            .await;

        // 5. The outcome goes on the span and into the metrics; then the span ends.
        let span = cx.span();
        if let Handled::Done(outcome) = &handled {
            span.set_attribute(KeyValue::new("demo.message.outcome", *outcome));
            if *outcome == "dead_lettered" {
                span.set_attribute(KeyValue::new(ERROR_TYPE, "dead_lettered"));
                span.set_status(Status::error("message sent to the dead-letter queue"));
            }
            let attrs = [KeyValue::new("outcome", *outcome)];
            self.metrics.outcomes.add(1, &attrs);
            self.metrics
                .process_duration
                .record(started.elapsed().as_secs_f64(), &attrs);
        }
        span.end();
        handled
    }

    async fn process(
        &self,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> Handled {
        let event = match OrderEvent::decode(message.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(reason) => return self.dead_letter(message, &reason, shutdown).await,
        };
        let mut backoff = RETRY_BACKOFF;
        loop {
            match self.fulfilment.process(&event).await {
                Ok(Outcome::Fulfilled) => {
                    tracing::info!(order_id = %event.order_id, event_id = %event.event_id, "order fulfilled");
                    if let Some(created) = event.created_at_ms {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(created);
                        self.metrics
                            .fulfilment_time
                            .record(now.saturating_sub(created) as f64 / 1000.0, &[]);
                    }
                    return Handled::Done("fulfilled");
                }
                Ok(Outcome::Duplicate) => {
                    tracing::info!(event_id = %event.event_id, "duplicate event ignored");
                    return Handled::Done("duplicate");
                }
                Err(FulfilmentError::UnknownOrder(id)) => {
                    return self
                        .dead_letter(message, &format!("order {id} does not exist"), shutdown)
                        .await;
                }
                Err(FulfilmentError::Transient(reason)) => {
                    tracing::warn!(reason = %reason, retry_in_ms = backoff.delay().as_millis() as u64, "fulfilment failed, retrying");
                    if !backoff.sleep(shutdown).await {
                        return Handled::Interrupted;
                    }
                }
            }
        }
    }

    /// Sends the message to the DLQ with its original headers, key and payload, plus
    /// `dlq.reason` and where it came from. Retries until the DLQ accepts it.
    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> Handled {
        tracing::warn!(
            reason,
            partition = message.partition(),
            offset = message.offset(),
            "dead-lettering a message"
        );
        let cx = self.dlq_send_span();
        let mut backoff = RETRY_BACKOFF;
        loop {
            // The record is consumed by each try, so each try builds its own.
            let mut record = FutureRecord::to(&self.dlq_topic)
                .payload(message.payload().unwrap_or_default())
                .headers(dlq_headers(message, reason));
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            match self
                .dlq
                .send(record, Timeout::After(Duration::from_secs(5)))
                .await
            {
                Ok(_) => {
                    cx.span().end();
                    return Handled::Done("dead_lettered");
                }
                Err((error, _)) => {
                    cx.span().add_event(
                        "dlq write failed",
                        vec![KeyValue::new("error", error.to_string())],
                    );
                    tracing::error!(error = %error, "cannot write to the dead-letter queue, retrying");
                    if !backoff.sleep(shutdown).await {
                        cx.span().set_status(Status::error("interrupted"));
                        cx.span().end();
                        return Handled::Interrupted;
                    }
                }
            }
        }
    }

    /// The PRODUCER span of the DLQ write, a child of the current (CONSUMER) span.
    fn dlq_send_span(&self) -> Context {
        let tracer = global::tracer("service-c");
        let parent = Context::current();
        parent.with_span(
            tracer
                .span_builder(format!("send {}", self.dlq_topic))
                .with_kind(SpanKind::Producer)
                .with_attributes([
                    KeyValue::new(MESSAGING_SYSTEM, "kafka"),
                    KeyValue::new(MESSAGING_OPERATION_TYPE, "send"),
                    KeyValue::new(MESSAGING_DESTINATION_NAME, self.dlq_topic.clone()),
                ])
                .start_with_context(&tracer, &parent),
        )
    }
}

/// The message's own headers (its trace context among them), then why it is dead and
/// where it came from.
fn dlq_headers(message: &BorrowedMessage<'_>, reason: &str) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    headers
        .insert(Header {
            key: "dlq.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "dlq.original.topic",
            value: Some(message.topic()),
        })
        .insert(Header {
            key: "dlq.original.partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "dlq.original.offset",
            value: Some(offset.as_str()),
        })
}
