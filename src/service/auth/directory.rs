//! The admins' view of the accounts: list and find users, newest last, a page at a time.

use std::sync::Arc;

use storefront_storage::records::{ArchivedRoleRecord, UserRecord};

use super::{user_view, Accounts, Actor};
use crate::domain::user::Role;
use crate::domain::{query, FieldErrors};
use crate::service::view::UserView;
use crate::service::{blocking, ServiceError};

/// Filters of `GET /admin/users`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Only accounts whose email contains this text (case-insensitive).
    pub email: Option<String>,
    /// Only accounts with this role: `customer`, `seller` or `admin`.
    pub role: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of accounts.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UserPage {
    /// The accounts, oldest first.
    pub items: Vec<UserView>,
    /// Cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl Accounts {
    /// Lists accounts matching `filter` (admins).
    pub async fn list_users(self: &Arc<Self>, actor: Actor, filter: UserFilter) -> Result<UserPage, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        let limit = query::limit(filter.limit.as_deref(), &mut errors);
        let role = match filter.role.as_deref() {
            None => None,
            Some(raw) => match Role::parse(raw) {
                Some(role) => Some(role),
                None => {
                    errors.add("role", "invalid", "must be customer, seller or admin");
                    None
                }
            },
        };
        let after = query::id_cursor(filter.cursor.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let needle = filter.email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
        let this = self.clone();
        blocking(move || {
            let start = after.map(|id| id.to_bytes().to_vec()).unwrap_or_default();
            let mut keys = Vec::with_capacity(limit + 1);
            this.store.for_each::<UserRecord>(&start, |key, user| {
                if key == start.as_slice() {
                    return true;
                }
                let role_matches = role.is_none_or(|role| role_is(&user.role, role));
                let email_matches = needle.as_deref().is_none_or(|n| user.email.as_str().contains(n));
                if role_matches && email_matches {
                    keys.push(key.to_vec());
                }
                keys.len() <= limit
            })?;
            let more = keys.len() > limit;
            keys.truncate(limit);
            let mut items = Vec::with_capacity(keys.len());
            for key in &keys {
                if let Some(user) = this.store.get::<UserRecord>(key)? {
                    items.push(user_view(&user.to_native()));
                }
            }
            let next_cursor = more.then(|| items.last().map(|u| u.id.to_string())).flatten();
            Ok(UserPage { items, next_cursor })
        })
        .await
    }
}

fn role_is(stored: &ArchivedRoleRecord, role: Role) -> bool {
    matches!(
        (stored, role),
        (ArchivedRoleRecord::Customer, Role::Customer)
            | (ArchivedRoleRecord::Seller, Role::Seller)
            | (ArchivedRoleRecord::Admin, Role::Admin)
    )
}
