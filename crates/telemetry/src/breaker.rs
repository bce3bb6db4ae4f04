//! A circuit breaker whose every state change is visible in all three signals.
//!
//! States: **closed** (calls pass, consecutive failures are counted), **open** (calls are
//! rejected at once until `open_for` has passed), **half-open** (a limited number of probe
//! calls pass; one success closes the breaker, one failure opens it again).
//!
//! Each transition is one `tracing` event, which becomes both a JSON log line and a span
//! event on the caller's current span, and updates three OTLP metrics:
//! `circuit_breaker.state` (gauge: 0 closed, 1 open, 2 half-open),
//! `circuit_breaker.transitions` and `circuit_breaker.rejections` (counters).
//! Time comes from `tokio::time`, so tests drive it with a paused clock.
//!
//! The public API is four items: a [`CircuitBreaker`], its [`BreakerConfig`], the
//! [`BreakerMiddleware`] that puts it in front of a reqwest client, and the [`BreakerOpen`]
//! error a rejected call returns. The state machine and its bookkeeping stay private.

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Meter},
};
use std::{
    fmt,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::time::Instant;

/// When the breaker opens and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before it lets a probe through.
    pub open_for: Duration,
    /// Concurrent probe calls allowed while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
            half_open_probes: 1,
        }
    }
}

/// The three states of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls are rejected without being made.
    Open,
    /// A few probe calls pass to test the dependency.
    HalfOpen,
}

