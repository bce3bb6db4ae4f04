//! service-b: the Kafka producer. `POST /events` becomes a message on `order-events`.
//!
//! **Teaches: manual instrumentation.** Nothing here comes from a layer. Read, in order:
//! - [`manual_http::server_span`]: the HTTP server span made by hand (extract the W3C
//!   context, start a SERVER span, make it current, set the semantic-convention
//!   attributes, record the RED histogram with its exemplar, end the span);
//! - [`producer::Producer::send`]: the PRODUCER span with the messaging conventions,
//!   and the trace context injected into the Kafka headers by hand.
//!
//! The same information comes out as from the auto-instrumented services: compare the
//! spans of service-d and service-b in Tempo.
#![forbid(unsafe_code)]

pub mod manual_http;
pub mod producer;

use axum::{
    Json, Router, extract::State, http::StatusCode, middleware::from_fn_with_state, routing::post,
};
use producer::{ProduceError, Producer, Receipt};
use serde_json::Value;
use service_runtime::{
    env::{Env, EnvError},
    faults::FaultInjector,
    health::Readiness,
    problem::{ApiJson, Problem},
    serve::{CancellationToken, ServiceError, ServiceParts},
};
use std::{sync::Arc, time::Duration};
use telemetry::{MetricsRegistry, manual::HttpServerMetrics};

/// Settings read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8082.
    pub port: u16,
    /// `KAFKA_BROKERS`, default `127.0.0.1:9092`.
    pub brokers: String,
    /// `KAFKA_TOPIC`, default `order-events`.
    pub topic: String,
    /// `KAFKA_PRODUCE_TIMEOUT_MS`: how long to wait for the broker's ack, default 5000.
    pub produce_timeout: Duration,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        Ok(Self {
            port: env.or("PORT", 8082)?,
            brokers: env.string_or("KAFKA_BROKERS", "127.0.0.1:9092"),
            topic: env.string_or("KAFKA_TOPIC", "order-events"),
            produce_timeout: env.millis_or("KAFKA_PRODUCE_TIMEOUT_MS", Duration::from_secs(5))?,
        })
    }
}

/// Builds the HTTP app. The manual server-span middleware wraps only the business
/// route; probes, scrapes and admin calls are not traced.
pub fn router(producer: Arc<Producer>, parts: &ServiceParts, metrics: HttpServerMetrics) -> Router {
    let business = Router::new()
        .route("/events", post(publish_event))
        .with_state(producer)
        .layer(from_fn_with_state(metrics, manual_http::server_span));
    parts.routes(business)
}

async fn publish_event(
    State(producer): State<Arc<Producer>>,
    ApiJson(event): ApiJson<Value>,
) -> Result<(StatusCode, Json<Receipt>), Problem> {
    let key = event["order_id"]
        .as_str()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| Problem::invalid_field("order_id", "must be a UUID"))?
        .to_owned();
    let event_id = event["event_id"]
        .as_str()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| Problem::invalid_field("event_id", "must be a UUID"))?
        .to_owned();
    let payload = serde_json::to_vec(&event).map_err(|e| Problem::bad_request(e.to_string()))?;
    // Answer only once the broker acknowledged the write.
    match producer.send(&key, &event_id, &payload).await {
        Ok(receipt) => Ok((StatusCode::ACCEPTED, Json(receipt))),
        Err(error @ ProduceError::Timeout(_)) => Err(Problem::dependency(
            StatusCode::GATEWAY_TIMEOUT,
            "kafka",
            error.to_string(),
        )),
        Err(error) => Err(Problem::dependency(
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka",
            error.to_string(),
        )),
    }
}

/// Runs service-b until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let config = Config::from_env(&env)?;
    let faults = FaultInjector::from_env(&env)?;
    let producer = Arc::new(
        Producer::new(&config.brokers, &config.topic, config.produce_timeout)
            .map_err(|e| ServiceError::setup("the Kafka producer", e))?,
    );
    let registry = MetricsRegistry::new();
    let metrics = HttpServerMetrics::new(&registry);
    let readiness = {
        let producer = producer.clone();
        Readiness::new().check("kafka", move || {
            let producer = producer.clone();
            async move { producer.check_broker().await }
        })
    };
    let parts = ServiceParts {
        metrics: registry,
        readiness,
        faults,
    };
    service_runtime::serve::serve(
        router(producer.clone(), &parts, metrics),
        config.port,
        shutdown,
    )
    .await?;
    // The router (and every clone it held) is gone: this is the last reference.
    if let Ok(producer) = Arc::try_unwrap(producer) {
        producer.close().await;
    }
    Ok(())
}
