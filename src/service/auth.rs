//! Accounts and sessions: registration, login, rotating refresh tokens, roles, addresses.
//!
//! Passwords are hashed with argon2id on blocking threads behind a semaphore, so a login flood
//! can neither stall the async workers nor exhaust memory. Access tokens are short-lived HS256
//! JWTs (stateless: revocation takes effect when they expire); refresh tokens are random,
//! stored only as SHA-256 hashes, rotate on every use, and a reused (already rotated) token
//! revokes its whole family, on the assumption that it was stolen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, encode, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storefront_storage::cf::{CF_META, CF_USER_EMAILS};
use storefront_storage::keys;
use storefront_storage::records::{AddressRecord, RefreshTokenRecord, RoleRecord, TokenFamilyRecord, UserRecord};
use storefront_storage::store::now_ms;
use storefront_storage::Store;
use tokio::sync::Semaphore;

use super::{blocking, ServiceError};
use crate::domain::user::{check_address, check_password, Address, AddressInput, Email, Password, Role, MAX_ADDRESSES};
use crate::domain::{FieldErrors, Id};

/// Who is calling, as established from credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// No credentials.
    Anonymous,
    /// The configured admin API key (automation).
    System,
    /// A signed-in user.
    User {
        /// User id.
        id: Id,
        /// Role at token issue time.
        role: Role,
        /// Seller managed by a seller user.
        seller: Option<Id>,
    },
}

impl Actor {
    /// Returns whether the actor has admin rights.
    pub fn is_admin(&self) -> bool {
        matches!(self, Actor::System | Actor::User { role: Role::Admin, .. })
    }

    /// Requires a signed-in user or the admin key.
    pub fn require_signed_in(&self) -> Result<(), ServiceError> {
        match self {
            Actor::Anonymous => Err(ServiceError::Unauthorized {
                code: "unauthorized",
                message: "sign in first",
            }),
            _ => Ok(()),
        }
    }

    /// Requires admin rights.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        self.require_signed_in()?;
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("admin rights are required"))
        }
    }

    /// Returns the user id of a signed-in user.
    pub fn user_id(&self) -> Result<Id, ServiceError> {
        match self {
            Actor::User { id, .. } => Ok(*id),
            Actor::System => Err(ServiceError::Forbidden("the admin API key has no user profile")),
            Actor::Anonymous => Err(ServiceError::Unauthorized {
                code: "unauthorized",
                message: "sign in first",
            }),
        }
    }

    /// Requires an actor that may write some catalog data at all (admin or seller).
    pub fn require_catalog_writer(&self) -> Result<(), ServiceError> {
        self.require_signed_in()?;
        match self {
            a if a.is_admin() => Ok(()),
            Actor::User {
                role: Role::Seller,
                seller: Some(_),
                ..
            } => Ok(()),
            _ => Err(ServiceError::Forbidden("customers may not change catalog data")),
        }
    }

    /// Returns the seller a seller user manages.
    pub fn own_seller(&self) -> Option<Id> {
        match self {
            Actor::User {
                role: Role::Seller,
                seller,
                ..
            } => *seller,
            _ => None,
        }
    }

    /// Checks that the actor may change catalog data owned by `owner` (a seller, or none).
    pub fn may_manage_catalog(&self, owner: Option<Id>) -> Result<(), ServiceError> {
        self.require_signed_in()?;
        match self {
            a if a.is_admin() => Ok(()),
            Actor::User {
                role: Role::Seller,
                seller: Some(mine),
                ..
            } if owner == Some(*mine) => Ok(()),
            Actor::User { role: Role::Seller, .. } => Err(ServiceError::Forbidden(
                "sellers may only change their own products and stock",
            )),
            _ => Err(ServiceError::Forbidden("customers may not change catalog data")),
        }
    }
}