impl BreakerState {
    /// Lowercase name used in logs and metric attributes.
    fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn gauge_value(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The call was not made because the breaker is open (or its probes are busy).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("circuit breaker '{breaker}' is open; retry in {retry_after:?}")]
pub struct BreakerOpen {
    /// The breaker's name.
    pub breaker: String,
    /// Time until the next probe may pass.
    pub retry_after: Duration,
}

/// Error of a call made through a breaker.
#[derive(Debug, thiserror::Error)]
enum BreakerError<E> {
    /// Rejected without calling.
    #[error(transparent)]
    Open(#[from] BreakerOpen),
    /// The call ran and failed.
    #[error(transparent)]
    Failed(E),
}

struct BreakerMetrics {
    state: Gauge<u64>,
    transitions: Counter<u64>,
    rejections: Counter<u64>,
}

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Instant,
    probes_in_flight: u32,
}

/// A circuit breaker around any async call. Share it with `Arc`.
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<Inner>,
    metrics: BreakerMetrics,
    attributes: [KeyValue; 1],
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

/// Permission to make one call; tells the breaker how it went, or releases a probe
/// slot if the caller's future is dropped mid-call.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            let mut inner = self.breaker.lock();
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker whose metrics go to the global meter provider.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self::with_meter(name, config, &opentelemetry::global::meter("telemetry"))
    }

    /// A closed breaker whose metrics go to `meter`.
    fn with_meter(name: impl Into<String>, config: BreakerConfig, meter: &Meter) -> Self {
        let name = name.into();
        let metrics = BreakerMetrics {
            state: meter
                .u64_gauge("circuit_breaker.state")
                .with_description("Breaker state: 0 closed, 1 open, 2 half-open.")
                .build(),
            transitions: meter
                .u64_counter("circuit_breaker.transitions")
                .with_description("State changes, by from and to state.")
                .build(),
            rejections: meter
                .u64_counter("circuit_breaker.rejections")
                .with_description("Calls rejected without being made.")
                .build(),
        };
        let attributes = [KeyValue::new("breaker", name.clone())];
        metrics.state.record(0, &attributes);
        Self {
            name,
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                half_open_probes: config.half_open_probes.max(1),
                ..config
            },
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
            }),
            metrics,
            attributes,
        }
    }

    /// The current state (an open breaker whose wait is over still reads `Open` until
    /// the next call turns it half-open).
    fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Runs `call` if the breaker allows it; an `Err` counts as a failure.
    #[cfg(test)]
    async fn call<T, E, Fut>(&self, call: impl FnOnce() -> Fut) -> Result<T, BreakerError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(call, Result::is_err).await
    }

    /// Runs `call` if allowed; `is_failure` decides whether the outcome counts as a
    /// failure (for example an HTTP 503 that arrived as `Ok`).
    async fn call_classified<T, E, Fut>(
        &self,
        call: impl FnOnce() -> Fut,
        is_failure: impl FnOnce(&Result<T, E>) -> bool,
    ) -> Result<T, BreakerError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut permit = self.acquire()?;
        let result = call().await;
        permit.done = true;
        self.record(permit.probe, !is_failure(&result));
        result.map_err(BreakerError::Failed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn acquire(&self) -> Result<Permit<'_>, BreakerOpen> {
        let mut inner = self.lock();
        let now = Instant::now();
        if inner.state == BreakerState::Open {
            let reopen_at = inner.opened_at + self.config.open_for;
            if now < reopen_at {
                drop(inner);
                return Err(self.reject(reopen_at - now));
            }
            self.transition(&mut inner, BreakerState::HalfOpen, "open period elapsed");
        }
        if inner.state == BreakerState::HalfOpen {
            if inner.probes_in_flight >= self.config.half_open_probes {
                drop(inner);
                return Err(self.reject(Duration::ZERO));
            }
            inner.probes_in_flight += 1;
            return Ok(Permit {
                breaker: self,
                probe: true,
                done: false,
            });
        }
        Ok(Permit {
            breaker: self,
            probe: false,
            done: false,
        })
    }

    fn reject(&self, retry_after: Duration) -> BreakerOpen {
        self.metrics.rejections.add(1, &self.attributes);
        tracing::debug!(breaker = %self.name, "circuit breaker rejected a call");
        BreakerOpen {
            breaker: self.name.clone(),
            retry_after,
        }
    }

    fn record(&self, probe: bool, success: bool) {
        let mut inner = self.lock();
        if probe {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
        match (inner.state, success) {
            (BreakerState::Closed, true) => inner.consecutive_failures = 0,
            (BreakerState::Closed, false) => {
                inner.consecutive_failures += 1;
                if inner.consecutive_failures >= self.config.failure_threshold {
                    self.transition(&mut inner, BreakerState::Open, "failure threshold reached");
                }
            }
            (BreakerState::HalfOpen, true) if probe => {
                self.transition(&mut inner, BreakerState::Closed, "probe succeeded");
            }
            (BreakerState::HalfOpen, false) if probe => {
                self.transition(&mut inner, BreakerState::Open, "probe failed");
            }
            // A call that began in an earlier state finished late: it says nothing
            // about the dependency's health now.
            _ => {}
        }
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState, reason: &'static str) {
        let from = inner.state;
        inner.state = to;
        inner.consecutive_failures = 0;
        if to == BreakerState::Open {
            inner.opened_at = Instant::now();
        }
        // One event: a log line on stdout/OTLP and a span event on the current span.
        if to == BreakerState::Open {
            tracing::warn!(
                breaker = %self.name, breaker.from = from.as_str(), breaker.to = to.as_str(), reason,
                "circuit breaker state changed"
            );
        } else {
            tracing::info!(
                breaker = %self.name, breaker.from = from.as_str(), breaker.to = to.as_str(), reason,
                "circuit breaker state changed"
            );
        }
        self.metrics
            .state
            .record(to.gauge_value(), &self.attributes);
        self.metrics.transitions.add(
            1,
            &[
                self.attributes[0].clone(),
                KeyValue::new("from", from.as_str()),
                KeyValue::new("to", to.as_str()),
            ],
        );
    }
}

/// reqwest-middleware layer: a transport error or a 5xx response is a failure; while
/// open, requests fail at once with [`BreakerOpen`] inside
/// `reqwest_middleware::Error::Middleware`.
#[derive(Clone, Debug)]
pub struct BreakerMiddleware {
    breaker: Arc<CircuitBreaker>,
}

