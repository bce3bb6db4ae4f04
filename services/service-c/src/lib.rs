//! service-c: the Kafka consumer. Reads `order-events`, marks orders fulfilled.
//!
//! **Teaches: manual instrumentation.** Read [`consumer::Consumer::handle`]: the
//! context is extracted from the Kafka headers by hand, and the CONSUMER span is either a
//! child of the producer's span (`KAFKA_TRACE_MODE=child`, the default: one trace from
//! the gateway to here) or the root of a new trace with a span link to it
//! (`KAFKA_TRACE_MODE=link`: each message its own trace, as the messaging conventions
//! suggest for batch or long-delayed processing). The trade-off is in docs/TRACING.md.
//!
//! Processing is idempotent (event ids are recorded in Postgres in the same transaction
//! as the fulfilment call's success), offsets are stored only after processing, and a
//! message that cannot be decoded goes to `<topic>.dlq` with its headers and a reason.
#![forbid(unsafe_code)]

pub mod consumer;
pub mod fulfilment;

use consumer::{Consumer, TraceMode};
use fulfilment::Fulfilment;
use service_runtime::{
    env::{Env, EnvError},
    faults::FaultInjector,
    health::Readiness,
    postgres::{Migrations, lazy_pool, migrate_in_background},
    serve::{CancellationToken, ServiceError, ServiceParts},
};
use sqlx::{PgPool, migrate::Migrator};
use std::{sync::Arc, time::Duration};
use telemetry::MetricsRegistry;

/// Settings read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8083.
    pub port: u16,
    /// `KAFKA_BROKERS`, default `127.0.0.1:9092`.
    pub brokers: String,
    /// `KAFKA_TOPIC`, default `order-events`; the DLQ is `<topic>.dlq`.
    pub topic: String,
    /// `KAFKA_GROUP_ID`, default `service-c`.
    pub group_id: String,
    /// `KAFKA_TRACE_MODE`: `child` (default) or `link`.
    pub trace_mode: TraceMode,
    /// `DATABASE_URL`, default `postgres://demo:demo@127.0.0.1:5432/orders`.
    pub database_url: String,
    /// `SERVICE_A_URL`, default `http://127.0.0.1:8081`.
    pub service_a_url: String,
    /// `DOWNSTREAM_TIMEOUT_MS` for the fulfilment call, default 2000.
    pub downstream_timeout: Duration,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        Ok(Self {
            port: env.or("PORT", 8083)?,
            brokers: env.string_or("KAFKA_BROKERS", "127.0.0.1:9092"),
            topic: env.string_or("KAFKA_TOPIC", "order-events"),
            group_id: env.string_or("KAFKA_GROUP_ID", "service-c"),
            trace_mode: env.or("KAFKA_TRACE_MODE", TraceMode::Child)?,
            database_url: env
                .string_or("DATABASE_URL", "postgres://demo:demo@127.0.0.1:5432/orders"),
            service_a_url: env.string_or("SERVICE_A_URL", "http://127.0.0.1:8081"),
            downstream_timeout: env.millis_or("DOWNSTREAM_TIMEOUT_MS", Duration::from_secs(2))?,
        })
    }
}

/// Schema holding service-c's tables (and its own migration history).
const SCHEMA: &str = "fulfilment";

/// The idempotency table, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Runs service-c until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let config = Config::from_env(&env)?;
    let faults = FaultInjector::from_env(&env)?;
    let pool = lazy_pool(&config.database_url, 5, Some(SCHEMA))?;
    let migrations = migrate_in_background(pool.clone(), &MIGRATOR, Some(SCHEMA), shutdown.clone());
    let registry = MetricsRegistry::new();
    let consumer = Arc::new(consumer(&config, pool.clone(), &registry)?);
    let parts = ServiceParts {
        readiness: readiness(consumer.clone(), pool, migrations.clone()),
        metrics: registry,
        faults,
    };

    // Consume only once the idempotency table exists.
    let consuming = {
        let (consumer, shutdown) = (consumer.clone(), shutdown.clone());
        tokio::spawn(async move {
            if migrations.applied().await {
                consumer.run(shutdown).await;
            }
        })
    };
    // No business HTTP routes: probes, metrics and the admin endpoint only.
    service_runtime::serve::serve(
        parts.routes(axum::Router::new()),
        config.port,
        shutdown.clone(),
    )
    .await?;
    shutdown.cancel();
    let _ = consuming.await;
    // Closing the consumer commits offsets and leaves the group, which blocks: do it
    // on the blocking pool.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    Ok(())
}

/// The consumer, whose fulfilment calls service-a with a client span and `traceparent`
/// (its metrics in `registry`).
fn consumer(
    config: &Config,
    pool: PgPool,
    registry: &MetricsRegistry,
) -> Result<Consumer, ServiceError> {
    let fulfilment = Fulfilment::new(
        pool,
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(telemetry::HttpClientMiddleware::new(registry))
            .build(),
        &config.service_a_url,
        config.downstream_timeout,
    );
    Consumer::new(config, fulfilment).map_err(|e| ServiceError::setup("the Kafka consumer", e))
}

/// `/readyz`: the broker answers, the migrations are applied and Postgres answers.
fn readiness(consumer: Arc<Consumer>, pool: PgPool, migrations: Migrations) -> Readiness {
    Readiness::new()
        .check("kafka", move || {
            let consumer = consumer.clone();
            async move { consumer.check_broker().await }
        })
        .check("postgres", move || {
            let (pool, migrations) = (pool.clone(), migrations.clone());
            async move {
                migrations.ready()?;
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
}
