//! `load chaos`: shoppers keep ordering while a controller breaks services on purpose
//! through their admin endpoints, then heals them, as `scripts/k6/chaos.js`.
//!
//! What must hold:
//! - service-b failing every `POST /events`: service-a's breaker opens, events wait in the
//!   Postgres outbox, and orders are still answered 201 `accepted`;
//! - once service-b is back, the outbox drains: the canary order placed during the outage
//!   ends `fulfilled`;
//! - service-d slow (`SLOW_MS` on every route): products and orders get slower, yet
//!   succeed (service-a's downstream timeout is 2 s, the gateway's 10 s), and are fast
//!   again afterwards.
//!
//! The timeline is chaos.js's 150 s, scaled to `CHAOS_DURATION` ([`Timeline::scaled`]):
//!
//! ```text
//! 150 s (default):  0-20 baseline | 20-60 service-b fails | 60-75 service-b back,
//!                   breaker recovers, outbox drains | 75-105 service-d slow | 105-150 recovery
//!  60 s (CI):       0-6.7 | 6.7-20 | 20-35 | 35-45 | 45-60
//! ```
//!
//! then the controller waits (up to 40% of the timeline more, at least 30 s) for the
//! canary. Shopper requests are named by the phase in force when they are sent, so each
//! phase has its own figures and thresholds. Unlike chaos.js, which tags by the clock, the
//! phase moves when the controller's admin call has taken effect, so a request named
//! `service_d_slow` never ran before service-d was made slow.

use super::{Plan, Schedule, now_ms, think, transaction, whole_seconds};
use crate::checks::Group;
use crate::config::{ConfigError, Settings};
use crate::faults::{AdminEndpoint, Fault, FaultSettings};
use crate::run::{LoadError, RunState};
use crate::shop::{
    FaultTarget, Item, Reply, RequestName, Route, Shopper, Tag, TagSource, basket, in_stock_skus,
};
use crate::thresholds::{Measure, Op, RequestFilter, Stat, TagFilter, Threshold};
use goose::config::GooseConfiguration;
use goose::goose::{GooseUser, Scenario, TransactionResult, get_base_url};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A phase of the chaos timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Nothing broken yet.
    Baseline,
    /// service-b fails every `POST /events`.
    ServiceBDown,
    /// service-b is back; the breaker probes, closes, and the outbox drains.
    ServiceBRecovering,
    /// service-d answers every route `SLOW_MS` later.
    ServiceDSlow,
    /// Everything healthy again.
    Recovery,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 5] = [
        Phase::Baseline,
        Phase::ServiceBDown,
        Phase::ServiceBRecovering,
        Phase::ServiceDSlow,
        Phase::Recovery,
    ];

    /// The name, as chaos.js's `phase` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::ServiceBDown => "service_b_down",
            Phase::ServiceBRecovering => "service_b_recovering",
            Phase::ServiceDSlow => "service_d_slow",
            Phase::Recovery => "recovery",
        }
    }
}

/// The phase in force, set by the controller, read by every shopper request.
#[derive(Debug, Default)]
pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    /// The phase now.
    pub fn get(&self) -> Phase {
        Phase::ALL[self.0.load(Ordering::SeqCst) as usize]
    }

    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.0.store(index as u8, Ordering::SeqCst);
    }
}

/// The controller's marks, from the start of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    /// service-b starts failing.
    pub b_down: Duration,
    /// service-b is healed.
    pub b_up: Duration,
    /// service-d gets slow.
    pub d_slow: Duration,
    /// service-d is fast again.
    pub d_fast: Duration,
    /// The shoppers stop.
    pub end: Duration,
    /// The controller gives up waiting for the canary.
    pub canary_deadline: Duration,
}

impl Timeline {
    /// The shortest service-b recovery phase. After service-b is healed, service-a's
    /// breaker (open after 5 failures) stays open until its half-open probe,
    /// `BREAKER_OPEN_MS` after it last opened (10 s in the dev stack), then closes on the
    /// probe's success, and the outbox relay (every 1 s, events older than 2 s) delivers
    /// what waited. 15 s covers those 10 + 1 + 2 s with margin, so the breaker has closed
    /// and the outbox drained before service-d is slowed; chaos.js's phase is 15 s too.
    /// A stack with a longer `BREAKER_OPEN_MS` needs a longer `CHAOS_DURATION`.
    pub const MIN_RECOVERING: Duration = Duration::from_secs(15);

