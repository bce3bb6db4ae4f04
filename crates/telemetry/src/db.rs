//! Database client spans for sqlx, which emits no spans of its own.
//!
//! Declare each query once as a [`Statement`] and run it through [`Statement::run`]: the
//! query gets a CLIENT span named `"{operation} {table}"` carrying `db.system.name`,
//! `db.operation.name`, `db.collection.name` and the parameterised `db.query.text`
//! (values are bound, never formatted into the text, so no data leaks into telemetry).
//!
//! ```
//! use telemetry::db::Statement;
//! const FIND_ORDER: Statement = Statement::postgres(
//!     "SELECT", "orders", "SELECT status FROM orders WHERE id = $1");
//! ```

use std::{fmt::Display, future::Future};
use tracing::{Instrument, Span, field::Empty};

/// One parameterised SQL statement and what its span says about it.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    /// `db.system.name`, for example `postgresql`.
    pub system: &'static str,
    /// `db.operation.name`: `SELECT`, `INSERT`, `UPDATE`...
    pub operation: &'static str,
    /// `db.collection.name`: the main table.
    pub table: &'static str,
    /// `db.query.text`: the SQL with `$n` placeholders.
    pub text: &'static str,
}

impl Statement {
    /// A PostgreSQL statement.
    pub const fn postgres(
        operation: &'static str,
        table: &'static str,
        text: &'static str,
    ) -> Self {
        Self {
            system: "postgresql",
            operation,
            table,
            text,
        }
    }

    /// The CLIENT span for one execution.
    pub fn span(&self) -> Span {
        tracing::info_span!(
            "db statement",
            otel.name = %format_args!("{} {}", self.operation, self.table),
            otel.kind = "client",
            otel.status_code = Empty,
            db.system.name = self.system,
            db.operation.name = self.operation,
            db.collection.name = self.table,
            db.query.text = self.text,
            error.type = Empty,
        )
    }

    /// Runs `query` (built from [`Self::text`]) inside the statement's span, marking the
    /// span as failed if the query fails.
    pub async fn run<T, E: Display>(
        &self,
        query: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let span = self.span();
        let result = query.instrument(span.clone()).await;
        if let Err(error) = &result {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error.to_string());
        }
        result
    }
}
