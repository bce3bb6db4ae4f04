//! The order domain: what a client sends, what is stored, and the event it produces.

use crate::error::OrderError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most lines one order may have.
pub const MAX_ITEMS: usize = 50;
/// Most units of one sku per line.
pub const MAX_QUANTITY: u32 = 1000;

/// `POST /orders` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Who orders (1 to 64 characters).
    pub customer_id: String,
    /// What (1 to 50 lines).
    pub items: Vec<NewItem>,
}

/// One requested line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Product.
    pub sku: String,
    /// Units, 1 to 1000.
    pub quantity: u32,
}

impl NewOrder {
    /// Checks the rules serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), OrderError> {
        let invalid = |field: String, detail: &str| OrderError::Invalid {
            field,
            detail: detail.to_owned(),
        };
        // Control characters are refused: Postgres cannot store NUL (it was a 503), and
        // the others only ever forge log lines.
        let printable = |s: &str| !s.chars().any(char::is_control);
        let id = self.customer_id.trim();
        if id.is_empty() || id.chars().count() > 64 || !printable(id) {
            return Err(invalid(
                "customer_id".into(),
                "must be 1 to 64 characters, none a control character",
            ));
        }
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Err(invalid("items".into(), "must hold 1 to 50 items"));
        }
        for (i, item) in self.items.iter().enumerate() {
            if item.sku.trim().is_empty() || item.sku.len() > 64 || !printable(&item.sku) {
                return Err(invalid(
                    format!("items[{i}].sku"),
                    "must be 1 to 64 characters, none a control character",
                ));
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                return Err(invalid(
                    format!("items[{i}].quantity"),
                    "must be between 1 and 1000",
                ));
            }
        }
        Ok(())
    }
}

/// A stored order, as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    /// Order id.
    pub id: Uuid,
    /// Who ordered.
    pub customer_id: String,
    /// `accepted`, then `fulfilled` once service-c processed its event.
    pub status: String,
    /// Priced lines.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total_cents: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC, once fulfilled.
    pub fulfilled_at: Option<String>,
}

/// One priced line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderLine {
    /// Product.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit in cents, from service-d.
    pub unit_price_cents: u64,
}

/// Status of a new order.
pub const ACCEPTED: &str = "accepted";
/// Status once service-c processed the order's event.
pub const FULFILLED: &str = "fulfilled";

/// The `order.created` event handed to service-b (and on to Kafka and service-c).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderCreated {
    /// Unique per event: service-c processes each id once.
    pub event_id: Uuid,
    /// Always `order.created`.
    pub event_type: String,
    /// The order.
    pub order_id: Uuid,
    /// Who ordered.
    pub customer_id: String,
    /// Sum of the lines.
    pub total_cents: u64,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// When the order was accepted, Unix milliseconds (for time-to-fulfilment).
    pub created_at_ms: u64,
}

