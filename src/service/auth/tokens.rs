//! Sessions: short-lived HS256 access tokens, and refresh tokens that rotate on every use.
//!
//! Refresh tokens are random, stored only as SHA-256 hashes, and a reused (already rotated)
//! token revokes its whole family, on the assumption that it was stolen. Token expiry is read
//! from the service's clock.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, encode, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storefront_storage::cf::CF_META;
use storefront_storage::keys;
use storefront_storage::records::{RefreshTokenRecord, TokenFamilyRecord, UserRecord};
use storefront_storage::{Store, Txn};

use super::revocation::Revocations;
use super::{role_of, Accounts, Actor};
use crate::domain::error::Code;
use crate::domain::user::Role;
use crate::domain::Id;
use crate::service::view::Tokens;
use crate::service::{blocking, ServiceError};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 5;

/// JWT claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller: Option<String>,
    jti: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the JWT signing secret persisted in the store, creating one on first use. Used when
/// `[auth] jwt_secret` is not configured, so tokens survive restarts of a single box.
pub fn persisted_jwt_secret(store: &Store) -> Result<Vec<u8>, ServiceError> {
    const KEY: &[u8] = b"jwt_secret";
    if let Some(secret) = store.get_raw(CF_META, KEY)? {
        return Ok(secret);
    }
    let mut secret = vec![0u8; 32];
    OsRng.fill_bytes(&mut secret);
    store.transact::<_, ServiceError>(|txn| {
        if txn.get_raw(CF_META, KEY)?.is_none() {
            txn.put_raw(CF_META, KEY, &secret);
        }
        Ok(())
    })?;
    Ok(store.get_raw(CF_META, KEY)?.unwrap_or(secret))
}

