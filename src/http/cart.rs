//! Cart routes. The cart is the caller's: a signed-in user's own cart, or the guest cart named
//! by `X-Cart-Token` (issued on the first write and echoed on every response).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, IfMatch, Json, Path, Query};
use super::openapi::{BadBody, Versioned};
use super::{private_json, AppState};
use crate::domain::cart::{CartItemInput, CouponCodeInput, QuantityInput};
use crate::domain::pricing::TaxLocation;
use crate::service::auth::Actor;
use crate::service::cart::{CartOp, CartOwner, CartPage, Destination};
use crate::service::view::shipping::ShippingOffersView;
use crate::service::view::CartView;

/// Header carrying a guest cart's token.
pub static CART_TOKEN: HeaderName = HeaderName::from_static("x-cart-token");

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart, clear_cart))
        .routes(routes!(add_item))
        .routes(routes!(reserve_cart))
        .routes(routes!(shipping_methods))
        .routes(routes!(apply_coupon, remove_coupon))
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
        // A header that is there names a cart, even when it is garbage: that is a 404, never
        // a new cart.
        _ if headers.contains_key(&CART_TOKEN) => CartOwner::Guest(cart_token(headers).unwrap_or_default()),
        _ => CartOwner::NewGuest,
    }
}

/// The headers of a cart request (read by the handlers through `HeaderMap` and `IfMatch`; this
/// type documents them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct CartHeaders {
    /// Guest cart token (43 URL-safe characters), issued by the first cart write and echoed on
    /// every response; ignored for signed-in users.
    #[param(rename = "X-Cart-Token")]
    cart_token: Option<String>,
    /// Quoted cart version, e.g. `"3"`; a mismatch gives 412 instead of a lost update.
    #[param(rename = "If-Match")]
    if_match: Option<String>,
}

/// `?country=US&region=CA&shipping_method=express`: where the order ships and how, for tax
/// and shipping (defaults: the user's default address, the cheapest method).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LocationQuery {
    /// ISO country for the tax estimate (defaults to the user's default address).
    country: Option<String>,
    /// Region or state for the tax estimate.
    region: Option<String>,
    /// The shipping method to price (default: the cheapest that ships there).
    shipping_method: Option<String>,
}

impl LocationQuery {
    fn destination(self) -> Destination {
        Destination {
            location: self.country.map(|country| TaxLocation {
                country,
                region: self.region.unwrap_or_default(),
            }),
            method: self.shipping_method,
        }
    }
}

/// A cart read: its JSON, never stored by shared caches, with the version as `ETag` and the
/// guest token echoed.
pub fn page_response(page: &CartPage, token: Option<&str>) -> Response {
    let mut response = Response::new(axum::body::Body::from(page.body.clone()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(token) = token.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(CART_TOKEN.clone(), token);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", page.version)) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// The caller's cart with its price breakdown (empty for a guest without a token).
#[utoipa::path(get, path = "/cart", tag = "cart",
    params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart; `ETag` is its version", body = CartView),
               (status = 401, description = "A bad access token", body = ErrorBody),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody)))]
async fn get_cart(State(state): State<AppState>, req: CartRequest) -> Result<Response, ApiError> {
    let page = state.carts.get(req.owner.clone(), req.to).await?;
    Ok(page_response(&page, guest_token(&req.owner)))
}

/// The shipping methods that ship the cart to `?country=&region=` (default: the user's
/// default address), with what each costs, cheapest first. Each seller ships their own parcel
/// and each parcel is priced on its own; `per_shipment` shows the parts. Checkout takes one
/// of these `code`s as `shipping_method`.
#[utoipa::path(get, path = "/cart/shipping-methods", tag = "cart",
    params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The methods", body = ShippingOffersView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 422, description = "No destination is known (`country`)", body = ErrorBody)))]
async fn shipping_methods(State(state): State<AppState>, req: CartRequest) -> Result<Response, ApiError> {
    let offers = state.carts.shipping_offers(req.owner.clone(), req.to).await?;
    Ok(private_json(StatusCode::OK, &offers))
}

/// What every cart request carries: whose cart, the version it is based on, and where it
/// ships (for tax).
struct CartRequest {
    owner: CartOwner,
    if_match: Option<u64>,
    to: Destination,
}

impl FromRequestParts<AppState> for CartRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        let IfMatch(if_match) = IfMatch::from_request_parts(parts, state).await?;
        let Query(query) = Query::<LocationQuery>::from_request_parts(parts, state).await?;
        Ok(CartRequest {
            owner: owner(&actor, &parts.headers),
            if_match,
            to: query.destination(),
        })
    }
}

async fn write(state: AppState, req: CartRequest, op: CartOp) -> Result<Response, ApiError> {
    let done = state.carts.write(req.owner.clone(), op, req.if_match, req.to).await?;
    let token = done.new_token.as_deref().or(guest_token(&req.owner));
    Ok(page_response(&done.cart, token))
}

