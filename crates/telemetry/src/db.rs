//! Database client spans for sqlx, which emits no spans of its own.
//!
//! Declare each query once as a [`Statement`] and run it with [`Statement::run`], which
//! hands the SQL text to the closure that builds the query: the SQL is named in one place.
//! The query gets a CLIENT span named `"{operation} {table}"` carrying `db.system.name`,
//! `db.operation.name`, `db.collection.name` and the parameterised `db.query.text`
//! (values are bound, never formatted into the text, so no data leaks into telemetry).
//!
//! A statement run outside any span (a `/readyz` ping, a background poll that finds
//! nothing) is not traced: a root span with no work in it is noise in the trace list.
//!
//! ```
//! use telemetry::Statement;
//! const FIND_ORDER: Statement = Statement::postgres(
//!     "SELECT", "orders", "SELECT status FROM orders WHERE id = $1");
//! # async fn find(pool: ()) -> Result<(), std::io::Error> {
//! // FIND_ORDER.run(|sql| sqlx::query(sql).bind(id).fetch_optional(&pool)).await?;
//! FIND_ORDER.run(|sql| async move { assert!(sql.starts_with("SELECT")); Ok(()) }).await
//! # }
//! ```

use opentelemetry::trace::TraceContextExt;
use std::{fmt::Display, future::Future};
use tracing::{Instrument, Span, field::Empty};

/// One parameterised SQL statement and what its span says about it.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    system: &'static str,
    operation: &'static str,
    table: &'static str,
    text: &'static str,
}

impl Statement {
    /// A PostgreSQL statement: `operation` (`SELECT`, `INSERT`...) on `table`, and its SQL
    /// with `$n` placeholders.
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
    fn span(&self) -> Span {
        let name = if self.table.is_empty() {
            self.operation.to_owned()
        } else {
            format!("{} {}", self.operation, self.table)
        };
        tracing::info_span!(
            "db statement",
            otel.name = %name,
            otel.kind = "client",
            otel.status_code = Empty,
            db.system.name = self.system,
            db.operation.name = self.operation,
            db.collection.name = self.table,
            db.query.text = self.text,
            error.type = Empty,
        )
    }

    /// Builds the query from the statement's SQL with `query` and runs it inside the
    /// statement's span (marked failed if the query fails). Outside any span it runs
    /// untraced.
    pub async fn run<T, E: Display, Fut>(
        &self,
        query: impl FnOnce(&'static str) -> Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if !inside_a_trace() {
            return query(self.text).await;
        }
        let span = self.span();
        let result = query(self.text).instrument(span.clone()).await;
        if let Err(error) = &result {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error.to_string());
        }
        result
    }
}

/// True inside a `tracing` span or an OpenTelemetry context with a span (the manual
/// services attach one without a `tracing` span).
fn inside_a_trace() -> bool {
    !Span::current().is_none() || opentelemetry::Context::current().has_active_span()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Statement = Statement::postgres("SELECT", "", "SELECT 1");

    #[tokio::test]
    async fn a_statement_is_traced_only_inside_a_span() {
        let exporter = crate::testing::in_memory_tracing();
        let ok = |sql: &'static str| async move { Ok::<_, std::io::Error>(sql) };
        // Outside any span: no span of its own, but the query runs with the SQL.
        assert_eq!(PING.run(ok).await.unwrap(), "SELECT 1");
        let request = tracing::info_span!("statement test request");
        PING.run(ok).instrument(request.clone()).await.unwrap();
        drop(request);
        let spans = exporter.get_finished_spans().unwrap();
        let request = spans
            .iter()
            .find(|s| s.name == "statement test request")
            .expect("request span");
        let statements: Vec<_> = spans.iter().filter(|s| s.name == "SELECT").collect();
        assert_eq!(statements.len(), 1, "{statements:#?}");
        assert_eq!(statements[0].parent_span_id, request.span_context.span_id());
    }
}
