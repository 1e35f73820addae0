//! The account flows that go through email: password reset and email verification. Each
//! sends a single-use token (stored only as its SHA-256) through an outbox event that the
//! email sink turns into a message; the event is written in the batch that creates the token,
//! so a token is never mailed without existing, nor stored without being mailed.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use storefront_storage::cf::CF_USER_EMAILS;
use storefront_storage::notifications::{TokenPurposeRecord, UserTokenRecord};
use storefront_storage::records::UserRecord;
use storefront_storage::Txn;

use super::revocation::Revocations;
use super::tokens::{random_token, revoke_families};
use super::Accounts;
use crate::domain::user::{check_password, Email, Password};
use crate::domain::{FieldErrors, Id};
use crate::service::events::outbox::new_event;
use crate::service::{blocking, ServiceError};

/// How long a password-reset link works.
pub const PASSWORD_RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an email-verification link works.
pub const VERIFICATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn bad_token(code: &'static str, message: &str) -> ServiceError {
    let mut errors = FieldErrors::default();
    errors.add("token", code, message);
    ServiceError::Validation(errors.into_vec())
}

/// Reads a token again inside the transaction that uses it (of two uses of one token, one
/// wins) with its user, refusing a used token or one sent to an address the user since left.
fn take_token(txn: &mut Txn<'_>, key: &[u8; 32]) -> Result<(UserTokenRecord, UserRecord), ServiceError> {
    let current = txn.get::<UserTokenRecord>(key)?.map(|r| r.to_native());
    let Some(current) = current.filter(|c| !c.used) else {
        return Err(bad_token("used", "this link was used already"));
    };
    let user = txn
        .get::<UserRecord>(&current.user_id)?
        .ok_or_else(|| bad_token("invalid", "this link is not valid"))?
        .to_native();
    if user.email != current.email {
        return Err(bad_token("invalid", "the account's email has changed since"));
    }
    Ok((current, user))
}

impl Accounts {
    /// Stages a new token for `user` and the outbox event that mails it.
    pub(super) fn stage_token(
        &self,
        txn: &mut Txn<'_>,
        user: &UserRecord,
        purpose: TokenPurposeRecord,
    ) -> Result<(), ServiceError> {
        let token = random_token();
        let now = txn.now_ms();
        let (ttl, topic) = match purpose {
            TokenPurposeRecord::PasswordReset => (PASSWORD_RESET_TTL, "password_reset_requested"),
            TokenPurposeRecord::EmailVerification => (VERIFICATION_TTL, "email_verification_requested"),
        };
        let expires_at_ms = now + ttl.as_millis() as i64;
        txn.put(
            &token_key(&token),
            &UserTokenRecord {
                user_id: user.id,
                purpose,
                email: user.email.clone(),
                expires_at_ms,
                used: false,
            },
        )?;
        let event = new_event(
            topic,
            serde_json::json!({
                "user_id": Id::from_bytes(user.id),
                "email": user.email,
                "name": user.name,
                "token": token,
                "expires_at": crate::service::view::rfc3339(expires_at_ms),
            }),
            now,
        );
        txn.put(&event.id, &event)?;
        Ok(())
    }

    /// `POST /auth/password-reset`: mails a reset link when the address has an account. The
    /// answer is the same either way, so addresses cannot be probed.
    pub async fn request_password_reset(self: &Arc<Self>, email: String) -> Result<(), ServiceError> {
        let Ok(email) = Email::parse(&email) else {
            return Ok(());
        };
        let this = self.clone();
        blocking(move || {
            let Some(id) = this.store.get_raw(CF_USER_EMAILS, email.as_str().as_bytes())? else {
                return Ok(());
            };
            this.store.transact(|txn| -> Result<(), ServiceError> {
                let Some(user) = txn.get::<UserRecord>(&id)? else {
                    return Ok(());
                };
                this.stage_token(txn, &user.to_native(), TokenPurposeRecord::PasswordReset)
            })
        })
        .await
    }

    /// Reads a token for `purpose`: 422 on `token` when it is unknown, used or expired.
    fn live_token(
        &self,
        token: &str,
        purpose: TokenPurposeRecord,
    ) -> Result<([u8; 32], UserTokenRecord), ServiceError> {
        let key = token_key(token.trim());
        let record = self
            .store
            .get::<UserTokenRecord>(&key)?
            .map(|r| r.to_native())
            .filter(|r| r.purpose == purpose)
            .ok_or_else(|| bad_token("invalid", "this link is not valid"))?;
        if record.used {
            return Err(bad_token("used", "this link was used already"));
        }
        if self.clock.now_ms() >= record.expires_at_ms {
            return Err(bad_token("expired", "this link has expired; ask for a new one"));
        }
        Ok((key, record))
    }

    /// `POST /auth/password-reset/confirm`: sets the new password and signs the user out
    /// everywhere (every refresh-token family is revoked).
    pub async fn confirm_password_reset(
        self: &Arc<Self>,
        token: String,
        password: Password,
    ) -> Result<(), ServiceError> {
        let this = self.clone();
        let (key, record) = {
            let token = token.clone();
            blocking(move || this.live_token(&token, TokenPurposeRecord::PasswordReset)).await?
        };
        let mut errors = FieldErrors::default();
        let email = Email::parse(&record.email).ok();
        check_password(
            "password",
            &password,
            email.as_ref(),
            self.settings.password_min_len,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let hash = self.hashing_job(move |a| a.hash_now(password.expose())).await??;
        let this = self.clone();
        blocking(move || {
            let user = record.user_id;
            let families = this.live_families(Id::from_bytes(user))?;
            let at = this.clock.now_ms();
            this.store.transact(|txn| -> Result<(), ServiceError> {
                let (mut current, mut u) = take_token(txn, &key)?;
                u.password_hash = hash.clone();
                // Following the link proves the address too.
                u.email_verified = true;
                u.version += 1;
                u.updated_at_ms = txn.now_ms();
                txn.put(&u.id, &u)?;
                current.used = true;
                txn.put(&key, &current)?;
                Revocations::stage_cutoff(txn, Id::from_bytes(user), at);
                revoke_families(txn, &families)
            })?;
            // Access tokens from before the reset stop working at once, not in 15 minutes.
            this.revocations.cut(Id::from_bytes(user), at);
            Ok(())
        })
        .await
    }

    /// `POST /auth/verify-email`: marks the address verified.
    pub async fn verify_email(self: &Arc<Self>, token: String) -> Result<(), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let (key, _) = this.live_token(&token, TokenPurposeRecord::EmailVerification)?;
            this.store.transact(|txn| -> Result<(), ServiceError> {
                let (mut current, mut u) = take_token(txn, &key)?;
                u.email_verified = true;
                u.version += 1;
                u.updated_at_ms = txn.now_ms();
                txn.put(&u.id, &u)?;
                current.used = true;
                txn.put(&key, &current)?;
                Ok(())
            })
        })
        .await
    }
}
