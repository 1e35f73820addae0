//! Category routes: the tree, one category, and writes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cdn;
use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, IfMatch, Json, Path};
use super::openapi::{AdminOnly, Invalid, Versioned};
use super::AppState;
use crate::domain::catalog::CategoryInput;
use crate::service::view::CategoryTreeView;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(get_category, update_category))
}

/// The whole category tree (CDN-cacheable).
#[utoipa::path(get, path = "/categories", tag = "catalog",
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses((status = 200, description = "The roots with their children", body = CategoryTreeView),
               (status = 304, description = "The cached copy is current")))]
async fn list_categories(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let repr = state.catalog.category_tree()?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// One category with its subtree and breadcrumb path (CDN-cacheable).
#[utoipa::path(get, path = "/categories/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Category id or slug"),
           ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses((status = 200, description = "The category", body = CategoryTreeView),
               (status = 304, description = "The cached copy is current"),
               (status = 404, description = "No such category", body = ErrorBody)))]
async fn get_category(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.category(&key)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// Create a category (admin).
#[utoipa::path(post, path = "/categories", tag = "catalog", request_body = CategoryInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The new category", body = CategoryTreeView),
               AdminOnly,
               (status = 409, description = "`slug_taken`", body = ErrorBody),
               Invalid))]
async fn create_category(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<CategoryInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_category(actor, input).await?;
    let repr = state.catalog.category(&id.to_string())?;
    Ok(cdn::private(StatusCode::CREATED, &repr))
}

/// Rename or move a category (admin); moving re-lists every product below it.
#[utoipa::path(patch, path = "/categories/{key}", tag = "catalog", request_body = CategoryInput,
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Category id or slug"),
           ("If-Match" = Option<String>, Header, description = "The category version")),
    responses((status = 200, description = "The category after the change", body = CategoryTreeView),
               AdminOnly,
               (status = 404, description = "No such category", body = ErrorBody),
               (status = 409, description = "`slug_taken`", body = ErrorBody),
               Versioned,
               (status = 422, description = "Invalid fields, or a move below itself", body = ErrorBody)))]
async fn update_category(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<CategoryInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_category(actor, key, input, version).await?;
    let repr = state.catalog.category(&id.to_string())?;
    Ok(cdn::private(StatusCode::OK, &repr))
}
