//! Shopping carts: guest and user carts, stock holds, merge at login, expiry, and the
//! always-current price breakdown.
//!
//! - this module: reads, the shopper's changes, and the cart view;
//! - [`commit`]: the one batch that writes carts with their holds;
//! - [`merge`]: guest carts merging into a user's at login;
//! - [`page`]: rendered cart reads, kept while everything they show is unchanged;
//! - [`sweeper`]: expiring holds and carts.
//!
//! The rules (limits, hold planning, merge strategy) are the domain's ([`crate::domain::cart`]).
//! Writes to one cart are serialised by a striped lock (never a global one), run on the
//! blocking pool, and commit the cart record, its stock-hold records, its expiry-index entries
//! and any stock signal or `low_stock` event in **one** RocksDB batch. Batches from different
//! carts do not share a lock, so concurrent fsyncs are grouped by RocksDB's group commit.
//! Hot carts stay in a moka cache written through after each commit.
//!
//! Stock holds follow the ledger's rule (see [`crate::service::inventory::ledger`]): units are
//! taken from the live counter before the batch is written and returned if it fails; units
//! are given back only after the batch that drops the hold is durable. Time comes from the
//! service's [`Clock`].

mod commit;
mod merge;
mod page;
pub mod sweeper;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use storefront_storage::cf::CF_VARIANTS;
use storefront_storage::keys::{self, CartKey};
use storefront_storage::records::{CartLineRecord, CartRecord, CartStatus, ProductRecord, UserRecord};
use storefront_storage::{Batch, Store};

use super::catalog::Catalog;
use super::coupon::{Coupons, Customer, Discounts};
use super::generation::Generation;
use super::inventory::{HoldChanges, Inventory, StockLedger};
use super::shipping::{Offer, Shipping};
use super::view::shipping::{ShippingOfferView, ShippingOffersView};
use super::view::{product_status, rfc3339, CartLineView, CartView};
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::cart::{self, CartLimits, HoldRequest, MergeStrategy, ReserveOn};
use crate::domain::error::{Code, DomainError};
use crate::domain::pricing::{Breakdown, PricingRules, TaxLocation};
use crate::domain::shipping::Parcel;
use crate::domain::{product, Currency, FieldErrors, Id, Money};
pub(crate) use commit::CartChange;
use commit::ExpiryBuckets;
pub use page::CartPage;

/// Cart rules from `[cart]` and `[inventory]`.
#[derive(Debug, Clone)]
pub struct CartSettings {
    /// Inactivity lifetime of guest carts.
    pub guest_ttl: Duration,
    /// Inactivity lifetime of user carts.
    pub user_ttl: Duration,
    /// Lifetime of holds after the cart's last write.
    pub hold_ttl: Duration,
    /// When stock is held.
    pub reserve_on: ReserveOn,
    /// Size limits.
    pub limits: CartLimits,
    /// Guest-to-user merge strategy.
    pub merge: MergeStrategy,
    /// Carts per sweeper batch.
    pub sweep_batch: usize,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
    /// Cached carts.
    pub cache_entries: u64,
    /// Bytes of rendered cart reads kept while current (0: none).
    pub page_cache_bytes: u64,
    /// A user cart with items, untouched this long, emits one `cart_abandoned` event.
    pub abandon_after: Option<Duration>,
    /// Store currency.
    pub currency: Currency,
}

/// Who a cart request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartOwner {
    /// A guest without a cart yet (a write creates one and issues a token).
    NewGuest,
    /// A guest with a cart token.
    Guest(String),
    /// A signed-in user.
    User(Id),
}

/// A change requested by the shopper.
#[derive(Debug, Clone)]
pub enum CartOp {
    /// `POST /cart/items`.
    Add {
        /// SKU to add.
        sku: Option<String>,
        /// Units to add.
        quantity: Option<i64>,
    },
    /// `PATCH /cart/items/{id}`.
    SetQuantity {
        /// Line id.
        item_id: String,
        /// New quantity.
        quantity: Option<i64>,
    },
    /// `DELETE /cart/items/{id}`.
    Remove {
        /// Line id.
        item_id: String,
    },
    /// `DELETE /cart`.
    Clear,
    /// `POST /cart/reserve`: hold every line now, all or nothing (the first step of
    /// checkout; with `reserve_on = "checkout"` the only time stock is held before the order).
    HoldAll,
    /// `POST /cart/coupon` (a code) and `DELETE /cart/coupon` (none).
    SetCoupon {
        /// The code, or none to remove the coupon.
        code: Option<String>,
    },
}

/// What a cart write returns: the cart and, for a new guest cart, its token.
#[derive(Debug)]
pub struct CartWrite {
    /// The cart after the write.
    pub cart: Arc<CartPage>,
    /// Token of a newly created guest cart.
    pub new_token: Option<String>,
}

const STRIPES: usize = 1024;