/// Settings of the account service.
#[derive(Clone)]
pub struct AuthSettings {
    /// Issuer claim.
    pub issuer: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// Signing key id and secret.
    pub signing_key: (String, Vec<u8>),
    /// Extra verification keys (previous keys during rotation).
    pub verify_keys: Vec<(String, Vec<u8>)>,
    /// Minimum password length.
    pub password_min_len: usize,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// argon2id parallelism.
    pub argon2_parallelism: u32,
    /// Password hashes computed at once.
    pub hash_concurrency: usize,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("issuer", &self.issuer)
            .field("signing_key", &(&self.signing_key.0, "<redacted>"))
            .finish_non_exhaustive()
    }
}

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

/// Tokens handed to a client.
#[derive(Serialize)]
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

/// A user as shown to its owner.
#[derive(Serialize, Debug, Clone)]
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
    /// Version.
    pub version: u64,
    /// Creation time.
    pub created_at: String,
}

/// An address as shown to its owner.
#[derive(Serialize, Debug, Clone)]
pub struct AddressView {
    /// Id.
    pub id: Id,
    /// Recipient.
    pub name: String,
    /// First line.
    pub line1: String,
    /// Second line.
    pub line2: String,
    /// City.
    pub city: String,
    /// Region.
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country.
    pub country: String,
    /// Phone.
    pub phone: String,
    /// Whether this is the default address.
    pub is_default: bool,
}

/// Body of `POST /auth/register`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// Email.
    pub email: Option<String>,
    /// Password.
    pub password: Option<Password>,
    /// Display name.
    pub name: Option<String>,
}

/// Body of `PATCH /me`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// New display name.
    pub name: Option<String>,
    /// New password (requires `current_password`).
    pub new_password: Option<Password>,
    /// Current password.
    pub current_password: Option<Password>,
}

/// The account service.
pub struct Accounts {
    store: Store,
    settings: AuthSettings,
    hashing: Semaphore,
    /// A hash of a random password, verified against on unknown emails so that "no such
    /// account" and "wrong password" take the same time.
    dummy_hash: String,
    encoding_key: EncodingKey,
    decoding_keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn bad_credentials() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_credentials",
        message: "email or password is incorrect",
    }
}

fn role_of(r: RoleRecord) -> Role {
    match r {
        RoleRecord::Customer => Role::Customer,
        RoleRecord::Seller => Role::Seller,
        RoleRecord::Admin => Role::Admin,
    }
}

