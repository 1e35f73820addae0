//! Webhook endpoints and deliveries (admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Caller, Json, Path, Query};
use super::openapi::{AdminOnly, BadBody, Invalid};
use super::{parse_id, private_json, AppState};
use crate::service::notify::{DeliveryFilter, WebhookInput};
use crate::service::view::notify::{DeliveryView, WebhookView};
use crate::service::view::Items;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(update_webhook, delete_webhook))
        .routes(routes!(ping_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery, discard_delivery))
        .routes(routes!(replay_delivery))
        .routes(routes!(replay_dead))
}

/// Register a webhook endpoint for event types (or `["*"]`). Deliveries are JSON `{id, type,
/// created_at, data}` signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,<base64 HMAC-SHA256>`) with the endpoint's `secret`, generated when
/// not given. Loopback and private-network targets are refused unless `[webhooks]
/// allow_private_targets`; redirects are not followed.
#[utoipa::path(post, path = "/admin/webhooks", tag = "notifications", request_body = WebhookInput,
    security(("bearer" = [])),
    responses((status = 201, description = "The endpoint, with its secret", body = WebhookView), BadBody, AdminOnly, Invalid))]
async fn create_webhook(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Json(input): Json<WebhookInput>,
) -> Result<Response, ApiError> {
    let view = state.notifications.create_webhook(actor, input).await?;
    Ok(private_json(StatusCode::CREATED, &view))
}

/// Every webhook endpoint.
#[utoipa::path(get, path = "/admin/webhooks", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoints", body = Items<WebhookView>), AdminOnly))]
async fn list_webhooks(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.notifications.list_webhooks(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Change an endpoint (absent fields stay; `active: false` pauses it).
#[utoipa::path(patch, path = "/admin/webhooks/{id}", tag = "notifications", request_body = WebhookInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = WebhookView), BadBody, AdminOnly,
               (status = 404, description = "No such endpoint", body = ErrorBody), Invalid))]
async fn update_webhook(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
    Json(input): Json<WebhookInput>,
) -> Result<Response, ApiError> {
    let view = state
        .notifications
        .update_webhook(actor, parse_id(&id, "webhook")?, input)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Delete an endpoint.
#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted"), AdminOnly,
               (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .notifications
        .delete_webhook(actor, parse_id(&id, "webhook")?)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body of `POST /admin/webhooks/{id}/ping`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingInput {
    /// How many test events (1–10000, default 1).
    pub count: Option<u32>,
}

/// How many test events were queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pinged {
    /// Events queued.
    pub queued: u32,
}

/// Send test events (`type: "ping"`) to one endpoint, whatever it subscribes to: to check a
/// receiver's signature verification, or to load-test it.
#[utoipa::path(post, path = "/admin/webhooks/{id}/ping", tag = "notifications", request_body = PingInput,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, description = "Queued", body = Pinged), BadBody, AdminOnly,
               (status = 404, description = "No such endpoint", body = ErrorBody), Invalid))]
async fn ping_webhook(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
    Json(input): Json<PingInput>,
) -> Result<Response, ApiError> {
    let queued = state
        .notifications
        .ping(actor, parse_id(&id, "webhook")?, input.count)
        .await?;
    Ok(private_json(StatusCode::ACCEPTED, &Pinged { queued }))
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    /// Deliveries, oldest first.
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Deliveries of events to sinks, oldest first, by status (`pending`, `failed`, `delivered`,
/// `dead`, `discarded`), sink and event type.
#[utoipa::path(get, path = "/admin/deliveries", tag = "notifications",
    security(("bearer" = [])), params(DeliveryFilter),
    responses((status = 200, description = "The deliveries", body = DeliveryPage), AdminOnly, Invalid))]
async fn list_deliveries(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(filter): Query<DeliveryFilter>,
) -> Result<Response, ApiError> {
    let (items, next_cursor) = state.notifications.list_deliveries(actor, filter).await?;
    Ok(private_json(StatusCode::OK, &DeliveryPage { items, next_cursor }))
}

/// One delivery, with its attempts (status, error, duration) and the admin actions on it.
#[utoipa::path(get, path = "/admin/deliveries/{id}", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "The delivery", body = DeliveryView), AdminOnly,
               (status = 404, description = "No such delivery", body = ErrorBody)))]
async fn get_delivery(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state
        .notifications
        .get_delivery(actor, parse_id(&id, "delivery")?)
        .await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Give up on a delivery: it is kept as `discarded` with the dead letters until retention.
#[utoipa::path(delete, path = "/admin/deliveries/{id}", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "The discarded delivery", body = DeliveryView), AdminOnly,
               (status = 404, description = "No such delivery", body = ErrorBody)))]
async fn discard_delivery(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.notifications.discard(actor, parse_id(&id, "delivery")?).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// Try a delivery again now, with a fresh set of attempts (a dead letter comes back).
#[utoipa::path(post, path = "/admin/deliveries/{id}/replay", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "The delivery, pending", body = DeliveryView), AdminOnly,
               (status = 404, description = "No such delivery", body = ErrorBody),
               (status = 409, description = "It is being attempted right now", body = ErrorBody)))]
async fn replay_delivery(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.notifications.replay(actor, parse_id(&id, "delivery")?).await?;
    Ok(private_json(StatusCode::OK, &view))
}

/// How many dead letters were replayed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Deliveries back in the queue.
    pub replayed: usize,
}

/// Replay every dead letter (not the discarded ones).
#[utoipa::path(post, path = "/admin/deliveries/replay", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "How many", body = Replayed), AdminOnly))]
async fn replay_dead(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let replayed = state.notifications.replay_dead(actor).await?;
    Ok(private_json(StatusCode::OK, &Replayed { replayed }))
}
