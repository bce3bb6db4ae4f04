//! Fault injection: added latency and an error rate per route, changeable at runtime.
//!
//! Defaults come from the environment (`FAULT_LATENCY_MS`, `FAULT_ERROR_RATE` for every
//! route, `FAULTS` as JSON for single routes: `{"POST /events": {"error_rate": 0.5}}`).
//! The admin endpoint changes them while the service runs, so a demo or a k6 chaos
//! scenario can make service-d slow or service-b fail and watch the breaker and the
//! telemetry react:
//!
//! ```text
//! GET    /admin/faults                        current settings
//! PUT    /admin/faults  {"route": "POST /events", "latency_ms": 0, "error_rate": 1.0}
//! PUT    /admin/faults  {"latency_ms": 300}     (no route: every route)
//! DELETE /admin/faults                        back to the environment's defaults
//! ```
//!
//! Every admin call needs `Authorization: Bearer $ADMIN_TOKEN`; without `ADMIN_TOKEN`
//! the admin endpoint is off. Injected errors are 503 problem+json responses, counted in
//! the OTLP counter `faults.injected` (attributes `route`, `kind`).

use crate::problem::Problem;
use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use opentelemetry::{KeyValue, metrics::Counter};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::Duration,
};

/// The fault applied to one route (or to all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Added latency before the handler runs.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of requests answered with an injected 503 (0.0 to 1.0).
    #[serde(default)]
    pub error_rate: f64,
}

/// Settings as the admin endpoint shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Applies to every route without its own entry.
    pub default: Fault,
    /// Per route, keyed `"METHOD /route/template"`.
    pub routes: BTreeMap<String, Fault>,
}

/// A change sent to `PUT /admin/faults`. `deny_unknown_fields` next to `flatten` does
/// refuse unknown keys (serde checks what the flattened struct left over); the test
/// `a_misspelt_or_unknown_key_is_refused_not_read_as_zero` keeps it so.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultChange {
    route: Option<String>,
    #[serde(flatten)]
    fault: Fault,
}

/// Shared fault settings of one service.
#[derive(Clone)]
pub struct FaultInjector {
    initial: Arc<FaultSettings>,
    current: Arc<RwLock<FaultSettings>>,
    admin_token: Option<Arc<str>>,
    injected: Counter<u64>,
}

impl FaultInjector {
    /// Starts with `initial` settings; the admin endpoint is on when `admin_token` is set.
    pub fn new(initial: FaultSettings, admin_token: Option<String>) -> Self {
        Self {
            current: Arc::new(RwLock::new(initial.clone())),
            initial: Arc::new(initial),
            admin_token: admin_token.map(Arc::from),
            injected: opentelemetry::global::meter("service-runtime")
                .u64_counter("faults.injected")
                .with_description("Injected faults, by route and kind (latency, error).")
                .build(),
        }
    }

    /// Reads `FAULT_LATENCY_MS`, `FAULT_ERROR_RATE`, `FAULTS` and `ADMIN_TOKEN`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::env::Env<F>,
    ) -> Result<Self, crate::env::EnvError> {
        let default = Fault {
            latency_ms: env.or("FAULT_LATENCY_MS", 0)?,
            error_rate: env.ratio_or("FAULT_ERROR_RATE", 0.0)?,
        };
        let raw_routes = env.string_or("FAULTS", "{}");
        let routes: BTreeMap<String, Fault> =
            serde_json::from_str(&raw_routes).map_err(|e| crate::env::EnvError::Invalid {
                name: "FAULTS".into(),
                value: raw_routes.clone(),
                reason: format!(
                    "expected {{\"METHOD /route\": {{\"latency_ms\": n, \"error_rate\": r}}}}: {e}"
                ),
            })?;
        for (route, fault) in &routes {
            if !(0.0..=1.0).contains(&fault.error_rate) {
                return Err(crate::env::EnvError::Invalid {
                    name: "FAULTS".into(),
                    value: raw_routes.clone(),
                    reason: format!("error_rate of {route} must be between 0 and 1"),
                });
            }
        }
        let token = Some(env.string_or("ADMIN_TOKEN", "")).filter(|t| !t.is_empty());
        Ok(Self::new(FaultSettings { default, routes }, token))
    }

    /// The settings now.
    pub fn settings(&self) -> FaultSettings {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fault_for(&self, route: &str) -> Fault {
        let settings = self.current.read().unwrap_or_else(|e| e.into_inner());
        settings
            .routes
            .get(route)
            .copied()
            .unwrap_or(settings.default)
    }

    /// Middleware applying the faults; add it with `Router::layer` on business routes.
    pub async fn apply(
        State(faults): State<FaultInjector>,
        request: Request,
        next: Next,
    ) -> Response {
        let route = format!(
            "{} {}",
            request.method(),
            request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or(request.uri().path())
        );
        let fault = faults.fault_for(&route);
        if fault.latency_ms > 0 {
            faults.count(&route, "latency");
            tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        }
        if fault.error_rate > 0.0 && fastrand::f64() < fault.error_rate {
            faults.count(&route, "error");
            tracing::warn!(route = %route, "injected fault: failing the request");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "injected-fault",
                format!("injected fault on {route}"),
            )
            .into_response();
        }
        next.run(request).await
    }

    fn count(&self, route: &str, kind: &'static str) {
        self.injected.add(
            1,
            &[
                KeyValue::new("route", route.to_owned()),
                KeyValue::new("kind", kind),
            ],
        );
    }

    /// `GET|PUT|DELETE /admin/faults`, bearer-token protected.
    pub fn admin_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(
                "/admin/faults",
                get(show_faults).put(change_faults).delete(reset_faults),
            )
            // The token is checked before the body is read: without it, a caller learns
            // nothing, not even whether its JSON parses.
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                require_token,
            ))
            .with_state(self.clone())
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Problem> {
        let Some(token) = &self.admin_token else {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "admin-disabled",
                "the admin endpoint is off: set ADMIN_TOKEN to enable it",
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            None => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "bearer token required",
            )),
            Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "wrong admin token",
            )),
        }
    }
}

