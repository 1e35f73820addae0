//! Cart routes. The cart is the caller's: a signed-in user's own cart, or the guest cart named
//! by `X-Cart-Token` (issued on the first write and echoed on every response).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, IfMatch, Json, Query};
use super::{private_json, AppState};
use crate::domain::cart::{CartItemInput, QuantityInput};
use crate::domain::pricing::TaxLocation;
use crate::service::auth::Actor;
use crate::service::cart::{CartOp, CartOwner};
use crate::service::view::CartView;

/// Header carrying a guest cart's token.
pub static CART_TOKEN: HeaderName = HeaderName::from_static("x-cart-token");

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart, clear_cart))
        .routes(routes!(add_item))
        .routes(routes!(reserve_cart))
        .routes(routes!(update_item, remove_item))
}

/// The guest cart token of a request, if any.
pub fn cart_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&CART_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn owner(actor: &Actor, headers: &HeaderMap) -> CartOwner {
    match actor {
        Actor::User { id, .. } => CartOwner::User(*id),
        _ => cart_token(headers).map(CartOwner::Guest).unwrap_or(CartOwner::NewGuest),
    }
}

/// `?country=US&region=CA`: where the order ships, for tax (defaults to the user's default
/// address).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LocationQuery {
    /// ISO country for the tax estimate (defaults to the user's default address).
    country: Option<String>,
    /// Region or state for the tax estimate.
    region: Option<String>,
}

impl LocationQuery {
    fn location(self) -> Option<TaxLocation> {
        self.country.map(|country| TaxLocation {
            country,
            region: self.region.unwrap_or_default(),
        })
    }
}

fn respond(cart: &CartView, token: Option<&str>) -> Response {
    let mut response = private_json(StatusCode::OK, cart);
    let headers = response.headers_mut();
    if let Some(token) = token.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(CART_TOKEN.clone(), token);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", cart.version)) {
        headers.insert(axum::http::header::ETAG, etag);
    }
    response
}

/// The caller's cart with its price breakdown (empty for a guest without a token).
#[utoipa::path(get, path = "/cart", tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "Guest cart token"), LocationQuery),
    responses((status = 200, description = "The cart; `ETag` is its version", body = CartView),
               (status = 401, description = "A bad access token", body = ErrorBody),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody)))]
async fn get_cart(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    let owner = owner(&actor, &headers);
    let cart = state.carts.get(owner.clone(), query.location()).await?;
    Ok(respond(&cart, guest_token(&owner)))
}

async fn write(
    state: AppState,
    actor: Actor,
    headers: HeaderMap,
    op: CartOp,
    if_match: Option<u64>,
    query: LocationQuery,
) -> Result<Response, ApiError> {
    let owner = owner(&actor, &headers);
    let done = state.carts.write(owner.clone(), op, if_match, query.location()).await?;
    let token = done.new_token.as_deref().or(guest_token(&owner));
    Ok(respond(&done.cart, token))
}

fn guest_token(owner: &CartOwner) -> Option<&str> {
    match owner {
        CartOwner::Guest(token) => Some(token),
        _ => None,
    }
}

/// Add a SKU; adding one already in the cart grows its line.
///
/// With `[inventory] reserve_on = "cart"` the units are held for `hold_ttl_secs`, extended by
/// every cart write. The first write of a guest creates the cart and returns its token in
/// `X-Cart-Token`.
#[utoipa::path(post, path = "/cart/items", tag = "cart", request_body = CartItemInput,
    params(("X-Cart-Token" = Option<String>, Header, description = "Guest cart token (43 URL-safe characters), issued by the first cart write and echoed on every response; ignored for signed-in users"),
           ("If-Match" = Option<String>, Header, description = "Quoted cart version, e.g. \"3\"; a mismatch gives 412 instead of a lost update"),
           LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               (status = 400, description = "Malformed JSON", body = ErrorBody),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 409, description = "`insufficient_stock`", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody),
               (status = 422, description = "Unknown or unpublished SKU, bad quantity, cart limits", body = ErrorBody)))]
async fn add_item(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
    Json(body): Json<CartItemInput>,
) -> Result<Response, ApiError> {
    let op = CartOp::Add {
        sku: body.sku,
        quantity: body.quantity,
    };
    write(state, actor, headers, op, if_match, query).await
}

/// Set a line's quantity.
#[utoipa::path(patch, path = "/cart/items/{item_id}", tag = "cart", request_body = QuantityInput,
    params(("item_id" = String, Path, description = "Line id"),
           ("X-Cart-Token" = Option<String>, Header, description = "Guest cart token"),
           ("If-Match" = Option<String>, Header, description = "Quoted cart version"),
           LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               (status = 404, description = "No such line or cart", body = ErrorBody),
               (status = 409, description = "`insufficient_stock`", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody),
               (status = 422, description = "Bad quantity or cart limits", body = ErrorBody)))]
async fn update_item(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    Path(item_id): Path<String>,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
    Json(body): Json<QuantityInput>,
) -> Result<Response, ApiError> {
    let op = CartOp::SetQuantity {
        item_id,
        quantity: body.quantity,
    };
    write(state, actor, headers, op, if_match, query).await
}

/// Remove a line; its hold is released.
#[utoipa::path(delete, path = "/cart/items/{item_id}", tag = "cart",
    params(("item_id" = String, Path, description = "Line id"),
           ("X-Cart-Token" = Option<String>, Header, description = "Guest cart token"),
           ("If-Match" = Option<String>, Header, description = "Quoted cart version"),
           LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               (status = 404, description = "No such line or cart", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody)))]
async fn remove_item(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    Path(item_id): Path<String>,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    write(state, actor, headers, CartOp::Remove { item_id }, if_match, query).await
}

/// Empty the cart and release its holds.
#[utoipa::path(delete, path = "/cart", tag = "cart", params(("X-Cart-Token" = Option<String>, Header, description = "Guest cart token (43 URL-safe characters), issued by the first cart write and echoed on every response; ignored for signed-in users"),
           ("If-Match" = Option<String>, Header, description = "Quoted cart version, e.g. \"3\"; a mismatch gives 412 instead of a lost update"),
           LocationQuery),
    responses((status = 200, description = "The empty cart", body = CartView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody)))]
async fn clear_cart(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    write(state, actor, headers, CartOp::Clear, if_match, query).await
}

/// Hold stock for every line now, all or nothing.
///
/// The first step of checkout; with `reserve_on = "checkout"` the only hold before the order.
/// Holds lapse after `hold_ttl_secs` without cart activity.
#[utoipa::path(post, path = "/cart/reserve", tag = "cart", params(("X-Cart-Token" = Option<String>, Header, description = "Guest cart token (43 URL-safe characters), issued by the first cart write and echoed on every response; ignored for signed-in users"),
           ("If-Match" = Option<String>, Header, description = "Quoted cart version, e.g. \"3\"; a mismatch gives 412 instead of a lost update"),
           LocationQuery),
    responses((status = 200, description = "The cart with every line held", body = CartView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 409, description = "`insufficient_stock` or `cart_empty`", body = ErrorBody),
               (status = 412, description = "`If-Match` names another version", body = ErrorBody)))]
async fn reserve_cart(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    write(state, actor, headers, CartOp::HoldAll, if_match, query).await
}
