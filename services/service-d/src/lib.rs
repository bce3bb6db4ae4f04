//! service-d: the catalog (products, prices, stock).
//!
//! **Teaches: auto-instrumentation.** The handlers below contain no telemetry code. The
//! server span, W3C context extraction, RED metrics and `traceresponse` all come from one
//! line in [`router`] (`parts.auto_instrumented(..)`), and the catalog lookup gets its own
//! internal span from `#[tracing::instrument]` in [`catalog`].
#![forbid(unsafe_code)]

pub mod catalog;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{get, post},
};
use catalog::{Catalog, Product, StockCheck, StockReport};
use service_runtime::{
    env::{Env, EnvError},
    faults::FaultInjector,
    health::Readiness,
    problem::{ApiJson, Problem},
    serve::ServiceParts,
};
use std::{sync::Arc, time::Duration};
use telemetry::MetricsRegistry;

/// Settings read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8084.
    pub port: u16,
    /// `WORK_LATENCY_MS`: simulated work per catalog lookup, default 5 ms.
    pub work_latency: Duration,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        Ok(Self {
            port: env.or("PORT", 8084)?,
            work_latency: env.millis_or("WORK_LATENCY_MS", Duration::from_millis(5))?,
        })
    }
}

/// Builds the whole HTTP app.
pub fn router(config: &Config, faults: FaultInjector) -> Router {
    let catalog = Arc::new(Catalog::demo(config.work_latency));
    let parts = ServiceParts {
        metrics: MetricsRegistry::new(),
        readiness: Readiness::new(),
        faults,
    };
    let business = Router::new()
        .route("/products", get(list_products))
        .route("/products/{sku}", get(get_product))
        .route("/stock/check", post(check_stock))
        .with_state(catalog);
    // The one line of instrumentation in this service.
    parts.auto_instrumented(business)
}

async fn list_products(State(catalog): State<Arc<Catalog>>) -> Json<Vec<Product>> {
    Json(catalog.list().await)
}

async fn get_product(
    State(catalog): State<Arc<Catalog>>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, Problem> {
    catalog
        .find(&sku)
        .await
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product with sku {sku}")))
}

async fn check_stock(
    State(catalog): State<Arc<Catalog>>,
    ApiJson(request): ApiJson<StockCheck>,
) -> Result<Json<StockReport>, Problem> {
    catalog.check(&request).await.map(Json).map_err(|error| {
        Problem::invalid_field(&format!("items[{}].sku", error.index), error.to_string())
    })
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: service_runtime::serve::CancellationToken,
) -> Result<(), service_runtime::serve::ServiceError> {
    let config = Config::from_env(&env)?;
    let faults = FaultInjector::from_env(&env)?;
    service_runtime::serve::serve(router(&config, faults), config.port, shutdown).await?;
    Ok(())
}
