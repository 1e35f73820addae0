//! Checkout and order routes. Money-moving requests take an `Idempotency-Key`; their answers
//! are replayed with `Idempotent-Replayed: true`. Order answers are `private, no-store`; a
//! guest reads, follows and cancels their order with its `order_token` (`?token=` or
//! `X-Order-Token`).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cart::cart_token;
use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, IfMatch, Json, JsonBytes, Path, Query, SignedInCaller};
use super::openapi::{AdminOnly, BadBody, Invalid, SignedIn, Versioned};
use super::{parse_id, private_json, AppState};
use crate::domain::order::{CheckoutInput, NoteInput, RefundInput, ReturnInput, ReturnUpdateInput, StatusChangeInput};
use crate::service::auth::Actor;
use crate::service::cart::CartOwner;
use crate::service::idempotency::{Answer, Idempotency};
use crate::service::order::ListFilter;
use crate::service::view::order::{OrderEventView, OrderPage, OrderView};
use crate::service::view::returns::ReturnView;
use crate::service::view::Items;

/// Header naming a money-moving request.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Header marking a replayed answer.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Header carrying a guest's order token.
pub static ORDER_TOKEN: HeaderName = HeaderName::from_static("x-order-token");

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(get_timeline))
        .routes(routes!(get_invoice))
        .routes(routes!(add_note))
        .routes(routes!(cancel_order))
        .routes(routes!(change_status))
        .routes(routes!(create_refund))
        .routes(routes!(record_payment))
        .routes(routes!(request_return, list_returns))
        .routes(routes!(update_return))
        .routes(routes!(stripe_webhook))
}

/// The headers of a money-moving request (documentation; the handlers read `HeaderMap`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct MoneyHeaders {
    /// A key unique to this request (e.g. a UUID). A repeat with the same key and body gets the
    /// first answer again, with `Idempotent-Replayed: true`; with another body, 422
    /// `idempotency_key_reused`; while the first still runs, 409 `idempotency_key_in_use`.
    /// Kept for `[checkout] idempotency_ttl_secs`.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// `?token=` of a guest's order.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    /// The guest's `order_token` from the checkout answer (or the `X-Order-Token` header).
    token: Option<String>,
}

