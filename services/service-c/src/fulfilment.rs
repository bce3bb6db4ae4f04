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

impl OrderEvent {
    /// Decodes a Kafka payload; the error is the `dlq.reason` of a message that cannot
    /// be processed (undecodable, or an event type service-c does not handle).
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice::<Self>(payload) {
            Ok(event) if event.event_type == "order.created" => Ok(event),
            Ok(event) => Err(format!("unsupported event_type {}", event.event_type)),
            Err(error) => Err(format!("undecodable: {error}")),
        }
    }
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// An `order.created` event as service-a writes it, with any customer and lines.
    fn event() -> impl Strategy<Value = Value> {
        (
            any::<u128>(),
            any::<u128>(),
            "\\PC{0,64}",
            any::<u64>(),
            proptest::collection::vec(("\\PC{1,64}", 1u32..=1000, any::<u64>()), 1..50),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(event_id, order_id, customer, total, items, created)| {
                let mut event = json!({
                    "event_id": Uuid::from_u128(event_id),
                    "event_type": "order.created",
                    "order_id": Uuid::from_u128(order_id),
                    "customer_id": customer,
                    "total_cents": total,
                    "items": items.iter().map(|(sku, quantity, price)| json!({
                        "sku": sku, "quantity": quantity, "unit_price_cents": price,
                    })).collect::<Vec<_>>(),
                });
                if let Some(created) = created {
                    event["created_at_ms"] = json!(created);
                }
                event
            })
    }

    proptest! {
        #[test]
        fn every_event_service_a_writes_decodes_to_its_ids(event in event()) {
            let bytes = serde_json::to_vec(&event).unwrap();
            let decoded = OrderEvent::decode(&bytes).unwrap();
            prop_assert_eq!(decoded.event_id.to_string(), event["event_id"].as_str().unwrap());
            prop_assert_eq!(decoded.order_id.to_string(), event["order_id"].as_str().unwrap());
            prop_assert_eq!(decoded.created_at_ms, event["created_at_ms"].as_u64());
        }

        #[test]
        fn an_event_missing_an_id_or_of_another_type_is_refused_with_a_reason(
            event in event(),
            drop in prop_oneof![Just("event_id"), Just("order_id"), Just("event_type")],
            other_type in "[a-z.]{1,20}",
        ) {
            let mut missing = event.clone();
            missing.as_object_mut().unwrap().remove(drop);
            let reason = OrderEvent::decode(&serde_json::to_vec(&missing).unwrap()).unwrap_err();
            prop_assert!(reason.starts_with("undecodable: missing field"), "{}", reason);

            prop_assume!(other_type != "order.created");
            let mut other = event;
            other["event_type"] = json!(other_type);
            let reason = OrderEvent::decode(&serde_json::to_vec(&other).unwrap()).unwrap_err();
            prop_assert_eq!(reason, format!("unsupported event_type {other_type}"));
        }

        #[test]
        fn arbitrary_bytes_are_an_event_or_a_reason_never_a_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            match OrderEvent::decode(&payload) {
                Ok(event) => prop_assert_eq!(event.event_type, "order.created"),
                Err(reason) => prop_assert!(!reason.is_empty()),
            }
        }

        #[test]
        fn truncated_or_nested_json_is_refused(event in event(), cut in 0usize..200, depth in 1usize..300) {
            let bytes = serde_json::to_vec(&event).unwrap();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(OrderEvent::decode(&bytes[..cut]).is_err());
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            prop_assert!(OrderEvent::decode(nested.as_bytes()).is_err());
        }
    }
}
