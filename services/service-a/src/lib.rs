//! service-a: orders. The business core of the demo.
//!
//! **Teaches: auto-instrumentation.** The handlers in [`api`] hold no telemetry code:
//! - the server span, context extraction and RED metrics: `parts.auto_instrumented` in [`router`];
//! - client spans and `traceparent` for service-d, the third party and service-b: the
//!   middleware stack built in [`run`] (`HttpClientMiddleware`, plus `BreakerMiddleware`
//!   in front of service-b);
//! - database CLIENT spans: the `Statement` constants in [`store`].
//!
//! The resilience story: the third-party check has a timeout and retries; the event to
//! service-b goes through a circuit breaker and a transactional [`outbox`], so a 201
//! never loses its event.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod dependencies;
pub mod error;
pub mod orders;
pub mod outbox;
pub mod store;

use config::Config;
use dependencies::{EventPublisher, FraudCheck, Inventory};
use outbox::Outbox;
use reqwest_middleware::ClientBuilder;
use service_runtime::{
    env::Env,
    faults::FaultInjector,
    health::Readiness,
    serve::{ServiceError, ServiceParts},
};
use sqlx::postgres::PgPoolOptions;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use store::OrderStore;
use telemetry::{
    HttpClientMiddleware, MetricsRegistry,
    breaker::{BreakerMiddleware, CircuitBreaker},
};
use tokio_util::sync::CancellationToken;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Orders in Postgres.
    pub store: OrderStore,
    /// service-d.
    pub inventory: Inventory,
    /// The third party.
    pub fraud: FraudCheck,
    /// Event delivery.
    pub outbox: Outbox,
}

/// Builds the HTTP app around `state`.
pub fn router(state: AppState, parts: &ServiceParts) -> axum::Router {
    parts.auto_instrumented(api::routes(state))
}

/// Runs service-a until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let config = Config::from_env(&env)?;
    let faults = FaultInjector::from_env(&env)?;

    // Lazy pool: the service starts (and answers /readyz 503) before Postgres is up.
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(&config.database_url)
        .map_err(|e| ServiceError::invalid_database_url(&config.database_url, e))?;
    let meter = opentelemetry::global::meter("service-a");
    let store = OrderStore::new(
        pool.clone(),
        meter
            .u64_counter("orders.created")
            .with_description("Orders accepted.")
            .build(),
    );
    let migrated = Arc::new(AtomicBool::new(false));
    tokio::spawn(migrate_with_backoff(
        pool,
        migrated.clone(),
        shutdown.clone(),
    ));

    let registry = MetricsRegistry::new();
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| ServiceError::setup("the HTTP client", e))?;
    let traced = || ClientBuilder::new(http.clone()).with(HttpClientMiddleware::new(&registry));
    let breaker = Arc::new(CircuitBreaker::new("service-b", config.breaker));

    let state = AppState {
        store: store.clone(),
        inventory: Inventory {
            client: traced().build(),
            base_url: config.service_d_url.clone(),
            timeout: config.downstream_timeout,
        },
        fraud: FraudCheck {
            client: traced().build(),
            url: config.third_party_url.clone(),
            timeout: config.third_party_timeout,
            retries: config.third_party_retries,
            retry_counter: meter
                .u64_counter("dependency.retries")
                .with_description("Retried dependency calls.")
                .build(),
        },
        outbox: Outbox {
            store: store.clone(),
            publisher: EventPublisher {
                // The breaker sits outside the client span: a rejected call makes no
                // HTTP request, so it gets no client span, only the breaker's metrics.
                client: ClientBuilder::new(http.clone())
                    .with(BreakerMiddleware::new(breaker))
                    .with(HttpClientMiddleware::new(&registry))
                    .build(),
                base_url: config.service_b_url.clone(),
                timeout: config.downstream_timeout,
            },
            pending_gauge: meter
                .u64_gauge("outbox.pending")
                .with_description("Order events waiting in the outbox.")
                .build(),
        },
    };

    let readiness = Readiness::new().check("postgres", move || {
        let (store, migrated) = (store.clone(), migrated.clone());
        async move {
            if !migrated.load(Ordering::Acquire) {
                return Err("migrations not applied yet".to_owned());
            }
            store.ping().await.map_err(|e| e.to_string())
        }
    });
    let parts = ServiceParts {
        metrics: registry,
        readiness,
        faults,
    };
    let relay = tokio::spawn(state.outbox.clone().run_relay(
        config.relay_interval,
        config.relay_min_age,
        shutdown.clone(),
    ));
    service_runtime::serve::serve(router(state, &parts), config.port, shutdown.clone()).await?;
    shutdown.cancel();
    let _ = relay.await;
    Ok(())
}

/// Applies the migrations, retrying with backoff until Postgres answers.
async fn migrate_with_backoff(
    pool: sqlx::PgPool,
    migrated: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let ready =
        service_runtime::startup::retry_until_ready("database migrations", &shutdown, || {
            sqlx::migrate!("./migrations").run(&pool)
        })
        .await;
    migrated.store(ready, Ordering::Release);
}
