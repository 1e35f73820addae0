//! Shipping: the admin's zones and methods, and the methods (with their prices) that ship a
//! cart to an address. Zones live in storage and, for pricing, in a snapshot in memory that
//! every write replaces, so pricing a cart reads no storage for them. The rules (which zone
//! applies, how parcels are priced) are in [`crate::domain::shipping`].

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use storefront_storage::cf::CF_SHIPPING;
use storefront_storage::shipping::{RateRecord, ShippingMethodRecord, ShippingZoneRecord, WeightBandRecord};
use storefront_storage::{Owned, Store};

use super::auth::Actor;
use super::generation::Generation;
use super::view::shipping::ZoneView;
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::error::DomainError;
use crate::domain::pricing::TaxLocation;
use crate::domain::shipping::{self, Area, Method, Parcel, Quote, Rate, ZoneInput};
use crate::domain::{FieldErrors, Id};

/// The code of the method a store without zones ships with.
pub const STANDARD_SHIPPING: &str = "standard";

/// A zone as pricing reads it.
struct LiveZone {
    record: ShippingZoneRecord,
    areas: Vec<Area>,
    methods: Vec<Method>,
}

/// A method that ships a cart, with what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The method.
    pub method: Method,
    /// Its price for the cart's parcels.
    pub quote: Quote,
}

/// The shipping service.
pub struct Shipping {
    store: Store,
    clock: SharedClock,
    standard: Method,
    live: ArcSwap<Vec<LiveZone>>,
    writes: Mutex<()>,
    /// Advanced after every reload (what cached cart prices read).
    pricing: Arc<Generation>,
}

fn method_of(m: &ShippingMethodRecord) -> Method {
    Method {
        code: m.code.clone(),
        name: m.name.clone(),
        rate: match &m.rate {
            RateRecord::Flat { amount_cents } => Rate::Flat(*amount_cents),
            RateRecord::Weight { bands } => {
                Rate::Weight(bands.iter().map(|b| (b.up_to_grams, b.amount_cents)).collect())
            }
            RateRecord::FreeOver {
                threshold_cents,
                amount_cents,
            } => Rate::FreeOver {
                threshold: *threshold_cents,
                amount: *amount_cents,
            },
        },
        min_days: m.min_days,
        max_days: m.max_days,
    }
}

fn record_of(m: &Method) -> ShippingMethodRecord {
    ShippingMethodRecord {
        code: m.code.clone(),
        name: m.name.clone(),
        rate: match &m.rate {
            Rate::Flat(amount) => RateRecord::Flat { amount_cents: *amount },
            Rate::Weight(bands) => RateRecord::Weight {
                bands: bands
                    .iter()
                    .map(|(up_to, amount)| WeightBandRecord {
                        up_to_grams: *up_to,
                        amount_cents: *amount,
                    })
                    .collect(),
            },
            Rate::FreeOver { threshold, amount } => RateRecord::FreeOver {
                threshold_cents: *threshold,
                amount_cents: *amount,
            },
        },
        min_days: m.min_days,
        max_days: m.max_days,
    }
}

fn live_of(record: ShippingZoneRecord) -> LiveZone {
    LiveZone {
        areas: record.areas.iter().filter_map(|a| Area::parse(a)).collect(),
        methods: record.methods.iter().map(method_of).collect(),
        record,
    }
}

impl Shipping {
    /// Opens the service, loading every zone; `standard` is the method of a store without any.
    pub fn new(
        store: Store,
        clock: SharedClock,
        standard: Method,
        pricing: Arc<Generation>,
    ) -> Result<Shipping, ServiceError> {
        let shipping = Shipping {
            pricing,
            store,
            clock,
            standard,
            live: ArcSwap::from_pointee(Vec::new()),
            writes: Mutex::new(()),
        };
        shipping.reload()?;
        Ok(shipping)
    }

