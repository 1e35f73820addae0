//! Category routes: the tree, one category, and writes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::cdn;
use super::error::ApiError;
use super::extract::{Caller, IfMatch, Json};
use super::AppState;
use crate::service::catalog::CategoryInput;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list_categories).post(create_category))
        .route("/categories/{key}", get(get_category).patch(update_category))
}

async fn list_categories(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let repr = state.catalog.category_tree()?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

async fn get_category(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.category(&key)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

async fn create_category(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<CategoryInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_category(actor, input).await?;
    let repr = state.catalog.category(&id.to_string())?;
    Ok(cdn::private(StatusCode::CREATED, &repr))
}

async fn update_category(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<CategoryInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_category(actor, key, input, version).await?;
    let repr = state.catalog.category(&id.to_string())?;
    Ok(cdn::private(StatusCode::OK, &repr))
}
