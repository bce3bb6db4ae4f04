//! The three scenarios, one module each, ports of `scripts/k6/{smoke,load,chaos}.js`.
//!
//! A scenario is a plan: goose scenarios with their transactions, how users are
//! scheduled, and the thresholds that judge the run.

pub mod chaos;
pub mod load;
pub mod smoke;

use crate::config::ConfigError;
use crate::run::RunState;
use crate::thresholds::Threshold;
use goose::goose::{GooseUser, Scenario, Transaction, TransactionFunction, TransactionResult};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Which scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioKind {
    /// One order end to end (smoke.js).
    Smoke,
    /// Shoppers ramping up, holding, ramping down (load.js).
    Load,
    /// Shoppers while a controller breaks and heals services (chaos.js).
    Chaos,
}

impl ScenarioKind {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Smoke => "smoke",
            ScenarioKind::Load => "load",
            ScenarioKind::Chaos => "chaos",
        }
    }

    /// The plan of this scenario for `state`'s settings.
    pub(crate) fn plan(self, state: &Arc<RunState>) -> Result<Plan, ConfigError> {
        match self {
            ScenarioKind::Smoke => Ok(smoke::plan(state)),
            ScenarioKind::Load => Ok(load::plan(state)),
            ScenarioKind::Chaos => chaos::plan(state),
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScenarioKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "smoke" => Ok(ScenarioKind::Smoke),
            "load" => Ok(ScenarioKind::Load),
            "chaos" => Ok(ScenarioKind::Chaos),
            other => Err(format!(
                "unknown scenario {other:?} (expected smoke, load or chaos)"
            )),
        }
    }
}

/// How goose starts and stops users.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Schedule {
    /// `users` users, each running its scenario `iterations` times.
    Iterations { users: usize, iterations: usize },
    /// A goose test plan, `"users,time;users,time;..."`, times in whole seconds.
    TestPlan(String),
}

/// A scenario ready to run.
pub(crate) struct Plan {
    /// Goose scenarios, with their transactions.
    pub scenarios: Vec<Scenario>,
    /// How users come and go.
    pub schedule: Schedule,
    /// Our rules, judged when the run ends.
    pub thresholds: Vec<Threshold>,
    /// Rules given to goose itself, which it checks once a second and which stop the run
    /// early when they fail (k6's `abortOnFail`), with the delay before the first check.
    pub abort_rules: Vec<&'static str>,
    /// Seconds goose waits before checking `abort_rules`.
    pub abort_delay_s: usize,
}

/// Whole seconds for a goose test plan step, at least 1 (as k6's `seconds()` helper).
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs_f64().round().max(1.0) as u64
}

/// The body of a goose transaction that needs the run's state.
type Body = for<'r> fn(
    &'r mut GooseUser,
    Arc<RunState>,
) -> Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// A goose transaction running `body` with the run's state.
pub(crate) fn transaction(state: &Arc<RunState>, name: &str, body: Body) -> Transaction {
    let state = Arc::clone(state);
    let function: TransactionFunction = Arc::new(move |user| body(user, Arc::clone(&state)));
    Transaction::new(function).set_name(name)
}

/// A random pause between `min` and `max` milliseconds (a shopper's think time).
pub(crate) async fn think(min_ms: u64, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(min_ms..=max_ms))).await;
}

/// A number for unique customer ids: milliseconds since the epoch.
pub(crate) fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for kind in [ScenarioKind::Smoke, ScenarioKind::Load, ScenarioKind::Chaos] {
            assert_eq!(kind.as_str().parse::<ScenarioKind>(), Ok(kind));
        }
        assert!("Smoke".parse::<ScenarioKind>().is_err());
    }

    #[test]
    fn plan_steps_are_whole_seconds_of_at_least_one() {
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_secs_f64(7.5)), 8);
        assert_eq!(whole_seconds(Duration::from_secs(36)), 36);
    }
}
