//! Account views: a user as its owner sees it, and their addresses.

use serde::Serialize;

use crate::domain::user::Address;
use crate::domain::Id;

/// A user as shown to its owner.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Id,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: &'static str,
    /// Managed seller.
    pub seller_id: Option<Id>,
    /// Default address.
    pub default_address_id: Option<Id>,
    /// Whether the address was verified (the link sent at registration).
    pub email_verified: bool,
    /// Version.
    pub version: u64,
    /// Creation time.
    pub created_at: String,
}

/// An address as shown to its owner.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
pub struct AddressView {
    /// Id.
    pub id: Id,
    /// The address.
    #[serde(flatten)]
    pub address: Address,
    /// Whether this is the default address.
    pub is_default: bool,
}

/// Tokens handed to a client.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// JWT access token.
    pub access_token: String,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

/// The answer of `POST /auth/register`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Registered {
    /// The new account.
    pub user: UserView,
    /// Its first session.
    pub tokens: Tokens,
}

/// The answer of `POST /auth/login`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Session {
    /// The session's tokens.
    #[serde(flatten)]
    pub tokens: Tokens,
    /// Whether the guest cart of `X-Cart-Token` was merged; present when the header was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_merged: Option<bool>,
}

/// The answer of `DELETE /admin/users/{id}/sessions`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct RevokedSessions {
    /// Sessions revoked.
    pub revoked_sessions: usize,
}
