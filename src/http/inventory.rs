//! Inventory routes: stock of a SKU, who holds it, and the events stock changes emit.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, CatalogWriterCaller, IfMatch, Json, Path, Query};
use super::openapi::{AdminOnly, StockWrite};
use super::{private_json, AppState};
use crate::domain::catalog::{AdjustInput, InventoryInput};
use crate::service::view::{HoldView, InventoryView, Items, OutboxEventView};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_inventory, put_inventory))
        .routes(routes!(adjust_inventory))
        .routes(routes!(list_reservations))
        .routes(routes!(list_outbox))
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

/// Stock of a SKU: on hand, reserved by carts and orders, and available.
#[utoipa::path(get, path = "/inventory/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "The SKU")),
    responses((status = 200, description = "The stock; `ETag` is its version", body = InventoryView),
               (status = 404, description = "No such SKU, or one of a product that is not published (to callers who may not manage it)", body = ErrorBody)))]
async fn get_inventory(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    Ok(respond(state.inventory.get(actor, sku).await?))
}

/// Set on-hand stock (admin, or the owning seller); atomic with concurrent reservations.
///
/// Crossing the SKU's low-stock threshold writes a `low_stock` outbox event in the same batch.
#[utoipa::path(put, path = "/inventory/{sku}", tag = "inventory", request_body = InventoryInput,
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU"),
           ("If-Match" = Option<String>, Header, description = "Quoted stock version")),
    responses((status = 200, description = "The stock after the change", body = InventoryView),
               StockWrite))]
async fn put_inventory(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<InventoryInput>,
) -> Result<Response, ApiError> {
    Ok(respond(
        state.inventory.change_stock(actor, sku, input.into(), version).await?,
    ))
}

/// Add or remove on-hand units relative to the current count (admin, or the owning seller).
#[utoipa::path(post, path = "/inventory/{sku}/adjust", tag = "inventory", request_body = AdjustInput,
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU"),
           ("If-Match" = Option<String>, Header, description = "Quoted stock version")),
    responses((status = 200, description = "The stock after the change", body = InventoryView),
               StockWrite))]
async fn adjust_inventory(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<AdjustInput>,
) -> Result<Response, ApiError> {
    Ok(respond(
        state.inventory.change_stock(actor, sku, input.into(), version).await?,
    ))
}

/// Who holds this SKU's stock: every hold with its cart (admin).
#[utoipa::path(get, path = "/inventory/{sku}/reservations", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU")),
    responses((status = 200, description = "The holds", body = Items<HoldView>),
               AdminOnly,
               (status = 404, description = "No such SKU", body = ErrorBody)))]
async fn list_reservations(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let items = state.inventory.holds_of(actor, sku).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Filters of `GET /admin/outbox`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// Only events of this topic, e.g. `low_stock`.
    topic: Option<String>,
    /// Most events returned, 1 to 1000 (default 100).
    limit: Option<usize>,
}

/// Events waiting for delivery (e.g. `low_stock`), oldest first (admin).
#[utoipa::path(get, path = "/admin/outbox", tag = "inventory", security(("bearer" = [])), params(OutboxQuery),
    responses((status = 200, description = "The events", body = Items<OutboxEventView>),
               AdminOnly))]
async fn list_outbox(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(query): Query<OutboxQuery>,
) -> Result<Response, ApiError> {
    let events = state
        .outbox
        .pending(actor, query.topic, query.limit.unwrap_or(100))
        .await?;
    Ok(private_json(StatusCode::OK, &Items { items: events }))
}