impl OrderCreated {
    /// The event for a new order.
    pub fn for_order(
        order_id: Uuid,
        customer_id: &str,
        items: &[OrderLine],
        total_cents: u64,
    ) -> Self {
        let created_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self {
            event_id: Uuid::new_v4(),
            event_type: "order.created".into(),
            order_id,
            customer_id: customer_id.to_owned(),
            total_cents,
            items: items.to_vec(),
            created_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(customer: &str, items: &[(&str, u32)]) -> NewOrder {
        NewOrder {
            customer_id: customer.into(),
            items: items
                .iter()
                .map(|(s, q)| NewItem {
                    sku: s.to_string(),
                    quantity: *q,
                })
                .collect(),
        }
    }

    fn field_of(result: Result<(), OrderError>) -> String {
        match result {
            Err(OrderError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_offending_field() {
        assert!(order("c1", &[("sku-a", 1)]).validate().is_ok());
        assert_eq!(
            field_of(order(" ", &[("sku-a", 1)]).validate()),
            "customer_id"
        );
        assert_eq!(field_of(order("c1", &[]).validate()), "items");
        assert_eq!(
            field_of(order("c1", &[("sku-a", 1), ("sku-b", 0)]).validate()),
            "items[1].quantity"
        );
        assert_eq!(
            field_of(order("c1", &[("sku-a", 1001)]).validate()),
            "items[0].quantity"
        );
        assert_eq!(field_of(order("c1", &[("", 1)]).validate()), "items[0].sku");
        assert_eq!(
            field_of(order("a\0b", &[("sku-a", 1)]).validate()),
            "customer_id"
        );
        assert_eq!(
            field_of(order("c1", &[("sku-\u{1b}[2J", 1)]).validate()),
            "items[0].sku"
        );
    }
}

/// Property tests (issue 11): `validate` is exactly the documented rules, whatever the
/// input; any JSON body decodes or is refused without a panic; the event round-trips.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The rules as the API documents them, written apart from `validate`.
    fn documented_rules_accept(order: &NewOrder) -> bool {
        let customer = order.customer_id.trim();
        let control = |s: &str| s.chars().any(char::is_control);
        (1..=64).contains(&customer.chars().count())
            && !control(customer)
            && (1..=MAX_ITEMS).contains(&order.items.len())
            && order.items.iter().all(|i| {
                !i.sku.trim().is_empty()
                    && i.sku.len() <= 64
                    && !control(&i.sku)
                    && (1..=MAX_QUANTITY).contains(&i.quantity)
            })
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9-]{0,70}",
            "[ \t]{0,3}[a-z]{0,3}[ \t]{0,3}",
            "\\PC{0,70}",
            "[a-z]{0,3}[\\x00-\\x1f\\x7f\\u{85}][a-z]{0,3}",
            "['\";\\\\-]{0,10}(DROP TABLE orders|OR 1=1)?",
        ]
    }

    /// Mostly valid orders with a field at or past a limit now and then: an order wrong
    /// everywhere at once would hide which rule decided.
    fn new_order() -> impl Strategy<Value = NewOrder> {
        let item = (
            prop_oneof![8 => "[a-z0-9-]{1,20}", 1 => text()],
            prop_oneof![8 => 1u32..=1000, 1 => Just(0u32), 1 => Just(1001u32), 1 => any::<u32>()],
        );
        (
            prop_oneof![6 => "[a-z0-9-]{1,64}", 1 => text()],
            prop_oneof![
                8 => proptest::collection::vec(item.clone(), 1..=3),
                1 => proptest::collection::vec(item, 0..=52),
            ],
        )
            .prop_map(|(customer_id, items)| NewOrder {
                customer_id,
                items: items
                    .into_iter()
                    .map(|(sku, quantity)| NewItem { sku, quantity })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn validate_is_the_documented_rules(order in new_order()) {
            prop_assert_eq!(order.validate().is_ok(), documented_rules_accept(&order), "{:?}", order);
        }

        #[test]
        fn any_json_body_decodes_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<NewOrder>(&body);
        }

        #[test]
        fn unknown_fields_and_wrong_types_are_refused(
            key in "[a-z_]{1,12}",
            number in any::<f64>(),
        ) {
            prop_assume!(key != "customer_id" && key != "items");
            let extra = format!(r#"{{"customer_id":"c","items":[{{"sku":"s","quantity":1}}],"{key}":1}}"#);
            prop_assert!(serde_json::from_str::<NewOrder>(&extra).is_err());
            let typed = format!(r#"{{"customer_id":"c","items":[{{"sku":"s","quantity":{number:?}}}]}}"#);
            let quantity_is_u32 = number.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&number)
                && !format!("{number:?}").contains(['.', 'e']);
            prop_assert_eq!(serde_json::from_str::<NewOrder>(&typed).is_ok(), quantity_is_u32);
        }

        #[test]
        fn the_event_round_trips(
            customer in "\\PC{1,64}",
            lines in proptest::collection::vec(("\\PC{1,64}", 1u32..=1000, any::<u64>()), 1..=50),
            total in any::<u64>(),
        ) {
            let items: Vec<OrderLine> = lines
                .into_iter()
                .map(|(sku, quantity, unit_price_cents)| OrderLine { sku, quantity, unit_price_cents })
                .collect();
            let event = OrderCreated::for_order(Uuid::new_v4(), &customer, &items, total);
            let back: OrderCreated = serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
            prop_assert_eq!(back, event);
        }
    }
}
