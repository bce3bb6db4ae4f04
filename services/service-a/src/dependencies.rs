//! service-a's HTTP dependencies: service-d (stock and prices), the third-party fraud
//! check, and service-b (order events, behind the circuit breaker).
//!
//! Every client is the same instrumented reqwest client: the client span, `traceparent`
//! injection and the client RED histogram come from its middleware. Each call has its
//! own timeout, and every failure maps to a 502/503/504 naming the dependency.

use crate::{
    error::OrderError,
    orders::{NewItem, OrderCreated, OrderLine},
};
use axum::http::StatusCode;
use opentelemetry::metrics::Counter;
use reqwest_middleware::ClientWithMiddleware;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Maps a transport failure to the HTTP status the client should see.
fn transport_error(dependency: &'static str, error: &reqwest_middleware::Error) -> OrderError {
    let (status, detail) = match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("{dependency} did not answer in time"),
        ),
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{dependency} is unreachable"),
        ),
        other => (
            StatusCode::BAD_GATEWAY,
            format!("{dependency} call failed: {other}"),
        ),
    };
    OrderError::Dependency {
        dependency,
        status,
        detail,
    }
}

fn bad_answer(dependency: &'static str, status: StatusCode) -> OrderError {
    OrderError::Dependency {
        dependency,
        status: if status == StatusCode::SERVICE_UNAVAILABLE {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        },
        detail: format!("{dependency} answered {status}"),
    }
}

/// service-d's answer to a stock check.
#[derive(Debug, Clone, Deserialize)]
pub struct StockReport {
    /// Per item, in request order.
    pub lines: Vec<StockLine>,
    /// Sum of the lines.
    pub total_cents: u64,
}

/// One line of a [`StockReport`].
#[derive(Debug, Clone, Deserialize)]
pub struct StockLine {
    /// Product.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Unit price in cents.
    pub unit_price_cents: u64,
    /// Whether that many are in stock.
    pub in_stock: bool,
}

impl StockLine {
    /// The priced order line.
    pub fn to_order_line(&self) -> OrderLine {
        OrderLine {
            sku: self.sku.clone(),
            quantity: self.quantity,
            unit_price_cents: self.unit_price_cents,
        }
    }
}

/// Client of service-d.
#[derive(Clone)]
pub struct Inventory {
    pub(crate) client: ClientWithMiddleware,
    pub(crate) base_url: String,
    pub(crate) timeout: Duration,
}

impl Inventory {
    /// Prices the items and checks stock. service-d's 422 (unknown sku) is passed on
    /// with its field; anything else unexpected is a dependency failure.
    pub async fn check(&self, items: &[NewItem]) -> Result<StockReport, OrderError> {
        let response = self
            .client
            .post(format!("{}/stock/check", self.base_url))
            .timeout(self.timeout)
            .json(&json!({ "items": items }))
            .send()
            .await
            .map_err(|e| transport_error("service-d", &e))?;
        match response.status() {
            StatusCode::OK => response
                .json()
                .await
                .map_err(|_| bad_answer("service-d", StatusCode::OK)),
            StatusCode::UNPROCESSABLE_ENTITY => {
                let problem: serde_json::Value = response.json().await.unwrap_or_default();
                Err(OrderError::Invalid {
                    field: problem["field"].as_str().unwrap_or("items").to_owned(),
                    detail: problem["detail"]
                        .as_str()
                        .unwrap_or("rejected by the catalog")
                        .to_owned(),
                })
            }
            status => Err(bad_answer("service-d", status)),
        }
    }
}

/// The third party's verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    /// False for a rejected order.
    pub approved: bool,
    /// Risk score.
    pub score: f64,
}

/// Client of the third-party fraud check: a timeout per attempt and bounded retries with
/// exponential backoff, because we do not control its reliability.
#[derive(Clone)]
pub struct FraudCheck {
    pub(crate) client: ClientWithMiddleware,
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_counter: Counter<u64>,
}

/// Wait before the first retry; doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

impl FraudCheck {
    /// Asks for a verdict; retries timeouts, transport errors, 429 and 5xx.
    pub async fn check(&self, customer_id: &str, total_cents: u64) -> Result<Verdict, OrderError> {
        let mut attempt = 0;
        loop {
            let failure = match self
                .client
                .post(format!("{}/fraud-check", self.url))
                .timeout(self.timeout)
                .json(&json!({ "customer_id": customer_id, "total_cents": total_cents }))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => {
                    return response
                        .json()
                        .await
                        .map_err(|_| bad_answer("third-party", StatusCode::OK));
                }
                Ok(response)
                    if response.status().is_server_error()
                        || response.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    bad_answer("third-party", response.status())
                }
                Ok(response) => return Err(bad_answer("third-party", response.status())),
                Err(error) => transport_error("third-party", &error),
            };
            if attempt >= self.retries {
                return Err(failure);
            }
            attempt += 1;
            let backoff = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            // A log line, and an event on the current span: the retry is visible in the trace.
            tracing::warn!(attempt, backoff_ms = backoff.as_millis() as u64, reason = %failure, "retrying the third-party fraud check");
            self.retry_counter.add(
                1,
                &[opentelemetry::KeyValue::new("dependency", "third-party")],
            );
            tokio::time::sleep(backoff).await;
        }
    }
}

/// A failed hand-over of an event to service-b.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The breaker is open: the call was not made.
    #[error("circuit breaker open")]
    BreakerOpen,
    /// service-b answered with an error or could not be reached.
    #[error("{0}")]
    Failed(String),
}

/// Client of service-b, behind the circuit breaker.
#[derive(Clone)]
pub struct EventPublisher {
    pub(crate) client: ClientWithMiddleware,
    pub(crate) base_url: String,
    pub(crate) timeout: Duration,
}

impl EventPublisher {
    /// Hands `event` to service-b; Ok only once service-b acknowledged it (which it does
    /// after Kafka acknowledged the write).
    pub async fn publish(&self, event: &OrderCreated) -> Result<(), PublishError> {
        let response = self
            .client
            .post(format!("{}/events", self.base_url))
            .timeout(self.timeout)
            .json(event)
            .send()
            .await
            .map_err(|error| match &error {
                reqwest_middleware::Error::Middleware(e)
                    if e.is::<telemetry::breaker::BreakerOpen>() =>
                {
                    PublishError::BreakerOpen
                }
                other => PublishError::Failed(other.to_string()),
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(PublishError::Failed(format!(
                "service-b answered {}",
                response.status()
            )))
        }
    }
}
