//! Liveness and readiness.
//!
//! `/healthz` answers 200 while the process serves HTTP. `/readyz` runs every registered
//! check (Postgres reachable, Kafka metadata, ...) with a timeout and answers 200 only if
//! all pass, else 503 with the failing checks named, so a service that starts before
//! its dependencies stays up and reports why it is not ready yet.

use crate::problem::Problem;
use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::{Map, Value, json};
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The named checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Check)>,
}

impl Readiness {
    /// No checks: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check; `Err(reason)` means not ready.
    pub fn check<F, Fut>(mut self, name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.to_owned(), Arc::new(move || Box::pin(check()))));
        self
    }

    /// Runs every check concurrently (a task each: a slow check does not hold up the
    /// others); returns each one's outcome, in the order the checks were added.
    pub async fn run(&self) -> Vec<(String, Result<(), String>)> {
        let tasks: Vec<_> = self
            .checks
            .iter()
            .map(|(name, check)| {
                let check = tokio::time::timeout(CHECK_TIMEOUT, check());
                (name.clone(), tokio::spawn(check))
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for (name, task) in tasks {
            let outcome = match task.await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                // A check that panicked is a failed check, not a failed probe.
                Err(join_error) => Err(join_error.to_string()),
            };
            results.push((name, outcome));
        }
        results
    }

    /// `GET /healthz` and `GET /readyz`.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let readiness = self;
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route(
                "/readyz",
                get(move || {
                    let readiness = readiness.clone();
                    async move { readiness.respond().await }
                }),
            )
    }

    async fn respond(&self) -> axum::response::Response {
        let results = self.run().await;
        let mut checks = Map::new();
        let mut failing = Vec::new();
        for (name, outcome) in results {
            match outcome {
                Ok(()) => {
                    checks.insert(name, Value::from("ok"));
                }
                Err(reason) => {
                    failing.push(name.clone());
                    checks.insert(name, Value::from(reason));
                }
            }
        }
        if failing.is_empty() {
            Json(json!({"status": "ready", "checks": checks})).into_response()
        } else {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                format!("not ready: {}", failing.join(", ")),
            )
            .with("checks", Value::Object(checks))
            .into_response()
        }
    }
}

/// Readiness of a Kafka broker: it answers a metadata request for `topic` within a
/// second. librdkafka's metadata call blocks, so it runs on the blocking pool.
#[cfg(feature = "kafka")]
pub async fn kafka_broker_reachable(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
) -> Result<(), String> {
    use rdkafka::producer::Producer as _;
    let (producer, topic) = (producer.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(
                Some(&topic),
                rdkafka::util::Timeout::After(std::time::Duration::from_secs(1)),
            )
            .map(|_| ())
            .map_err(|e| format!("Kafka metadata: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn readyz_names_failing_checks() {
        let router: Router = Readiness::new()
            .check("postgres", || async { Ok(()) })
            .check("kafka", || async { Err("broker down".to_owned()) })
            .router();
        let response = router
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["checks"]["kafka"], "broker down");
        assert_eq!(body["checks"]["postgres"], "ok");
        let alive = router
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(alive.status(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_run_at_the_same_time() {
        let second = || async {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Ok(())
        };
        let readiness = Readiness::new().check("a", second).check("b", second);
        let started = tokio::time::Instant::now();
        let results = readiness.run().await;
        // On the paused clock: one after another would be 2 s.
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
        assert_eq!(
            results.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_times_out() {
        let readiness = Readiness::new().check("slow", std::future::pending);
        let results = readiness.run().await;
        assert!(results[0].1.as_ref().unwrap_err().contains("no answer"));
    }
}
