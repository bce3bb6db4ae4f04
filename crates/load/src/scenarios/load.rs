//! `load load`: shoppers at modest load, as `scripts/k6/load.js`.
//!
//! Each iteration browses the products, thinks, places an order and reads it back; a
//! share of iterations (`FRAUD_SHARE`, default 5%) orders as a `fraud...` customer and
//! expects the 422. `LOAD_VUS` users ramp up over 20% of `LOAD_DURATION`, hold for 60% and
//! ramp down for 20% (a goose test plan). Thresholds as load.js: unexpected statuses under
//! 1%, checks over 99%, p95/p99 per route; and, as load.js's `abortOnFail` rule, goose
//! itself stops the run once more than 10% of requests fail, from 30 s after the ramp-up.

use super::{Plan, Schedule, think, transaction, whole_seconds};
use crate::checks::Group;
use crate::run::RunState;
use crate::shop::{RequestName, Route, Shopper, Tag, TagSource, basket, in_stock_skus};
use crate::thresholds::{Measure, Op, RequestFilter, Stat, Threshold};
use goose::goose::{GooseUser, Scenario, TransactionResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(crate) fn plan(state: &Arc<RunState>) -> Plan {
    let settings = &state.settings;
    let ramp = whole_seconds(settings.load_duration.mul_f64(0.2));
    let hold = whole_seconds(settings.load_duration.mul_f64(0.6));
    let users = settings.load_vus;
    let scenario = Scenario::new("shoppers").register_transaction(transaction(state, "shop", shop));
    Plan {
        scenarios: vec![scenario],
        schedule: Schedule::TestPlan(format!("{users},{ramp}s;{users},{hold}s;0,{ramp}s")),
        thresholds: thresholds(),
        abort_rules: vec!["error-rate<10%"],
        abort_delay_s: 30,
    }
}

/// load.js's thresholds.
pub fn thresholds() -> Vec<Threshold> {
    let latency = |route, stat, limit| {
        Threshold::new(
            Measure::Duration(
                RequestName {
                    route,
                    tag: Tag::Untagged,
                },
                stat,
            ),
            Op::Lt,
            limit,
        )
    };
    vec![
        // Unexpected statuses (the fraud 422s are expected): under 1%.
        Threshold::new(Measure::FailedRate(RequestFilter::ALL), Op::Lt, 0.01),
        Threshold::new(Measure::CheckRate(None), Op::Gt, 0.99),
        latency(Route::Products, Stat::P95, 300.0),
        latency(Route::Products, Stat::P99, 800.0),
        latency(Route::CreateOrder, Stat::P95, 800.0),
        latency(Route::CreateOrder, Stat::P99, 1500.0),
        latency(Route::GetOrder, Stat::P95, 300.0),
        latency(Route::GetOrder, Stat::P99, 800.0),
    ]
}

fn shop(
    user: &mut GooseUser,
    state: Arc<RunState>,
) -> Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move { shop_once(user, &state).await })
}

async fn shop_once(user: &mut GooseUser, state: &RunState) -> TransactionResult {
    let fraud = fastrand::f64() < state.settings.fraud_share;
    let customer = format!(
        "{}-u{}-it{}",
        if fraud { "fraud-load" } else { "load" },
        user.weighted_users_index,
        user.get_iterations()
    );
    let mut shopper = Shopper {
        user,
        checks: &state.checks,
        group: Group::Shoppers,
        tags: TagSource::Fixed(Tag::Untagged),
        base_url: &state.settings.base_url,
    };
    let (_, products) = shopper.list_products().await?;
    let skus = in_stock_skus(&products);
    think(200, 700).await;

    let items = basket(&skus);
    if fraud {
        let (reply, _) = shopper.create_order(&customer, &items, true).await?;
        shopper.check_rejected(&reply, false);
    } else {
        let (reply, order) = shopper.create_order(&customer, &items, false).await?;
        if shopper.check_created(&reply, order.as_ref())
            && let Some(order) = order
        {
            let (got, read) = shopper.get_order(&order.id).await?;
            shopper.check("get order: status 200", got.is(200), &got);
            shopper.check(
                "get order: same id",
                read.is_some_and(|r| r.id == order.id),
                &got,
            );
        }
    }
    think(500, 1500).await;
    Ok(())
}
