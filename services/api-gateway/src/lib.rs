//! api-gateway: the only public entry of the demo. It routes, assigns request ids, limits
//! body size, time and request rate, and forwards everything else unchanged.
//!
//! **Teaches: auto-instrumentation.** The handlers and the [`proxy`] contain no telemetry
//! code. The server span, W3C context extraction, RED metrics and `traceresponse` come from
//! `HttpServerLayer` in [`router`]; the client span and `traceparent` injection into the
//! upstream call come from `telemetry::HttpClientMiddleware`. [`router`] is
//! `ServiceParts::auto_instrumented` spelled out in three lines, so that the request-id
//! layer can sit outside the telemetry layer and the server span records the id.
//!
//! | Route | Forwarded to |
//! |---|---|
//! | `POST /api/orders` | `POST {SERVICE_A_URL}/orders` |
//! | `GET /api/orders/{id}` | `GET {SERVICE_A_URL}/orders/{id}` |
//! | `GET /api/products` | `GET {SERVICE_D_URL}/products` |
//!
//! Configuration (environment only; a bad value stops startup with an error naming it):
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `PORT` | `8080` | listening port |
//! | `SERVICE_A_URL` | `http://127.0.0.1:8081` | base URL of service-a (orders) |
//! | `SERVICE_D_URL` | `http://127.0.0.1:8084` | base URL of service-d (catalog) |
//! | `MAX_BODY_BYTES` | `65536` | largest request body; larger is 413 |
//! | `GATEWAY_TIMEOUT_MS` | `10000` | bound on the upstream call (504) and on receiving the client's body (408) |
//! | `HEADER_READ_TIMEOUT_MS` | `10000` | a connection whose request headers (or next request) take longer is closed: slow clients cannot hold connections |
//! | `MAX_CONNECTIONS` | `1024` | connections served at once (at least 1); beyond it new clients wait in the kernel's backlog until one ends |
//! | `RATE_LIMIT_RPS` | `200` | tokens added per second to the gateway-wide bucket (at least 1) |
//! | `RATE_LIMIT_BURST` | `400` | bucket size: requests allowed at once (at least 1); over the limit is 429 |
//! | `FAULT_LATENCY_MS`, `FAULT_ERROR_RATE`, `FAULTS`, `ADMIN_TOKEN` | off | fault injection, see `service_runtime::faults` |
//!
//! Plus the `OTEL_*`, `LOG_FORMAT` and `RUST_LOG` variables read by `telemetry::init`.
#![forbid(unsafe_code)]

pub mod proxy;
pub mod rate_limit;
pub mod request_id;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{from_fn, from_fn_with_state},
    response::Response,
    routing::{get, post},
};
use proxy::{ForwardError, Proxy, Upstream};
use rate_limit::TokenBucket;
use service_runtime::{
    env::{Env, EnvError},
    faults::FaultInjector,
    health::Readiness,
    serve::{ServiceParts, UNOBSERVED_PATHS},
};
use std::{
    num::{NonZeroU32, NonZeroUsize},
    sync::Arc,
    time::Duration,
};
use telemetry::{HttpServerLayer, MetricsRegistry};

