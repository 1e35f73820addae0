//! Cart routes. The cart is the caller's: a signed-in user's own cart, or the guest cart named
//! by `X-Cart-Token` (issued on the first write and echoed on every response).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{Caller, IfMatch, Json, Query};
use super::{private_json, AppState};
use crate::domain::pricing::TaxLocation;
use crate::service::auth::Actor;
use crate::service::cart::{CartOp, CartOwner};
use crate::service::view::CartView;

/// Header carrying a guest cart's token.
pub static CART_TOKEN: HeaderName = HeaderName::from_static("x-cart-token");

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(get_cart).delete(clear_cart))
        .route("/cart/items", post(add_item))
        .route("/cart/reserve", post(reserve_cart))
        .route("/cart/items/{item_id}", patch(update_item))
        .route("/cart/items/{item_id}", delete(remove_item))
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationQuery {
    country: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddItem {
    sku: Option<String>,
    quantity: Option<i64>,
}

async fn add_item(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
    Json(body): Json<AddItem>,
) -> Result<Response, ApiError> {
    let op = CartOp::Add {
        sku: body.sku,
        quantity: body.quantity,
    };
    write(state, actor, headers, op, if_match, query).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateItem {
    quantity: Option<i64>,
}

async fn update_item(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    Path(item_id): Path<String>,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
    Json(body): Json<UpdateItem>,
) -> Result<Response, ApiError> {
    let op = CartOp::SetQuantity {
        item_id,
        quantity: body.quantity,
    };
    write(state, actor, headers, op, if_match, query).await
}

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

async fn clear_cart(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    write(state, actor, headers, CartOp::Clear, if_match, query).await
}

async fn reserve_cart(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    IfMatch(if_match): IfMatch,
    Query(query): Query<LocationQuery>,
) -> Result<Response, ApiError> {
    write(state, actor, headers, CartOp::HoldAll, if_match, query).await
}
