//! The signed-in shopper's wishlist.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, Json, Path, SignedInCaller};
use super::openapi::{BadBody, Invalid, SignedIn};
use super::{cdn, AppState};
use crate::service::view::Items;
use crate::service::wishlist::{WishlistInput, WishlistItem};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_wishlist, add_to_wishlist))
        .routes(routes!(remove_from_wishlist))
}

/// The wishlist, newest first (unpublished products are left out).
#[utoipa::path(get, path = "/me/wishlist", tag = "engagement",
    security(("bearer" = [])),
    responses((status = 200, description = "The wishlist", body = Items<WishlistItem>), SignedIn))]
async fn get_wishlist(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let repr = state.wishlists.list(actor).await?;
    Ok(cdn::private(StatusCode::OK, &repr))
}

/// Add a product (optionally one variant) to the wishlist; adding it again changes the
/// variant. The shopper then gets `back_in_stock` when it can be bought again after being
/// out, and `price_drop` when its price falls below what they last saw: once per change.
#[utoipa::path(post, path = "/me/wishlist", tag = "engagement", request_body = WishlistInput,
    security(("bearer" = [])),
    responses((status = 201, description = "Added; the wishlist", body = Items<WishlistItem>), (status = 200, description = "Already there; updated", body = Items<WishlistItem>),
               BadBody, SignedIn,
               (status = 404, description = "No such published product", body = ErrorBody),
               Invalid))]
async fn add_to_wishlist(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Json(input): Json<WishlistInput>,
) -> Result<Response, ApiError> {
    let created = state.wishlists.add(actor, input).await?;
    let repr = state.wishlists.list(actor).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(cdn::private(status, &repr))
}

/// Remove a product from the wishlist.
#[utoipa::path(delete, path = "/me/wishlist/{product_id}", tag = "engagement",
    security(("bearer" = [])),
    params(("product_id" = String, Path, description = "Product id or slug")),
    responses((status = 204, description = "Removed"), SignedIn,
               (status = 404, description = "Not on the wishlist", body = ErrorBody)))]
async fn remove_from_wishlist(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(product): Path<String>,
) -> Result<Response, ApiError> {
    state.wishlists.remove(actor, product).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
