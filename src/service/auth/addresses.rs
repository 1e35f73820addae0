//! A user's postal addresses: the address book that checkout and tax read.

use std::sync::Arc;

use storefront_storage::records::{AddressRecord, UserRecord};

use super::{Accounts, Actor};
use crate::domain::user::{check_address, Address, AddressInput, MAX_ADDRESSES};
use crate::domain::{FieldErrors, Id};
use crate::service::view::AddressView;
use crate::service::{blocking, ServiceError};

/// The address a stored record holds (of the address book, or of an order).
pub(crate) fn address_of(a: &AddressRecord) -> Address {
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

/// The record of `a`, under `id`.
pub(crate) fn record_of(id: Id, a: Address) -> AddressRecord {
    AddressRecord {
        id: id.to_bytes(),
        name: a.name,
        line1: a.line1,
        line2: a.line2,
        city: a.city,
        region: a.region,
        postal_code: a.postal_code,
        country: a.country,
        phone: a.phone,
    }
}

fn address_views(u: &UserRecord) -> Vec<AddressView> {
    u.addresses
        .iter()
        .map(|a| AddressView {
            id: Id::from_bytes(a.id),
            address: address_of(a),
            is_default: u.default_address_id == Some(a.id),
        })
        .collect()
}

impl Accounts {
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
        let (user, address_id) = self
            .edit_user(id, move |user| {
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
                let record = record_of(address_id, checked);
                match existing {
                    Some(i) => user.addresses[i] = record,
                    None => user.addresses.push(record),
                }
                if input.is_default == Some(true) || user.default_address_id.is_none() {
                    user.default_address_id = Some(address_id.to_bytes());
                } else if input.is_default == Some(false) && user.default_address_id == Some(address_id.to_bytes()) {
                    user.default_address_id = None;
                }
                Ok(address_id)
            })
            .await?;
        address_views(&user)
            .into_iter()
            .find(|a| a.id == address_id)
            .ok_or(ServiceError::NotFound { kind: "address" })
    }

    /// Deletes an address of the caller.
    pub async fn delete_address(self: &Arc<Self>, actor: Actor, address: Id) -> Result<(), ServiceError> {
        let id = actor.user_id()?;
        self.edit_user(id, move |user| {
            let before = user.addresses.len();
            user.addresses.retain(|a| a.id != address.to_bytes());
            if user.addresses.len() == before {
                return Err(ServiceError::NotFound { kind: "address" });
            }
            if user.default_address_id == Some(address.to_bytes()) {
                user.default_address_id = user.addresses.first().map(|a| a.id);
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}