fn order_token(query: TokenQuery, headers: &HeaderMap) -> Option<String> {
    query.token.or_else(|| {
        headers
            .get(&ORDER_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Answers a stored or fresh answer of a money-moving request.
fn answer(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let location = (status == StatusCode::CREATED)
        .then(|| serde_json::from_slice::<serde_json::Value>(&answer.body).ok())
        .flatten()
        .and_then(|v| v["id"].as_str().map(|id| format!("/api/v1/orders/{id}")))
        .and_then(|l| HeaderValue::from_str(&l).ok());
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if answer.replayed {
        headers.insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
    }
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// Runs a one-record change under the caller's `Idempotency-Key`, when one is given.
async fn keyed(
    state: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    what: &[u8],
    f: impl std::future::Future<Output = Result<OrderView, crate::service::ServiceError>>,
) -> Result<Response, ApiError> {
    let run = || async {
        let view = f.await?;
        Ok(Answer {
            status: 200,
            body: serde_json::to_vec(&view)
                .map_err(|e| crate::service::ServiceError::internal_from("order view", e))?,
            replayed: false,
        })
    };
    match idempotency_key(headers) {
        None => Ok(answer(run().await?)),
        Some(key) => {
            let key = Idempotency::check_key(Some(&key))?;
            let scope = match actor {
                Actor::User { id, .. } => id.to_bytes().to_vec(),
                Actor::System => b"admin-api-key".to_vec(),
                Actor::Anonymous => b"guest".to_vec(),
            };
            let hash = Idempotency::hash(&[what]);
            Ok(answer(state.idempotency.run(scope, key, hash, run).await?))
        }
    }
}

/// Check out the caller's cart: a guest's (`X-Cart-Token`) or a signed-in customer's.
///
/// The saga: the cart is priced on the server (every line current, purchasable and in
/// stock), its stock is handed over to a `pending_payment` order, the payment is authorized
/// (outside every lock), then the order is confirmed (stock sold, cart emptied, `order_placed`
/// in the outbox) or fails (holds released, cart kept). `Idempotency-Key` is required. A guest's
/// answer carries the `order_token` that reads and cancels the order.
#[utoipa::path(post, path = "/checkout", tag = "orders", request_body = CheckoutInput,
    params(MoneyHeaders, ("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token")),
    responses((status = 201, description = "The order, confirmed; `Location` names it", body = OrderView),
               (status = 400, description = "No `Idempotency-Key`, or malformed JSON", body = ErrorBody),
               (status = 402, description = "`payment_declined`: the order stays `payment_failed`, the cart is kept; `details.order` is the order", body = ErrorBody),
               (status = 404, description = "`cart_not_found` or `cart_expired`", body = ErrorBody),
               (status = 409, description = "`insufficient_stock` (`details.lines`), `price_changed` (`details.breakdown`), `cart_empty`, `items_unavailable`, `cart_changed` or `idempotency_key_in_use`", body = ErrorBody),
               Invalid,
               (status = 503, description = "`payment_unavailable`: the provider is failing (breaker open) or refused the call, and the holds are released; or its answer was lost (a timeout, a 5xx), and the order keeps waiting for recovery or a webhook: retry with the same `Idempotency-Key` after `Retry-After`", body = ErrorBody)))]
async fn checkout(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    JsonBytes(input, raw): JsonBytes<CheckoutInput>,
) -> Result<Response, ApiError> {
    let owner = match actor {
        Actor::User { id, .. } => CartOwner::User(id),
        _ => cart_token(&headers)
            .map(CartOwner::Guest)
            .unwrap_or(CartOwner::NewGuest),
    };
    let done = state
        .checkout
        .checkout(actor, owner, idempotency_key(&headers), raw.to_vec(), input)
        .await?;
    Ok(answer(done))
}

/// List orders: a customer's own, a seller's (orders holding their lines, showing only
/// those), or for admins all orders, filtered by status, seller and date. Newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", security(("bearer" = [])), params(ListFilter),
    responses((status = 200, description = "A page of orders", body = OrderPage),
               (status = 400, description = "A cursor of another list", body = ErrorBody),
               SignedIn, Invalid))]
async fn list_orders(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Response, ApiError> {
    let page = state.orders.list(actor, filter).await?;
    Ok(private_json(StatusCode::OK, &page))
}

/// An order: for its customer, its guest (with the token), its sellers (their lines) and
/// admins. Anyone else gets 404.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id"), TokenQuery,
           ("X-Order-Token" = Option<String>, Header, description = "A guest's order token")),
    responses((status = 200, description = "The order", body = OrderView),
               (status = 404, description = "No such order of the caller's", body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = state
        .orders
        .get(actor, parse_id(&id, "order")?, order_token(query, &headers))
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// An order's timeline: every state change, payment event, refund and note, with its actor
/// and time, oldest first. Customers and guests do not see internal notes; a seller sees the
/// events of their own fulfilments only, and of the notes their own and the customer's.
#[utoipa::path(get, path = "/orders/{id}/timeline", tag = "orders",
    params(("id" = String, Path, description = "Order id"), TokenQuery,
           ("X-Order-Token" = Option<String>, Header, description = "A guest's order token")),
    responses((status = 200, description = "The events", body = Items<OrderEventView>),
               (status = 404, description = "No such order of the caller's", body = ErrorBody)))]
async fn get_timeline(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let items = state
        .orders
        .timeline(actor, parse_id(&id, "order")?, order_token(query, &headers))
        .await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// An order's invoice as a PDF (its customer, its guest with the token, admins): the
/// sellers, the buyer, the lines with their discounts, tax at the order's rate, shipping and
/// totals. Every confirmed order has an invoice number, sequential and gap-free
/// (`INV-000001`...), given shortly after confirmation (at once when asked for first).
#[utoipa::path(get, path = "/orders/{id}/invoice", tag = "orders",
    params(("id" = String, Path, description = "Order id"), TokenQuery,
           ("X-Order-Token" = Option<String>, Header, description = "A guest's order token")),
    responses((status = 200, description = "The PDF (`Content-Disposition` names it by its number)", content_type = "application/pdf"),
               (status = 403, description = "Sellers: invoices go to the buyer and the staff", body = ErrorBody),
               (status = 404, description = "No such order of the caller's", body = ErrorBody),
               (status = 409, description = "`invoice_unavailable`: the order was never confirmed", body = ErrorBody)))]