/// What a cart's prices are read from, besides the cart itself and the stock counters.
pub struct PriceSources {
    /// Products, categories and sellers.
    pub catalog: Arc<Catalog>,
    /// Coupons and, through them, the promotions.
    pub coupons: Arc<Coupons>,
    /// Shipping zones and methods.
    pub shipping: Arc<Shipping>,
    /// Tax rules.
    pub rules: PricingRules,
    /// Advanced when promotions or shipping zones change.
    pub pricing_generation: Arc<Generation>,
    /// Advanced when a user record (a default address) changes.
    pub users_generation: Arc<Generation>,
}

/// The cart service.
pub struct Carts {
    store: Store,
    inventory: Arc<Inventory>,
    stock: Arc<StockLedger>,
    clock: SharedClock,
    settings: CartSettings,
    pricing: PricingRules,
    cache: moka::sync::Cache<CartKey, Arc<CartRecord>>,
    pages: Option<page::PageCache>,
    page_counts: page::PageCounts,
    stripes: Box<[Mutex<()>]>,
    buckets: ExpiryBuckets,
    catalog: Arc<Catalog>,
    coupons: Arc<Coupons>,
    shipping: Arc<Shipping>,
    pricing_generation: Arc<Generation>,
    users_generation: Arc<Generation>,
}