impl Accounts {
    /// Verifies an access token and returns the actor it names.
    pub fn verify_access_token(&self, token: &str) -> Result<Actor, ServiceError> {
        let invalid = || ServiceError::Unauthorized {
            code: Code::InvalidToken,
            message: "the access token is invalid",
        };
        let header = decode_header(token).map_err(|_| invalid())?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding_keys.get(kid))
            .ok_or_else(invalid)?;
        // The signature, issuer and required claims are checked by jsonwebtoken; expiry and
        // not-before against the service's clock.
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|_| invalid())?
            .claims;
        let now = self.clock.now_ms() / 1000;
        if claims.nbf > now + LEEWAY_SECS {
            return Err(invalid());
        }
        if claims.exp + LEEWAY_SECS <= now {
            return Err(ServiceError::Unauthorized {
                code: Code::TokenExpired,
                message: "the access token has expired",
            });
        }
        let user: Id = claims.sub.parse().map_err(|_| invalid())?;
        let jti = Id::parse(&claims.jti);
        let issued_ms = jti.map(Id::created_at_ms).unwrap_or(claims.iat.saturating_mul(1000));
        if self.revocations.is_revoked(user, jti, issued_ms) {
            return Err(ServiceError::Unauthorized {
                code: Code::TokenRevoked,
                message: "the access token was revoked: its session ended",
            });
        }
        Ok(Actor::User {
            id: user,
            role: Role::parse(&claims.role).ok_or_else(invalid)?,
            seller: claims.seller.as_deref().and_then(|s| s.parse().ok()),
        })
    }

    fn access_token(&self, user: &UserRecord) -> Result<String, ServiceError> {
        let now = self.clock.now_ms() / 1000;
        let claims = Claims {
            sub: Id::from_bytes(user.id).to_string(),
            role: role_of(user.role).as_str().into(),
            seller: user.seller_id.map(|s| Id::from_bytes(s).to_string()),
            // Made at the service's time, as revocation cutoffs are.
            jti: Id::from_time_ms(self.clock.now_ms()).to_string(),
            iss: self.settings.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + self.settings.access_ttl.as_secs() as i64,
        };
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(self.settings.signing_key.0.clone());
        encode(&header, &claims, &self.encoding_key).map_err(|e| ServiceError::internal_from("signing", e))
    }

    pub(super) fn tokens(&self, user: &UserRecord, refresh_token: String) -> Result<Tokens, ServiceError> {
        Ok(Tokens {
            access_token: self.access_token(user)?,
            refresh_token,
            expires_in: self.settings.access_ttl.as_secs(),
            token_type: "Bearer",
        })
    }

    /// Stages a new session (family + first refresh token) and returns the token.
    pub(super) fn start_session(
        &self,
        txn: &mut storefront_storage::Txn<'_>,
        user: Id,
    ) -> Result<String, ServiceError> {
        let family = Id::new();
        let token = random_token();
        let now = txn.now_ms();
        txn.put(
            &keys::token_family(&user.to_bytes(), &family.to_bytes()),
            &TokenFamilyRecord {
                user_id: user.to_bytes(),
                family_id: family.to_bytes(),
                revoked: false,
                created_at_ms: now,
            },
        )?;
        txn.put(
            &hash_token(&token),
            &RefreshTokenRecord {
                user_id: user.to_bytes(),
                family_id: family.to_bytes(),
                expires_at_ms: now + self.settings.refresh_ttl.as_millis() as i64,
                rotated: false,
                created_at_ms: now,
            },
        )?;
        Ok(token)
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged revokes
    /// its whole family.
    pub async fn refresh(self: &Arc<Self>, token: String) -> Result<Tokens, ServiceError> {
        enum Outcome {
            Rotated(UserRecord, String),
            Reused,
        }
        let this = self.clone();
        blocking(move || {
            let hash = hash_token(&token);
            let invalid = || ServiceError::Unauthorized {
                code: Code::InvalidRefreshToken,
                message: "the refresh token is invalid, expired or revoked",
            };
            let outcome = this.store.transact(|txn| -> Result<_, ServiceError> {
                let record = txn.get::<RefreshTokenRecord>(&hash)?.ok_or_else(invalid)?.to_native();
                let family_key = keys::token_family(&record.user_id, &record.family_id);
                let mut family = txn
                    .get::<TokenFamilyRecord>(&family_key)?
                    .ok_or_else(invalid)?
                    .to_native();
                if family.revoked || record.expires_at_ms <= txn.now_ms() {
                    return Err(invalid());
                }
                if record.rotated {
                    family.revoked = true;
                    txn.put(&family_key, &family)?;
                    return Ok(Outcome::Reused);
                }
                let user = txn.get::<UserRecord>(&record.user_id)?.ok_or_else(invalid)?.to_native();
                let mut spent = record.clone();
                spent.rotated = true;
                txn.put(&hash, &spent)?;
                let next = random_token();
                let now = txn.now_ms();
                txn.put(
                    &hash_token(&next),
                    &RefreshTokenRecord {
                        user_id: record.user_id,
                        family_id: record.family_id,
                        expires_at_ms: now + this.settings.refresh_ttl.as_millis() as i64,
                        rotated: false,
                        created_at_ms: now,
                    },
                )?;
                Ok(Outcome::Rotated(user, next))
            })?;
            match outcome {
                Outcome::Rotated(user, next) => this.tokens(&user, next),
                Outcome::Reused => {
                    tracing::warn!("refresh token reuse detected; the session family was revoked");
                    Err(ServiceError::Unauthorized {
                        code: Code::RefreshTokenReused,
                        message: "this refresh token was already used; the session has been revoked",
                    })
                }
            }
        })
        .await
    }

    /// Revokes the session (family) of a refresh token, and the access token presented with
    /// it (when it is the same user's) until it expires.
    pub async fn logout(self: &Arc<Self>, token: String, access: Option<String>) -> Result<(), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let presented = access.as_deref().and_then(|a| this.token_identity(a));
            let denied = this.store.transact(|txn| -> Result<_, ServiceError> {
                let invalid = || ServiceError::Unauthorized {
                    code: Code::InvalidRefreshToken,
                    message: "the refresh token is invalid, expired or revoked",
                };
                let record = txn
                    .get::<RefreshTokenRecord>(&hash_token(&token))?
                    .ok_or_else(invalid)?
                    .to_native();
                let key = keys::token_family(&record.user_id, &record.family_id);
                if let Some(family) = txn.get::<TokenFamilyRecord>(&key)? {
                    let mut family = family.to_native();
                    family.revoked = true;
                    txn.put(&key, &family)?;
                }
                let denied = presented.filter(|(user, _, _)| user.to_bytes() == record.user_id);
                if let Some((_, jti, exp)) = denied {
                    Revocations::stage_denial(txn, jti, exp);
                }
                Ok(denied)
            })?;
            if let Some((_, jti, exp)) = denied {
                this.revocations.deny(jti, exp, this.clock.now_ms() / 1000);
            }
            Ok(())
        })
        .await
    }

    /// The user, id and expiry of a validly signed access token (expired or not).
    fn token_identity(&self, token: &str) -> Option<(Id, Id, i64)> {
        let header = decode_header(token).ok()?;
        let key = self.decoding_keys.get(header.kid.as_deref()?)?;
        let claims = decode::<Claims>(token, key, &self.validation).ok()?.claims;
        Some((claims.sub.parse().ok()?, Id::parse(&claims.jti)?, claims.exp))
    }

    /// Ends every session of a user: revokes their refresh tokens and refuses every access
    /// token issued until now (blocking).
    pub(super) fn end_sessions(&self, user: Id) -> Result<usize, ServiceError> {
        let families = self.live_families(user)?;
        let at = self.clock.now_ms();
        self.store.transact(|txn| -> Result<_, ServiceError> {
            revoke_families(txn, &families)?;
            Revocations::stage_cutoff(txn, user, at);
            Ok(())
        })?;
        self.revocations.cut(user, at);
        Ok(families.len())
    }

    /// The keys of a user's token families not revoked yet.
    pub(super) fn live_families(&self, user: Id) -> Result<Vec<Vec<u8>>, ServiceError> {
        let prefix = user.to_bytes();
        let mut families = Vec::new();
        self.store.for_each::<TokenFamilyRecord>(&prefix, |key, family| {
            if !key.starts_with(&prefix) {
                return false;
            }
            if !family.revoked {
                families.push(key.to_vec());
            }
            true
        })?;
        Ok(families)
    }

    /// Revokes every session of a user (admin).
    pub async fn revoke_all_sessions(self: &Arc<Self>, actor: Actor, user: Id) -> Result<usize, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            this.store
                .get::<UserRecord>(&user.to_bytes())?
                .ok_or(ServiceError::NotFound { kind: "user" })?;
            this.end_sessions(user)
        })
        .await
    }
}

/// Stages the revocation of token families (every refresh token of each stops working).
pub(super) fn revoke_families(txn: &mut Txn<'_>, families: &[Vec<u8>]) -> Result<(), ServiceError> {
    for key in families {
        if let Some(f) = txn.get::<TokenFamilyRecord>(key)? {
            let mut f = f.to_native();
            f.revoked = true;
            txn.put(key, &f)?;
        }
    }
    Ok(())
}
