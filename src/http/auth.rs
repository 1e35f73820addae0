//! Account routes: registration, login, token refresh, logout, profile, addresses, and admin
//! user management.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;

use super::cart::cart_token;
use super::error::ApiError;
use super::extract::{Caller, ClientAddr, Json};
use super::{private_json, AppState};
use crate::domain::user::{AddressInput, Password, Role};
use crate::domain::Id;
use crate::service::auth::{ProfilePatch, RegisterInput, Tokens};
use crate::service::ServiceError;

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/me", get(get_me).patch(update_me))
        .route("/me/addresses", get(list_addresses).post(create_address))
        .route("/me/addresses/{id}", patch(update_address).delete(delete_address))
        .route("/admin/users/{id}/role", post(set_role))
        .route("/admin/users/{id}/sessions", delete(revoke_sessions))
}

fn parse_id(raw: &str, kind: &'static str) -> Result<Id, ApiError> {
    Id::parse(raw).ok_or(ApiError::NotFound(kind))
}

async fn register(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Json(input): Json<RegisterInput>,
) -> Result<Response, ApiError> {
    state.limits.check_auth_ip(ip)?;
    let (user, tokens) = state.accounts.register(input).await?;
    Ok(private_json(
        StatusCode::CREATED,
        &serde_json::json!({ "user": user, "tokens": tokens }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    email: String,
    password: Password,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Json(input): Json<LoginInput>,
) -> Result<Response, ApiError> {
    state.limits.check_auth_ip(ip)?;
    state.limits.check_login_account(&input.email)?;
    let (user, tokens) = state.accounts.login(&input.email, input.password).await?;
    // A guest cart token merges that cart into the user's; a failed merge never fails login.
    let cart_merged = match cart_token(&headers) {
        Some(token) => Some(state.carts.merge_guest(token, user).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "guest cart merge failed at login");
            false
        })),
        None => None,
    };
    Ok(private_json(StatusCode::OK, &LoginOutput { tokens, cart_merged }))
}

#[derive(serde::Serialize)]
struct LoginOutput {
    #[serde(flatten)]
    tokens: Tokens,
    /// Present when the request carried `X-Cart-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    cart_merged: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshInput {
    refresh_token: String,
}

async fn refresh(State(state): State<AppState>, Json(input): Json<RefreshInput>) -> Result<Response, ApiError> {
    let tokens = state.accounts.refresh(input.refresh_token).await?;
    Ok(private_json(StatusCode::OK, &tokens))
}

async fn logout(State(state): State<AppState>, Json(input): Json<RefreshInput>) -> Result<Response, ApiError> {
    state.accounts.logout(input.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_me(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let user = state.accounts.me(actor).await?;
    Ok(private_json(StatusCode::OK, &user))
}

async fn update_me(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<Response, ApiError> {
    let user = state.accounts.update_me(actor, patch).await?;
    Ok(private_json(StatusCode::OK, &user))
}

async fn list_addresses(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.accounts.addresses(actor).await?;
    Ok(private_json(StatusCode::OK, &serde_json::json!({ "items": items })))
}

async fn create_address(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<AddressInput>,
) -> Result<Response, ApiError> {
    let address = state.accounts.save_address(actor, None, input).await?;
    Ok(private_json(StatusCode::CREATED, &address))
}

async fn update_address(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(input): Json<AddressInput>,
) -> Result<Response, ApiError> {
    actor.user_id()?;
    let address = state
        .accounts
        .save_address(actor, Some(parse_id(&id, "address")?), input)
        .await?;
    Ok(private_json(StatusCode::OK, &address))
}

async fn delete_address(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.user_id()?;
    state.accounts.delete_address(actor, parse_id(&id, "address")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    role: String,
    seller: Option<String>,
}

async fn set_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(input): Json<RoleInput>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let user = parse_id(&id, "user")?;
    let role = Role::parse(&input.role)
        .ok_or_else(|| ServiceError::invalid("role", "invalid", "must be customer, seller or admin"))?;
    let seller = match input.seller.as_deref() {
        Some(s) => Some(
            state
                .catalog
                .seller_id(s)
                .ok_or_else(|| ServiceError::invalid("seller", "unknown", "no such seller"))?,
        ),
        None => None,
    };
    let view = state.accounts.set_role(actor, user, role, seller).await?;
    Ok(private_json(StatusCode::OK, &view))
}

async fn revoke_sessions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let revoked = state
        .accounts
        .revoke_all_sessions(actor, parse_id(&id, "user")?)
        .await?;
    Ok(private_json(
        StatusCode::OK,
        &serde_json::json!({ "revoked_sessions": revoked }),
    ))
}