/// Settings read from the environment; see the crate docs for the table.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8080.
    pub port: u16,
    /// `SERVICE_A_URL`, without a trailing `/`.
    pub service_a_url: String,
    /// `SERVICE_D_URL`, without a trailing `/`.
    pub service_d_url: String,
    /// `MAX_BODY_BYTES`, default 64 KiB.
    pub max_body_bytes: usize,
    /// `GATEWAY_TIMEOUT_MS`, default 10 s.
    pub timeout: Duration,
    /// `RATE_LIMIT_RPS`, default 200.
    pub rate_limit_rps: NonZeroU32,
    /// `RATE_LIMIT_BURST`, default 400.
    pub rate_limit_burst: NonZeroU32,
    /// `HEADER_READ_TIMEOUT_MS`, default 10 s.
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS`, default 1024.
    pub max_connections: NonZeroUsize,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        let timeout = env.millis_or("GATEWAY_TIMEOUT_MS", Duration::from_secs(10))?;
        if timeout.is_zero() {
            return Err(invalid("GATEWAY_TIMEOUT_MS", "0", "must be at least 1"));
        }
        let header_read_timeout =
            env.millis_or("HEADER_READ_TIMEOUT_MS", Duration::from_secs(10))?;
        if header_read_timeout.is_zero() {
            return Err(invalid("HEADER_READ_TIMEOUT_MS", "0", "must be at least 1"));
        }
        Ok(Self {
            port: env.or("PORT", 8080)?,
            service_a_url: base_url(env, "SERVICE_A_URL", "http://127.0.0.1:8081")?,
            service_d_url: base_url(env, "SERVICE_D_URL", "http://127.0.0.1:8084")?,
            max_body_bytes: env.or("MAX_BODY_BYTES", 64 * 1024)?,
            timeout,
            rate_limit_rps: env.or("RATE_LIMIT_RPS", NonZeroU32::new(200).expect("non-zero"))?,
            rate_limit_burst: env
                .or("RATE_LIMIT_BURST", NonZeroU32::new(400).expect("non-zero"))?,
            header_read_timeout,
            max_connections: env.or(
                "MAX_CONNECTIONS",
                NonZeroUsize::new(1024).expect("non-zero"),
            )?,
        })
    }
}

fn invalid(name: &str, value: &str, reason: &str) -> EnvError {
    EnvError::Invalid {
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// An absolute http(s) URL; the trailing `/` is dropped so paths can be appended.
fn base_url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &str,
    default: &str,
) -> Result<String, EnvError> {
    let value = env.string_or(name, default);
    let url =
        reqwest::Url::parse(value.trim()).map_err(|e| invalid(name, &value, &e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            name,
            &value,
            "expected an http:// or https:// URL with a host",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The HTTP client could not be built.
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What the handlers share.
struct Gateway {
    proxy: Proxy,
    service_a: Upstream,
    service_d: Upstream,
}

/// Builds the whole HTTP app.
pub fn router(config: &Config, faults: FaultInjector) -> Result<Router, BuildError> {
    let metrics = MetricsRegistry::new();
    // Calls inside the deployment must not go through an egress proxy from HTTP_PROXY.
    let client =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::builder().no_proxy().build()?)
            .with(telemetry::HttpClientMiddleware::new(&metrics))
            .build();
    let service_a = Upstream::new("service-a", &config.service_a_url);
    let service_d = Upstream::new("service-d", &config.service_d_url);
    let parts = ServiceParts {
        readiness: readiness(&[&service_a, &service_d])?,
        metrics,
        faults,
    };
    let gateway = Arc::new(Gateway {
        proxy: Proxy::new(client, config.max_body_bytes, config.timeout),
        service_a,
        service_d,
    });
    let limiter = Arc::new(TokenBucket::new(
        config.rate_limit_rps,
        config.rate_limit_burst,
    ));
    let business = Router::new()
        .route("/api/orders", post(to_service_a))
        .route("/api/orders/{id}", get(to_service_a))
        .route("/api/products", get(to_service_d))
        .with_state(gateway)
        // Only the business routes: probes, scrapes and the admin endpoint must get
        // through even when the gateway is saturated.
        .layer(from_fn_with_state(limiter, rate_limit::enforce));
    // `parts.auto_instrumented(business)`, plus two things: the server span records the
    // request id, and the request-id layer runs first (outermost) so the id is already
    // on the request when the span opens.
    let server_layer = HttpServerLayer::new(&parts.metrics)
        .capture_request_headers(&[request_id::REQUEST_ID])
        .skip_paths(&UNOBSERVED_PATHS);
    Ok(parts
        .routes(business)
        .layer(server_layer)
        .layer(from_fn(request_id::assign)))
}

/// `/api/orders...` -> service-a, same method and path without `/api`.
async fn to_service_a(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
) -> Result<Response, ForwardError> {
    gateway.proxy.forward(&gateway.service_a, request).await
}

/// `/api/products` -> service-d, same method and path without `/api`.
async fn to_service_d(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
) -> Result<Response, ForwardError> {
    gateway.proxy.forward(&gateway.service_d, request).await
}

/// `/readyz`: each upstream's `/healthz` answers 2xx. A plain client on purpose: probes
/// are not traced (`UNOBSERVED_PATHS`), so an instrumented client would start a new
/// one-span trace on every probe.
fn readiness(upstreams: &[&Upstream]) -> Result<Readiness, BuildError> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    Ok(upstreams
        .iter()
        .fold(Readiness::new(), |readiness, upstream| {
            let (client, url) = (client.clone(), upstream.url("/healthz"));
            readiness.check(upstream.name, move || healthz(client.clone(), url.clone()))
        }))
}

async fn healthz(client: reqwest::Client, url: String) -> Result<(), String> {
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("/healthz answered {}", response.status())),
        Err(error) if error.is_connect() => Err("cannot connect".to_owned()),
        Err(_) => Err("transport error".to_owned()),
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    shutdown: service_runtime::serve::CancellationToken,
) -> Result<(), service_runtime::serve::ServiceError> {
    let config = Config::from_env(&env)?;
    let faults = FaultInjector::from_env(&env)?;
    let app = router(&config, faults)
        .map_err(|e| service_runtime::serve::ServiceError::setup("the upstream HTTP client", e))?;
    let options = service_runtime::serve::ServeOptions {
        header_read_timeout: Some(config.header_read_timeout),
        max_connections: Some(config.max_connections),
    };
    service_runtime::serve::serve_with(app, config.port, shutdown, options).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &'static [(&'static str, &'static str)]) -> Result<Config, EnvError> {
        Config::from_env(&Env::new(move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }))
    }

    #[test]
    fn defaults_match_the_docs() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.service_a_url, "http://127.0.0.1:8081");
        assert_eq!(c.service_d_url, "http://127.0.0.1:8084");
        assert_eq!(c.max_body_bytes, 65_536);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections.get(), 1024);
        assert_eq!(
            (c.rate_limit_rps.get(), c.rate_limit_burst.get()),
            (200, 400)
        );
        let c = config(&[("SERVICE_A_URL", "http://service-a:8081/")]).unwrap();
        assert_eq!(
            c.service_a_url, "http://service-a:8081",
            "trailing slash dropped"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (vars, name) in [
            (
                &[("SERVICE_A_URL", "service-a:8081")] as &'static [_],
                "SERVICE_A_URL",
            ),
            (&[("SERVICE_D_URL", "ftp://x")], "SERVICE_D_URL"),
            (&[("RATE_LIMIT_RPS", "0")], "RATE_LIMIT_RPS"),
            (&[("RATE_LIMIT_BURST", "-1")], "RATE_LIMIT_BURST"),
            (&[("MAX_BODY_BYTES", "64k")], "MAX_BODY_BYTES"),
            (&[("GATEWAY_TIMEOUT_MS", "0")], "GATEWAY_TIMEOUT_MS"),
            (&[("HEADER_READ_TIMEOUT_MS", "0")], "HEADER_READ_TIMEOUT_MS"),
            (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
        ] {
            let error = config(vars).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }
}
