//! Automatic promotion administration (admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Caller, Json, Path};
use super::openapi::{AdminOnly, BadBody, Invalid};
use super::{parse_id, private_json, AppState};
use crate::domain::promotion::PromotionInput;
use crate::service::view::promotion::PromotionView;
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_promotion, list_promotions))
        .routes(routes!(update_promotion, delete_promotion))
}

/// Create an automatic promotion: `percent` (1–100 off) or `buy_x_get_y` (of every `buy +
/// get` units of a SKU, `get` free), on products, categories (and below) or sellers.
///
/// Each cart line gets the one promotion that takes the most off it; `[pricing]
/// promotion_stacking` says how a coupon combines with it (`combine`: the coupon applies to
/// what is left; `exclusive`: a coupon that applies replaces the promotions).
#[utoipa::path(post, path = "/admin/promotions", tag = "promotions", request_body = PromotionInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The promotion", body = PromotionView), BadBody, AdminOnly, Invalid))]
async fn create_promotion(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<PromotionInput>,
) -> Result<Response, ApiError> {
    let view = state.promotions.create(actor, input).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// Every promotion, oldest first.
#[utoipa::path(get, path = "/admin/promotions", tag = "promotions",
    security(("bearer" = [])),
    responses((status = 200, description = "The promotions", body = Items<PromotionView>), AdminOnly))]
async fn list_promotions(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.promotions.list(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Change a promotion (absent fields stay; `active: false` pauses it).
#[utoipa::path(patch, path = "/admin/promotions/{id}", tag = "promotions", request_body = PromotionInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Promotion id")),
    responses((status = 200, description = "The promotion", body = PromotionView),
               BadBody,
               AdminOnly,
               (status = 404, description = "No such promotion", body = ErrorBody),
               Invalid))]
async fn update_promotion(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
    Json(input): Json<PromotionInput>,
) -> Result<Response, ApiError> {
    let view = state
        .promotions
        .update(actor, parse_id(&id, "promotion")?, input)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Delete a promotion; placed orders keep their discounts.
#[utoipa::path(delete, path = "/admin/promotions/{id}", tag = "promotions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Promotion id")),
    responses((status = 204, description = "Deleted"),
               AdminOnly,
               (status = 404, description = "No such promotion", body = ErrorBody)))]
async fn delete_promotion(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.promotions.delete(actor, parse_id(&id, "promotion")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
