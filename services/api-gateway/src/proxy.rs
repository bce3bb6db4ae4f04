//! Forwarding one request to one upstream: no business logic, no telemetry code.
//!
//! The request body is read into memory under [`Proxy`]'s size and time limits, then sent
//! with its `content-type` and `x-request-id`; the upstream's status, `content-type` and
//! body come back unchanged (its errors are already problem+json). Every failure of the
//! gateway itself is a [`ForwardError`], answered as problem+json.

use crate::request_id::REQUEST_ID;
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, StatusCode, header::CONTENT_LENGTH, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use http_body_util::LengthLimitError;
use reqwest_middleware::ClientWithMiddleware;
use service_runtime::problem::Problem;
use std::{error::Error as _, time::Duration};

/// A named upstream service.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The name used in problems and readiness checks (`service-a`).
    pub name: &'static str,
    base_url: String,
}

impl Upstream {
    /// `base_url` without a trailing `/`.
    pub fn new(name: &'static str, base_url: &str) -> Self {
        Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of `path_and_query` (starting with `/`) on this upstream.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }
}

/// Why the gateway answered instead of the upstream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The request body is over the limit.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// `MAX_BODY_BYTES`.
        limit: usize,
    },
    /// The client did not finish sending its body in time.
    #[error("the request body did not arrive within {0:?}")]
    ClientTimeout(Duration),
    /// The client's body could not be read (for example the client went away).
    #[error("the request body could not be read")]
    Unreadable,
    /// The upstream did not answer in time.
    #[error("{dependency} did not answer within {timeout:?}")]
    UpstreamTimeout {
        /// Which upstream.
        dependency: &'static str,
        /// `GATEWAY_TIMEOUT_MS`.
        timeout: Duration,
    },
    /// The upstream refused or dropped the connection. The detail stays generic: the
    /// internal URL is no business of a public client, and the client span has the rest.
    #[error("cannot reach {dependency}")]
    Unreachable {
        /// Which upstream.
        dependency: &'static str,
    },
}

impl ForwardError {
    fn upstream(dependency: &'static str, timeout: Duration, error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::UpstreamTimeout {
                dependency,
                timeout,
            }
        } else {
            Self::Unreachable { dependency }
        }
    }
}

impl From<&ForwardError> for Problem {
    fn from(error: &ForwardError) -> Self {
        let detail = error.to_string();
        match error {
            ForwardError::TooLarge { limit } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
                    .with("limit_bytes", *limit)
            }
            ForwardError::ClientTimeout(_) => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "request-timeout", detail)
            }
            ForwardError::Unreadable => Problem::bad_request(detail),
            ForwardError::UpstreamTimeout { dependency, .. } => {
                Problem::dependency(StatusCode::GATEWAY_TIMEOUT, dependency, detail)
            }
            ForwardError::Unreachable { dependency } => {
                Problem::dependency(StatusCode::BAD_GATEWAY, dependency, detail)
            }
        }
    }
}

impl IntoResponse for ForwardError {
    fn into_response(self) -> Response {
        Problem::from(&self).into_response()
    }
}

/// Forwards requests with an instrumented client, under size and time limits.
#[derive(Clone)]
pub struct Proxy {
    client: ClientWithMiddleware,
    max_body_bytes: usize,
    timeout: Duration,
}

impl Proxy {
    /// `client` should come from a client with `telemetry::HttpClientMiddleware`.
    pub fn new(client: ClientWithMiddleware, max_body_bytes: usize, timeout: Duration) -> Self {
        Self {
            client,
            max_body_bytes,
            timeout,
        }
    }

    /// Sends `request` to `upstream` with the path's `/api` prefix removed.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        request: Request,
    ) -> Result<Response, ForwardError> {
        let (parts, body) = request.into_parts();
        let body = self.read_body(&parts.headers, body).await?;
        let path = parts.uri.path();
        let mut target = upstream.url(path.strip_prefix("/api").unwrap_or(path));
        if let Some(query) = parts.uri.query() {
            target = format!("{target}?{query}");
        }

        // reqwest's timeout covers connecting, the answer and its body; it fails inside
        // the client middleware, so the client span records `error.type=timeout`.
        let mut outgoing = self
            .client
            .request(parts.method, target)
            .timeout(self.timeout);
        for name in [CONTENT_TYPE.as_str(), REQUEST_ID] {
            if let Some(value) = parts.headers.get(name) {
                outgoing = outgoing.header(name, value);
            }
        }
        if !body.is_empty() {
            outgoing = outgoing.body(body);
        }
        let upstream_error =
            |e: &reqwest::Error| ForwardError::upstream(upstream.name, self.timeout, e);
        let answer = outgoing.send().await.map_err(|error| match &error {
            reqwest_middleware::Error::Reqwest(e) => upstream_error(e),
            reqwest_middleware::Error::Middleware(_) => ForwardError::Unreachable {
                dependency: upstream.name,
            },
        })?;
        let status = answer.status();
        let content_type = answer.headers().get(CONTENT_TYPE).cloned();
        let bytes = answer.bytes().await.map_err(|e| upstream_error(&e))?;

        // Built by hand: `(status, bytes).into_response()` would add a content-type.
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response.headers_mut().insert(CONTENT_TYPE, content_type);
        }
        Ok(response)
    }

    /// Reads the whole body: refused early on a large `Content-Length`, and again while
    /// reading, since a chunked body has no length up front.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<axum::body::Bytes, ForwardError> {
        let too_large = ForwardError::TooLarge {
            limit: self.max_body_bytes,
        };
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body_bytes as u64) {
            return Err(too_large);
        }
        match tokio::time::timeout(
            self.timeout,
            axum::body::to_bytes(body, self.max_body_bytes),
        )
        .await
        {
            Err(_) => Err(ForwardError::ClientTimeout(self.timeout)),
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(error)) if error.source().is_some_and(|e| e.is::<LengthLimitError>()) => {
                Err(too_large)
            }
            Ok(Err(_)) => Err(ForwardError::Unreadable),
        }
    }
}