fn role_record(r: Role) -> RoleRecord {
    match r {
        Role::Customer => RoleRecord::Customer,
        Role::Seller => RoleRecord::Seller,
        Role::Admin => RoleRecord::Admin,
    }
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
    /// Creates the service.
    pub fn new(store: Store, settings: AuthSettings) -> Result<Accounts, ServiceError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        let mut decoding_keys = HashMap::new();
        decoding_keys.insert(
            settings.signing_key.0.clone(),
            DecodingKey::from_secret(&settings.signing_key.1),
        );
        for (kid, secret) in &settings.verify_keys {
            decoding_keys.insert(kid.clone(), DecodingKey::from_secret(secret));
        }
        let mut accounts = Accounts {
            encoding_key: EncodingKey::from_secret(&settings.signing_key.1),
            hashing: Semaphore::new(settings.hash_concurrency.max(1)),
            dummy_hash: String::new(),
            decoding_keys,
            validation,
            store,
            settings,
        };
        accounts.dummy_hash = accounts.hash_now(&random_token())?;
        Ok(accounts)
    }

    fn argon2(&self) -> Result<Argon2<'static>, ServiceError> {
        let params = Params::new(
            self.settings.argon2_memory_kib,
            self.settings.argon2_iterations,
            self.settings.argon2_parallelism,
            None,
        )
        .map_err(|e| ServiceError::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn hash_now(&self, password: &str) -> Result<String, ServiceError> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| ServiceError::Internal(format!("hashing: {e}")))?
            .to_string())
    }

    /// Runs an argon2 job on the blocking pool, at most `hash_concurrency` at a time.
    async fn hashing_job<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&Accounts) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal("hashing pool closed".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || job(&this))
            .await
            .map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))
    }

    /// Verifies an access token and returns the actor it names.
    pub fn verify_access_token(&self, token: &str) -> Result<Actor, ServiceError> {
        let invalid = || ServiceError::Unauthorized {
            code: "invalid_token",
            message: "the access token is invalid",
        };
        let header = decode_header(token).map_err(|_| invalid())?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding_keys.get(kid))
            .ok_or_else(invalid)?;
        let data = decode::<Claims>(token, key, &self.validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => ServiceError::Unauthorized {
                code: "token_expired",
                message: "the access token has expired",
            },
            _ => invalid(),
        })?;
        let claims = data.claims;
        Ok(Actor::User {
            id: claims.sub.parse().map_err(|_| invalid())?,
            role: Role::parse(&claims.role).ok_or_else(invalid)?,
            seller: claims.seller.as_deref().and_then(|s| s.parse().ok()),
        })
    }

    fn access_token(&self, user: &UserRecord) -> Result<String, ServiceError> {
        let now = now_ms() / 1000;
        let claims = Claims {
            sub: Id::from_bytes(user.id).to_string(),
            role: role_of(user.role).as_str().into(),
            seller: user.seller_id.map(|s| Id::from_bytes(s).to_string()),
            jti: Id::new().to_string(),
            iss: self.settings.issuer.clone(),
            iat: now,
            nbf: now,
            exp: now + self.settings.access_ttl.as_secs() as i64,
        };
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(self.settings.signing_key.0.clone());
        encode(&header, &claims, &self.encoding_key).map_err(|e| ServiceError::Internal(format!("signing: {e}")))
    }

    fn tokens(&self, user: &UserRecord, refresh_token: String) -> Result<Tokens, ServiceError> {
        Ok(Tokens {
            access_token: self.access_token(user)?,
            refresh_token,
            expires_in: self.settings.access_ttl.as_secs(),
            token_type: "Bearer",
        })
    }

    /// Stages a new session (family + first refresh token) and returns the token.
    fn start_session(&self, txn: &mut storefront_storage::Txn<'_>, user: Id) -> Result<String, ServiceError> {
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

    /// Registers a customer account and signs it in.
    pub async fn register(self: &Arc<Self>, input: RegisterInput) -> Result<(UserView, Tokens), ServiceError> {
        let mut errors = FieldErrors::default();
        let email = match input.email.as_deref().map(Email::parse) {
            None => {
                errors.add("email", "required", "must be given");
                None
            }
            Some(Err(msg)) => {
                errors.add("email", "invalid", msg);
                None
            }
            Some(Ok(e)) => Some(e),
        };
        let name = input.name.as_deref().unwrap_or("").trim().to_owned();
        errors.text("name", &name, true, 100);
        match &input.password {
            None => errors.add("password", "required", "must be given"),
            Some(p) => check_password(
                "password",
                p,
                email.as_ref(),
                self.settings.password_min_len,
                &mut errors,
            ),
        }
        let (Some(email), Some(password), true) = (email, input.password, errors.is_empty()) else {
            return Err(ServiceError::Validation(errors.into_vec()));
        };
        let hash = self.hashing_job(move |a| a.hash_now(password.expose())).await??;
        let this = self.clone();
        blocking(move || {
            let id = Id::new();
            let (user, token) = this.store.transact(|txn| -> Result<_, ServiceError> {
                // Serialised by the store's writer lock: of concurrent registrations with one
                // email exactly one sees the index empty.
                if txn.get_raw(CF_USER_EMAILS, email.as_str().as_bytes())?.is_some() {
                    return Err(ServiceError::conflict(
                        "email_taken",
                        "an account with this email already exists".into(),
                        serde_json::json!({ "field": "email" }),
                    ));
                }
                let now = txn.now_ms();
                let user = UserRecord {
                    id: id.to_bytes(),
                    version: 1,
                    email: email.as_str().to_owned(),
                    name: name.clone(),
                    password_hash: hash.clone(),
                    role: RoleRecord::Customer,
                    seller_id: None,
                    addresses: Vec::new(),
                    default_address_id: None,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                txn.put(&user.id, &user)?;
                txn.put_raw(CF_USER_EMAILS, email.as_str().as_bytes(), &user.id);
                let token = this.start_session(txn, id)?;
                Ok((user, token))
            })?;
            Ok((user_view(&user), this.tokens(&user, token)?))
        })
        .await
    }

    /// Signs in with email and password. Unknown emails and wrong passwords get the same
    /// error after the same amount of hashing work.
    pub async fn login(self: &Arc<Self>, email: &str, password: Password) -> Result<(Id, Tokens), ServiceError> {
        let email = Email::parse(email).ok();
        let user = match &email {
            Some(e) => {
                let store = self.store.clone();
                let e = e.as_str().to_owned();
                blocking(move || {
                    let Some(id) = store.get_raw(CF_USER_EMAILS, e.as_bytes())? else {
                        return Ok(None);
                    };
                    Ok(store.get::<UserRecord>(&id)?.map(|u| u.to_native()))
                })
                .await?
            }
            None => None,
        };
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let (valid, rehash) = self
            .hashing_job(move |a| -> Result<(bool, Option<String>), ServiceError> {
                let hash = stored_hash.as_deref().unwrap_or(&a.dummy_hash);
                let parsed =
                    PasswordHash::new(hash).map_err(|e| ServiceError::Internal(format!("stored hash: {e}")))?;
                let ok = a
                    .argon2()?
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
                    && stored_hash.is_some();
                // Transparently upgrade hashes made with older parameters.
                let current = Params::try_from(&parsed).ok();
                let wanted = (
                    a.settings.argon2_memory_kib,
                    a.settings.argon2_iterations,
                    a.settings.argon2_parallelism,
                );
                let outdated = parsed.algorithm.as_str() != "argon2id"
                    || current.is_none_or(|p| (p.m_cost(), p.t_cost(), p.p_cost()) != wanted);
                let rehash = if ok && outdated {
                    Some(a.hash_now(password.expose())?)
                } else {
                    None
                };
                Ok((ok, rehash))
            })
            .await??;
        let user = match (valid, user) {
            (true, Some(u)) => u,
            _ => return Err(bad_credentials()),
        };
        let this = self.clone();
        blocking(move || {
            let id = Id::from_bytes(user.id);
            let (user, token) = this.store.transact(|txn| -> Result<_, ServiceError> {
                let mut current = txn
                    .get::<UserRecord>(&user.id)?
                    .ok_or_else(bad_credentials)?
                    .to_native();
                if let Some(hash) = &rehash {
                    current.password_hash = hash.clone();
                    current.version += 1;
                    txn.put(&current.id, &current)?;
                }
                let token = this.start_session(txn, id)?;
                Ok((current, token))
            })?;
            Ok((id, this.tokens(&user, token)?))
        })
        .await
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
                code: "invalid_refresh_token",
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
                        code: "refresh_token_reused",
                        message: "this refresh token was already used; the session has been revoked",
                    })
                }
            }
        })
        .await
    }

    /// Revokes the session (family) of a refresh token.
    pub async fn logout(self: &Arc<Self>, token: String) -> Result<(), ServiceError> {
        let this = self.clone();
        blocking(move || {
            this.store.transact(|txn| -> Result<_, ServiceError> {
                let invalid = || ServiceError::Unauthorized {
                    code: "invalid_refresh_token",
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
                Ok(())
            })
        })
        .await
    }

    /// Revokes every session of a user (admin).
    pub async fn revoke_all_sessions(self: &Arc<Self>, actor: Actor, user: Id) -> Result<usize, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            this.store
                .get::<UserRecord>(&user.to_bytes())?
                .ok_or(ServiceError::NotFound { kind: "user" })?;
            let prefix = user.to_bytes();
            let mut families = Vec::new();
            this.store.for_each::<TokenFamilyRecord>(&prefix, |key, family| {
                if !key.starts_with(&prefix) {
                    return false;
                }
                if !family.revoked {
                    families.push(key.to_vec());
                }
                true
            })?;
            this.store.transact(|txn| -> Result<_, ServiceError> {
                for key in &families {
                    if let Some(f) = txn.get::<TokenFamilyRecord>(key)? {
                        let mut f = f.to_native();
                        f.revoked = true;
                        txn.put(key, &f)?;
                    }
                }
                Ok::<_, ServiceError>(())
            })?;
            Ok(families.len())
        })
        .await
    }

    fn load_user(&self, id: Id) -> Result<UserRecord, ServiceError> {
        Ok(self
            .store
            .get::<UserRecord>(&id.to_bytes())?
            .ok_or(ServiceError::NotFound { kind: "user" })?
            .to_native())
    }

    /// Returns the caller's profile.
    pub async fn me(self: &Arc<Self>, actor: Actor) -> Result<UserView, ServiceError> {
        let id = actor.user_id()?;
        let this = self.clone();
        blocking(move || Ok(user_view(&this.load_user(id)?))).await
    }

    /// Updates the caller's profile.
    pub async fn update_me(self: &Arc<Self>, actor: Actor, patch: ProfilePatch) -> Result<UserView, ServiceError> {
        let id = actor.user_id()?;
        let mut errors = FieldErrors::default();
        if let Some(name) = &patch.name {
            errors.text("name", name, true, 100);
        }
        let mut new_hash = None;
        if let Some(new_password) = patch.new_password {
            let user = {
                let this = self.clone();
                blocking(move || this.load_user(id)).await?
            };
            let email = Email::parse(&user.email).ok();
            check_password(
                "new_password",
                &new_password,
                email.as_ref(),
                self.settings.password_min_len,
                &mut errors,
            );
            let Some(current) = patch.current_password else {
                errors.add("current_password", "required", "is needed to change the password");
                return Err(ServiceError::Validation(errors.into_vec()));
            };
            if !errors.is_empty() {
                return Err(ServiceError::Validation(errors.into_vec()));
            }
            let stored = user.password_hash.clone();
            let ok = self
                .hashing_job(move |a| -> Result<bool, ServiceError> {
                    let parsed = PasswordHash::new(&stored).map_err(|e| ServiceError::Internal(e.to_string()))?;
                    Ok(a.argon2()?
                        .verify_password(current.expose().as_bytes(), &parsed)
                        .is_ok())
                })
                .await??;
            if !ok {
                return Err(ServiceError::invalid(
                    "current_password",
                    "incorrect",
                    "is not your current password",
                ));
            }
            new_hash = Some(self.hashing_job(move |a| a.hash_now(new_password.expose())).await??);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let user = this.store.transact(|txn| -> Result<_, ServiceError> {
                let mut user = txn
                    .get::<UserRecord>(&id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "user" })?
                    .to_native();
                if let Some(name) = &patch.name {
                    user.name = name.trim().to_owned();
                }
                if let Some(hash) = &new_hash {
                    user.password_hash = hash.clone();
                }
                user.version += 1;
                user.updated_at_ms = txn.now_ms();
                txn.put(&user.id, &user)?;
                Ok(user)
            })?;
            Ok(user_view(&user))
        })
        .await
    }

    /// Lists the caller's addresses.
    pub async fn addresses(self: &Arc<Self>, actor: Actor) -> Result<Vec<AddressView>, ServiceError> {
        let id = actor.user_id()?;
        let this = self.clone();
        blocking(move || Ok(address_views(&this.load_user(id)?))).await
    }

    /// Adds (`address = None`) or updates an address of the caller.
    pub async fn save_address(
        self: &Arc<Self>,
        actor: Actor,
        address: Option<Id>,
        input: AddressInput,
    ) -> Result<AddressView, ServiceError> {
        let id = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            let user = this.store.transact(|txn| -> Result<_, ServiceError> {
                let mut user = txn
                    .get::<UserRecord>(&id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "user" })?
                    .to_native();
                let existing = match address {
                    Some(a) => Some(
                        user.addresses
                            .iter()
                            .position(|x| x.id == a.to_bytes())
                            .ok_or(ServiceError::NotFound { kind: "address" })?,
                    ),
                    None => None,
                };
                if existing.is_none() && user.addresses.len() >= MAX_ADDRESSES {
                    return Err(ServiceError::invalid(
                        "addresses",
                        "too_many",
                        "at most 20 addresses may be saved",
                    ));
                }
                let base = existing.map(|i| address_of(&user.addresses[i])).unwrap_or_default();
                let mut errors = FieldErrors::default();
                let checked = check_address(&base, &input, &mut errors);
                if !errors.is_empty() {
                    return Err(ServiceError::Validation(errors.into_vec()));
                }
                let address_id = match existing {
                    Some(i) => Id::from_bytes(user.addresses[i].id),
                    None => Id::new(),
                };
                let record = AddressRecord {
                    id: address_id.to_bytes(),
                    name: checked.name,
                    line1: checked.line1,
                    line2: checked.line2,
                    city: checked.city,
                    region: checked.region,
                    postal_code: checked.postal_code,
                    country: checked.country,
                    phone: checked.phone,
                };
                match existing {
                    Some(i) => user.addresses[i] = record,
                    None => user.addresses.push(record),
                }
                if input.is_default == Some(true) || user.default_address_id.is_none() {
                    user.default_address_id = Some(address_id.to_bytes());
                } else if input.is_default == Some(false) && user.default_address_id == Some(address_id.to_bytes()) {
                    user.default_address_id = None;
                }
                user.version += 1;
                user.updated_at_ms = txn.now_ms();
                txn.put(&user.id, &user)?;
                Ok((user, address_id))
            })?;
            let (user, address_id) = user;
            address_views(&user)
                .into_iter()
                .find(|a| a.id == address_id)
                .ok_or(ServiceError::NotFound { kind: "address" })
        })
        .await
    }

    /// Deletes an address of the caller.
    pub async fn delete_address(self: &Arc<Self>, actor: Actor, address: Id) -> Result<(), ServiceError> {
        let id = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            this.store.transact(|txn| -> Result<_, ServiceError> {
                let mut user = txn
                    .get::<UserRecord>(&id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "user" })?
                    .to_native();
                let before = user.addresses.len();
                user.addresses.retain(|a| a.id != address.to_bytes());
                if user.addresses.len() == before {
                    return Err(ServiceError::NotFound { kind: "address" });
                }
                if user.default_address_id == Some(address.to_bytes()) {
                    user.default_address_id = user.addresses.first().map(|a| a.id);
                }
                user.version += 1;
                txn.put(&user.id, &user)?;
                Ok(())
            })
        })
        .await
    }

    /// Changes a user's role (admin). A seller role needs the seller it manages.
    pub async fn set_role(
        self: &Arc<Self>,
        actor: Actor,
        user: Id,
        role: Role,
        seller: Option<Id>,
    ) -> Result<UserView, ServiceError> {
        actor.require_admin()?;
        if role == Role::Seller && seller.is_none() {
            return Err(ServiceError::invalid(
                "seller",
                "required",
                "a seller role needs the seller it manages",
            ));
        }
        let this = self.clone();
        blocking(move || {
            let user = this.store.transact(|txn| -> Result<_, ServiceError> {
                let mut u = txn
                    .get::<UserRecord>(&user.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "user" })?
                    .to_native();
                u.role = role_record(role);
                u.seller_id = if role == Role::Seller {
                    seller.map(Id::to_bytes)
                } else {
                    None
                };
                u.version += 1;
                u.updated_at_ms = txn.now_ms();
                txn.put(&u.id, &u)?;
                Ok(u)
            })?;
            Ok(user_view(&user))
        })
        .await
    }
}

fn address_of(a: &AddressRecord) -> Address {
    Address {
        name: a.name.clone(),
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        region: a.region.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
        phone: a.phone.clone(),
    }
}

fn user_view(u: &UserRecord) -> UserView {
    UserView {
        id: Id::from_bytes(u.id),
        email: u.email.clone(),
        name: u.name.clone(),
        role: role_of(u.role).as_str(),
        seller_id: u.seller_id.map(Id::from_bytes),
        default_address_id: u.default_address_id.map(Id::from_bytes),
        version: u.version,
        created_at: super::view::rfc3339(u.created_at_ms),
    }
}

fn address_views(u: &UserRecord) -> Vec<AddressView> {
    u.addresses
        .iter()
        .map(|a| AddressView {
            id: Id::from_bytes(a.id),
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
            phone: a.phone.clone(),
            is_default: u.default_address_id == Some(a.id),
        })
        .collect()
}