/// Compares every presented byte whatever the lengths, so the time taken depends on the
/// presented token's length only, never on how much of the real one it matched.
fn constant_time_eq(presented: &[u8], token: &[u8]) -> bool {
    let mismatch = presented.iter().enumerate().fold(
        u8::from(presented.len() != token.len()),
        |acc, (i, byte)| acc | (byte ^ token.get(i).copied().unwrap_or(!byte)),
    );
    mismatch == 0
}

async fn require_token(
    State(faults): State<FaultInjector>,
    request: Request,
    next: Next,
) -> Response {
    match faults.authorize(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(problem) => problem.into_response(),
    }
}

async fn show_faults(State(faults): State<FaultInjector>) -> Json<FaultSettings> {
    Json(faults.settings())
}

async fn change_faults(
    State(faults): State<FaultInjector>,
    crate::problem::ApiJson(change): crate::problem::ApiJson<FaultChange>,
) -> Result<Json<FaultSettings>, Problem> {
    if !(0.0..=1.0).contains(&change.fault.error_rate) {
        return Err(Problem::invalid_field(
            "error_rate",
            "must be between 0 and 1",
        ));
    }
    let fault = change.fault;
    {
        let mut settings = faults.current.write().unwrap_or_else(|e| e.into_inner());
        match &change.route {
            Some(route) => {
                settings.routes.insert(route.clone(), fault);
            }
            None => settings.default = fault,
        }
    }
    tracing::warn!(route = ?change.route, latency_ms = fault.latency_ms, error_rate = fault.error_rate, "fault settings changed");
    Ok(Json(faults.settings()))
}