async fn get_invoice(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (label, pdf) = state
        .orders
        .invoice(actor, parse_id(&id, "order")?, order_token(query, &headers))
        .await?;
    let mut response = (StatusCode::OK, pdf).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{label}.pdf\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Ask to send delivered lines back (the order's customer, its guest with the token, or an
/// admin), each with a reason, within `[checkout] return_window_days` of delivery. A line with
/// `exchange_for` (another variant of the same product, in stock) asks for an exchange: the
/// price difference is charged or refunded when the return is received.
#[utoipa::path(post, path = "/orders/{id}/returns", tag = "orders", request_body = ReturnInput,
    params(("id" = String, Path, description = "Order id"), TokenQuery),
    responses((status = 201, description = "The return, `requested`", body = ReturnView),
               BadBody,
               (status = 403, description = "Sellers cannot ask for returns", body = ErrorBody),
               (status = 404, description = "No such order of the caller's", body = ErrorBody),
               (status = 409, description = "`return_window_closed`", body = ErrorBody),
               Invalid))]
async fn request_return(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    Json(input): Json<ReturnInput>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "order")?;
    let view = state
        .orders
        .request_return(actor, order_token(query, &headers), id, input)
        .await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// An order's returns, oldest first (a seller sees those with their lines).
#[utoipa::path(get, path = "/orders/{id}/returns", tag = "orders",
    params(("id" = String, Path, description = "Order id"), TokenQuery),
    responses((status = 200, description = "The returns", body = Items<ReturnView>),
               (status = 404, description = "No such order of the caller's", body = ErrorBody)))]
async fn list_returns(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "order")?;
    let items = state
        .orders
        .list_returns(actor, order_token(query, &headers), id)
        .await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Review a return (the seller of every line of it, or an admin): `approved` (holding the
/// exchange variants' units) or `rejected` from `requested`; `received` from `approved`, which
/// refunds the returned units' value less what the exchanges cost (or charges the difference)
/// through the payment provider, restocks unless `restock: false`, and adds each exchange
/// variant to a new shipment of its seller.
#[utoipa::path(patch, path = "/returns/{id}", tag = "orders", request_body = ReturnUpdateInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Return id")),
    responses((status = 200, description = "The return", body = ReturnView),
               BadBody,
               SignedIn,
               (status = 403, description = "Not the seller of every line, nor an admin", body = ErrorBody),
               (status = 404, description = "No such return", body = ErrorBody),
               (status = 409, description = "`invalid_transition`; `insufficient_stock` for an exchange", body = ErrorBody),
               Invalid,
               (status = 503, description = "`payment_unavailable`: retry; nothing moves twice", body = ErrorBody)))]
async fn update_return(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(id): Path<String>,
    Json(input): Json<ReturnUpdateInput>,
) -> Result<Response, ApiError> {
    let view = state
        .orders
        .update_return(actor, parse_id(&id, "return")?, input)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Cancel an order before anything of it shipped (its customer, its guest, admins): held or
/// sold stock comes back, an authorized payment is voided, a captured one refunded.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Order id"), TokenQuery, MoneyHeaders,
           ("If-Match" = Option<String>, Header, description = "The order version")),
    responses((status = 200, description = "The cancelled order", body = OrderView),
               (status = 403, description = "Sellers cannot cancel orders", body = ErrorBody),
               (status = 404, description = "No such order of the caller's", body = ErrorBody),
               (status = 409, description = "`invalid_transition` (something shipped); `details.allowed`", body = ErrorBody),
               Versioned, Invalid,
               (status = 503, description = "`payment_unavailable`: the refund or void could not be made", body = ErrorBody)))]
async fn cancel_order(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    IfMatch(version): IfMatch,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "order")?;
    let token = order_token(query, &headers);
    let what = [b"cancel".as_slice(), &id.to_bytes()].concat();
    keyed(
        &state,
        &actor,
        &headers,
        &what,
        state.orders.cancel(actor, id, token, version),
    )
    .await
}