pub(crate) fn guest_token(owner: &CartOwner) -> Option<&str> {
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
    params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               BadBody,
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 409, description = "`insufficient_stock`", body = ErrorBody),
               Versioned,
               (status = 422, description = "Unknown or unpublished SKU, bad quantity, cart limits", body = ErrorBody)))]
async fn add_item(
    State(state): State<AppState>,
    req: CartRequest,
    Json(body): Json<CartItemInput>,
) -> Result<Response, ApiError> {
    let sku = body.sku.clone();
    let op = CartOp::Add {
        sku: body.sku,
        quantity: body.quantity,
    };
    let owner = req.owner.clone();
    let done = state.carts.write(req.owner.clone(), op, req.if_match, req.to).await?;
    let token = done.new_token.as_deref().or(guest_token(&owner));
    if let Some(sku) = &sku {
        let user = match owner {
            CartOwner::User(id) => Some(id),
            _ => None,
        };
        let session = token.map(|t| xxhash_rust::xxh3::xxh3_64(t.as_bytes())).unwrap_or(0);
        state.recommendations.record_cart(sku, user, session);
    }
    Ok(page_response(&done.cart, token))
}

/// Set a line's quantity.
#[utoipa::path(patch, path = "/cart/items/{item_id}", tag = "cart", request_body = QuantityInput,
    params(("item_id" = String, Path, description = "Line id"),
           CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               (status = 404, description = "No such line or cart", body = ErrorBody),
               (status = 409, description = "`insufficient_stock`", body = ErrorBody),
               Versioned,
               (status = 422, description = "Bad quantity or cart limits", body = ErrorBody)))]
async fn update_item(
    State(state): State<AppState>,
    Path(item_id): Path<String>,
    req: CartRequest,
    Json(body): Json<QuantityInput>,
) -> Result<Response, ApiError> {
    let op = CartOp::SetQuantity {
        item_id,
        quantity: body.quantity,
    };
    write(state, req, op).await
}

/// Remove a line; its hold is released.
#[utoipa::path(delete, path = "/cart/items/{item_id}", tag = "cart",
    params(("item_id" = String, Path, description = "Line id"),
           CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart after the change", body = CartView),
               (status = 404, description = "No such line or cart", body = ErrorBody),
               Versioned))]
async fn remove_item(
    State(state): State<AppState>,
    Path(item_id): Path<String>,
    req: CartRequest,
) -> Result<Response, ApiError> {
    write(state, req, CartOp::Remove { item_id }).await
}

/// Empty the cart and release its holds.
#[utoipa::path(delete, path = "/cart", tag = "cart", params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The empty cart", body = CartView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               Versioned))]
async fn clear_cart(State(state): State<AppState>, req: CartRequest) -> Result<Response, ApiError> {
    write(state, req, CartOp::Clear).await
}

/// Hold stock for every line now, all or nothing.
///
/// The first step of checkout; with `reserve_on = "checkout"` the only hold before the order.
/// Holds lapse after `hold_ttl_secs` without cart activity.
#[utoipa::path(post, path = "/cart/reserve", tag = "cart", params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart with every line held", body = CartView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 409, description = "`insufficient_stock` or `cart_empty`", body = ErrorBody),
               Versioned))]
async fn reserve_cart(State(state): State<AppState>, req: CartRequest) -> Result<Response, ApiError> {
    write(state, req, CartOp::HoldAll).await
}

/// Put a coupon on the cart.
///
/// The code is checked against the cart as it is: an unknown code, or one that does not apply
/// (expired, not yet valid, under its minimum, no eligible line, used up), answers 422 with
/// the reason as the `code` field's error code (`coupon_not_found`, `coupon_expired`,
/// `coupon_not_started`, `coupon_min_subtotal`, `coupon_not_applicable`, `coupon_exhausted`,
/// `coupon_customer_limit`, `coupon_first_order_only`). The cart then keeps the code; each
/// pricing shows the discount per line, or in `coupon_problem` why it takes nothing off now.
#[utoipa::path(post, path = "/cart/coupon", tag = "cart", request_body = CouponCodeInput,
    params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart with the coupon", body = CartView),
               BadBody,
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               Versioned,
               (status = 422, description = "The code is unknown or does not apply; the reason is the field's code", body = ErrorBody)))]
async fn apply_coupon(
    State(state): State<AppState>,
    req: CartRequest,
    Json(body): Json<CouponCodeInput>,
) -> Result<Response, ApiError> {
    let code = body.code.unwrap_or_default();
    write(state, req, CartOp::SetCoupon { code: Some(code) }).await
}

/// Take the coupon off the cart.
#[utoipa::path(delete, path = "/cart/coupon", tag = "cart", params(CartHeaders, LocationQuery),
    responses((status = 200, description = "The cart without a coupon", body = CartView),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               Versioned))]
async fn remove_coupon(State(state): State<AppState>, req: CartRequest) -> Result<Response, ApiError> {
    write(state, req, CartOp::SetCoupon { code: None }).await
}
