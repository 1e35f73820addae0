//! Coupon administration: the store's coupons (admins) and a seller's own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, CatalogWriterCaller, Json, Path};
use super::openapi::{BadBody, CatalogWriter, Invalid};
use super::{private_json, AppState};
use crate::domain::coupon::CouponInput;
use crate::service::view::coupon::CouponView;
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_coupon, list_coupons))
        .routes(routes!(get_coupon, update_coupon, delete_coupon))
}

/// Create a coupon (admins; a seller's covers only their own products).
///
/// `kind` is `percent` (`value` 1–100) or `fixed` (`value` in minor units). The discount is
/// computed on the eligible lines, rounded down to the minor unit, capped by `max_discount`,
/// and spread over the lines by largest remainder. Limits: `max_uses` in all and
/// `max_uses_per_customer` (a user, or a guest's email); a failed or cancelled order gives
/// its use back.
#[utoipa::path(post, path = "/admin/coupons", tag = "promotions", request_body = CouponInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The coupon", body = CouponView),
               BadBody,
               CatalogWriter,
               (status = 409, description = "`coupon_taken`", body = ErrorBody),
               Invalid))]
async fn create_coupon(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Json(input): Json<CouponInput>,
) -> Result<Response, ApiError> {
    let view = state.coupons.create(actor, input).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// The coupons the caller manages (all for admins, their own for a seller), by code.
#[utoipa::path(get, path = "/admin/coupons", tag = "promotions",
    security(("bearer" = [])),
    responses((status = 200, description = "The coupons", body = Items<CouponView>), CatalogWriter))]
async fn list_coupons(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.coupons.list(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// A coupon, with its `uses`.
#[utoipa::path(get, path = "/admin/coupons/{code}", tag = "promotions",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (any case)")),
    responses((status = 200, description = "The coupon", body = CouponView),
               CatalogWriter,
               (status = 404, description = "No such coupon of the caller's", body = ErrorBody)))]
async fn get_coupon(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.coupons.get(actor, code).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Change a coupon's terms or scope; absent fields stay (the code cannot change).
#[utoipa::path(patch, path = "/admin/coupons/{code}", tag = "promotions", request_body = CouponInput,
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (any case)")),
    responses((status = 200, description = "The coupon", body = CouponView),
               BadBody,
               CatalogWriter,
               (status = 404, description = "No such coupon of the caller's", body = ErrorBody),
               Invalid))]
async fn update_coupon(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(code): Path<String>,
    Json(input): Json<CouponInput>,
) -> Result<Response, ApiError> {
    let view = state.coupons.update(actor, code, input).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Delete a coupon: carts holding it stop getting its discount; placed orders keep theirs.
#[utoipa::path(delete, path = "/admin/coupons/{code}", tag = "promotions",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (any case)")),
    responses((status = 204, description = "Deleted"),
               CatalogWriter,
               (status = 404, description = "No such coupon of the caller's", body = ErrorBody)))]
async fn delete_coupon(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    state.coupons.delete(actor, code).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
