//! RFC 9457 problem details: every error a client sees is `application/problem+json`.
//!
//! [`ApiJson`] replaces axum's `Json` extractor so that malformed JSON is a 400, a wrong
//! or missing field a 422 naming the field, a body over the limit a 413 and a wrong
//! content type a 415, each with a machine-readable body, never a 500.

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Content type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem-details response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank`-style tags are used here.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short, stable summary of the type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Extension members (for example `field`, `retry_after_seconds`).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    /// A problem with a type tag (for example `validation-error`), status and detail.
    pub fn new(status: StatusCode, problem_type: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:problem-type:{problem_type}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a `Retry-After` header (and a `retry_after_seconds` member).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self.with("retry_after_seconds", seconds)
    }

    /// 400 for input that cannot be read at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422 naming the field that is wrong.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation-error", detail).with("field", field)
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 502/503/504 for a dependency that failed, named in `dependency`.
    pub fn dependency(status: StatusCode, dependency: &str, detail: impl Into<String>) -> Self {
        Self::new(status, "dependency-failure", detail).with("dependency", dependency)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON body whose rejections are problem details.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // axum reports serde's path: "Failed to deserialize ...: items[0].quantity: ..."
            let text = e.body_text();
            let detail = text
                .split_once(": ")
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_else(|| text.clone());
            let field = detail
                .split_once(": ")
                .map(|(path, _)| path.to_owned())
                .filter(|p| !p.contains(' '))
                .unwrap_or_else(|| missing_field(&detail).unwrap_or_default());
            Problem::invalid_field(&field, detail)
        }
        JsonRejection::JsonSyntaxError(e) => {
            Problem::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                e.body_text(),
            )
        }
        other => Problem::bad_request(other.body_text()),
    }
}

/// serde's "missing field `x`" message names the field only inside backticks.
fn missing_field(detail: &str) -> Option<String> {
    let start = detail.find("missing field `")? + "missing field `".len();
    let end = detail[start..].find('`')? + start;
    Some(detail[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, body::Body, routing::post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        customer_id: String,
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        quantity: u32,
    }

    async fn send(body: &str, content_type: &str) -> (StatusCode, Value, String) {
        let app = Router::new().route("/", post(|ApiJson(_): ApiJson<Order>| async { "ok" }));
        let response = app
            .oneshot(
                Request::post("/")
                    .header("content-type", content_type)
                    .body(Body::from(body.to_owned()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let ct = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ct,
        )
    }

    #[tokio::test]
    async fn bad_input_is_a_problem_naming_the_field() {
        let (status, body, ct) = send(
            r#"{"customer_id":"c","items":[{"sku":"a","quantity":-1}]}"#,
            "application/json",
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(body["field"], "items[0].quantity");
        assert_eq!(body["status"], 422);

        let (status, body, _) = send(r#"{"items":[]}"#, "application/json").await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "customer_id");

        let (status, body, _) = send(r#"{"customer_id": "#, "application/json").await;
        assert_eq!(status, 400);
        assert_eq!(body["type"], "urn:problem-type:bad-request");

        let (status, _, _) = send("{}", "text/plain").await;
        assert_eq!(status, 415);
    }

    #[tokio::test]
    async fn retry_after_is_a_header_and_a_member() {
        let response = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "slow down")
            .retry_after(2)
            .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["retry_after_seconds"], 2);
    }
}
