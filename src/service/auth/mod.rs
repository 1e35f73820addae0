//! Accounts: who is calling ([`Actor`]), registration, login, profiles and roles.
//!
//! - [`tokens`]: access tokens and rotating refresh tokens (sessions);
//! - [`addresses`]: the address book.
//!
//! Passwords are hashed with argon2id on blocking threads behind a semaphore, so a login flood
//! can neither stall the async workers nor exhaust memory.

pub(crate) mod addresses;
pub mod directory;
pub mod recovery;
pub mod revocation;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};
use storefront_storage::cf::CF_USER_EMAILS;
use storefront_storage::notifications::TokenPurposeRecord;
use storefront_storage::records::{RoleRecord, UserRecord};
use storefront_storage::Store;
use tokio::sync::Semaphore;

pub use tokens::persisted_jwt_secret;

use super::events::outbox::new_event;
use super::generation::Generation;
use super::view::{rfc3339, Tokens, UserView};
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::error::{Code, DomainError};
use crate::domain::user::{check_password, Email, Password, ProfilePatch, RegisterInput, Role};
use crate::domain::{FieldErrors, Id};
use tokens::random_token;

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
                code: Code::Unauthorized,
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
                code: Code::Unauthorized,
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

/// The account service.
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    settings: AuthSettings,
    hashing: Semaphore,
    /// A hash of a random password, verified against on unknown emails so that "no such
    /// account" and "wrong password" take the same time.
    dummy_hash: String,
    encoding_key: EncodingKey,
    decoding_keys: HashMap<String, DecodingKey>,
    validation: Validation,
    /// Access tokens of ended sessions.
    revocations: revocation::Revocations,
    /// Advanced after every edit of a user record: a user's default address is where their
    /// cart is priced for.
    users: Arc<Generation>,
}

fn bad_credentials() -> ServiceError {
    ServiceError::Unauthorized {
        code: Code::InvalidCredentials,
        message: "email or password is incorrect",
    }
}

pub(super) fn role_of(r: RoleRecord) -> Role {
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

impl Accounts {
    /// Creates the service.
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: AuthSettings,
        users: Arc<Generation>,
    ) -> Result<Accounts, ServiceError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        // Expiry is checked against the service's clock, not jsonwebtoken's system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        let mut decoding_keys = HashMap::new();
        decoding_keys.insert(
            settings.signing_key.0.clone(),
            DecodingKey::from_secret(&settings.signing_key.1),
        );
        for (kid, secret) in &settings.verify_keys {
            decoding_keys.insert(kid.clone(), DecodingKey::from_secret(secret));
        }
        let revocations = revocation::Revocations::load(&store, clock.now_ms() / 1000)?;
        let mut accounts = Accounts {
            users,
            revocations,
            encoding_key: EncodingKey::from_secret(&settings.signing_key.1),
            hashing: Semaphore::new(settings.hash_concurrency.max(1)),
            dummy_hash: String::new(),
            decoding_keys,
            validation,
            store,
            clock,
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
        .map_err(|e| ServiceError::internal(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    fn hash_now(&self, password: &str) -> Result<String, ServiceError> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| ServiceError::internal(format!("hashing: {e}")))?
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
            .map_err(|e| ServiceError::internal_from("hashing pool closed", e))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || job(&this))
            .await
            .map_err(|e| ServiceError::internal_from("hashing task", e))
    }

    /// The account registered under `email`.
    pub fn user_id_by_email(&self, email: &str) -> Result<Option<Id>, ServiceError> {
        Ok(self
            .store
            .get_raw(CF_USER_EMAILS, email.to_lowercase().as_bytes())?
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(Id::from_bytes))
    }

    /// Accounts for the customers of an imported purchase history, by email (existing
    /// accounts are reused): no welcome mail, no session, and a password nobody knows, so
    /// a customer signs in after a password reset. Returns the ids in input order.
    pub fn import_customers(&self, customers: &[(String, String)]) -> Result<Vec<Id>, ServiceError> {
        self.store.transact(|txn| {
            let mut ids = Vec::with_capacity(customers.len());
            for (email, name) in customers {
                let email = email.to_lowercase();
                if let Some(id) = txn.get_raw(CF_USER_EMAILS, email.as_bytes())? {
                    let id = <[u8; 16]>::try_from(id.as_slice())
                        .map_err(|_| ServiceError::internal("user email index holds a bad id"))?;
                    ids.push(Id::from_bytes(id));
                    continue;
                }
                let now = txn.now_ms();
                let user = UserRecord {
                    id: Id::new().to_bytes(),
                    version: 1,
                    email: email.clone(),
                    name: name.clone(),
                    password_hash: self.dummy_hash.clone(),
                    role: RoleRecord::Customer,
                    seller_id: None,
                    addresses: Vec::new(),
                    default_address_id: None,
                    email_verified: false,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                txn.put(&user.id, &user)?;
                txn.put_raw(CF_USER_EMAILS, email.as_bytes(), &user.id);
                ids.push(Id::from_bytes(user.id));
            }
            Ok(ids)
        })
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
                    return Err(DomainError::EmailTaken.into());
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
                    email_verified: false,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                txn.put(&user.id, &user)?;
                txn.put_raw(CF_USER_EMAILS, email.as_str().as_bytes(), &user.id);
                let welcome = new_event(
                    "user_registered",
                    serde_json::json!({ "user_id": id, "email": user.email, "name": user.name }),
                    now,
                );
                txn.put(&welcome.id, &welcome)?;
                this.stage_token(txn, &user, TokenPurposeRecord::EmailVerification)?;
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
                    PasswordHash::new(hash).map_err(|e| ServiceError::internal(format!("stored hash: {e}")))?;
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

    pub(super) fn load_user(&self, id: Id) -> Result<UserRecord, ServiceError> {
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
                    let parsed =
                        PasswordHash::new(&stored).map_err(|e| ServiceError::internal(format!("stored hash: {e}")))?;
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
        let password_changed = new_hash.is_some();
        let (user, ()) = self
            .edit_user(id, move |user| {
                if let Some(name) = &patch.name {
                    user.name = name.trim().to_owned();
                }
                if let Some(hash) = new_hash {
                    user.password_hash = hash;
                }
                Ok(())
            })
            .await?;
        if password_changed {
            // A new password ends every session, this one's too: sign in again with it.
            let this = self.clone();
            blocking(move || this.end_sessions(id)).await?;
        }
        Ok(user_view(&user))
    }

    /// The one path of every account edit: loads the user, lets `edit` change it inside the
    /// transaction, bumps the version and writes it.
    pub(super) async fn edit_user<T: Send + 'static>(
        self: &Arc<Self>,
        id: Id,
        edit: impl FnOnce(&mut UserRecord) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<(UserRecord, T), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let edited = this.store.transact(|txn| {
                let mut user = txn
                    .get::<UserRecord>(&id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "user" })?
                    .to_native();
                let out = edit(&mut user)?;
                user.version += 1;
                user.updated_at_ms = txn.now_ms();
                txn.put(&user.id, &user)?;
                Ok::<_, ServiceError>((user, out))
            })?;
            this.users.advance();
            Ok(edited)
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
        let (user, ()) = self
            .edit_user(user, move |u| {
                u.role = role_record(role);
                u.seller_id = if role == Role::Seller {
                    seller.map(Id::to_bytes)
                } else {
                    None
                };
                Ok(())
            })
            .await?;
        Ok(user_view(&user))
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
        email_verified: u.email_verified,
        version: u.version,
        created_at: rfc3339(u.created_at_ms),
    }
}
