//! Seller routes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::cdn;
use super::error::ApiError;
use super::extract::{Caller, Json};
use super::AppState;
use crate::service::catalog::SellerInput;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sellers", post(create_seller))
        .route("/sellers/{key}", get(get_seller))
}

async fn get_seller(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.seller(&key)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

async fn create_seller(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<SellerInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_seller(actor, input).await?;
    let repr = state.catalog.seller(&id.to_string())?;
    Ok(cdn::private(StatusCode::CREATED, &repr))
}
