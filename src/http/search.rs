//! Search routes: full-text search with facets, and autocomplete.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::cdn;
use super::error::ApiError;
use super::extract::Query;
use super::AppState;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(search))
        .route("/search/suggest", get(suggest))
}

async fn search(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.search.search(&params).await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

#[derive(Deserialize)]
struct SuggestParams {
    #[serde(default)]
    q: String,
}

async fn suggest(
    State(state): State<AppState>,
    Query(params): Query<SuggestParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state.search.suggest(&params.q)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}
