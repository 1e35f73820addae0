//! Account routes: registration, login, token refresh, logout, profile, addresses, and admin
//! user management.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cart::cart_token;
use super::error::{ApiError, ErrorBody};
use super::extract::{AdminCaller, Caller, ClientAddr, Json, Path, Query, SignedInCaller};
use super::openapi::{AdminOnly, Invalid, SignedIn};
use super::{parse_id, private_json, AppState};
use crate::domain::user::{
    AddressInput, LoginInput, PasswordResetConfirm, PasswordResetInput, ProfilePatch, RefreshInput, RegisterInput,
    Role, RoleInput, VerifyEmailInput,
};
use crate::service::auth::directory::{UserFilter, UserPage};
use crate::service::view::{AddressView, Items, Registered, RevokedSessions, Session, Tokens, UserView};
use crate::service::ServiceError;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(password_reset))
        .routes(routes!(password_reset_confirm))
        .routes(routes!(verify_email))
        .routes(routes!(get_me, update_me))
        .routes(routes!(list_addresses, create_address))
        .routes(routes!(update_address, delete_address))
        .routes(routes!(list_users))
        .routes(routes!(set_role))
        .routes(routes!(revoke_sessions))
}

/// Register a customer account and sign it in.
#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = RegisterInput,
    responses((status = 201, description = "The account and its first session", body = Registered),
               (status = 409, description = "`email_taken`", body = ErrorBody),
               (status = 422, description = "Invalid fields (password policy included)", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Json(input): Json<RegisterInput>,
) -> Result<Response, ApiError> {
    state.limits.check_auth_ip(ip)?;
    let (user, tokens) = state.accounts.register(input).await?;
    Ok(private_json(StatusCode::CREATED, &Registered { user, tokens }))
}

/// Sign in. Unknown emails and wrong passwords get the same error after the same work.
///
/// An `X-Cart-Token` header merges that guest cart into the user's (`[cart] merge`).
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginInput,
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart to merge into the user's")),
    responses((status = 200, description = "A new session", body = Session),
               (status = 401, description = "`invalid_credentials`", body = ErrorBody)))]
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
    Ok(private_json(StatusCode::OK, &Session { tokens, cart_merged }))
}

/// Rotate a refresh token; reusing a rotated token revokes its whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "accounts", request_body = RefreshInput,
    responses((status = 200, description = "A new token pair", body = Tokens),
               (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = ErrorBody)))]
async fn refresh(State(state): State<AppState>, Json(input): Json<RefreshInput>) -> Result<Response, ApiError> {
    let tokens = state.accounts.refresh(input.refresh_token).await?;
    Ok(private_json(StatusCode::OK, &tokens))
}

/// End the session of a refresh token. Send the session's access token too
/// (`Authorization: Bearer`): it is refused from now on (401 `token_revoked`) instead of
/// living until it expires.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts", request_body = RefreshInput,
    responses((status = 204, description = "Revoked"),
               (status = 401, description = "`invalid_refresh_token`", body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(input): Json<RefreshInput>,
) -> Result<Response, ApiError> {
    let access = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    state.accounts.logout(input.refresh_token, access).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ask for a password-reset link. Always 202, whether or not the address has an account (no
/// account enumeration); the link works once, for 30 minutes.
#[utoipa::path(post, path = "/auth/password-reset", tag = "accounts", request_body = PasswordResetInput,
    responses((status = 202, description = "A link is on its way if the account exists")))]
async fn password_reset(
    State(state): State<AppState>,
    Json(input): Json<PasswordResetInput>,
) -> Result<Response, ApiError> {
    state.accounts.request_password_reset(input.email).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Set a new password with the token from the reset email; every session of the account is
/// signed out.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "accounts", request_body = PasswordResetConfirm,
    responses((status = 204, description = "The password is changed"),
               (status = 422, description = "`token` invalid, used or expired; or a weak `password`", body = ErrorBody)))]
async fn password_reset_confirm(
    State(state): State<AppState>,
    Json(input): Json<PasswordResetConfirm>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .confirm_password_reset(input.token, input.password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Verify the account's email with the token sent at registration.
#[utoipa::path(post, path = "/auth/verify-email", tag = "accounts", request_body = VerifyEmailInput,
    responses((status = 204, description = "Verified"),
               (status = 422, description = "`token` invalid, used or expired", body = ErrorBody)))]
