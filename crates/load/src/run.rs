//! Running a scenario: the goose attack is configured in code (goose never reads the
//! process's arguments), executed, and its metrics judged.

use crate::checks::Checks;
use crate::config::{ConfigError, Settings};
use crate::scenarios::chaos::{self, ChaosState};
use crate::scenarios::{Plan, ScenarioKind, Schedule};
use crate::summary::{Summary, measure};
use crate::thresholds::{ThresholdResult, evaluate};
use goose::client::GooseClientBuilder;
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::metrics::GooseMetrics;
use goose::{GooseAttack, GooseError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one request may take before it counts as failed (no response). The gateway
/// gives up on its upstreams after 10 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a run could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Goose refused the configuration or failed to run.
    #[error("goose: {0}")]
    Goose(#[from] GooseError),
    /// A fault endpoint chaos needs is unreachable or refused the call.
    #[error("{target} admin endpoint {url}/admin/faults: {detail}")]
    Admin {
        /// The service.
        target: &'static str,
        /// Its admin base URL.
        url: String,
        /// What happened.
        detail: String,
    },
}

impl LoadError {
    /// Whether the error is the caller's (a setting), rather than the run's.
    pub fn is_usage(&self) -> bool {
        matches!(self, LoadError::Config(_))
    }
}

/// What every user of a run shares.
#[derive(Debug)]
pub struct RunState {
    /// The settings.
    pub settings: Settings,
    /// The checks.
    pub checks: Checks,
    counters: Mutex<BTreeMap<String, u64>>,
    /// The chaos timeline and phase, for a chaos run.
    pub chaos: OnceLock<ChaosState>,
}

impl RunState {
    /// A fresh state.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            checks: Checks::new(),
            counters: Mutex::new(BTreeMap::new()),
            chaos: OnceLock::new(),
        }
    }

    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default() += n;
    }

    /// The counters now.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Goose's configuration: the gateway as host, warnings only on the console, no final
/// metrics table (the summary replaces it), no telnet controller (it would listen on a
/// port), no per-transaction metrics.
fn goose_configuration(settings: &Settings) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(settings.base_url.clone());
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_telnet = true;
    config.no_transaction_metrics = true;
    config.timeout = Some(REQUEST_TIMEOUT.as_secs().to_string());
    config
}

/// The goose attack of a plan: its scenarios, its schedule, goose's own abort rules.
fn attack(
    config: GooseConfiguration,
    scenarios: Vec<goose::goose::Scenario>,
    schedule: &Schedule,
    abort_rules: &[&str],
    abort_delay_s: usize,
) -> Result<GooseAttack, GooseError> {
    let client = GooseClientBuilder::new()
        .without_cookies()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("otel-demo-load/", env!("CARGO_PKG_VERSION")));
    let mut attack =
        GooseAttack::initialize_with_config(config)?.set_client_builder_without_cookies(client)?;
    for scenario in scenarios {
        attack = attack.register_scenario(scenario);
    }
    // `set_default` hands the attack back boxed.
    match schedule {
        Schedule::Iterations { users, iterations } => {
            attack = *attack.set_default(GooseDefault::Users, *users)?;
            attack = *attack.set_default(GooseDefault::Iterations, *iterations)?;
        }
        Schedule::TestPlan(steps) => {
            attack = *attack.set_default(GooseDefault::TestPlan, steps.as_str())?;
        }
    }
    for rule in abort_rules {
        attack = *attack.set_default(GooseDefault::Threshold, *rule)?;
    }
    if !abort_rules.is_empty() {
        attack = *attack.set_default(GooseDefault::ThresholdAbortDelay, abort_delay_s)?;
    }
    Ok(attack)
}

/// Runs `kind` against the stack `settings` names and judges it.
pub async fn run(kind: ScenarioKind, settings: &Settings) -> Result<Summary, LoadError> {
    let state = Arc::new(RunState::new(settings.clone()));
    let config = goose_configuration(settings);
    let Plan {
        scenarios,
        schedule,
        thresholds,
        abort_rules,
        abort_delay_s,
    } = kind.plan(&state)?;
    if kind == ScenarioKind::Chaos {
        chaos::prepare(settings, &config).await?;
    }
    eprintln!(
        "load: {kind} against {} ({})",
        settings.base_url,
        describe(kind, settings)
    );
    let attack = attack(
        config.clone(),
        scenarios,
        &schedule,
        &abort_rules,
        abort_delay_s,
    )?;
    let started = Instant::now();
    let outcome = attack.execute().await;
    let duration = started.elapsed();
    if kind == ScenarioKind::Chaos {
        chaos::teardown(settings, &config).await;
    }
    let mut notes = Vec::new();
    let metrics: GooseMetrics = match outcome {
        Ok(metrics) => metrics,
        // A rule of goose's own failed (and may have stopped the run): judge the rest too.
        Err(GooseError::ThresholdsFailed { failed, metrics }) => {
            for result in failed.iter().filter(|r| r.aborted) {
                notes.push(format!(
                    "goose stopped the run early: {} failed (observed {})",
                    result.rule, result.observed
                ));
            }
            *metrics.0
        }
        Err(e) => return Err(e.into()),
    };

    let measured = measure(&metrics, &state.checks, state.counters());
    let mut results = evaluate(&thresholds, &measured);
    let total_requests: u64 = measured.requests.iter().map(|r| r.count).sum();
    results.extend(metrics.thresholds.iter().map(|r| ThresholdResult {
        metric: "goose".into(),
        condition: r.rule.clone(),
        observed: r.value,
        samples: total_requests,
        passed: r.passed,
    }));
    let iterations = metrics
        .scenarios
        .iter()
        .map(|s| (s.name.to_string(), s.run_times.counter as u64))
        .collect();
    Ok(Summary::new(
        kind.as_str(),
        &settings.base_url,
        duration.as_secs_f64(),
        iterations,
        measured,
        results,
        notes,
    ))
}

fn describe(kind: ScenarioKind, s: &Settings) -> String {
    match kind {
        ScenarioKind::Smoke => format!(
            "one shopper, FULFIL_TIMEOUT {}s",
            s.fulfil_timeout.as_secs_f64()
        ),
        ScenarioKind::Load => format!(
            "{} shoppers for {}s, FRAUD_SHARE {}",
            s.load_vus,
            s.load_duration.as_secs_f64(),
            s.fraud_share
        ),
        ScenarioKind::Chaos => format!(
            "{} shoppers for {}s, SLOW_MS {}",
            s.chaos_vus,
            s.chaos_duration.as_secs_f64(),
            s.slow_ms
        ),
    }
}
