//! service-a: orders. The business core of the demo.
//!
//! **Teaches: auto-instrumentation.** The handlers in [`api`] hold no telemetry code:
//! - the server span, context extraction and RED metrics: `parts.auto_instrumented` in [`router`];
//! - client spans and `traceparent` for service-d, the third party and service-b: the
//!   middleware stacks built by `app_state` and `event_publisher` in this file
//!   (`HttpClientMiddleware`, plus `BreakerMiddleware` in front of service-b);
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
    postgres::{Migrations, lazy_pool, migrate_in_background},
    serve::{CancellationToken, ServiceError, ServiceParts},
};
use sqlx::{PgPool, migrate::Migrator};
use std::sync::Arc;
use store::OrderStore;
use telemetry::{
    HttpClientMiddleware, MetricsRegistry,
    breaker::{BreakerMiddleware, CircuitBreaker},
};

/// The orders schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

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
    let pool = lazy_pool(&config.database_url, 10, None)?;
    let migrations = migrate_in_background(pool.clone(), &MIGRATOR, None, shutdown.clone());
    let registry = MetricsRegistry::new();
    let state = app_state(&config, pool, &registry)?;
    let parts = ServiceParts {
        readiness: readiness(state.store.clone(), migrations),
        metrics: registry,
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

/// The store, and a client per dependency. Each client makes a client span and carries
/// `traceparent` ([`HttpClientMiddleware`]), its metrics in `registry`.
fn app_state(
    config: &Config,
    pool: PgPool,
    registry: &MetricsRegistry,
) -> Result<AppState, ServiceError> {
    let meter = opentelemetry::global::meter("service-a");
    let store = OrderStore::new(
        pool,
        meter
            .u64_counter("orders.created")
            .with_description("Orders accepted.")
            .build(),
    );
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| ServiceError::setup("the HTTP client", e))?;
    let traced = || ClientBuilder::new(http.clone()).with(HttpClientMiddleware::new(registry));
    Ok(AppState {
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
            store,
            publisher: event_publisher(config, http, registry),
            pending_gauge: meter
                .u64_gauge("outbox.pending")
                .with_description("Order events waiting in the outbox.")
                .build(),
        },
    })
}

/// The client of service-b, behind the circuit breaker.
fn event_publisher(
    config: &Config,
    http: reqwest::Client,
    registry: &MetricsRegistry,
) -> EventPublisher {
    let breaker = Arc::new(CircuitBreaker::new("service-b", config.breaker));
    EventPublisher {
        // The breaker sits outside the client span: a rejected call makes no HTTP
        // request, so it gets no client span, only the breaker's metrics.
        client: ClientBuilder::new(http)
            .with(BreakerMiddleware::new(breaker))
            .with(HttpClientMiddleware::new(registry))
            .build(),
        base_url: config.service_b_url.clone(),
        timeout: config.downstream_timeout,
    }
}

/// `/readyz`: the migrations are applied and Postgres answers.
fn readiness(store: OrderStore, migrations: Migrations) -> Readiness {
    Readiness::new().check("postgres", move || {
        let (store, migrations) = (store.clone(), migrations.clone());
        async move {
            migrations.ready()?;
            store.ping().await.map_err(|e| e.to_string())
        }
    })
}
