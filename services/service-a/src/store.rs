//! Data access: orders, their lines and the outbox, in Postgres.
//!
//! Each statement is declared once as a [`Statement`] so it runs inside a database CLIENT
//! span with its parameterised text; values are always bound, never formatted in.

use crate::orders::{ACCEPTED, FULFILLED, Order, OrderCreated, OrderLine};
use opentelemetry::metrics::Counter;
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};
use std::time::Duration;
use telemetry::Statement;
use uuid::Uuid;

const INSERT_ORDER: Statement = Statement::postgres(
    "INSERT",
    "orders",
    "INSERT INTO orders (id, customer_id, status, total_cents) VALUES ($1, $2, $3, $4)",
);
const INSERT_ITEMS: Statement = Statement::postgres(
    "INSERT",
    "order_items",
    "INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents) \
     SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::int[], $5::bigint[])",
);
const INSERT_OUTBOX: Statement = Statement::postgres(
    "INSERT",
    "outbox",
    "INSERT INTO outbox (event_id, order_id, payload, traceparent, tracestate) VALUES ($1, $2, $3, $4, $5)",
);
const SELECT_ORDER: Statement = Statement::postgres(
    "SELECT",
    "orders",
    "SELECT id, customer_id, status, total_cents, \
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at, \
     to_char(fulfilled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS fulfilled_at \
     FROM orders WHERE id = $1",
);
const SELECT_ITEMS: Statement = Statement::postgres(
    "SELECT",
    "order_items",
    "SELECT sku, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY line",
);
const FULFIL_ORDER: Statement = Statement::postgres(
    "UPDATE",
    "orders",
    "UPDATE orders SET status = $2, fulfilled_at = COALESCE(fulfilled_at, now()) WHERE id = $1",
);
const MARK_DELIVERED: Statement = Statement::postgres(
    "UPDATE",
    "outbox",
    "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1 WHERE event_id = $1",
);
const SELECT_PENDING: Statement = Statement::postgres(
    "SELECT",
    "outbox",
    "SELECT event_id, payload, traceparent, tracestate FROM outbox \
     WHERE delivered_at IS NULL AND created_at < now() - make_interval(secs => $1) \
     ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
);
const RECORD_FAILURE: Statement = Statement::postgres(
    "UPDATE",
    "outbox",
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1",
);
const COUNT_PENDING: Statement = Statement::postgres(
    "SELECT",
    "outbox",
    "SELECT count(*) FROM outbox WHERE delivered_at IS NULL",
);
const PING: Statement = Statement::postgres("SELECT", "", "SELECT 1");

/// The W3C trace context stored with an outbox event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredTraceContext {
    /// `traceparent` of the request that created the event.
    pub traceparent: Option<String>,
    /// Its `tracestate`.
    pub tracestate: Option<String>,
}

/// An undelivered event read by the relay.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The event.
    pub event: OrderCreated,
    /// Where it came from.
    pub trace: StoredTraceContext,
}

/// Orders and outbox in Postgres.
#[derive(Clone, Debug)]
pub struct OrderStore {
    pool: PgPool,
    /// Business metric: counted when an order is committed, the one place that knows.
    created: Counter<u64>,
}

impl OrderStore {
    /// A store on `pool`, counting committed orders in `created`.
    pub fn new(pool: PgPool, created: Counter<u64>) -> Self {
        Self { pool, created }
    }