    /// chaos.js's marks (20, 60, 75, 105, 150 s) scaled to `total`. The recovery phase
    /// (60-75 s) keeps at least [`Self::MIN_RECOVERING`]; the other four phases share the
    /// rest in chaos.js's proportions (20 : 40 : 30 : 45).
    pub fn scaled(total: Duration) -> Self {
        let total_s = total.as_secs_f64();
        let recovering = (total_s * 15.0 / 150.0).max(Self::MIN_RECOVERING.as_secs_f64());
        let unit = (total_s - recovering).max(0.0) / 135.0;
        let b_down = 20.0 * unit;
        let b_up = b_down + 40.0 * unit;
        let d_slow = b_up + recovering;
        let d_fast = d_slow + 30.0 * unit;
        let grace = (total_s * 0.4).max(30.0);
        let s = Duration::from_secs_f64;
        Self {
            b_down: s(b_down),
            b_up: s(b_up),
            d_slow: s(d_slow),
            d_fast: s(d_fast),
            end: total,
            canary_deadline: s(total_s + grace),
        }
    }

    /// The canary order is placed (chaos.js: 5 s into the 40 s outage).
    pub fn canary_at(&self) -> Duration {
        self.b_down + (self.b_up - self.b_down) / 8
    }

    /// The canary must still be `accepted` (chaos.js: 15 s into the outage).
    pub fn canary_check_at(&self) -> Duration {
        self.b_down + (self.b_up - self.b_down) * 3 / 8
    }

    /// One products request must show the latency (chaos.js: 5 s into the 30 s phase).
    pub fn slow_check_at(&self) -> Duration {
        self.d_slow + (self.d_fast - self.d_slow) / 6
    }
}

/// What the chaos users share besides the run's state.
#[derive(Debug)]
pub struct ChaosState {
    /// The marks.
    pub timeline: Timeline,
    /// The phase in force.
    pub phase: PhaseCell,
    started: OnceLock<Instant>,
    controller_ran: AtomicBool,
}

impl ChaosState {
    fn new(timeline: Timeline) -> Self {
        Self {
            timeline,
            phase: PhaseCell::default(),
            started: OnceLock::new(),
            controller_ran: AtomicBool::new(false),
        }
    }

    /// Time since the timeline started (when the first user first ran).
    fn elapsed(&self) -> Duration {
        self.started.get_or_init(Instant::now).elapsed()
    }

    async fn sleep_until(&self, mark: Duration) {
        let elapsed = self.elapsed();
        if mark > elapsed {
            tokio::time::sleep(mark - elapsed).await;
        }
    }

    fn log(&self, what: impl AsRef<str>) {
        eprintln!(
            "load: chaos t={:.0}s {}",
            self.elapsed().as_secs_f64(),
            what.as_ref()
        );
    }
}

pub(crate) fn plan(state: &Arc<RunState>) -> Result<Plan, ConfigError> {
    let settings = &state.settings;
    admin_token(settings)?;
    let timeline = Timeline::scaled(settings.chaos_duration);
    let chaos = state.chaos.get_or_init(|| ChaosState::new(timeline));
    let shoppers = settings.chaos_vus;
    let users = shoppers + 1;
    let end = whole_seconds(chaos.timeline.end);
    // Goose gives scenarios users round robin by weight: `shoppers` shoppers, one
    // controller. All start within the first second; at `end` goose stops them, the
    // shoppers after their iteration, the controller after its (long) transaction.
    let weighted = Scenario::new("shoppers")
        .set_weight(shoppers)
        .map_err(|e| ConfigError {
            name: "CHAOS_VUS",
            value: shoppers.to_string(),
            reason: e.to_string(),
        })?;
    let scenarios = vec![
        weighted.register_transaction(transaction(state, "shop", shop)),
        Scenario::new("controller").register_transaction(transaction(
            state,
            "break and heal",
            control,
        )),
    ];
    Ok(Plan {
        scenarios,
        schedule: Schedule::TestPlan(format!(
            "{users},1s;{users},{}s;0,0s",
            end.saturating_sub(1).max(1)
        )),
        thresholds: thresholds(settings.slow_ms),
        abort_rules: Vec::new(),
        abort_delay_s: 0,
    })
}