impl Carts {
    /// Builds the service.
    pub fn new(
        store: Store,
        inventory: Arc<Inventory>,
        clock: SharedClock,
        settings: CartSettings,
        sources: PriceSources,
    ) -> Carts {
        Carts {
            catalog: sources.catalog,
            coupons: sources.coupons,
            shipping: sources.shipping,
            pricing: sources.rules,
            pricing_generation: sources.pricing_generation,
            users_generation: sources.users_generation,
            store,
            stock: inventory.ledger().clone(),
            inventory,
            clock,
            cache: moka::sync::Cache::new(settings.cache_entries.max(16)),
            pages: page::page_cache(settings.page_cache_bytes),
            page_counts: page::PageCounts::default(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            buckets: ExpiryBuckets::new(&settings),
            settings,
        }
    }

    /// The reservation policy in force.
    pub fn reserve_on(&self) -> ReserveOn {
        self.settings.reserve_on
    }

    // ------------------------------------------------------------------ reads

    /// Returns the cart, priced from the catalog as it is now (a kept page when nothing it
    /// shows has changed, see [`page`]). A guest without a token, or a user without a cart,
    /// gets an empty cart.
    pub async fn get(self: &Arc<Self>, owner: CartOwner, to: Destination) -> Result<Arc<CartPage>, ServiceError> {
        if let Some(page) = self.current_page(&owner, &to) {
            return Ok(page);
        }
        let this = self.clone();
        blocking(move || {
            let generations = this.generations(&owner, &to);
            let now = this.clock.now_ms();
            let key = Self::key_of(&owner)?;
            let record = match (&owner, key) {
                (CartOwner::Guest(_), Some(key)) => {
                    let cart = this.load(&key)?.ok_or(CART_NOT_FOUND)?;
                    check_live(&cart, now)?;
                    Some(cart)
                }
                (CartOwner::User(_), Some(key)) => this.load(&key)?.filter(|c| is_live(c, now)),
                _ => None,
            };
            this.render_page(key, record, &owner, &to, generations)
        })
        .await
    }

    /// `GET /cart/shipping-methods`: the methods that ship the cart to its destination, with
    /// their prices. With shipping zones, a destination must be known (422 on `country`).
    pub async fn shipping_offers(
        self: &Arc<Self>,
        owner: CartOwner,
        to: Destination,
    ) -> Result<ShippingOffersView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let now = this.clock.now_ms();
            let record = match &owner {
                CartOwner::NewGuest => None,
                CartOwner::Guest(token) => {
                    let cart = this.load(&guest_key(token)?)?.ok_or(CART_NOT_FOUND)?;
                    check_live(&cart, now)?;
                    Some(cart)
                }
                CartOwner::User(id) => this.load(&keys::user_cart(&id.to_bytes()))?.filter(|c| is_live(c, now)),
            };
            let lines = this.price_lines(record.as_ref().map(|c| c.lines.as_slice()).unwrap_or_default())?;
            let customer = customer_of(match &owner {
                CartOwner::User(id) => Some(*id),
                _ => None,
            });
            let coupon = record
                .as_ref()
                .and_then(|c| c.coupon.as_deref())
                .map(|code| (code, &customer));
            let priced = this.breakdown(&lines, &owner, &to, coupon)?;
            if priced.location.is_none() && priced.offers.is_empty() {
                let mut errors = FieldErrors::default();
                errors.add(
                    "country",
                    "required",
                    "give ?country= (and ?region=), or save an address",
                );
                return Err(ServiceError::Validation(errors.into_vec()));
            }
            let money = |amount| Money::new(amount, this.settings.currency);
            Ok(ShippingOffersView {
                country: priced.location.as_ref().map(|l| l.country.trim().to_ascii_uppercase()),
                region: priced
                    .location
                    .as_ref()
                    .map(|l| l.region.trim().to_ascii_uppercase())
                    .filter(|r| !r.is_empty()),
                items: priced
                    .offers
                    .into_iter()
                    .map(|o| ShippingOfferView {
                        code: o.method.code,
                        name: o.method.name,
                        price: money(o.quote.amount),
                        per_shipment: o.quote.per_parcel.into_iter().map(money).collect(),
                        min_days: o.method.min_days,
                        max_days: o.method.max_days,
                    })
                    .collect(),
            })
        })
        .await
    }

    fn load(&self, key: &CartKey) -> Result<Option<Arc<CartRecord>>, ServiceError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(hit));
        }
        let Some(record) = self.store.get::<CartRecord>(key)? else {
            return Ok(None);
        };
        let record = Arc::new(record.to_native());
        self.cache.insert(*key, record.clone());
        Ok(Some(record))
    }

    // ----------------------------------------------------------------- writes

    /// Applies a shopper's change. `if_match` is the cart version the client last saw.
    pub async fn write(
        self: &Arc<Self>,
        owner: CartOwner,
        op: CartOp,
        if_match: Option<u64>,
        to: Destination,
    ) -> Result<CartWrite, ServiceError> {
        let this = self.clone();
        blocking(move || this.write_sync(owner, op, if_match, to)).await
    }

    fn write_sync(
        &self,
        owner: CartOwner,
        op: CartOp,
        if_match: Option<u64>,
        to: Destination,
    ) -> Result<CartWrite, ServiceError> {
        let op = self.validate(op)?;
        let generations = self.generations(&owner, &to);
        if owner == CartOwner::NewGuest {
            // Only adding creates a guest cart; other changes have nothing to act on.
            match op {
                ValidOp::Add { .. } => {}
                ValidOp::Clear => {
                    return Ok(CartWrite {
                        cart: self.render_page(None, None, &owner, &to, generations)?,
                        new_token: None,
                    })
                }
                _ => return Err(ServiceError::NotFound { kind: "cart item" }),
            }
        }
        let (key, new_token, owner) = match owner {
            CartOwner::NewGuest => {
                let token = new_token();
                (guest_key(&token)?, Some(token.clone()), CartOwner::Guest(token))
            }
            CartOwner::Guest(token) => (guest_key(&token)?, None, CartOwner::Guest(token)),
            CartOwner::User(id) => (keys::user_cart(&id.to_bytes()), None, CartOwner::User(id)),
        };
        let _guard = self.lock(&[key]);
        let now = self.clock.now_ms();
        // PERF: a token made just now names no stored cart; looking it up walked the whole
        // memtable and every level's filters for a key that cannot be there.
        let old = if new_token.is_some() { None } else { self.load(&key)? };
        let current = match (&old, &owner) {
            (Some(cart), CartOwner::Guest(_)) if new_token.is_none() => {
                check_live(cart, now)?;
                Some(cart.clone())
            }
            (None, CartOwner::Guest(_)) if new_token.is_none() => return Err(CART_NOT_FOUND),
            // An expired user cart is replaced by a fresh one.
            (Some(cart), CartOwner::User(_)) => Some(cart.clone()).filter(|c| is_live(c, now)),
            _ => None,
        };
        let version = current.as_ref().map(|c| c.version).unwrap_or(0);
        if if_match.is_some_and(|v| v != version) {
            return Err(ServiceError::VersionMismatch { current: version });
        }
        let user = match &owner {
            CartOwner::User(id) => Some(*id),
            _ => None,
        };
        let mut cart = current.as_deref().cloned().unwrap_or_else(|| new_cart(user, now));
        let touched = self.apply_op(&mut cart, op, now, user)?;
        self.plan_holds(&mut cart, current.as_deref(), &touched)?;
        self.record_activity(&mut cart, &owner, now);
        self.commit(vec![CartChange {
            key,
            old,
            new: Some(cart.clone()),
        }])?;
        // The record just committed (the stripe is still held, so no one has replaced it):
        // the page rendered from it is kept for the reads that follow.
        let committed = self.cache.get(&key).unwrap_or_else(|| Arc::new(cart));
        Ok(CartWrite {
            cart: self.render_page(Some(key), Some(committed), &owner, &to, generations)?,
            new_token,
        })
    }

    /// Rejects invalid input before any lock is taken (422 with every invalid field).
    fn validate(&self, op: CartOp) -> Result<ValidOp, ServiceError> {
        let mut errors = FieldErrors::default();
        let limits = &self.settings.limits;
        let op = match op {
            CartOp::Add { sku, quantity } => {
                let quantity = limits.check_quantity(quantity, &mut errors);
                let sku = match sku.map(|s| s.trim().to_owned()) {
                    None => {
                        errors.add("sku", "required", "must be given");
                        None
                    }
                    Some(s) => match self.purchasable(&s)? {
                        Ok(found) => Some(found),
                        Err((code, message)) => {
                            errors.add("sku", code, message);
                            None
                        }
                    },
                };
                match sku {
                    Some((sku, product_id, price)) if errors.is_empty() => ValidOp::Add {
                        sku,
                        product_id,
                        price,
                        quantity,
                    },
                    _ => return Err(ServiceError::Validation(errors.into_vec())),
                }
            }
            CartOp::SetQuantity { item_id, quantity } => {
                let quantity = limits.check_quantity(quantity, &mut errors);
                if !errors.is_empty() {
                    return Err(ServiceError::Validation(errors.into_vec()));
                }
                ValidOp::SetQuantity {
                    item: parse_item_id(&item_id)?,
                    quantity,
                }
            }
            CartOp::Remove { item_id } => ValidOp::Remove {
                item: parse_item_id(&item_id)?,
            },
            CartOp::Clear => ValidOp::Clear,
            CartOp::HoldAll => ValidOp::HoldAll,
            CartOp::SetCoupon { code: None } => ValidOp::SetCoupon(None),
            CartOp::SetCoupon { code: Some(code) } => {
                let code = crate::domain::coupon::normalize_code(&code, &mut errors);
                if !errors.is_empty() {
                    return Err(ServiceError::Validation(errors.into_vec()));
                }
                ValidOp::SetCoupon(Some(code))
            }
        };
        Ok(op)
    }

    /// Looks up a SKU that can be bought: it exists, its product is visible.
    #[allow(clippy::type_complexity)]
    fn purchasable(&self, sku: &str) -> Result<Result<(String, [u8; 16], i64), (&'static str, String)>, ServiceError> {
        let unknown = || Ok(Err(("unknown_sku", format!("SKU {sku:?} does not exist"))));
        let Some(id) = self.store.get_raw(CF_VARIANTS, keys::sku(sku))? else {
            return unknown();
        };
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
            return unknown();
        };
        let Some(product) = self.store.get::<ProductRecord>(&id)? else {
            return unknown();
        };
        let p = product.archived();
        if !product::is_visible(product_status(&p.status)) {
            return Ok(Err(("not_published", format!("SKU {sku:?} is not for sale"))));
        }
        match p.variants.iter().find(|v| v.sku == sku) {
            Some(v) => Ok(Ok((sku.to_owned(), id, v.price_cents.to_native()))),
            None => unknown(),
        }
    }

    /// Applies the change to the lines; returns which lines must be fully held.
    fn apply_op(
        &self,
        cart: &mut CartRecord,
        op: ValidOp,
        now: i64,
        user: Option<Id>,
    ) -> Result<Touched, ServiceError> {
        let limits = &self.settings.limits;
        let touched = match op {
            ValidOp::Add {
                sku,
                product_id,
                price,
                quantity,
            } => {
                let existing = cart.lines.iter().find(|l| l.sku == sku).map(|l| l.quantity);
                let after = limits
                    .after_add(existing, quantity, cart.lines.len())
                    .map_err(|e| ServiceError::Validation(e.into_vec()))?;
                match cart.lines.iter_mut().find(|l| l.sku == sku) {
                    Some(line) => line.quantity = after,
                    None => cart.lines.push(CartLineRecord {
                        item_id: Id::new().to_bytes(),
                        sku: sku.clone(),
                        product_id,
                        quantity: after,
                        held: 0,
                        unit_price_cents_at_add: price,
                        added_at_ms: now,
                    }),
                }
                Touched::Sku(sku)
            }
            ValidOp::SetQuantity { item, quantity } => {
                let line = cart
                    .lines
                    .iter_mut()
                    .find(|l| l.item_id == item)
                    .ok_or(ServiceError::NotFound { kind: "cart item" })?;
                line.quantity = quantity;
                Touched::Sku(line.sku.clone())
            }
            ValidOp::Remove { item } => {
                let before = cart.lines.len();
                cart.lines.retain(|l| l.item_id != item);
                if cart.lines.len() == before {
                    return Err(ServiceError::NotFound { kind: "cart item" });
                }
                Touched::None
            }
            ValidOp::Clear => {
                cart.lines.clear();
                Touched::None
            }
            ValidOp::HoldAll => {
                if cart.lines.is_empty() {
                    return Err(DomainError::CartEmpty.into());
                }
                return Ok(Touched::All);
            }
            ValidOp::SetCoupon(code) => {
                // A code is checked against the cart as it is; the cart keeps it afterwards,
                // and each pricing says whether it still applies.
                if let Some(code) = &code {
                    let lines = self.price_lines(&cart.lines)?;
                    let customer = customer_of(user);
                    if let Some(Err(why)) = self.coupons.discounts(&lines, Some((code, &customer)))?.coupon {
                        return Err(why.invalid("code"));
                    }
                }
                cart.coupon = code;
                return Ok(Touched::None);
            }
        };
        limits
            .check_total(cart.lines.iter().map(|l| l.quantity).sum())
            .map_err(|e| ServiceError::Validation(e.into_vec()))?;
        Ok(touched)
    }

    /// Decides how many units each line holds after the write (see [`cart::plan_hold`]).
    fn plan_holds(
        &self,
        cart: &mut CartRecord,
        old: Option<&CartRecord>,
        touched: &Touched,
    ) -> Result<(), ServiceError> {
        let policy = match touched {
            Touched::All => ReserveOn::Cart,
            _ => self.settings.reserve_on,
        };
        for line in &mut cart.lines {
            let held_before = old
                .and_then(|o| o.lines.iter().find(|l| l.sku == line.sku))
                .map(|l| l.held)
                .unwrap_or(0);
            line.held = cart::plan_hold(
                policy,
                HoldRequest {
                    sku: &line.sku,
                    quantity: line.quantity,
                    held_before,
                    available: self.stock.available(&line.sku),
                    touched: match touched {
                        Touched::All => true,
                        Touched::Sku(sku) => sku == &line.sku,
                        Touched::None => false,
                    },
                },
            )?;
        }
        Ok(())
    }

    /// A shopper's write: bumps the version and restarts the cart's inactivity clock and, when
    /// it holds stock, the hold clock.
    fn record_activity(&self, cart: &mut CartRecord, owner: &CartOwner, now: i64) {
        let ttl = match owner {
            CartOwner::User(_) => self.settings.user_ttl,
            _ => self.settings.guest_ttl,
        };
        cart.version += 1;
        cart.updated_at_ms = now;
        cart.expires_at_ms = now + ttl.as_millis() as i64;
        cart.holds_expire_at_ms = if cart.lines.iter().any(|l| l.held > 0) {
            now + self.settings.hold_ttl.as_millis() as i64
        } else {
            0
        };
    }

    /// The tombstone left by an expired or merged cart: no lines, no holds, kept for a while so
    /// its token answers `cart_expired`.
    fn retire(&self, cart: &CartRecord, status: CartStatus, now: i64) -> CartRecord {
        let mut t = cart.clone();
        t.status = status;
        t.lines.clear();
        t.holds_expire_at_ms = 0;
        t.expires_at_ms = now + self.settings.guest_ttl.as_millis() as i64;
        t
    }

    fn lock(&self, keys: &[CartKey]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(stripe_of).collect();
        // A fixed order keeps two-cart operations (merge) free of deadlocks.
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|i| self.stripes[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }

    // ------------------------------------------------------------------ views

    /// The tax location of a user's default address.
    fn default_location(&self, user: Id) -> Result<Option<TaxLocation>, ServiceError> {
        let Some(record) = self.store.get::<UserRecord>(&user.to_bytes())? else {
            return Ok(None);
        };
        let u = record.archived();
        let default = u.default_address_id.as_ref();
        Ok(u.addresses
            .iter()
            .find(|a| Some(&a.id) == default)
            .or(u.addresses.first())
            .map(|a| TaxLocation {
                country: a.country.to_string(),
                region: a.region.to_string(),
            }))
    }

    /// Prices lines from the catalog as it is now.
    pub(crate) fn price_lines(&self, lines: &[CartLineRecord]) -> Result<Vec<PricedLine>, ServiceError> {
        let mut ids: Vec<[u8; 16]> = lines.iter().map(|l| l.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let products = self.store.multi_get::<ProductRecord, _>(&ids)?;
        Ok(lines
            .iter()
            .map(|line| {
                let product = ids
                    .binary_search(&line.product_id)
                    .ok()
                    .and_then(|i| products[i].as_ref())
                    .map(|p| p.archived())
                    .filter(|p| product::is_visible(product_status(&p.status)));
                let variant = product.and_then(|p| p.variants.iter().find(|v| v.sku == line.sku));
                PricedLine {
                    item_id: line.item_id,
                    sku: line.sku.clone(),
                    product_id: line.product_id,
                    seller_id: product.and_then(|p| p.seller_id.as_ref().copied()),
                    category_id: product.and_then(|p| p.category_id.as_ref().copied()),
                    slug: product.map(|p| p.slug.to_string()),
                    title: product.map(|p| p.title.to_string()).unwrap_or_default(),
                    variant_title: variant.map(|v| v.title.to_string()).unwrap_or_default(),
                    image: product.and_then(|p| p.images.first()).map(|i| i.url.to_string()),
                    quantity: line.quantity,
                    held: line.held,
                    unit_price: variant
                        .map(|v| v.price_cents.to_native())
                        .unwrap_or(line.unit_price_cents_at_add),
                    unit_price_at_add: line.unit_price_cents_at_add,
                    purchasable: variant.is_some(),
                    weight_grams: variant.map(|v| v.weight_grams.to_native()).unwrap_or(0),
                }
            })
            .collect())
    }

    /// Where a cart ships to: an explicit location, else a user's default address.
    pub(crate) fn destination(
        &self,
        location: Option<TaxLocation>,
        owner: &CartOwner,
    ) -> Result<Option<TaxLocation>, ServiceError> {
        Ok(match (location, owner) {
            (Some(l), _) => Some(l),
            (None, CartOwner::User(id)) => self.default_location(*id)?,
            _ => None,
        })
    }

    /// The price breakdown of priced lines shipped to `to` (the user's default address when
    /// no location is given), with the methods that ship there and the one priced: the one
    /// `to` names when it is offered, else the cheapest.
    pub(crate) fn breakdown(
        &self,
        lines: &[PricedLine],
        owner: &CartOwner,
        to: &Destination,
        coupon: Option<(&str, &Customer)>,
    ) -> Result<Priced, ServiceError> {
        let subtotal = lines
            .iter()
            .filter(|l| l.purchasable)
            .map(|l| l.unit_price * l.quantity)
            .sum();
        let location = self.destination(to.location.clone(), owner)?;
        let (rate, region) = self.pricing.tax_rate(location.as_ref());
        let discounts = self.coupons.discounts(lines, coupon)?;
        let line_discounts = discounts.per_line();
        let discount = line_discounts.iter().sum();
        let (sellers, parcels) = parcels(lines, &line_discounts);
        let offers = self.shipping.offers(location.as_ref(), &parcels);
        let chosen = to
            .method
            .as_deref()
            .and_then(|code| offers.iter().find(|o| o.method.code == code))
            .or(offers.first())
            .cloned();
        let shipping = chosen.as_ref().map(|o| o.quote.amount).unwrap_or(0);
        Ok(Priced {
            breakdown: self.pricing.breakdown(subtotal, discount, shipping, rate),
            region,
            discounts,
            location,
            sellers,
            offers,
            chosen,
        })
    }

    /// Reprices every line from the catalog and computes the breakdown.
    fn view(&self, cart: Option<&CartRecord>, owner: &CartOwner, to: &Destination) -> Result<CartView, ServiceError> {
        let currency = self.settings.currency;
        let money = |amount| Money { amount, currency };
        let records = cart.map(|c| c.lines.as_slice()).unwrap_or_default();
        let lines = self.price_lines(records)?;
        let customer = customer_of(match owner {
            CartOwner::User(id) => Some(*id),
            _ => None,
        });
        let coupon = cart.and_then(|c| c.coupon.as_deref()).map(|code| (code, &customer));
        let Priced {
            breakdown: b,
            region,
            discounts,
            chosen,
            ..
        } = self.breakdown(&lines, owner, to, coupon)?;
        let line_discounts = discounts.per_line();
        let items = lines
            .iter()
            .zip(&line_discounts)
            .zip(&discounts.promotions)
            .map(|((line, discount), (_, promotion))| {
                let available = self.stock.available(&line.sku);
                let enough = match self.settings.reserve_on {
                    ReserveOn::Cart => line.held >= line.quantity || available + line.held >= line.quantity,
                    ReserveOn::Checkout => available >= line.quantity,
                };
                CartLineView {
                    item_id: Id::from_bytes(line.item_id).to_string(),
                    sku: line.sku.clone(),
                    product_id: Id::from_bytes(line.product_id).to_string(),
                    slug: line.slug.clone(),
                    title: line.title.clone(),
                    variant_title: line.variant_title.clone(),
                    image: line.image.clone(),
                    quantity: line.quantity,
                    unit_price: money(line.unit_price),
                    unit_price_at_add: money(line.unit_price_at_add),
                    price_changed: line.purchasable && line.unit_price != line.unit_price_at_add,
                    line_total: money(line.unit_price * line.quantity),
                    discount: money(*discount),
                    promotion: promotion.clone(),
                    held: line.held,
                    available,
                    status: if !line.purchasable {
                        "unavailable"
                    } else if !enough {
                        "insufficient_stock"
                    } else {
                        "ok"
                    },
                }
            })
            .collect();
        Ok(CartView {
            id: cart.map(|c| Id::from_bytes(c.id).to_string()),
            version: cart.map(|c| c.version).unwrap_or(0),
            item_count: records.iter().map(|l| l.quantity).sum(),
            items,
            subtotal: money(b.subtotal),
            discount: money(b.discount),
            shipping: money(b.shipping),
            shipping_method: chosen.map(|o| o.method.code),
            tax: money(b.tax),
            total: money(b.total),
            tax_rate_bps: b.tax_rate_bps,
            tax_region: region,
            coupon: cart.and_then(|c| c.coupon.clone()),
            coupon_problem: match &discounts.coupon {
                Some(Err(why)) => Some(why.code()),
                _ => None,
            },
            reserve_on: self.settings.reserve_on.as_str(),
            expires_at: cart.map(|c| rfc3339(c.expires_at_ms)),
            holds_expire_at: cart
                .filter(|c| c.holds_expire_at_ms > 0)
                .map(|c| rfc3339(c.holds_expire_at_ms)),
        })
    }

    // --------------------------------------------------------------- checkout

    /// The storage key of an owner's cart (`None` for a guest without a token).
    pub(crate) fn key_of(owner: &CartOwner) -> Result<Option<CartKey>, ServiceError> {
        Ok(match owner {
            CartOwner::NewGuest => None,
            CartOwner::Guest(token) => Some(guest_key(token)?),
            CartOwner::User(id) => Some(keys::user_cart(&id.to_bytes())),
        })
    }

    /// The live cart of an owner, priced, for checkout (404 `cart_not_found` without one).
    pub(crate) fn snapshot(
        &self,
        owner: &CartOwner,
    ) -> Result<(CartKey, Arc<CartRecord>, Vec<PricedLine>), ServiceError> {
        let key = Self::key_of(owner)?.ok_or(CART_NOT_FOUND)?;
        let cart = self.load(&key)?.ok_or(CART_NOT_FOUND)?;
        check_live(&cart, self.clock.now_ms())?;
        let lines = self.price_lines(&cart.lines)?;
        Ok((key, cart, lines))
    }

    /// Hands a cart's holds over to an order: under the cart's lock, checks that the cart is
    /// still at `version`, moves every line's units to `holder` (taking what the cart did not
    /// hold yet, all or nothing) and commits that with what `stage` adds, in one batch. The
    /// cart keeps its lines.
    pub(crate) fn hand_over<T>(
        &self,
        key: CartKey,
        version: u64,
        holder: &[u8],
        stage: impl FnOnce(&mut Batch<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _guard = self.lock(&[key]);
        let old = self.load(&key)?.ok_or(CART_NOT_FOUND)?;
        if old.version != version {
            return Err(DomainError::CartChanged.into());
        }
        let mut new = (*old).clone();
        let mut holds = HoldChanges::new();
        for line in &mut new.lines {
            holds.add(&line.sku, holder, 0, line.quantity);
            line.held = 0;
        }
        new.holds_expire_at_ms = 0;
        self.commit_with(
            vec![CartChange {
                key,
                old: Some(old),
                new: Some(new),
            }],
            holds,
            stage,
        )
    }

    /// Takes what an order bought out of its cart (the quantities ordered, line by line) and
    /// commits that with what `stage` adds, in one batch. A cart that is gone changes nothing.
    pub(crate) fn remove_ordered<T>(
        &self,
        key: CartKey,
        ordered: &[(String, i64)],
        stage: impl FnOnce(&mut Batch<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _guard = self.lock(&[key]);
        let now = self.clock.now_ms();
        let changes = match self.load(&key)?.filter(|c| is_live(c, now)) {
            Some(old) => {
                let mut new = (*old).clone();
                for (sku, quantity) in ordered {
                    if let Some(line) = new.lines.iter_mut().find(|l| &l.sku == sku) {
                        line.quantity -= quantity;
                        line.held = line.held.min(line.quantity.max(0));
                    }
                }
                new.lines.retain(|l| l.quantity > 0);
                new.version += 1;
                new.updated_at_ms = now;
                if new.lines.iter().all(|l| l.held == 0) {
                    new.holds_expire_at_ms = 0;
                }
                vec![CartChange {
                    key,
                    old: Some(old),
                    new: Some(new),
                }]
            }
            None => Vec::new(),
        };
        self.commit_with(changes, HoldChanges::new(), stage)
    }
}

/// A cart line priced from the catalog as it is now.
#[derive(Debug, Clone)]
pub(crate) struct PricedLine {
    pub(crate) item_id: [u8; 16],
    pub(crate) sku: String,
    pub(crate) product_id: [u8; 16],
    pub(crate) seller_id: Option<[u8; 16]>,
    pub(crate) category_id: Option<[u8; 16]>,
    pub(crate) slug: Option<String>,
    pub(crate) title: String,
    pub(crate) variant_title: String,
    pub(crate) image: Option<String>,
    pub(crate) quantity: i64,
    pub(crate) held: i64,
    pub(crate) unit_price: i64,
    pub(crate) unit_price_at_add: i64,
    pub(crate) purchasable: bool,
    pub(crate) weight_grams: u32,
}

/// Where a cart ships: the location (none: the user's default address, if any) and the
/// method asked for (none: the cheapest offered).
#[derive(Debug, Clone, Default)]
pub struct Destination {
    /// Country and region.
    pub location: Option<TaxLocation>,
    /// A shipping method code.
    pub method: Option<String>,
}

/// One parcel per seller, in seller order (the order's fulfilments are in the same order):
/// the sellers, and each parcel's goods after discounts and weight.
pub(crate) fn parcels(lines: &[PricedLine], discounts: &[i64]) -> (Vec<Option<[u8; 16]>>, Vec<Parcel>) {
    let mut sellers: Vec<Option<[u8; 16]>> = lines.iter().filter(|l| l.purchasable).map(|l| l.seller_id).collect();
    sellers.sort_unstable();
    sellers.dedup();
    let mut parcels = vec![Parcel::default(); sellers.len()];
    for (line, discount) in lines.iter().zip(discounts).filter(|(l, _)| l.purchasable) {
        if let Ok(i) = sellers.binary_search(&line.seller_id) {
            parcels[i].goods += line.unit_price * line.quantity - discount;
            parcels[i].grams += line.weight_grams as u64 * line.quantity.max(0) as u64;
        }
    }
    (sellers, parcels)
}

/// Lines priced for a cart: the breakdown, the tax region, and what comes off each line
/// (promotions, and the coupon's outcome when the cart has one).
pub(crate) struct Priced {
    pub(crate) breakdown: Breakdown,
    pub(crate) region: Option<String>,
    pub(crate) discounts: Discounts,
    /// Where it ships, when known.
    pub(crate) location: Option<TaxLocation>,
    /// The sellers, one parcel each, in order.
    pub(crate) sellers: Vec<Option<[u8; 16]>>,
    /// Every method that ships the cart there, cheapest first.
    pub(crate) offers: Vec<Offer>,
    /// The method priced.
    pub(crate) chosen: Option<Offer>,
}

/// The coupon customer of a cart: its user, or a guest not known yet.
fn customer_of(user: Option<Id>) -> Customer {
    match user {
        Some(id) => Customer::User(id),
        None => Customer::Guest(None),
    }
}

/// Which lines a change must hold in full.
enum Touched {
    /// None (removals, clearing).
    None,
    /// The line of this SKU.
    Sku(String),
    /// Every line (`HoldAll`).
    All,
}

/// A validated change (input checked, SKU resolved).
enum ValidOp {
    Add {
        sku: String,
        product_id: [u8; 16],
        price: i64,
        quantity: i64,
    },
    SetQuantity {
        item: [u8; 16],
        quantity: i64,
    },
    Remove {
        item: [u8; 16],
    },
    Clear,
    HoldAll,
    SetCoupon(Option<String>),
}

const CART_NOT_FOUND: ServiceError = ServiceError::Missing {
    code: Code::CartNotFound,
    message: "no cart matches this X-Cart-Token",
};

const CART_EXPIRED: ServiceError = ServiceError::Missing {
    code: Code::CartExpired,
    message: "this cart expired or was merged into an account; drop the X-Cart-Token and start a new cart",
};

/// An empty active cart (version 0: its first write makes it 1).
fn new_cart(user: Option<Id>, now: i64) -> CartRecord {
    CartRecord {
        id: Id::new().to_bytes(),
        user_id: user.map(Id::to_bytes),
        status: CartStatus::Active,
        version: 0,
        lines: Vec::new(),
        coupon: None,
        created_at_ms: now,
        updated_at_ms: now,
        expires_at_ms: 0,
        holds_expire_at_ms: 0,
    }
}

fn is_live(cart: &CartRecord, now: i64) -> bool {
    cart.status == CartStatus::Active && cart.expires_at_ms > now
}

fn check_live(cart: &CartRecord, now: i64) -> Result<(), ServiceError> {
    if is_live(cart, now) {
        Ok(())
    } else {
        Err(CART_EXPIRED)
    }
}

fn parse_item_id(raw: &str) -> Result<[u8; 16], ServiceError> {
    Id::parse(raw)
        .map(|id| id.to_bytes())
        .ok_or(ServiceError::NotFound { kind: "cart item" })
}

/// A new guest token: 256 random bits, URL-safe.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The storage key of a guest cart: a digest, so the database never holds usable tokens.
fn guest_key(token: &str) -> Result<CartKey, ServiceError> {
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CART_NOT_FOUND);
    }
    let digest = Sha256::digest(token.as_bytes());
    let mut short = [0u8; 16];
    short.copy_from_slice(&digest[..16]);
    Ok(keys::guest_cart(&short))
}

fn stripe_of(key: &CartKey) -> usize {
    (xxhash_rust::xxh3::xxh3_64(key) % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A cart token is 43 URL-safe base64 characters; anything else names no cart.
        #[test]
        fn only_well_formed_cart_tokens_name_a_cart(raw in "\\PC{0,60}|[A-Za-z0-9_-]{43}") {
            let well_formed = raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            proptest::prop_assert_eq!(guest_key(&raw).is_ok(), well_formed);
            if well_formed {
                proptest::prop_assert_eq!(guest_key(&raw).ok(), guest_key(&raw).ok(), "the same token, the same cart");
            }
        }
    }
}
