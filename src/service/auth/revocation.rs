//! Access-token revocation. Access tokens are self-contained JWTs, valid until they expire
//! (`[auth] access_ttl_secs`); ending a session must also end them at once. Two records do
//! it, kept in memory for the check on every authenticated request and in RocksDB so a
//! restart keeps them:
//! - a token id denied until its expiry (logout of one session);
//! - a per-user cutoff: every access token issued before it is refused (an admin's
//!   revoke-all, a password change or reset).
//!
//! Token ids are UUIDv7 made at the service clock's time, so a token's issue time, to the
//! millisecond, is in its id.

use dashmap::DashMap;
use storefront_storage::cf::CF_META;
use storefront_storage::{Store, Txn};

use crate::domain::Id;
use crate::service::ServiceError;

const DENIED_PREFIX: &[u8] = b"revoked_token/";
const CUTOFF_PREFIX: &[u8] = b"token_cutoff/";

fn key(prefix: &[u8], id: &Id) -> Vec<u8> {
    [prefix, &id.to_bytes()].concat()
}

/// The revoked access tokens.
#[derive(Default)]
pub struct Revocations {
    /// Token id → its expiry (Unix seconds).
    denied: DashMap<Id, i64>,
    /// User → tokens issued before this (Unix milliseconds) are refused.
    cutoffs: DashMap<Id, i64>,
}

impl Revocations {
    /// Loads what `store` holds, dropping denials whose tokens have expired by `now_secs`.
    pub fn load(store: &Store, now_secs: i64) -> Result<Revocations, ServiceError> {
        let r = Revocations::default();
        let mut expired = Vec::new();
        for (prefix, map) in [(DENIED_PREFIX, &r.denied), (CUTOFF_PREFIX, &r.cutoffs)] {
            let upper = storefront_storage::keys::prefix_successor(prefix);
            store.for_each_raw(CF_META, prefix, upper.as_deref(), |k, v| {
                let (Ok(id), Ok(at)) = (<[u8; 16]>::try_from(&k[prefix.len()..]), <[u8; 8]>::try_from(v)) else {
                    return true;
                };
                let at = i64::from_be_bytes(at);
                if prefix == DENIED_PREFIX && at < now_secs {
                    expired.push(k.to_vec());
                } else {
                    map.insert(Id::from_bytes(id), at);
                }
                true
            })?;
        }
        if !expired.is_empty() {
            let mut batch = store.batch();
            for k in &expired {
                batch.delete(CF_META, k);
            }
            batch.commit()?;
        }
        Ok(r)
    }

    /// Whether a token of `user` issued at `issued_ms` with id `jti` (ours are UUIDv7) is
    /// revoked.
    pub fn is_revoked(&self, user: Id, jti: Option<Id>, issued_ms: i64) -> bool {
        if jti.is_some_and(|j| self.denied.contains_key(&j)) {
            return true;
        }
        match self.cutoffs.get(&user) {
            // A token of the very millisecond of the cutoff is refused too: an instant
            // sign-in after it is slower than that.
            Some(cutoff) => issued_ms <= *cutoff,
            None => false,
        }
    }

    /// Stages the denial of one token until `expires_secs`; [`Revocations::deny`] applies it
    /// once committed.
    pub fn stage_denial(txn: &mut Txn<'_>, jti: Id, expires_secs: i64) {
        txn.put_raw(CF_META, &key(DENIED_PREFIX, &jti), &expires_secs.to_be_bytes());
    }

    /// Applies a committed denial.
    pub fn deny(&self, jti: Id, expires_secs: i64, now_secs: i64) {
        self.denied.insert(jti, expires_secs);
        // Expired denials are useless: drop them now and then, so the map stays small.
        if self.denied.len() > 10_000 {
            self.denied.retain(|_, exp| *exp >= now_secs);
        }
    }

    /// Stages a cutoff: every access token of `user` issued up to `at_ms` is refused.
    pub fn stage_cutoff(txn: &mut Txn<'_>, user: Id, at_ms: i64) {
        txn.put_raw(CF_META, &key(CUTOFF_PREFIX, &user), &at_ms.to_be_bytes());
    }

    /// Applies a committed cutoff.
    pub fn cut(&self, user: Id, at_ms: i64) {
        self.cutoffs.insert(user, at_ms);
    }
}
