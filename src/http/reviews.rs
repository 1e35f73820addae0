//! Product reviews: the public pages, the author's writes, moderation, votes and replies.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, IfMatch, Json, Path, Query, SignedInCaller};
use super::openapi::{BadBody, CatalogWriter, Invalid, SignedIn};
use super::{cdn, parse_id, private_json, AppState};
use crate::domain::review::ReviewInput;
use crate::service::catalog::tags;
use crate::service::representation::Representation;
use crate::service::review::ReviewQuery;
use crate::service::view::review::{ReviewPage, ReviewView};
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reviews, create_review))
        .routes(routes!(get_review, update_review, delete_review))
        .routes(routes!(vote_helpful))
        .routes(routes!(reply))
        .routes(routes!(pending_reviews))
}

/// A product's approved reviews. Sorted `helpful` (default), `newest`, `highest` or `lowest`,
/// optionally only one `rating`; cursor-paginated. CDN-cacheable; any change to its public
/// reviews purges the product's review pages (`reviews-<product id>`).
#[utoipa::path(get, path = "/products/{key}/reviews", tag = "reviews",
    params(("key" = String, Path, description = "Product id or slug"), ReviewQuery),
    responses((status = 200, description = "A page of reviews", body = ReviewPage),
               (status = 304, description = "The cached copy is current"),
               (status = 400, description = "A cursor of another sort", body = ErrorBody),
               (status = 404, description = "No such published product", body = ErrorBody),
               Invalid))]
async fn list_reviews(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<ReviewQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (page, product) = state.reviews.list(key, query).await?;
    let tags = format!("{} {}", tags::reviews(product), tags::product_id(product));
    let repr = Representation::new(&page, None, &tags)?;
    Ok(cdn::public(&headers, &repr, &state.cache_control))
}

/// Review a product (signed-in users, once per product: 409 `review_exists`). It is
/// `verified_purchase` when the author bought it; `[reviews] auto_approve` decides whether it
/// is public at once or waits for a moderator. Text is stored as given: escape it when
/// rendering.
#[utoipa::path(post, path = "/products/{key}/reviews", tag = "reviews", request_body = ReviewInput,
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Product id or slug")),
    responses((status = 201, description = "The review", body = ReviewView), BadBody, SignedIn,
               (status = 404, description = "No such published product", body = ErrorBody),
               (status = 409, description = "`review_exists`", body = ErrorBody),
               Invalid))]
async fn create_review(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(key): Path<String>,
    Json(input): Json<ReviewInput>,
) -> Result<Response, ApiError> {
    let view = state.reviews.create(actor, key, input).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// One review: anyone once approved; before, its author and moderators.
#[utoipa::path(get, path = "/reviews/{id}", tag = "reviews",
    params(("id" = String, Path, description = "Review id")),
    responses((status = 200, description = "The review", body = ReviewView),
               (status = 404, description = "No such review", body = ErrorBody)))]
async fn get_review(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.reviews.get(actor, parse_id(&id, "review")?).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// The author edits `rating`, `title` or `body` (the review is moderated again unless
/// auto-approved), or a moderator (an admin, or the product's seller) sets `status` to
/// `approved` or `rejected`. `If-Match: "<version>"` guards against a lost update.
#[utoipa::path(patch, path = "/reviews/{id}", tag = "reviews", request_body = ReviewInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Review id")),
    responses((status = 200, description = "The review", body = ReviewView), BadBody, SignedIn,
               (status = 403, description = "Not the author (content) or a moderator (status)", body = ErrorBody),
               (status = 404, description = "No such review", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody),
               Invalid))]
async fn update_review(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(input): Json<ReviewInput>,
) -> Result<Response, ApiError> {
    let view = state
        .reviews
        .update(actor, parse_id(&id, "review")?, if_match, input)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Delete a review (its author or an admin).
#[utoipa::path(delete, path = "/reviews/{id}", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Review id")),
    responses((status = 204, description = "Deleted"), SignedIn,
               (status = 403, description = "Not the author or an admin", body = ErrorBody),
               (status = 404, description = "No such review", body = ErrorBody)))]
async fn delete_review(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.reviews.delete(actor, parse_id(&id, "review")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Vote an approved review helpful: once per user (409 `already_voted`), never your own (403).
#[utoipa::path(post, path = "/reviews/{id}/helpful", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Review id")),
    responses((status = 200, description = "The review with its new count", body = ReviewView), SignedIn,
               (status = 403, description = "Your own review", body = ErrorBody),
               (status = 404, description = "No such approved review", body = ErrorBody),
               (status = 409, description = "`already_voted`", body = ErrorBody)))]
async fn vote_helpful(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.reviews.helpful(actor, parse_id(&id, "review")?).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Body of `POST /reviews/{id}/reply`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplyInput {
    /// Up to 5,000 characters, stored as given.
    body: String,
}

/// The product's seller (or an admin) answers a review publicly, once (409 `reply_exists`).
#[utoipa::path(post, path = "/reviews/{id}/reply", tag = "reviews", request_body = ReplyInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Review id")),
    responses((status = 201, description = "The review with its reply", body = ReviewView), BadBody, CatalogWriter,
               (status = 404, description = "No such review", body = ErrorBody),
               (status = 409, description = "`reply_exists`", body = ErrorBody),
               Invalid))]
async fn reply(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(id): Path<String>,
    Json(input): Json<ReplyInput>,
) -> Result<Response, ApiError> {
    let view = state.reviews.reply(actor, parse_id(&id, "review")?, input.body).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// Reviews waiting for moderation, oldest first (admins: all; sellers: their products').
#[utoipa::path(get, path = "/admin/reviews", tag = "reviews",
    security(("bearer" = [])),
    responses((status = 200, description = "Pending reviews", body = Items<ReviewView>), CatalogWriter))]
async fn pending_reviews(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.reviews.pending(actor, 200).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}