fn admin_token(settings: &Settings) -> Result<&str, ConfigError> {
    settings.admin_token.as_deref().ok_or(ConfigError {
        name: "ADMIN_TOKEN",
        value: String::new(),
        reason:
            "chaos needs the bearer token of /admin/faults (the dev stack's is dev-admin-token)"
                .into(),
    })
}

/// chaos.js's thresholds.
pub fn thresholds(slow_ms: u64) -> Vec<Threshold> {
    let orders_in = |phase| {
        Threshold::new(
            Measure::FailedRate(RequestFilter {
                route: Some(Route::CreateOrder),
                tags: TagFilter::Exactly(Tag::Phase(phase)),
            }),
            Op::Lt,
            0.01,
        )
    };
    let latency = |route, phase, stat, op, limit| {
        Threshold::new(
            Measure::Duration(
                RequestName {
                    route,
                    tag: Tag::Phase(phase),
                },
                stat,
            ),
            op,
            limit,
        )
    };
    vec![
        // Every step of the controller did what it should (faults applied, canary behaved).
        Threshold::new(Measure::CheckRate(Some(Group::Controller)), Op::Eq, 1.0),
        // The point of the breaker and the outbox: orders keep succeeding while service-b fails.
        orders_in(Phase::ServiceBDown),
        orders_in(Phase::ServiceDSlow),
        Threshold::new(
            Measure::FailedRate(RequestFilter {
                route: None,
                tags: TagFilter::Group(Group::Shoppers),
            }),
            Op::Lt,
            0.02,
        ),
        Threshold::new(Measure::CheckRate(Some(Group::Shoppers)), Op::Gt, 0.98),
        // Baseline is fast, the injected latency is visible at the gateway, and it goes away.
        latency(Route::Products, Phase::Baseline, Stat::P95, Op::Lt, 300.0),
        latency(
            Route::Products,
            Phase::ServiceDSlow,
            Stat::Median,
            Op::Ge,
            slow_ms as f64,
        ),
        latency(
            Route::CreateOrder,
            Phase::ServiceDSlow,
            Stat::P95,
            Op::Lt,
            2500.0,
        ),
        latency(Route::Products, Phase::Recovery, Stat::P95, Op::Lt, 300.0),
    ]
}

/// A goose user outside the attack, for the admin calls before and after it.
fn admin_user(settings: &Settings, config: &GooseConfiguration) -> Result<GooseUser, LoadError> {
    let url = get_base_url(Some(settings.base_url.clone()), None, None)?;
    Ok(GooseUser::single(url, config)?)
}

fn endpoints(settings: &Settings) -> Result<[AdminEndpoint<'_>; 2], ConfigError> {
    let token = admin_token(settings)?;
    Ok([
        AdminEndpoint {
            target: FaultTarget::ServiceB,
            base_url: &settings.service_b_admin_url,
            token,
        },
        AdminEndpoint {
            target: FaultTarget::ServiceD,
            base_url: &settings.service_d_admin_url,
            token,
        },
    ])
}

/// As chaos.js's `setup()`: fails fast when an admin endpoint is unreachable or refuses
/// the token, and starts from a clean state.
pub(crate) async fn prepare(
    settings: &Settings,
    config: &GooseConfiguration,
) -> Result<(), LoadError> {
    let mut user = admin_user(settings, config)?;
    for endpoint in endpoints(settings)? {
        let (reply, _) = endpoint
            .reset(&mut user)
            .await
            .map_err(|e| LoadError::Admin {
                target: endpoint.target.as_str(),
                url: endpoint.base_url.to_string(),
                detail: e.to_string(),
            })?;
        if !reply.is(200) {
            return Err(LoadError::Admin {
                target: endpoint.target.as_str(),
                url: endpoint.base_url.to_string(),
                detail: reply.describe(),
            });
        }
    }
    Ok(())
}