    /// The pool, for the relay's transactions.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Reachability check for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        PING.run(|sql| sqlx::query(sql).execute(&self.pool))
            .await
            .map(|_| ())
    }

    /// Writes the order, its lines and its event in one transaction. The event row keeps
    /// the current request's trace context, so a relayed event can link back to it.
    pub async fn create(&self, order: &Order, event: &OrderCreated) -> Result<(), sqlx::Error> {
        let trace = crate::outbox::capture_trace_context();
        let mut tx = self.pool.begin().await?;
        INSERT_ORDER
            .run(|sql| {
                sqlx::query(sql)
                    .bind(order.id)
                    .bind(&order.customer_id)
                    .bind(ACCEPTED)
                    .bind(order.total_cents as i64)
                    .execute(&mut *tx)
            })
            .await?;
        let lines: Vec<i32> = (0..order.items.len() as i32).collect();
        let skus: Vec<String> = order.items.iter().map(|l| l.sku.clone()).collect();
        let quantities: Vec<i32> = order.items.iter().map(|l| l.quantity as i32).collect();
        let prices: Vec<i64> = order
            .items
            .iter()
            .map(|l| l.unit_price_cents as i64)
            .collect();
        INSERT_ITEMS
            .run(|sql| {
                sqlx::query(sql)
                    .bind(order.id)
                    .bind(lines)
                    .bind(skus)
                    .bind(quantities)
                    .bind(prices)
                    .execute(&mut *tx)
            })
            .await?;
        INSERT_OUTBOX
            .run(|sql| {
                sqlx::query(sql)
                    .bind(event.event_id)
                    .bind(event.order_id)
                    .bind(sqlx::types::Json(event))
                    .bind(&trace.traceparent)
                    .bind(&trace.tracestate)
                    .execute(&mut *tx)
            })
            .await?;
        tx.commit().await?;
        self.created.add(1, &[]);
        Ok(())
    }

    /// One order with its lines.
    pub async fn get(&self, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::load(&mut conn, id).await
    }

    async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        let Some(row) = SELECT_ORDER
            .run(|sql| sqlx::query(sql).bind(id).fetch_optional(&mut *conn))
            .await?
        else {
            return Ok(None);
        };
        let items = SELECT_ITEMS
            .run(|sql| sqlx::query(sql).bind(id).fetch_all(&mut *conn))
            .await?
            .iter()
            .map(line_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Order {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            status: row.try_get("status")?,
            total_cents: row.try_get::<i64, _>("total_cents")? as u64,
            created_at: row.try_get("created_at")?,
            fulfilled_at: row.try_get("fulfilled_at")?,
            items,
        }))
    }

    /// Marks the order fulfilled (idempotent: the first fulfilment time is kept).
    pub async fn fulfil(&self, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        FULFIL_ORDER
            .run(|sql| {
                sqlx::query(sql)
                    .bind(id)
                    .bind(FULFILLED)
                    .execute(&mut *conn)
            })
            .await?;
        Self::load(&mut conn, id).await
    }

    /// Records that service-b acknowledged the event.
    pub async fn mark_delivered(
        &self,
        conn: &mut PgConnection,
        event_id: Uuid,
    ) -> Result<(), sqlx::Error> {
        MARK_DELIVERED
            .run(|sql| sqlx::query(sql).bind(event_id).execute(conn))
            .await
            .map(|_| ())
    }

    /// Records a failed delivery attempt.
    pub async fn record_failure(
        &self,
        conn: &mut PgConnection,
        event_id: Uuid,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        RECORD_FAILURE
            .run(|sql| sqlx::query(sql).bind(event_id).bind(error).execute(conn))
            .await
            .map(|_| ())
    }

    /// Locks up to `limit` undelivered events older than `min_age` (skipping rows another
    /// relay holds) in the caller's transaction.
    pub async fn lock_pending(
        &self,
        conn: &mut PgConnection,
        min_age: Duration,
        limit: i64,
    ) -> Result<Vec<PendingEvent>, sqlx::Error> {
        let rows = SELECT_PENDING
            .run(|sql| {
                sqlx::query(sql)
                    .bind(min_age.as_secs_f64())
                    .bind(limit)
                    .fetch_all(conn)
            })
            .await?;
        rows.iter()
            .map(|row| {
                let sqlx::types::Json(event): sqlx::types::Json<OrderCreated> =
                    row.try_get("payload")?;
                Ok(PendingEvent {
                    event,
                    trace: StoredTraceContext {
                        traceparent: row.try_get("traceparent")?,
                        tracestate: row.try_get("tracestate")?,
                    },
                })
            })
            .collect()
    }

    /// Events not yet delivered (the outbox depth).
    pub async fn count_pending(&self) -> Result<i64, sqlx::Error> {
        COUNT_PENDING
            .run(|sql| sqlx::query_scalar(sql).fetch_one(&self.pool))
            .await
    }
}

fn line_from_row(row: &PgRow) -> Result<OrderLine, sqlx::Error> {
    Ok(OrderLine {
        sku: row.try_get("sku")?,
        quantity: row.try_get::<i32, _>("quantity")? as u32,
        unit_price_cents: row.try_get::<i64, _>("unit_price_cents")? as u64,
    })
}
