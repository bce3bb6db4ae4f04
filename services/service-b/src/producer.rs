//! Producing to Kafka with a hand-made PRODUCER span and hand-injected headers.

use opentelemetry::{
    Context, KeyValue, global,
    trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION_PARTITION_ID,
    MESSAGING_KAFKA_MESSAGE_KEY, MESSAGING_KAFKA_OFFSET, MESSAGING_MESSAGE_BODY_SIZE,
    MESSAGING_MESSAGE_ID, MESSAGING_OPERATION_NAME, MESSAGING_OPERATION_TYPE, MESSAGING_SYSTEM,
    SERVER_ADDRESS,
};
use rdkafka::{
    ClientConfig,
    error::KafkaError,
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _},
    util::Timeout,
};
use serde::Serialize;
use std::time::Duration;

/// Where the broker stored a message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receipt {
    /// Topic written to.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// Why a message was not written.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The broker did not acknowledge within the timeout.
    #[error("Kafka did not acknowledge the write within {0:?}")]
    Timeout(Duration),
    /// The broker refused or the client failed.
    #[error("Kafka write failed: {0}")]
    Kafka(#[from] KafkaError),
}

/// A Kafka producer for one topic.
pub struct Producer {
    inner: FutureProducer,
    topic: String,
    brokers: String,
    timeout: Duration,
}

impl Producer {
    /// Connects lazily: creating the producer does not need a running broker.
    pub fn new(brokers: &str, topic: &str, timeout: Duration) -> Result<Self, KafkaError> {
        let inner: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()?;
        Ok(Self {
            inner,
            topic: topic.to_owned(),
            brokers: brokers.to_owned(),
            timeout,
        })
    }

    /// Sends one message keyed by `key` and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<Receipt, ProduceError> {
        // 1. A PRODUCER span, child of the current (server) span, with the messaging
        //    conventions. Its name is "{operation} {destination}".
        let tracer = global::tracer("service-b");
        let parent = Context::current();
        let span = tracer
            .span_builder(format!("send {}", self.topic))
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new(MESSAGING_SYSTEM, "kafka"),
                KeyValue::new(MESSAGING_OPERATION_TYPE, "send"),
                KeyValue::new(MESSAGING_OPERATION_NAME, "send"),
                KeyValue::new(MESSAGING_DESTINATION_NAME, self.topic.clone()),
                KeyValue::new(MESSAGING_KAFKA_MESSAGE_KEY, key.to_owned()),
                KeyValue::new(MESSAGING_MESSAGE_ID, message_id.to_owned()),
                KeyValue::new(MESSAGING_MESSAGE_BODY_SIZE, payload.len() as i64),
                KeyValue::new(SERVER_ADDRESS, self.brokers.clone()),
            ])
            .start_with_context(&tracer, &parent);
        let cx = parent.with_span(span);

        // 2. Inject the PRODUCER span's context into the message headers, so the
        //    consumer's span continues from this one.
        let headers = telemetry::kafka::inject_context(&cx, OwnedHeaders::new());

        // 3. Send and wait for the acknowledgement (acks=all).
        let record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        let result = self
            .inner
            .send(record, Timeout::After(self.timeout))
            .with_context(cx.clone())
            .await;

        // 4. Where it landed, or why not, goes on the span; then end it.
        let span = cx.span();
        let outcome = match result {
            Ok(delivery) => {
                span.set_attribute(KeyValue::new(
                    MESSAGING_DESTINATION_PARTITION_ID,
                    delivery.partition.to_string(),
                ));
                span.set_attribute(KeyValue::new(MESSAGING_KAFKA_OFFSET, delivery.offset));
                Ok(Receipt {
                    topic: self.topic.clone(),
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::MessageTimedOut),
                _,
            )) => Err(ProduceError::Timeout(self.timeout)),
            Err((error, _)) => Err(ProduceError::Kafka(error)),
        };
        if let Err(error) = &outcome {
            span.set_attribute(KeyValue::new(ERROR_TYPE, error_type(error)));
            span.set_status(Status::error(error.to_string()));
            tracing::error!(error = %error, topic = %self.topic, "produce failed");
        } else {
            tracing::info!(topic = %self.topic, key, "event produced");
        }
        span.end();
        outcome
    }

    /// Readiness: the broker answers a metadata request for the topic.
    pub async fn check_broker(&self) -> Result<(), String> {
        service_runtime::health::kafka_broker_reachable(&self.inner, &self.topic).await
    }

    /// At shutdown: waits for queued messages, then drops the client, both on the
    /// blocking pool (librdkafka's flush and close block).
    pub async fn close(self) {
        let _ = tokio::task::spawn_blocking(move || {
            let _ = self.inner.flush(Timeout::After(Duration::from_secs(5)));
            drop(self);
        })
        .await;
    }
}

fn error_type(error: &ProduceError) -> &'static str {
    match error {
        ProduceError::Timeout(_) => "timeout",
        ProduceError::Kafka(_) => "kafka_error",
    }
}