/// As chaos.js's `teardown()`: leaves no fault behind, even after a failed run.
pub(crate) async fn teardown(settings: &Settings, config: &GooseConfiguration) {
    let Ok(mut user) = admin_user(settings, config) else {
        return;
    };
    let Ok(endpoints) = endpoints(settings) else {
        return;
    };
    for endpoint in endpoints {
        match endpoint.reset(&mut user).await {
            Ok((reply, _)) if reply.is(200) => {}
            Ok((reply, _)) => eprintln!(
                "load: resetting {} faults at {} failed: {}",
                endpoint.target.as_str(),
                endpoint.base_url,
                reply.describe()
            ),
            Err(e) => eprintln!(
                "load: resetting {} faults at {} failed: {e}",
                endpoint.target.as_str(),
                endpoint.base_url
            ),
        }
    }
}

fn chaos_of(state: &RunState) -> &ChaosState {
    state
        .chaos
        .get()
        .expect("the chaos plan sets the chaos state before any user runs")
}

// ---------------------------------------------------------------------------- shoppers

fn shop(
    user: &mut GooseUser,
    state: Arc<RunState>,
) -> Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move { shop_once(user, &state).await })
}

async fn shop_once(user: &mut GooseUser, state: &RunState) -> TransactionResult {
    let chaos = chaos_of(state);
    if chaos.elapsed() >= chaos.timeline.end {
        // The timeline is over; goose stops the shoppers any moment now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    }
    let customer = format!(
        "load-chaos-u{}-it{}",
        user.weighted_users_index,
        user.get_iterations()
    );
    let mut shopper = Shopper {
        user,
        checks: &state.checks,
        group: Group::Shoppers,
        tags: TagSource::Phase(&chaos.phase),
        base_url: &state.settings.base_url,
    };
    let (_, products) = shopper.list_products().await?;
    let skus = in_stock_skus(&products);
    think(200, 500).await;
    let (reply, order) = shopper
        .create_order(&customer, &basket(&skus), false)
        .await?;
    if shopper.check_created(&reply, order.as_ref())
        && let Some(order) = order
    {
        let (got, _) = shopper.get_order(&order.id).await?;
        shopper.check("get order: status 200", got.is(200), &got);
    }
    think(500, 1000).await;
    Ok(())
}

// -------------------------------------------------------------------------- controller

fn control(
    user: &mut GooseUser,
    state: Arc<RunState>,
) -> Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move { break_and_heal(user, &state).await })
}

fn controller<'a>(user: &'a mut GooseUser, state: &'a RunState) -> Shopper<'a> {
    Shopper {
        user,
        checks: &state.checks,
        group: Group::Controller,
        tags: TagSource::Fixed(Tag::Controller),
        base_url: &state.settings.base_url,
    }
}

fn check_settings(
    state: &RunState,
    name: &str,
    reply: &Reply,
    settings: Option<FaultSettings>,
    expect: impl FnOnce(&FaultSettings) -> bool,
) -> bool {
    let passed = reply.is(200) && settings.as_ref().is_some_and(expect);
    state
        .checks
        .record(Group::Controller, name, passed, Some(&reply.trace), || {
            reply.describe()
        })
}

async fn break_and_heal(user: &mut GooseUser, state: &RunState) -> TransactionResult {
    let chaos = chaos_of(state);
    if chaos.controller_ran.swap(true, Ordering::SeqCst) {
        // The timeline runs once. Goose calls the transaction again until the run ends:
        // wait out the run here (goose's clock started before ours, so it stops the users
        // first, and this cut-short call is not counted as an iteration).
        chaos
            .sleep_until(chaos.timeline.end + Duration::from_secs(1))
            .await;
        return Ok(());
    }
    let [service_b, service_d] = endpoints(&state.settings).map_err(|e| e.to_string())?;
    timeline(user, state, chaos, &service_b, &service_d).await
}

