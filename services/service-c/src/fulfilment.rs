//! Fulfilling an order exactly once per event id.
//!
//! In one transaction: record the event id (a duplicate stops here), ask service-a to
//! mark the order fulfilled (idempotent on its side too), commit. If service-a fails,
//! the transaction rolls back and the event can be processed again.

use reqwest_middleware::ClientWithMiddleware;
use serde::Deserialize;
use sqlx::PgPool;
use std::time::Duration;
use telemetry::Statement;
use uuid::Uuid;

const RECORD_EVENT: Statement = Statement::postgres(
    "INSERT",
    "processed_events",
    "INSERT INTO processed_events (event_id, order_id) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
);

/// The part of an `order.created` event service-c needs.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderEvent {
    /// Unique per event.
    pub event_id: Uuid,
    /// `order.created`.
    pub event_type: String,
    /// The order to fulfil.
    pub order_id: Uuid,
    /// When the order was accepted (Unix ms), for time-to-fulfilment.
    #[serde(default)]
    pub created_at_ms: Option<u64>,
}

/// What processing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order is now fulfilled.
    Fulfilled,
    /// This event id was processed before: nothing done.
    Duplicate,
}

/// Why an event could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum FulfilmentError {
    /// service-a does not know the order: retrying will not help.
    #[error("order {0} does not exist")]
    UnknownOrder(Uuid),
    /// A dependency failed: worth retrying.
    #[error("{0}")]
    Transient(String),
}

/// Fulfils orders through service-a, once per event.
#[derive(Clone)]
pub struct Fulfilment {
    pool: PgPool,
    client: ClientWithMiddleware,
    service_a_url: String,
    timeout: Duration,
}

impl Fulfilment {
    /// A fulfilment step over `pool` and the (instrumented) `client`.
    pub fn new(
        pool: PgPool,
        client: ClientWithMiddleware,
        service_a_url: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            pool,
            client,
            service_a_url: service_a_url.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// Processes `event` once.
    pub async fn process(&self, event: &OrderEvent) -> Result<Outcome, FulfilmentError> {
        let transient = |e: sqlx::Error| FulfilmentError::Transient(format!("postgres: {e}"));
        let mut tx = self.pool.begin().await.map_err(transient)?;
        let recorded = RECORD_EVENT
            .run(|sql| {
                sqlx::query(sql)
                    .bind(event.event_id)
                    .bind(event.order_id)
                    .execute(&mut *tx)
            })
            .await
            .map_err(transient)?;
        if recorded.rows_affected() == 0 {
            return Ok(Outcome::Duplicate);
        }
        let response = self
            .client
            .post(format!(
                "{}/orders/{}/fulfil",
                self.service_a_url, event.order_id
            ))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FulfilmentError::Transient(format!("service-a: {e}")))?;
        match response.status().as_u16() {
            200 => {
                tx.commit().await.map_err(transient)?;
                Ok(Outcome::Fulfilled)
            }
            404 => Err(FulfilmentError::UnknownOrder(event.order_id)),
            status => Err(FulfilmentError::Transient(format!(
                "service-a answered {status}"
            ))),
        }
    }
}