async fn reset_faults(State(faults): State<FaultInjector>) -> Json<FaultSettings> {
    *faults.current.write().unwrap_or_else(|e| e.into_inner()) = (*faults.initial).clone();
    tracing::info!("fault settings reset");
    Json(faults.settings())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, middleware::from_fn_with_state, routing::post};
    use http::Request;
    use tower::ServiceExt;

    fn app(faults: &FaultInjector) -> Router {
        Router::new()
            .route("/events", post(|| async { "sent" }))
            .layer(from_fn_with_state(faults.clone(), FaultInjector::apply))
            .merge(faults.admin_router())
    }

    async fn call(app: &Router, req: Request<Body>) -> (u16, serde_json::Value) {
        let response = app.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn put(token: Option<&str>, body: &str) -> Request<Body> {
        let mut builder = Request::put("/admin/faults").header("content-type", "application/json");
        if let Some(t) = token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn admin_turns_a_route_failing_and_back() {
        let faults = FaultInjector::new(FaultSettings::default(), Some("s3cret".into()));
        let app = app(&faults);
        let event = || Request::post("/events").body(Body::empty()).unwrap();
        assert_eq!(call(&app, event()).await.0, 200);

        assert_eq!(
            call(
                &app,
                put(None, r#"{"route":"POST /events","error_rate":1.0}"#)
            )
            .await
            .0,
            401
        );
        assert_eq!(
            call(
                &app,
                put(
                    Some("wrong"),
                    r#"{"route":"POST /events","error_rate":1.0}"#
                )
            )
            .await
            .0,
            403
        );
        assert_eq!(
            call(
                &app,
                put(
                    Some("s3cret"),
                    r#"{"route":"POST /events","error_rate":2.0}"#
                )
            )
            .await
            .0,
            422
        );
        let (status, settings) = call(
            &app,
            put(
                Some("s3cret"),
                r#"{"route":"POST /events","error_rate":1.0}"#,
            ),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(settings["routes"]["POST /events"]["error_rate"], 1.0);

        let (status, body) = call(&app, event()).await;
        assert_eq!(status, 503);
        assert_eq!(body["type"], "urn:problem-type:injected-fault");

        let reset = Request::delete("/admin/faults")
            .header("authorization", "Bearer s3cret")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, reset).await.0, 200);
        assert_eq!(call(&app, event()).await.0, 200);
    }

    #[tokio::test]
    async fn a_misspelt_or_unknown_key_is_refused_not_read_as_zero() {
        let faults = FaultInjector::new(FaultSettings::default(), Some("s3cret".into()));
        let app = app(&faults);
        assert_eq!(
            call(&app, put(Some("s3cret"), r#"{"latency_ms":300}"#))
                .await
                .0,
            200
        );
        for body in [
            r#"{"latncy_ms":0}"#,
            r#"{"route":"POST /events","error_rate":0.5,"extra":true}"#,
        ] {
            let (status, problem) = call(&app, put(Some("s3cret"), body)).await;
            assert_eq!(status, 422, "{body}: {problem}");
            assert_eq!(problem["type"], "urn:problem-type:validation-error");
        }
        assert_eq!(faults.settings().default.latency_ms, 300, "unchanged");
    }

    #[tokio::test]
    async fn without_the_token_nothing_about_the_body_is_revealed() {
        let faults = FaultInjector::new(FaultSettings::default(), Some("s3cret".into()));
        let app = app(&faults);
        for body in ["{not json", r#"{"latncy_ms":0}"#, ""] {
            let (status, problem) = call(&app, put(None, body)).await;
            assert_eq!(status, 401, "{body}: {problem}");
            assert_eq!(problem["type"], "urn:problem-type:unauthorized");
        }
        let get = Request::get("/admin/faults").body(Body::empty()).unwrap();
        assert_eq!(call(&app, get).await.0, 401);
        let delete = Request::delete("/admin/faults")
            .header("authorization", "Bearer s3cre")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, delete).await.0, 403);
    }

    #[test]
    fn the_token_comparison_is_exact() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        for presented in [
            &b""[..],
            b"s",
            b"s3cre",
            b"s3cret ",
            b"s3cres",
            b"S3cret",
            b"s3cret\0",
        ] {
            assert!(!constant_time_eq(presented, b"s3cret"), "{presented:?}");
        }
        // A presented token longer than the real one with the real one as its prefix.
        assert!(!constant_time_eq(b"s3crets3cret", b"s3cret"));
        assert!(!constant_time_eq(b"\xff", b""));
    }

    #[tokio::test(start_paused = true)]
    async fn default_latency_applies_to_every_route() {
        let faults = FaultInjector::new(
            FaultSettings {
                default: Fault {
                    latency_ms: 250,
                    error_rate: 0.0,
                },
                routes: BTreeMap::new(),
            },
            None,
        );
        let app = app(&faults);
        let started = tokio::time::Instant::now();
        assert_eq!(
            call(&app, Request::post("/events").body(Body::empty()).unwrap())
                .await
                .0,
            200
        );
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        // No token configured: the admin endpoint is off.
        assert_eq!(
            call(&app, put(Some("x"), r#"{"latency_ms":0}"#)).await.0,
            403
        );
    }

    #[test]
    fn env_faults_are_validated_and_named() {
        let env = crate::env::Env::new(|k: &str| {
            (k == "FAULTS").then(|| r#"{"GET /x": {"error_rate": 3}}"#.to_owned())
        });
        let err = FaultInjector::from_env(&env).err().unwrap();
        assert!(err.to_string().contains("FAULTS"));
        let env = crate::env::Env::new(|k: &str| {
            (k == "FAULTS").then(|| r#"{"GET /x": {"latency_ms": 5}}"#.to_owned())
        });
        assert_eq!(
            FaultInjector::from_env(&env).unwrap().settings().routes["GET /x"].latency_ms,
            5
        );
    }
}
