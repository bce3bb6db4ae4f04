//! Everything that can go wrong with an order, and the HTTP answer for each.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use service_runtime::problem::Problem;

/// A failed order operation.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The input breaks a rule; `field` names where.
    #[error("{field}: {detail}")]
    Invalid {
        /// JSON path of the field, for example `items[0].quantity`.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The fraud check said no.
    #[error("order rejected by the fraud check (score {score})")]
    Rejected {
        /// The third party's risk score.
        score: f64,
    },
    /// No such order.
    #[error("no order with id {0}")]
    NotFound(String),
    /// A dependency failed or timed out.
    #[error("{dependency}: {detail}")]
    Dependency {
        /// Which one (`service-d`, `third-party`, `postgres`).
        dependency: &'static str,
        /// 502 for a bad answer, 503 for unreachable, 504 for a timeout.
        status: StatusCode,
        /// What happened.
        detail: String,
    },
}

impl OrderError {
    /// A database error: the database is a dependency like any other.
    pub fn database(error: sqlx::Error) -> Self {
        tracing::error!(error = %error, "database error");
        Self::Dependency {
            dependency: "postgres",
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: "the order database is unavailable".into(),
        }
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        match self {
            OrderError::Invalid { field, detail } => Problem::invalid_field(&field, detail),
            OrderError::Rejected { score } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "order-rejected",
                self.to_string(),
            )
            .with("score", score),
            OrderError::NotFound(_) => Problem::not_found(self.to_string()),
            OrderError::Dependency {
                dependency,
                status,
                detail,
            } => Problem::dependency(status, dependency, detail),
        }
        .into_response()
    }
}
