//! `load smoke`: one order through the whole flow, as `scripts/k6/smoke.js`.
//!
//! `GET /api/products` -> 200, a non-empty list with `sku-espresso`; `POST /api/orders`
//! -> 201 with an id, `accepted` or `fulfilled`, a positive total; `GET /api/orders/{id}`
//! every 0.5 s until `fulfilled` (service-c consumed the Kafka event) within
//! `FULFIL_TIMEOUT`; a customer id starting with `fraud` -> 422 problem+json.
//! Thresholds: every check passed, no unexpected status, one order fulfilled.

use super::{Plan, Schedule, now_ms, transaction};
use crate::checks::Group;
use crate::run::RunState;
use crate::shop::{Item, Shopper, Tag, TagSource, in_stock_skus};
use crate::thresholds::{Measure, Op, RequestFilter, Threshold};
use goose::goose::{GooseUser, Scenario, TransactionResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The counter of orders that reached `fulfilled`.
pub const ORDERS_FULFILLED: &str = "orders_fulfilled";
/// How long the order took to be fulfilled, from its creation's answer.
pub const TIME_TO_FULFIL_MS: &str = "time_to_fulfil_ms";

const POLL_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) fn plan(state: &Arc<RunState>) -> Plan {
    let scenario =
        Scenario::new("smoke").register_transaction(transaction(state, "order", one_order));
    Plan {
        scenarios: vec![scenario],
        schedule: Schedule::Iterations {
            users: 1,
            iterations: 1,
        },
        thresholds: thresholds(),
        abort_rules: Vec::new(),
        abort_delay_s: 0,
    }
}

/// smoke.js's thresholds: `checks: rate==1`, `http_req_failed: rate==0`,
/// `smoke_orders_fulfilled: count==1`.
pub fn thresholds() -> Vec<Threshold> {
    vec![
        Threshold::new(Measure::CheckRate(None), Op::Eq, 1.0),
        Threshold::new(Measure::FailedRate(RequestFilter::ALL), Op::Eq, 0.0),
        Threshold::new(Measure::Counter(ORDERS_FULFILLED), Op::Eq, 1.0),
    ]
}

fn one_order(
    user: &mut GooseUser,
    state: Arc<RunState>,
) -> Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move { run_order(user, &state).await })
}

async fn run_order(user: &mut GooseUser, state: &RunState) -> TransactionResult {
    let settings = &state.settings;
    let mut shopper = Shopper {
        user,
        checks: &state.checks,
        group: Group::Shoppers,
        tags: TagSource::Fixed(Tag::Untagged),
        base_url: &settings.base_url,
    };
    let (listing, products) = shopper.list_products().await?;
    let skus = in_stock_skus(&products);
    shopper.check(
        "products: sku-espresso is listed",
        products.iter().any(|p| p.sku == "sku-espresso"),
        &listing,
    );

    let sku = if skus.iter().any(|s| s == "sku-espresso") {
        "sku-espresso".to_string()
    } else {
        skus[0].clone()
    };
    let customer = format!("load-smoke-{}", now_ms());
    let (created, order) = shopper
        .create_order(&customer, &[Item { sku, quantity: 2 }], false)
        .await?;
    let created_ok = shopper.check_created(&created, order.as_ref());
    let order = match order {
        Some(order) if created_ok => order,
        _ => {
            // As smoke.js's fail(): nothing more to check without an order.
            eprintln!(
                "load: POST /api/orders failed: {} (trace {})",
                created.describe(),
                created.trace.trace_id()
            );
            return Ok(());
        }
    };
    eprintln!(
        "load: order {} created, trace {}",
        order.id,
        created.trace.trace_id()
    );

    // Poll until service-c has consumed the event and service-a marked it fulfilled.
    let timeout = settings.fulfil_timeout;
    let started = Instant::now();
    let mut last = order.clone();
    let mut last_reply = created;
    while started.elapsed() < timeout {
        let (reply, got) = shopper.get_order(&order.id).await?;
        shopper.check("get order: status 200", reply.is(200), &reply);
        last_reply = reply;
        if let Some(got) = got {
            last = got;
        }
        if last.status == "fulfilled" {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let fulfilled = shopper.check(
        &format!("order: fulfilled within {}s", timeout.as_secs_f64()),
        last.status == "fulfilled",
        &last_reply,
    );
    let stamped = shopper.check(
        "order: fulfilled_at is set",
        last.fulfilled_at.as_deref().is_some_and(|t| !t.is_empty()),
        &last_reply,
    );
    if fulfilled && stamped {
        state.add(ORDERS_FULFILLED, 1);
        state.add(TIME_TO_FULFIL_MS, elapsed_ms);
        eprintln!("load: order {} fulfilled after {elapsed_ms} ms", order.id);
    } else {
        eprintln!(
            "load: order {} still {:?} after {}s",
            order.id,
            last.status,
            timeout.as_secs_f64()
        );
    }

    // The error path: the fraud check rejects customer ids starting with "fraud".
    let (rejected, _) = shopper
        .create_order(
            &format!("fraud-load-smoke-{}", now_ms()),
            &[Item {
                sku: skus[0].clone(),
                quantity: 1,
            }],
            true,
        )
        .await?;
    shopper.check_rejected(&rejected, true);
    Ok(())
}
