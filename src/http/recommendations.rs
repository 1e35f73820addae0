//! Recommendations, and the recording of what shoppers look at.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cart::CART_TOKEN;
use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, Path, Query};
use super::{cdn, AppState};
use crate::domain::Id;
use crate::service::auth::Actor;
use crate::service::reco::serve::{RecommendationList, MAX_LIMIT};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recommendations))
        .routes(routes!(frequently_bought_together))
        .routes(routes!(related))
}

/// Query of the recommendation lists.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// `popular` (default) or `personalized` (`GET /recommendations` only).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only products in this category (id or slug) and below (`popular` only).
    pub category: Option<String>,
    /// List length, 1–50 (default 10).
    pub limit: Option<String>,
}

fn limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw.map(str::parse::<usize>) {
        None => Ok(10),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(crate::service::ServiceError::invalid("limit", "out_of_range", "must be from 1 to 50").into()),
    }
}

/// Who is looking: the signed-in user, or a guest's pseudonymous session (a hash of the cart
/// token; 0 without one). A bad token only makes the view anonymous: public pages never
/// refuse a request for it.
pub(crate) fn viewer(state: &AppState, headers: &HeaderMap) -> (Option<Id>, u64) {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| match state.accounts.verify_access_token(token.trim()) {
            Ok(Actor::User { id, .. }) => Some(id),
            _ => None,
        });
    (user, session_of(headers))
}

/// An anonymous viewer's session: a hash of their cart token (0 without one).
pub(crate) fn session_of(headers: &HeaderMap) -> u64 {
    headers
        .get(&CART_TOKEN)
        .map(|t| xxhash_rust::xxh3::xxh3_64(t.as_bytes()))
        .unwrap_or(0)
}

/// Recommended products: `popular` (time-decayed purchases, add-to-carts and views,
/// optionally per `category`; CDN-cacheable) or `personalized` for the signed-in shopper
/// (their recent views and purchases through the item-to-item model, without what they
/// just bought; `private`). Anonymous callers asking for `personalized` get popular
/// products. Unpublished and out-of-stock products are never listed.
#[utoipa::path(get, path = "/recommendations", tag = "engagement", params(ListQuery),
    responses((status = 200, description = "The list", body = RecommendationList),
               (status = 304, description = "The cached copy is current"),
               (status = 401, description = "A bad or expired token", body = ErrorBody),
               (status = 404, description = "No such category", body = ErrorBody),
               (status = 422, description = "Unknown type or bad limit", body = ErrorBody)))]
async fn recommendations(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let n = limit(query.limit.as_deref())?;
    match query.kind.as_deref().unwrap_or("popular") {
        "popular" => {
            let repr = state.recommendations.popular(query.category, n).await?;
            Ok(cdn::public(&headers, &repr, &state.cache_control))
        }
        "personalized" => {
            let (repr, personal) = state.recommendations.personalized(actor, n).await?;
            Ok(if personal {
                cdn::private(StatusCode::OK, &repr)
            } else {
                // The same URL is personal with a token: a shared cache must tell them apart.
                let mut response = cdn::public(&headers, &repr, &state.cache_control);
                response
                    .headers_mut()
                    .insert(header::VARY, axum::http::HeaderValue::from_static("Authorization"));
                response
            })
        }
        _ => Err(crate::service::ServiceError::invalid("type", "invalid", "must be popular or personalized").into()),
    }
}

/// Products most often bought in the same order as this one (co-purchases with a minimum
/// support, ranked by confidence with the partner's popularity damped). CDN-cacheable.
#[utoipa::path(get, path = "/products/{key}/frequently-bought-together", tag = "engagement",
    params(("key" = String, Path, description = "Product id or slug"), ListQuery),
    responses((status = 200, description = "The list", body = RecommendationList),
               (status = 304, description = "The cached copy is current"),
               (status = 404, description = "No such published product", body = ErrorBody),
               (status = 422, description = "Bad limit", body = ErrorBody)))]
async fn frequently_bought_together(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state
        .recommendations
        .frequently_bought_together(key, limit(query.limit.as_deref())?)
        .await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// Products related to this one: item-to-item from co-views and co-purchases, filled with
/// the most similar products by text for new or cold products. CDN-cacheable.
#[utoipa::path(get, path = "/products/{key}/related", tag = "engagement",
    params(("key" = String, Path, description = "Product id or slug"), ListQuery),
    responses((status = 200, description = "The list", body = RecommendationList),
               (status = 304, description = "The cached copy is current"),
               (status = 404, description = "No such published product", body = ErrorBody),
               (status = 422, description = "Bad limit", body = ErrorBody)))]
async fn related(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repr = state
        .recommendations
        .related(key, limit(query.limit.as_deref())?)
        .await?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}
