//! Shipping zone administration (admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Caller, IfMatch, Json, Path};
use super::openapi::{AdminOnly, BadBody, Invalid};
use super::{parse_id, private_json, AppState};
use crate::domain::shipping::ZoneInput;
use crate::service::view::shipping::ZoneView;
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_zone, list_zones))
        .routes(routes!(update_zone, delete_zone))
}

/// Create a shipping zone: the areas it covers (`US`, `US-CA`, or `*` for anywhere no other
/// zone covers) and its methods, each priced `flat`, by `weight` band, or `free_over` a
/// threshold, with a delivery estimate.
///
/// An address gets the methods of the most specific zone that covers it (region, then
/// country, then `*`); no two zones may name the same area (409 `zone_overlap`). Once a store
/// has a zone, the `[pricing]` standard method no longer applies: add a `*` zone to keep
/// shipping everywhere. Each seller's parcel is priced on its own.
#[utoipa::path(post, path = "/admin/shipping-zones", tag = "shipping", request_body = ZoneInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The zone", body = ZoneView), BadBody, AdminOnly,
               (status = 409, description = "`zone_overlap`", body = ErrorBody), Invalid))]
async fn create_zone(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<ZoneInput>,
) -> Result<Response, ApiError> {
    let view = state.shipping.create(actor, input).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// Every shipping zone, oldest first.
#[utoipa::path(get, path = "/admin/shipping-zones", tag = "shipping",
    security(("bearer" = [])),
    responses((status = 200, description = "The zones", body = Items<ZoneView>), AdminOnly))]
async fn list_zones(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.shipping.list(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Change a zone (absent fields stay; `methods` replaces the list). `If-Match: "<version>"`
/// guards against a lost update.
#[utoipa::path(patch, path = "/admin/shipping-zones/{id}", tag = "shipping", request_body = ZoneInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Zone id")),
    responses((status = 200, description = "The zone", body = ZoneView),
               BadBody,
               AdminOnly,
               (status = 404, description = "No such zone", body = ErrorBody),
               (status = 409, description = "`zone_overlap`", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody),
               Invalid))]
async fn update_zone(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(input): Json<ZoneInput>,
) -> Result<Response, ApiError> {
    let view = state
        .shipping
        .update(actor, parse_id(&id, "shipping zone")?, if_match, input)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Delete a zone; placed orders keep their method and price.
#[utoipa::path(delete, path = "/admin/shipping-zones/{id}", tag = "shipping",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Zone id")),
    responses((status = 204, description = "Deleted"),
               AdminOnly,
               (status = 404, description = "No such zone", body = ErrorBody)))]
async fn delete_zone(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.shipping.delete(actor, parse_id(&id, "shipping zone")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
