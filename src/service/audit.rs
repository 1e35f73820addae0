//! The audit log: who changed what, when, from where, and the resource before and after, for
//! every write by an admin, a seller or the admin key, and for money actions by anyone
//! (refunds, payments, cancellations, returns, payment-provider webhooks). Append-only: the
//! log has no update or delete, and entries are keyed by a time-ordered id.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use storefront_storage::cf::CF_AUDIT;
use storefront_storage::Store;

use super::auth::Actor;
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::{query, FieldErrors, Id};
use crate::service::view::rfc3339;

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Time-ordered id.
    pub id: Id,
    /// When (RFC 3339).
    pub at: String,
    /// Who: `system` (the admin API key), a user id, or `anonymous` (a money webhook).
    pub actor: String,
    /// The actor's role: `system`, `admin`, `seller`, `customer` or `anonymous`.
    pub role: String,
    /// From where: the client address (behind trusted proxies, the forwarded one).
    pub ip: String,
    /// HTTP method.
    pub method: String,
    /// The path written to.
    pub path: String,
    /// The answer's status: failed attempts are kept too.
    pub status: u16,
    /// The request body, secrets redacted.
    #[schema(value_type = Option<Value>)]
    pub request: Option<serde_json::Value>,
    /// The resource before the write (its own document, or the one it belongs to, e.g. the
    /// order of a refund), when it could be read.
    #[schema(value_type = Option<Value>)]
    pub before: Option<serde_json::Value>,
    /// The answer's body after a successful write.
    #[schema(value_type = Option<Value>)]
    pub after: Option<serde_json::Value>,
}

/// What the HTTP layer saw of an audited write.
pub struct Observed {
    /// The caller.
    pub actor: Actor,
    /// Client address.
    pub ip: String,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status.
    pub status: u16,
    /// Request body.
    pub request: Option<serde_json::Value>,
    /// Resource before.
    pub before: Option<serde_json::Value>,
    /// Response body.
    pub after: Option<serde_json::Value>,
}

/// Filters of `GET /admin/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this actor: a user id, or `system`.
    pub actor: Option<String>,
    /// Only paths containing this text, e.g. `/products/` or an order id.
    pub path: Option<String>,
    /// Only this method.
    pub method: Option<String>,
    /// At or after (RFC 3339).
    pub from: Option<String>,
    /// Before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The entries, newest first.
    pub items: Vec<AuditEntry>,
    /// Cursor of the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Entries examined per page at most, so a sparse filter cannot scan the whole log at once.
const MAX_SCANNED: usize = 20_000;

/// The audit log.
pub struct Audit {
    store: Store,
    clock: SharedClock,
}

impl Audit {
    /// The log in `store`.
    pub fn new(store: Store, clock: SharedClock) -> Audit {
        Audit { store, clock }
    }

    /// Appends an entry (durable like any acknowledged write).
    pub async fn append(self: &Arc<Self>, seen: Observed) -> Result<AuditEntry, ServiceError> {
        let now = self.clock.now_ms();
        let (actor, role) = match seen.actor {
            Actor::Anonymous => ("anonymous".to_owned(), "anonymous"),
            Actor::System => ("system".to_owned(), "system"),
            Actor::User { id, role, .. } => (id.to_string(), role.as_str()),
        };
        let entry = AuditEntry {
            id: Id::from_time_ms(now),
            at: rfc3339(now),
            actor,
            role: role.to_owned(),
            ip: seen.ip,
            method: seen.method,
            path: seen.path,
            status: seen.status,
            request: seen.request.map(redact),
            before: seen.before,
            after: seen.after.map(redact),
        };
        let this = self.clone();
        let stored = entry.clone();
        blocking(move || {
            let bytes = serde_json::to_vec(&stored).map_err(|e| ServiceError::internal_from("audit entry", e))?;
            let mut batch = this.store.batch();
            batch.put_raw(CF_AUDIT, &stored.id.to_bytes(), &bytes);
            batch.commit()?;
            Ok(())
        })
        .await?;
        Ok(entry)
    }

    /// A page of entries matching `filter`, newest first (admins).
    pub async fn list(self: &Arc<Self>, actor: Actor, filter: AuditFilter) -> Result<AuditPage, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        let limit = query::limit(filter.limit.as_deref(), &mut errors);
        let from = query::time("from", filter.from.as_deref(), &mut errors);
        let to = query::time("to", filter.to.as_deref(), &mut errors);
        let before = query::id_cursor(filter.cursor.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        // Ids are time-ordered: the time bounds are key bounds.
        let mut upper = to.map(|ms| Id::from_time_ms(ms).to_bytes()[..6].to_vec());
        if let Some(id) = before {
            let key = id.to_bytes().to_vec();
            upper = Some(match upper {
                Some(u) if u < key => u,
                _ => key,
            });
        }
        let method = filter.method.map(|m| m.to_ascii_uppercase());
        let this = self.clone();
        blocking(move || {
            let mut items = Vec::with_capacity(limit + 1);
            let mut scanned = 0;
            let mut last_key = None;
            let mut failure = None;
            this.store.for_each_raw_rev(CF_AUDIT, upper.as_deref(), |key, value| {
                scanned += 1;
                last_key = Some(key.to_vec());
                let entry: AuditEntry = match serde_json::from_slice(value) {
                    Ok(entry) => entry,
                    Err(e) => {
                        failure = Some(ServiceError::internal_from("corrupt audit entry", e));
                        return false;
                    }
                };
                if from.is_some_and(|from| entry.id.created_at_ms() < from) {
                    return false;
                }
                let keep = filter.actor.as_deref().is_none_or(|a| entry.actor == a)
                    && filter.path.as_deref().is_none_or(|p| entry.path.contains(p))
                    && method.as_deref().is_none_or(|m| entry.method == m);
                if keep {
                    items.push(entry);
                }
                items.len() <= limit && scanned < MAX_SCANNED
            })?;
            if let Some(failure) = failure {
                return Err(failure);
            }
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|e| e.id.to_string())
            } else if scanned >= MAX_SCANNED {
                // Resume below the last entry examined.
                last_key
                    .and_then(|k| <[u8; 16]>::try_from(k.as_slice()).ok())
                    .map(|k| Id::from_bytes(k).to_string())
            } else {
                None
            };
            Ok(AuditPage { items, next_cursor })
        })
        .await
    }
}

/// Replaces secrets (passwords, tokens, card data, webhook secrets) anywhere in a body.
pub fn redact(mut value: serde_json::Value) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let key = key.to_ascii_lowercase();
                    if ["password", "secret", "token", "card", "cvc", "cvv"]
                        .iter()
                        .any(|s| key.contains(s))
                    {
                        *v = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let body = serde_json::json!({
            "email": "a@b.c",
            "password": "hunter2",
            "payment": { "card_number": "4242", "CVC": "123", "amount": 5 },
            "hooks": [{ "secret": "whsec_x", "url": "https://x" }],
            "refresh_token": "t",
        });
        let out = redact(body);
        assert_eq!(out["email"], "a@b.c");
        assert_eq!(out["payment"]["amount"], 5);
        assert_eq!(out["hooks"][0]["url"], "https://x");
        for hidden in [
            &out["password"],
            &out["payment"]["card_number"],
            &out["payment"]["CVC"],
            &out["hooks"][0]["secret"],
            &out["refresh_token"],
        ] {
            assert_eq!(hidden, "[redacted]");
        }
    }
}