    fn reload(&self) -> Result<(), ServiceError> {
        let mut all = Vec::new();
        let mut failed = None;
        self.store.for_each_raw(CF_SHIPPING, &[], None, |key, value| {
            match Owned::<ShippingZoneRecord>::from_slice(key, value) {
                Ok(r) => all.push(live_of(r.to_native())),
                Err(e) => failed = Some(e),
            }
            failed.is_none()
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.live.store(Arc::new(all));
        self.pricing.advance();
        Ok(())
    }

    /// The methods that ship `parcels` to `location`, cheapest first. A store without zones
    /// offers its standard method anywhere; with zones, an unknown location gets none.
    pub fn offers(&self, location: Option<&TaxLocation>, parcels: &[Parcel]) -> Vec<Offer> {
        let live = self.live.load();
        let methods: &[Method] = if live.is_empty() {
            std::slice::from_ref(&self.standard)
        } else {
            let Some(at) = location else {
                return Vec::new();
            };
            match shipping::zone_for(live.iter().map(|z| z.areas.as_slice()), &at.country, &at.region) {
                Some(i) => &live[i].methods,
                None => return Vec::new(),
            }
        };
        let mut offers: Vec<Offer> = methods
            .iter()
            .filter_map(|m| {
                m.quote(parcels).map(|quote| Offer {
                    method: m.clone(),
                    quote,
                })
            })
            .collect();
        offers.sort_by_key(|o| (o.quote.amount, o.method.max_days));
        offers
    }

    fn load(&self, id: Id) -> Result<ShippingZoneRecord, ServiceError> {
        self.store
            .get::<ShippingZoneRecord>(&id.to_bytes())?
            .map(|r| r.to_native())
            .ok_or(ServiceError::NotFound { kind: "shipping zone" })
    }

    /// Validates `input` into `record` (a patch when `patch`), refusing areas another zone has.
    fn apply_input(&self, input: &ZoneInput, record: &mut ShippingZoneRecord, patch: bool) -> Result<(), ServiceError> {
        let mut errors = FieldErrors::default();
        match input.name.as_deref().map(str::trim) {
            Some(name) => {
                errors.text("name", name, true, 80);
                record.name = name.to_owned();
            }
            None if !patch => errors.add("name", "required", "must be given"),
            None => {}
        }
        let areas = match &input.areas {
            Some(raw) => Some(shipping::areas(raw, &mut errors)),
            None if !patch => {
                errors.add("areas", "required", "must be given");
                None
            }
            None => None,
        };
        let methods = match &input.methods {
            Some(raw) => Some(shipping::methods(raw, &mut errors)),
            None if !patch => {
                errors.add("methods", "required", "must be given");
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        if let Some(areas) = areas {
            let live = self.live.load();
            let taken: Vec<String> = live
                .iter()
                .filter(|z| z.record.id != record.id)
                .flat_map(|z| {
                    z.areas
                        .iter()
                        .filter(|a| areas.contains(a))
                        .map(move |a| format!("{a} ({})", z.record.name))
                })
                .collect();
            if !taken.is_empty() {
                return Err(DomainError::ZoneOverlap { areas: taken }.into());
            }
            record.areas = areas.iter().map(Area::to_string).collect();
        }
        if let Some(methods) = methods {
            record.methods = methods.iter().map(record_of).collect();
        }
        record.updated_at_ms = self.clock.now_ms();
        Ok(())
    }

    fn save(&self, record: &ShippingZoneRecord) -> Result<ZoneView, ServiceError> {
        let mut batch = self.store.batch();
        batch.put(&record.id, record)?;
        batch.commit()?;
        self.reload()?;
        Ok(ZoneView::new(record))
    }

    /// `POST /admin/shipping-zones`.
    pub async fn create(self: &Arc<Self>, actor: Actor, input: ZoneInput) -> Result<ZoneView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let now = this.clock.now_ms();
            let mut record = ShippingZoneRecord {
                id: Id::new().to_bytes(),
                name: String::new(),
                areas: Vec::new(),
                methods: Vec::new(),
                version: 1,
                created_at_ms: now,
                updated_at_ms: now,
            };
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.apply_input(&input, &mut record, false)?;
            this.save(&record)
        })
        .await
    }

    /// `GET /admin/shipping-zones`: every zone, oldest first.
    pub async fn list(self: &Arc<Self>, actor: Actor) -> Result<Vec<ZoneView>, ServiceError> {
        actor.require_admin()?;
        Ok(self.live.load().iter().map(|z| ZoneView::new(&z.record)).collect())
    }

    /// `PATCH /admin/shipping-zones/{id}`, optionally at `if_match` (the zone's version).
    pub async fn update(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        if_match: Option<u64>,
        input: ZoneInput,
    ) -> Result<ZoneView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut record = this.load(id)?;
            if if_match.is_some_and(|v| v != record.version) {
                return Err(ServiceError::VersionMismatch {
                    current: record.version,
                });
            }
            this.apply_input(&input, &mut record, true)?;
            record.version += 1;
            this.save(&record)
        })
        .await
    }

    /// `DELETE /admin/shipping-zones/{id}`; placed orders keep their method.
    pub async fn delete(self: &Arc<Self>, actor: Actor, id: Id) -> Result<(), ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.load(id)?;
            let mut batch = this.store.batch();
            batch.delete(CF_SHIPPING, &id.to_bytes());
            batch.commit()?;
            this.reload()
        })
        .await
    }
}