async fn verify_email(
    State(state): State<AppState>,
    Json(input): Json<VerifyEmailInput>,
) -> Result<Response, ApiError> {
    state.accounts.verify_email(input.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's profile.
#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "The profile", body = UserView),
               SignedIn))]
async fn get_me(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let user = state.accounts.me(actor).await?;
    Ok(private_json(StatusCode::OK, &user))
}

/// Change the caller's name or password (a new password needs the current one).
#[utoipa::path(patch, path = "/me", tag = "accounts", request_body = ProfilePatch, security(("bearer" = [])),
    responses((status = 200, description = "The profile after the change", body = UserView),
               (status = 401, description = "Sign in first, or a wrong current password", body = ErrorBody),
               Invalid))]
async fn update_me(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Json(patch): Json<ProfilePatch>,
) -> Result<Response, ApiError> {
    let user = state.accounts.update_me(actor, patch).await?;
    Ok(private_json(StatusCode::OK, &user))
}

/// The caller's addresses.
#[utoipa::path(get, path = "/me/addresses", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "The address book", body = Items<AddressView>),
               SignedIn))]
async fn list_addresses(State(state): State<AppState>, Caller(actor): Caller) -> Result<Response, ApiError> {
    let items = state.accounts.addresses(actor).await?;
    Ok(private_json(StatusCode::OK, &Items { items }))
}

/// Add an address; the first one becomes the default.
#[utoipa::path(post, path = "/me/addresses", tag = "accounts", request_body = AddressInput, security(("bearer" = [])),
    responses((status = 201, description = "The new address", body = AddressView),
               SignedIn,
               (status = 422, description = "Invalid fields, or the address book is full", body = ErrorBody)))]
async fn create_address(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
    Json(input): Json<AddressInput>,
) -> Result<Response, ApiError> {
    let address = state.accounts.save_address(actor, None, input).await?;
    Ok(private_json(StatusCode::CREATED, &address))
}

/// Change one of the caller's addresses.
#[utoipa::path(patch, path = "/me/addresses/{id}", tag = "accounts", request_body = AddressInput,
    security(("bearer" = [])), params(("id" = String, Path, description = "Address id")),
    responses((status = 200, description = "The address after the change", body = AddressView),
               SignedIn,
               (status = 404, description = "No such address of the caller", body = ErrorBody),
               Invalid))]
async fn update_address(
    State(state): State<AppState>,
    SignedInCaller(actor): SignedInCaller,
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

/// Delete one of the caller's addresses.
#[utoipa::path(delete, path = "/me/addresses/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Address id")),
    responses((status = 204, description = "Deleted"),
               SignedIn,
               (status = 404, description = "No such address of the caller", body = ErrorBody)))]
async fn delete_address(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.user_id()?;
    state.accounts.delete_address(actor, parse_id(&id, "address")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List and find accounts (admins), oldest first: by part of the email, by role.
#[utoipa::path(get, path = "/admin/users", tag = "accounts", security(("bearer" = [])), params(UserFilter),
    responses((status = 200, description = "A page of accounts", body = UserPage), AdminOnly, Invalid))]
async fn list_users(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Query(filter): Query<UserFilter>,
) -> Result<Response, ApiError> {
    let page = state.accounts.list_users(actor, filter).await?;
    Ok(private_json(StatusCode::OK, &page))
}

/// Change a user's role (admin). A seller role needs the seller it manages; it takes effect
/// with the user's next access token.
#[utoipa::path(post, path = "/admin/users/{id}/role", tag = "accounts", request_body = RoleInput,
    security(("bearer" = [])), params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user after the change", body = UserView),
               AdminOnly,
               (status = 404, description = "No such user", body = ErrorBody),
               (status = 422, description = "Unknown role or seller", body = ErrorBody)))]
async fn set_role(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
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

/// Revoke every session of a user (admin).
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "How many sessions were revoked", body = RevokedSessions),
               AdminOnly,
               (status = 404, description = "No such user", body = ErrorBody)))]
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
        &RevokedSessions {
            revoked_sessions: revoked,
        },
    ))
}
