//! A stand-in for a third-party fraud-check API.
//!
//! It is **not instrumented on purpose**: it plays a service you do not own, so in a
//! trace it only appears as service-a's client spans (and their retries). Its latency and
//! failures are set like every demo service's: `STUB_LATENCY_MS`, `FAULT_*` and the
//! `/admin/faults` endpoint.
#![forbid(unsafe_code)]

use axum::{Json, Router, extract::State, routing::post};
use serde::{Deserialize, Serialize};
use service_runtime::{
    env::Env, faults::FaultInjector, health::Readiness, problem::ApiJson, serve::ServiceParts,
};
use std::time::Duration;

/// `POST /fraud-check` request.
#[derive(Debug, Deserialize, Serialize)]
pub struct FraudCheck {
    /// Who orders.
    pub customer_id: String,
    /// Order total in cents.
    pub total_cents: u64,
}

/// `POST /fraud-check` answer.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
pub struct FraudVerdict {
    /// False for a rejected order.
    pub approved: bool,
    /// Risk score between 0 and 1.
    pub score: f64,
}

/// The stub's HTTP app; `latency` is added to every check.
pub fn router(latency: Duration, faults: FaultInjector) -> Router {
    let parts = ServiceParts {
        metrics: telemetry_free_registry(),
        readiness: Readiness::new(),
        faults,
    };
    parts.routes(
        Router::new()
            .route("/fraud-check", post(check))
            .with_state(latency),
    )
}

// The stub serves an (empty) /metrics like every service; nothing is recorded.
fn telemetry_free_registry() -> telemetry::MetricsRegistry {
    telemetry::MetricsRegistry::new()
}

async fn check(
    State(latency): State<Duration>,
    ApiJson(request): ApiJson<FraudCheck>,
) -> Json<FraudVerdict> {
    tokio::time::sleep(latency).await;
    // Deterministic rules so tests and demos can ask for a rejection.
    let rejected = request.customer_id.starts_with("fraud");
    let score = if rejected {
        0.97
    } else {
        (request.total_cents as f64 / 1_000_000.0).min(0.5)
    };
    Json(FraudVerdict {
        approved: !rejected,
        score,
    })
}

/// Runs the stub until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: service_runtime::serve::CancellationToken,
) -> Result<(), service_runtime::serve::ServiceError> {
    let port: u16 = env.or("PORT", 8090)?;
    let latency = env.millis_or("STUB_LATENCY_MS", Duration::from_millis(20))?;
    let faults = FaultInjector::from_env(&env)?;
    service_runtime::serve::serve(router(latency, faults), port, shutdown).await?;
    Ok(())
}
