//! Product routes: detail, listing and writes.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cdn;
use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, CatalogWriterCaller, IfMatch, Json, Path, Query};
use super::openapi::{BadBody, CatalogWriter, Invalid, Versioned};
use super::AppState;
use crate::domain::catalog::{ProductInput, ProductPatch, VariantInput, VariantPatch};
use crate::domain::Id;
use crate::service::catalog::ListingParams;
use crate::service::view::{ListingPage, ProductView};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product, delete_product))
        .routes(routes!(create_variant))
        .routes(routes!(update_variant))
}

/// Get a product with its variants, live stock, category path and seller.
///
/// The id or the slug works. CDN-cacheable: `ETag` (answered 304 on `If-None-Match`),
/// `Cache-Control` from `[http_cache]`, and `Surrogate-Key`/`xkey` tags for purges.
#[utoipa::path(get, path = "/products/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Product id or slug"),
           ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses((status = 200, description = "The product", body = ProductView),
               (status = 304, description = "The cached copy is current"),
               (status = 404, description = "No such published product", body = ErrorBody)))]
async fn get_product(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.catalog.product_page(&key).await?;
    if let Some(id) = repr.subject() {
        let (user, session) = super::recommendations::viewer(&state, &headers);
        state
            .recommendations
            .record(storefront_storage::reco::BehaviourKind::View, id, user, session);
    }
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// List products: filters, sorts and cursor pagination.
///
/// `category` includes its descendants. CDN-cacheable like a product page; a change purges
/// exactly the listing scopes the product was or is in.
#[utoipa::path(get, path = "/products", tag = "catalog", params(ListingParams),
    responses((status = 200, description = "A page of products", body = ListingPage),
               (status = 304, description = "The cached copy is current"),
               (status = 400, description = "A cursor of another listing", body = ErrorBody),
               (status = 422, description = "Invalid filters (each one listed)", body = ErrorBody)))]
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

/// Create a product (admin, or a seller for their own seller).
#[utoipa::path(post, path = "/products", tag = "catalog", request_body = ProductInput,
    security(("bearer" = [])),
    responses((status = 201, description = "Created; `Location` names it", body = ProductView),
               BadBody,
               CatalogWriter,
               (status = 409, description = "`slug_taken`, `sku_taken` or `external_id_taken`", body = ErrorBody),
               Invalid))]
async fn create_product(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Json(input): Json<ProductInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.create_product(actor, input).await?;
    written(&state, id, StatusCode::CREATED).await
}

/// Update a product; absent fields stay, `null` clears brand, category or seller.
#[utoipa::path(patch, path = "/products/{key}", tag = "catalog", request_body = ProductPatch,
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Product id or slug"),
           ("If-Match" = Option<String>, Header, description = "The version the change is based on")),
    responses((status = 200, description = "The product after the change", body = ProductView),
               CatalogWriter,
               (status = 404, description = "No such product", body = ErrorBody),
               (status = 409, description = "`slug_taken`", body = ErrorBody),
               Versioned,
               Invalid))]
async fn update_product(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(patch): Json<ProductPatch>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_product(actor, key, patch, version).await?;
    written(&state, id, StatusCode::OK).await
}

/// Delete a product with its SKUs and stock records.
#[utoipa::path(delete, path = "/products/{key}", tag = "catalog", security(("bearer" = [])),
    params(("key" = String, Path, description = "Product id or slug"),
           ("If-Match" = Option<String>, Header, description = "The version being deleted")),
    responses((status = 204, description = "Deleted"),
               CatalogWriter,
               (status = 404, description = "No such product", body = ErrorBody),
               Versioned))]
async fn delete_product(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
) -> Result<Response, ApiError> {
    state.catalog.delete_product(actor, key, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Add a variant (SKU) to a product, with its initial stock.
#[utoipa::path(post, path = "/products/{key}/variants", tag = "catalog", request_body = VariantInput,
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Product id or slug"),
           ("If-Match" = Option<String>, Header, description = "The product version")),
    responses((status = 201, description = "The product with the new variant", body = ProductView),
               CatalogWriter,
               (status = 404, description = "No such product", body = ErrorBody),
               (status = 409, description = "`sku_taken`", body = ErrorBody),
               Versioned,
               Invalid))]
async fn create_variant(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(input): Json<VariantInput>,
) -> Result<Response, ApiError> {
    let id = state.catalog.add_variant(actor, key, input, version).await?;
    written(&state, id, StatusCode::CREATED).await
}

/// Update a variant by SKU; `If-Match` is the owning product's version.
#[utoipa::path(patch, path = "/variants/{sku}", tag = "catalog", request_body = VariantPatch,
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU"),
           ("If-Match" = Option<String>, Header, description = "The product version")),
    responses((status = 200, description = "The product after the change", body = ProductView),
               CatalogWriter,
               (status = 404, description = "No such SKU", body = ErrorBody),
               Versioned,
               Invalid))]
async fn update_variant(
    State(state): State<AppState>,
    CatalogWriterCaller(actor): CatalogWriterCaller,
    Path(sku): Path<String>,
    IfMatch(version): IfMatch,
    Json(patch): Json<VariantPatch>,
) -> Result<Response, ApiError> {
    let id = state.catalog.update_variant(actor, sku, patch, version).await?;
    written(&state, id, StatusCode::OK).await
}
