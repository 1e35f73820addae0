//! Product routes: detail, listing and writes.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;

use super::cdn;
use super::error::ApiError;
use super::extract::{Caller, IfMatch, Json, Query};
use super::AppState;
use crate::domain::catalog::{ProductInput, ProductPatch, VariantInput, VariantPatch};
use crate::domain::Id;
use crate::service::catalog::ListingParams;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list_products).post(create_product))
        .route(
            "/products/{key}",
            get(get_product).patch(update_product).delete(delete_product),
        )
        .route("/products/{key}/variants", post(create_variant))
        .route("/variants/{sku}", patch(update_variant))
}

async fn get_product(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.product_page(&key).await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

async fn list_products(
    State(state): State<AppState>,
    Query(params): Query<ListingParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.list_products(&params).await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

async fn written(state: &AppState, id: Id, status: StatusCode) -> Result<Response, ApiError> {
    let repr = state.catalog.product_document(id).await?;
    let mut response = cdn::private(status, &repr);
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/products/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

async fn create_product(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<ProductInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_product(actor, input).await?;
    written(&state, id, StatusCode::CREATED).await
}

async fn update_product(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(patch): Json<ProductPatch>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_product(actor, key, patch, version).await?;
    written(&state, id, StatusCode::OK).await
}

async fn delete_product(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
) -> Result<Response, ApiError> {
    state.catalog.delete_product(actor, key, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_variant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<VariantInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.add_variant(actor, key, input, version).await?;
    written(&state, id, StatusCode::CREATED).await
}

async fn update_variant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(patch): Json<VariantPatch>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_variant(actor, sku, patch, version).await?;
    written(&state, id, StatusCode::OK).await
}
