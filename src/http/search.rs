//! Search routes: full-text search with facets, and autocomplete.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cdn;
use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::AppState;
use crate::service::view::search::{SearchPage, Suggestions};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search)).routes(routes!(suggest))
}

/// Full-text product search with facets and typo tolerance.
///
/// BM25 over title, brand, category, type, attributes and description, with field boosts; a
/// misspelled word also matches its correction. Results are CDN-cacheable and cached per index
/// generation. A full search queue answers 503 with `Retry-After`.
#[utoipa::path(get, path = "/search", tag = "search",
    params(
        ("q" = Option<String>, Query, description = "Query text; empty matches everything. A query that names a category (\"laptop\" names Notebooks) ranks that category's products higher"),
        ("category" = Option<String>, Query, description = "Category id or slug, descendants included"),
        ("brand" = Option<String>, Query, description = "Brand, case-insensitive (as in facets.brand, or any spelling of it)"),
        ("min_price" = Option<i64>, Query, description = "Lowest price, minor units"),
        ("max_price" = Option<i64>, Query, description = "Highest price, minor units"),
        ("min_rating" = Option<f64>, Query, description = "Lowest average rating, 0 to 5"),
        ("in_stock" = Option<bool>, Query, description = "Only products with available stock"),
        ("attr.{name}" = Option<String>, Query, description = "Attribute filter for facetable attributes ([search] facet_attributes), e.g. attr.colour=Black"),
        ("sort" = Option<String>, Query, description = "relevance (default), price_asc, price_desc, rating or newest"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 100 (default 20)"),
        ("page" = Option<usize>, Query, description = "Page number, 1 to 500"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses((status = 200, description = "Matching products with facets", body = SearchPage),
               (status = 304, description = "The cached copy is current"),
               (status = 422, description = "Invalid filters (each one listed)", body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.search.search(&params).await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// `?q=` of `GET /search/suggest`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SuggestParams {
    /// The prefix as typed.
    #[serde(default)]
    q: String,
}

/// Autocomplete: brands, categories and product titles for a prefix.
#[utoipa::path(get, path = "/search/suggest", tag = "search", params(SuggestParams),
    responses((status = 200, description = "Suggestions, best first", body = Suggestions),
               (status = 304, description = "The cached copy is current")))]
async fn suggest(
    State(state): State<AppState>,
    Query(params): Query<SuggestParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.search.suggest(&params.q)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}