/// Move an order: a fulfilment to `processing`, `shipped` (with carrier and tracking) or
/// `delivered` (the fulfilment's seller, or admins), or the order to `cancelled` (admins).
///
/// The order's status follows from its fulfilments. An illegal step answers 409
/// `invalid_transition` with the allowed ones in `details.allowed`. With `[checkout] capture =
/// "on_shipment"`, the first shipment captures the payment.
/// Adds a note to the order's timeline (admins, and the sellers with lines in the order).
///
/// Notes are internal unless `customer_visible`: the timeline shows a customer or guest only
/// the notes meant for them, and a seller their own notes and those.
#[utoipa::path(post, path = "/orders/{id}/notes", tag = "orders", request_body = NoteInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses((status = 201, description = "The note, as it stands on the timeline", body = OrderEventView),
               SignedIn,
               (status = 403, description = "Not staff, nor a seller of this order", body = ErrorBody),
               (status = 404, description = "No such order of the caller's", body = ErrorBody),
               Invalid))]
async fn add_note(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(id): Path<String>,
    Json(input): Json<NoteInput>,
) -> Result<Response, ApiError> {
    let note = state.orders.add_note(actor, parse_id(&id, "order")?, input).await?;
    Ok(private_json(StatusCode::CREATED, &note))
}

#[utoipa::path(patch, path = "/orders/{id}/status", tag = "orders", request_body = StatusChangeInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id"), MoneyHeaders,
           ("If-Match" = Option<String>, Header, description = "The order version")),
    responses((status = 200, description = "The order after the change", body = OrderView),
               SignedIn,
               (status = 403, description = "Not this seller's fulfilment, or not a seller or admin", body = ErrorBody),
               (status = 404, description = "No such order or fulfilment of the caller's", body = ErrorBody),
               (status = 409, description = "`invalid_transition`; `details.allowed`", body = ErrorBody),
               Versioned, Invalid))]
async fn change_status(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(id): Path<String>,
    IfMatch(version): IfMatch,
    headers: HeaderMap,
    JsonBytes(input, raw): JsonBytes<StatusChangeInput>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "order")?;
    let what = [b"status".as_slice(), &id.to_bytes(), &raw].concat();
    keyed(
        &state,
        &actor,
        &headers,
        &what,
        state.orders.change_status(actor, id, input, version),
    )
    .await
}

/// Refund an order (admins): an amount, lines (their price and tax share), or everything left;
/// never more than was captured and not refunded yet. `restock` puts the units back.
#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "orders", request_body = RefundInput,
    security(("bearer" = [])), params(("id" = String, Path, description = "Order id"), MoneyHeaders),
    responses((status = 201, description = "The order with the refund", body = OrderView),
               AdminOnly, BadBody,
               (status = 404, description = "No such order", body = ErrorBody),
               (status = 409, description = "`invalid_transition`: the order is not placed", body = ErrorBody),
               (status = 422, description = "`refund_exceeds_captured` (`details.refundable`), or invalid lines", body = ErrorBody)))]
async fn create_refund(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBytes(input, raw): JsonBytes<RefundInput>,
) -> Result<Response, ApiError> {
    let done = state
        .orders
        .refund(
            actor,
            parse_id(&id, "order")?,
            input,
            idempotency_key(&headers),
            raw.to_vec(),
        )
        .await?;
    Ok(answer(done))
}

/// Record the manual payment (cash, bank transfer) of an order that waits for it (admins).
#[utoipa::path(post, path = "/orders/{id}/payment", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id"), MoneyHeaders),
    responses((status = 200, description = "The order, paid", body = OrderView),
               AdminOnly,
               (status = 404, description = "No such order", body = ErrorBody),
               (status = 409, description = "`invalid_transition`: the order does not wait for a manual payment", body = ErrorBody),
               Invalid))]
async fn record_payment(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "order")?;
    let what = [b"payment".as_slice(), &id.to_bytes()].concat();
    keyed(&state, &actor, &headers, &what, state.orders.record_payment(actor, id)).await
}

/// Stripe's webhook: verified by `Stripe-Signature`, applied once per event id.
#[utoipa::path(post, path = "/payments/stripe/webhook", tag = "orders",
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<HMAC-SHA256 hex>")),
    responses((status = 200, description = "Received (a repeated event changes nothing)"),
               (status = 401, description = "The signature does not verify", body = ErrorBody),
               (status = 404, description = "Stripe is not configured", body = ErrorBody)))]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let result = state.checkout.stripe_webhook(signature, body.to_vec()).await?;
    Ok(private_json(
        StatusCode::OK,
        &serde_json::json!({ "received": true, "result": result }),
    ))
}
