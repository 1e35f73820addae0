//! Inventory routes: stock of a SKU, who holds it, and the events stock changes emit.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::ApiError;
use super::extract::{Caller, IfMatch, Json, Query};
use super::{private_json, AppState};
use crate::service::inventory::{AdjustInput, InventoryInput};
use crate::service::view::InventoryView;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory/{sku}", get(get_inventory).put(put_inventory))
        .route("/inventory/{sku}/adjust", post(adjust_inventory))
        .route("/inventory/{sku}/reservations", get(list_reservations))
        .route("/admin/outbox", get(list_outbox))
}

fn respond(view: InventoryView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).ok();
    let mut response = axum::Json(view).into_response();
    // Stock moves with every order; shared caches must not hold it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn get_inventory(State(state): State<AppState>, Path(sku): Path<String>) -> Result<Response, ApiError> {
    Ok(respond(state.inventory.get(sku).await?))
}

async fn put_inventory(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<InventoryInput>,
) -> Result<Response, ApiError> {
    Ok(respond(
        state.inventory.change_stock(actor, sku, input.into(), version).await?,
    ))
}

async fn adjust_inventory(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<AdjustInput>,
) -> Result<Response, ApiError> {
    Ok(respond(
        state.inventory.change_stock(actor, sku, input.into(), version).await?,
    ))
}

async fn list_reservations(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let holds = state.inventory.holds_of(actor, sku).await?;
    Ok(private_json(StatusCode::OK, &serde_json::json!({ "items": holds })))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    topic: Option<String>,
    limit: Option<usize>,
}

/// Events waiting for delivery (e.g. `low_stock`); admin only.
async fn list_outbox(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(query): Query<OutboxQuery>,
) -> Result<Response, ApiError> {
    let events = state
        .outbox
        .pending(actor, query.topic, query.limit.unwrap_or(100))
        .await?;
    Ok(private_json(StatusCode::OK, &serde_json::json!({ "items": events })))
}
