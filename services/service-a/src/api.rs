//! HTTP handlers. No telemetry code here: see the crate docs for where it lives.

use crate::{
    AppState,
    dependencies::StockLine,
    error::OrderError,
    orders::{ACCEPTED, NewOrder, Order, OrderCreated},
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use service_runtime::problem::ApiJson;
use uuid::Uuid;

/// `POST /orders`, `GET /orders/{id}`, `POST /orders/{id}/fulfil`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/fulfil", post(fulfil_order))
        .with_state(state)
}

async fn create_order(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<NewOrder>,
) -> Result<(StatusCode, Json<Order>), OrderError> {
    request.validate()?;
    let stock = app.inventory.check(&request.items).await?;
    if let Some(index) = stock.lines.iter().position(|line| !line.in_stock) {
        return Err(OrderError::Invalid {
            field: format!("items[{index}].quantity"),
            detail: "not enough stock".into(),
        });
    }
    let verdict = app
        .fraud
        .check(&request.customer_id, stock.total_cents)
        .await?;
    if !verdict.approved {
        return Err(OrderError::Rejected {
            score: verdict.score,
        });
    }

    let items: Vec<_> = stock.lines.iter().map(StockLine::to_order_line).collect();
    let order_id = Uuid::new_v4();
    let event = OrderCreated::for_order(
        order_id,
        request.customer_id.trim(),
        &items,
        stock.total_cents,
    );
    let draft = Order {
        id: order_id,
        customer_id: request.customer_id.trim().to_owned(),
        status: ACCEPTED.into(),
        items,
        total_cents: stock.total_cents,
        created_at: String::new(),
        fulfilled_at: None,
    };
    // Order, lines and event in one transaction; then try to deliver the event now.
    app.store
        .create(&draft, &event)
        .await
        .map_err(OrderError::database)?;
    app.outbox.deliver_now(&event).await;

    let order = app
        .store
        .get(order_id)
        .await
        .map_err(OrderError::database)?;
    Ok((StatusCode::CREATED, Json(order.unwrap_or(draft))))
}

async fn get_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, OrderError> {
    let uuid = Uuid::parse_str(&id).map_err(|_| OrderError::NotFound(id.clone()))?;
    app.store
        .get(uuid)
        .await
        .map_err(OrderError::database)?
        .map(Json)
        .ok_or(OrderError::NotFound(id))
}

/// Called by service-c once it processed the order's event; idempotent.
async fn fulfil_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, OrderError> {
    let uuid = Uuid::parse_str(&id).map_err(|_| OrderError::NotFound(id.clone()))?;
    app.store
        .fulfil(uuid)
        .await
        .map_err(OrderError::database)?
        .map(Json)
        .ok_or(OrderError::NotFound(id))
}