impl BreakerMiddleware {
    /// Guards requests with `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker }
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for BreakerMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let result = self
            .breaker
            .call_classified(
                || next.run(req, extensions),
                |r| match r {
                    Ok(response) => response.status().is_server_error(),
                    Err(_) => true,
                },
            )
            .await;
        match result {
            Ok(response) => Ok(response),
            Err(BreakerError::Failed(error)) => Err(error),
            Err(BreakerError::Open(open)) => {
                Err(reqwest_middleware::Error::Middleware(open.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{
        InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
        data::{AggregatedMetrics, MetricData},
    };

    const CONFIG: BreakerConfig = BreakerConfig {
        failure_threshold: 3,
        open_for: Duration::from_secs(30),
        half_open_probes: 1,
    };

    async fn fail(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
        b.call(|| async { Err::<(), _>("boom") }).await
    }

    async fn succeed(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
        b.call(|| async { Ok::<(), &str>(()) }).await
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::with_meter("test", CONFIG, &opentelemetry::global::meter("noop"))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_rejects_fast_then_probes_and_closes() {
        let b = breaker();
        for _ in 0..2 {
            assert!(matches!(fail(&b).await, Err(BreakerError::Failed("boom"))));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(matches!(fail(&b).await, Err(BreakerError::Failed(_))));
        assert_eq!(b.state(), BreakerState::Open);

        // While open the call is not made.
        let mut called = false;
        let rejected = b
            .call(|| {
                called = true;
                async { Ok::<(), &str>(()) }
            })
            .await;
        assert!(!called);
        match rejected {
            Err(BreakerError::Open(open)) => assert_eq!(open.retry_after, CONFIG.open_for),
            other => panic!("expected a rejection, got {other:?}"),
        }

        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(matches!(succeed(&b).await, Err(BreakerError::Open(_))));
        tokio::time::advance(Duration::from_secs(1)).await;
        // The wait is over: the next call is a probe, and its success closes the breaker.
        assert!(succeed(&b).await.is_ok());
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_a_full_period() {
        let b = breaker();
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        tokio::time::advance(CONFIG.open_for).await;
        assert!(matches!(fail(&b).await, Err(BreakerError::Failed(_))));
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(CONFIG.open_for - Duration::from_millis(1)).await;
        assert!(matches!(succeed(&b).await, Err(BreakerError::Open(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_only_the_configured_probes_through() {
        let b = Arc::new(breaker());
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        tokio::time::advance(CONFIG.open_for).await;
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let probe = tokio::spawn({
            let b = b.clone();
            async move { b.call(|| async { wait.await.map_err(|_| "dropped") }).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(
            matches!(succeed(&b).await, Err(BreakerError::Open(_))),
            "second probe must wait"
        );
        release.send(()).unwrap();
        assert!(probe.await.unwrap().is_ok());
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_its_slot() {
        let b = breaker();
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        tokio::time::advance(CONFIG.open_for).await;
        let never = b.call(std::future::pending::<Result<(), &str>>);
        // Poll once so the probe slot is taken, then drop the call.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), never)
                .await
                .is_err()
        );
        assert!(
            succeed(&b).await.is_ok(),
            "the slot of the dropped probe was not freed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let b = breaker();
        let _ = fail(&b).await;
        let _ = fail(&b).await;
        succeed(&b).await.unwrap();
        let _ = fail(&b).await;
        let _ = fail(&b).await;
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_and_rejections_are_metrics() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let b = CircuitBreaker::with_meter("orders", CONFIG, &provider.meter("test"));
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        let _ = succeed(&b).await; // rejected
        let _ = succeed(&b).await; // rejected
        tokio::time::advance(CONFIG.open_for).await;
        succeed(&b).await.unwrap();

        // Flush off the runtime thread: the reader blocks while it exports.
        let (provider, exporter) = tokio::task::spawn_blocking(move || {
            provider.force_flush().unwrap();
            (provider, exporter)
        })
        .await
        .unwrap();
        let metrics = exporter.get_finished_metrics().unwrap();
        let mut transitions = Vec::new();
        let mut rejections = 0;
        let mut state = None;
        for rm in &metrics {
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    match (m.name(), m.data()) {
                        (
                            "circuit_breaker.transitions",
                            AggregatedMetrics::U64(MetricData::Sum(s)),
                        ) => {
                            for p in s.data_points() {
                                let attr = |k: &str| {
                                    p.attributes()
                                        .find(|kv| kv.key.as_str() == k)
                                        .map(|kv| kv.value.to_string())
                                        .unwrap()
                                };
                                transitions.push((attr("from"), attr("to"), p.value()));
                            }
                        }
                        (
                            "circuit_breaker.rejections",
                            AggregatedMetrics::U64(MetricData::Sum(s)),
                        ) => {
                            rejections = s.data_points().map(|p| p.value()).sum();
                        }
                        ("circuit_breaker.state", AggregatedMetrics::U64(MetricData::Gauge(g))) => {
                            state = g.data_points().map(|p| p.value()).next();
                        }
                        _ => {}
                    }
                }
            }
        }
        transitions.sort();
        assert_eq!(
            transitions,
            vec![
                ("closed".into(), "open".into(), 1),
                ("half_open".into(), "closed".into(), 1),
                ("open".into(), "half_open".into(), 1),
            ]
        );
        assert_eq!(rejections, 2);
        assert_eq!(state, Some(0));
        tokio::task::spawn_blocking(move || provider.shutdown().unwrap())
            .await
            .unwrap();
    }
}