/// Steps 1 to 6 of chaos.js's controller.
async fn timeline(
    user: &mut GooseUser,
    state: &RunState,
    chaos: &ChaosState,
    service_b: &AdminEndpoint<'_>,
    service_d: &AdminEndpoint<'_>,
) -> TransactionResult {
    let settings = &state.settings;
    let t = chaos.timeline;

    // 1. service-b fails every POST /events.
    chaos.sleep_until(t.b_down).await;
    let (reply, shown) = service_b
        .set(
            user,
            Some("POST /events"),
            Fault {
                latency_ms: 0,
                error_rate: 1.0,
            },
        )
        .await?;
    check_settings(
        state,
        "service-b: POST /events fails (fault applied)",
        &reply,
        shown,
        |s| {
            s.routes
                .get("POST /events")
                .is_some_and(|f| f.error_rate == 1.0)
        },
    );
    chaos.phase.set(Phase::ServiceBDown);
    chaos.log("service-b fails every POST /events");

    // 2. An order during the outage is still accepted, and stays accepted: its event waits
    //    in the outbox instead of reaching Kafka.
    chaos.sleep_until(t.canary_at()).await;
    let mut shopper = controller(user, state);
    let (_, products) = shopper.list_products().await?;
    let skus = in_stock_skus(&products);
    let (reply, canary) = shopper
        .create_order(
            &format!("load-chaos-canary-{}", now_ms()),
            &[Item {
                sku: skus[0].clone(),
                quantity: 1,
            }],
            false,
        )
        .await?;
    shopper.check(
        "outage: order still 201 accepted",
        reply.is(201) && canary.as_ref().is_some_and(|o| o.status == "accepted"),
        &reply,
    );
    let canary_id = canary.map(|o| o.id);
    chaos.log(format!(
        "canary order {} (trace {})",
        canary_id.as_deref().unwrap_or("none"),
        reply.trace.trace_id()
    ));
    chaos.sleep_until(t.canary_check_at()).await;
    if let Some(id) = &canary_id {
        let (reply, order) = shopper.get_order(id).await?;
        shopper.check(
            "outage: canary not fulfilled while service-b is down",
            order.is_some_and(|o| o.status == "accepted"),
            &reply,
        );
    }

    // 3. service-b is back: the breaker half-opens after BREAKER_OPEN_MS, closes on
    //    success, and the relay drains the outbox.
    chaos.sleep_until(t.b_up).await;
    let (reply, shown) = service_b.reset(user).await?;
    check_settings(state, "service-b: faults reset", &reply, shown, |s| {
        s.routes.is_empty()
    });
    chaos.phase.set(Phase::ServiceBRecovering);
    chaos.log("service-b healthy again");

    // 4. service-d answers every route SLOW_MS later.
    chaos.sleep_until(t.d_slow).await;
    let slow_ms = settings.slow_ms;
    let (reply, shown) = service_d
        .set(
            user,
            None,
            Fault {
                latency_ms: slow_ms,
                error_rate: 0.0,
            },
        )
        .await?;
    check_settings(
        state,
        "service-d: slow on every route (fault applied)",
        &reply,
        shown,
        |s| s.default.latency_ms == slow_ms,
    );
    chaos.phase.set(Phase::ServiceDSlow);
    chaos.log(format!("service-d slow ({slow_ms} ms)"));
    chaos.sleep_until(t.slow_check_at()).await;
    let mut shopper = controller(user, state);
    let slow = shopper.get_products().await?;
    shopper.check(
        "service-d slow: visible at the gateway",
        slow.is(200) && slow.duration_ms >= slow_ms as f64,
        &slow,
    );

    // 5. service-d fast again.
    chaos.sleep_until(t.d_fast).await;
    let (reply, shown) = service_d.reset(user).await?;
    check_settings(state, "service-d: faults reset", &reply, shown, |s| {
        s.default.latency_ms == 0
    });
    chaos.phase.set(Phase::Recovery);
    let (reply, shown) = service_b.show(user).await?;
    check_settings(state, "service-b: still no faults", &reply, shown, |s| {
        s.routes.is_empty()
    });
    chaos.log("service-d fast again");

    // 6. Nothing was lost: the outage's canary order ends fulfilled.
    let Some(id) = canary_id else {
        return Ok(());
    };
    let mut shopper = controller(user, state);
    let mut last: Option<(Reply, String)> = None;
    while chaos.elapsed() < t.canary_deadline {
        let (reply, order) = shopper.get_order(&id).await?;
        let status = order.map(|o| o.status).unwrap_or_default();
        let done = status == "fulfilled";
        last = Some((reply, status));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let fulfilled = last
        .as_ref()
        .is_some_and(|(_, status)| status == "fulfilled");
    state.checks.record(
        Group::Controller,
        "recovery: canary from the outage fulfilled (outbox drained)",
        fulfilled,
        last.as_ref().map(|(reply, _)| &reply.trace),
        || match &last {
            Some((_, status)) => format!("canary {id} is {status:?}"),
            None => format!("canary {id} was never read back"),
        },
    );
    chaos.log(format!(
        "canary {id} is {}",
        last.as_ref().map(|(_, s)| s.as_str()).unwrap_or("unknown")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        (d.as_secs_f64() * 1000.0).round() / 1000.0
    }

    #[test]
    fn the_default_timeline_is_chaos_js() {
        let t = Timeline::scaled(Duration::from_secs(150));
        assert_eq!(
            [t.b_down, t.b_up, t.d_slow, t.d_fast, t.end].map(secs),
            [20.0, 60.0, 75.0, 105.0, 150.0]
        );
        assert_eq!(secs(t.canary_at()), 25.0);
        assert_eq!(secs(t.canary_check_at()), 35.0);
        assert_eq!(secs(t.slow_check_at()), 80.0);
        assert_eq!(secs(t.canary_deadline), 210.0);
    }

    #[test]
    fn a_short_timeline_keeps_the_breaker_recovery_window() {
        let t = Timeline::scaled(Duration::from_secs(60));
        assert_eq!(secs(t.d_slow - t.b_up), 15.0);
        assert!(t.d_slow - t.b_up >= Timeline::MIN_RECOVERING);
        // The other phases share the rest as chaos.js does: 20 : 40 : 30 : 45.
        assert_eq!(
            secs(t.b_down),
            secs(Duration::from_secs_f64(45.0 * 20.0 / 135.0))
        );
        assert_eq!(secs(t.b_up - t.b_down), 13.333);
        assert_eq!(secs(t.d_fast - t.d_slow), 10.0);
        assert_eq!(secs(t.end - t.d_fast), 15.0);
        assert_eq!(secs(t.canary_deadline), 90.0);
        assert!(t.canary_at() < t.canary_check_at() && t.canary_check_at() < t.b_up);
        assert!(t.d_slow < t.slow_check_at() && t.slow_check_at() < t.d_fast);
    }

    #[test]
    fn marks_are_in_order_for_every_allowed_duration() {
        for total in [45, 46, 60, 90, 149, 150, 151, 300, 3600] {
            let t = Timeline::scaled(Duration::from_secs(total));
            assert!(Duration::ZERO < t.b_down, "{total}");
            assert!(
                t.b_down < t.b_up && t.b_up < t.d_slow && t.d_slow < t.d_fast,
                "{total}"
            );
            assert!(t.d_fast < t.end && t.end < t.canary_deadline, "{total}");
            assert!(t.d_slow - t.b_up >= Timeline::MIN_RECOVERING, "{total}");
        }
    }

    #[test]
    fn phase_cell_moves_through_every_phase() {
        let cell = PhaseCell::default();
        assert_eq!(cell.get(), Phase::Baseline);
        for phase in Phase::ALL {
            cell.set(phase);
            assert_eq!(cell.get(), phase);
        }
    }

    #[test]
    fn thresholds_are_chaos_js() {
        let rules: Vec<String> = thresholds(300)
            .iter()
            .map(|t| format!("{} {}", t.metric(), t.condition()))
            .collect();
        assert_eq!(
            rules,
            [
                "checks{group:controller} rate==1",
                "http_req_failed{name:POST /api/orders,phase:service_b_down} rate<0.01",
                "http_req_failed{name:POST /api/orders,phase:service_d_slow} rate<0.01",
                "http_req_failed{group:shoppers} rate<0.02",
                "checks{group:shoppers} rate>0.98",
                "http_req_duration{name:GET /api/products,phase:baseline} p(95)<300",
                "http_req_duration{name:GET /api/products,phase:service_d_slow} med>=300",
                "http_req_duration{name:POST /api/orders,phase:service_d_slow} p(95)<2500",
                "http_req_duration{name:GET /api/products,phase:recovery} p(95)<300",
            ]
        );
    }
}
