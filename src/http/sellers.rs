//! Seller routes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cdn;
use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Json, Path};
use super::openapi::{AdminOnly, Invalid};
use super::AppState;
use crate::domain::catalog::SellerInput;
use crate::service::view::SellerView;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_seller))
        .routes(routes!(get_seller))
}

/// A seller (CDN-cacheable).
#[utoipa::path(get, path = "/sellers/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Seller id or slug"),
           ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses((status = 200, description = "The seller", body = SellerView),
               (status = 304, description = "The cached copy is current"),
               (status = 404, description = "No such seller", body = ErrorBody)))]
async fn get_seller(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.seller(&key)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// Create a seller (admin).
#[utoipa::path(post, path = "/sellers", tag = "catalog", request_body = SellerInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The new seller", body = SellerView),
               AdminOnly,
               (status = 409, description = "`slug_taken`", body = ErrorBody),
               Invalid))]
async fn create_seller(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<SellerInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_seller(actor, input).await?;
    let repr = state.catalog.seller(&id.to_string())?;
    Ok(cdn::private(StatusCode::CREATED, &repr))
}
