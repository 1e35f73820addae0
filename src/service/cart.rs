//! Shopping carts: guest and user carts, stock holds, merge at login, expiry, and the
//! always-current price breakdown.
//!
//! Writes to one cart are serialised by a striped lock (never a global one), run on the
//! blocking pool, and commit the cart record, its stock-hold records, its expiry-index entries
//! and any stock signal or `low_stock` event in **one** RocksDB batch. Batches from different
//! carts do not share a lock, so concurrent fsyncs are grouped by RocksDB's group commit.
//! Hot carts stay in a moka cache written through after each commit.
//!
//! Stock holds follow the ledger's rule (see [`super::stock`]): units are taken from the live
//! counter before the batch is written and returned if it fails; units are given back only
//! after the batch that drops the hold is durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use storefront_storage::cf::{CF_CARTS, CF_CART_EXPIRY, CF_META, CF_RESERVATIONS, CF_VARIANTS};
use storefront_storage::keys::{self, CartKey, ExpiryKind};
use storefront_storage::records::{
    CartLineRecord, CartRecord, CartStatus, InventoryRecord, ProductRecord, ProductStatus, ReservationRecord,
    UserRecord,
};
use storefront_storage::store::now_ms;
use storefront_storage::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::Actor;
use super::stock::{low_stock_event, StockError, StockLedger};
use super::view::{CartLineView, CartView, HoldView};
use super::{blocking, Catalog, ServiceError};
use crate::config::{MergeStrategy, ReserveOn};
use crate::domain::pricing::{PricingRules, TaxLocation};
use crate::domain::{Currency, FieldErrors, Id, Money};

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
    /// Largest quantity per line.
    pub max_line_quantity: i64,
    /// Most lines per cart.
    pub max_lines: usize,
    /// Largest total quantity per cart.
    pub max_total_quantity: i64,
    /// Guest-to-user merge strategy.
    pub merge: MergeStrategy,
    /// Carts per sweeper batch.
    pub sweep_batch: usize,
    /// Cached carts.
    pub cache_entries: u64,
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
}

/// What a cart write returns: the cart and, for a new guest cart, its token.
#[derive(Debug)]
pub struct CartWrite {
    /// The cart after the write.
    pub cart: CartView,
    /// Token of a newly created guest cart.
    pub new_token: Option<String>,
}

/// What one sweeper pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Carts whose holds expired and were released.
    pub holds_released: usize,
    /// Carts expired for inactivity.
    pub carts_expired: usize,
    /// Expired/merged cart tombstones deleted.
    pub tombstones_removed: usize,
}

impl SweepReport {
    fn total(&self) -> usize {
        self.holds_released + self.carts_expired + self.tombstones_removed
    }
}

const STRIPES: usize = 1024;

/// One cart record change inside a commit: the record before (if any) and after (`None`
/// deletes it).
struct CartChange {
    key: CartKey,
    old: Option<Arc<CartRecord>>,
    new: Option<CartRecord>,
}

/// The cart service.
pub struct Carts {
    catalog: Arc<Catalog>,
    store: Store,
    stock: Arc<StockLedger>,
    settings: CartSettings,
    pricing: PricingRules,
    cache: moka::sync::Cache<CartKey, Arc<CartRecord>>,
    stripes: Box<[Mutex<()>]>,
    signals: mpsc::UnboundedSender<Vec<String>>,
    buckets: ExpiryBuckets,
}

impl Carts {
    /// Builds the service; the returned receiver feeds [`run_stock_signals`].
    pub fn new(
        catalog: Arc<Catalog>,
        settings: CartSettings,
        pricing: PricingRules,
    ) -> (Carts, mpsc::UnboundedReceiver<Vec<String>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let carts = Carts {
            store: catalog.store().clone(),
            stock: catalog.stock().clone(),
            cache: moka::sync::Cache::new(settings.cache_entries.max(16)),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            buckets: ExpiryBuckets::new(&settings),
            catalog,
            settings,
            pricing,
            signals: tx,
        };
        (carts, rx)
    }

    /// The reservation policy in force.
    pub fn reserve_on(&self) -> ReserveOn {
        self.settings.reserve_on
    }

    // ------------------------------------------------------------------ reads

    /// Returns the cart, repriced from the catalog. A guest without a token, or a user without
    /// a cart, gets an empty cart.
    pub async fn get(
        self: &Arc<Self>,
        owner: CartOwner,
        location: Option<TaxLocation>,
    ) -> Result<CartView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let record = match &owner {
                CartOwner::NewGuest => None,
                CartOwner::Guest(token) => {
                    let key = guest_key(token)?;
                    let cart = this.load(&key)?.ok_or(CART_NOT_FOUND)?;
                    check_live(&cart, now_ms())?;
                    Some(cart)
                }
                CartOwner::User(id) => this
                    .load(&keys::user_cart(&id.to_bytes()))?
                    .filter(|c| is_live(c, now_ms())),
            };
            this.view(record.as_deref(), &owner, location)
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
        location: Option<TaxLocation>,
    ) -> Result<CartWrite, ServiceError> {
        let this = self.clone();
        blocking(move || this.write_sync(owner, op, if_match, location)).await
    }

    fn write_sync(
        &self,
        owner: CartOwner,
        op: CartOp,
        if_match: Option<u64>,
        location: Option<TaxLocation>,
    ) -> Result<CartWrite, ServiceError> {
        let op = self.validate(op)?;
        if owner == CartOwner::NewGuest {
            // Only adding creates a guest cart; other changes have nothing to act on.
            match op {
                ValidOp::Add { .. } => {}
                ValidOp::Clear => {
                    return Ok(CartWrite {
                        cart: self.view(None, &owner, location)?,
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
        let now = now_ms();
        let old = self.load(&key)?;
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
        let touched = self.apply_op(&mut cart, op, now)?;
        self.plan_holds(&mut cart, current.as_deref(), &touched)?;
        self.record_activity(&mut cart, &owner, now);
        self.commit(vec![CartChange {
            key,
            old,
            new: Some(cart.clone()),
        }])?;
        Ok(CartWrite {
            cart: self.view(Some(&cart), &owner, location)?,
            new_token,
        })
    }

    /// Rejects invalid input before any lock is taken (422 with every invalid field).
    fn validate(&self, op: CartOp) -> Result<ValidOp, ServiceError> {
        let mut errors = FieldErrors::default();
        let quantity_ok = |q: Option<i64>, errors: &mut FieldErrors| match q {
            None => {
                errors.add("quantity", "required", "must be given");
                0
            }
            Some(q) if q <= 0 => {
                errors.add("quantity", "out_of_range", "must be at least 1");
                0
            }
            Some(q) if q > self.settings.max_line_quantity => {
                errors.add(
                    "quantity",
                    "out_of_range",
                    format!("must be at most {}", self.settings.max_line_quantity),
                );
                0
            }
            Some(q) => q,
        };
        let op = match op {
            CartOp::Add { sku, quantity } => {
                let quantity = quantity_ok(quantity, &mut errors);
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
                let quantity = quantity_ok(quantity, &mut errors);
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
        };
        Ok(op)
    }

    /// Looks up a SKU that can be bought: it exists, its product is published.
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
        if p.status != ProductStatus::Published {
            return Ok(Err(("not_published", format!("SKU {sku:?} is not for sale"))));
        }
        match p.variants.iter().find(|v| v.sku == sku) {
            Some(v) => Ok(Ok((sku.to_owned(), id, v.price_cents.to_native()))),
            None => unknown(),
        }
    }

    /// Applies the change to the lines; returns the SKU whose quantity the shopper set.
    fn apply_op(&self, cart: &mut CartRecord, op: ValidOp, now: i64) -> Result<Touched, ServiceError> {
        let touched = match op {
            ValidOp::Add {
                sku,
                product_id,
                price,
                quantity,
            } => {
                if let Some(line) = cart.lines.iter_mut().find(|l| l.sku == sku) {
                    let total = line.quantity + quantity;
                    if total > self.settings.max_line_quantity {
                        return Err(ServiceError::invalid(
                            "quantity",
                            "out_of_range",
                            &format!(
                                "the line would hold {total}; at most {} per line",
                                self.settings.max_line_quantity
                            ),
                        ));
                    }
                    line.quantity = total;
                } else {
                    if cart.lines.len() >= self.settings.max_lines {
                        return Err(ServiceError::invalid(
                            "sku",
                            "too_many_lines",
                            &format!("a cart holds at most {} lines", self.settings.max_lines),
                        ));
                    }
                    cart.lines.push(CartLineRecord {
                        item_id: Id::new().to_bytes(),
                        sku: sku.clone(),
                        product_id,
                        quantity,
                        held: 0,
                        unit_price_cents_at_add: price,
                        added_at_ms: now,
                    });
                }
                Some(sku)
            }
            ValidOp::SetQuantity { item, quantity } => {
                let line = cart
                    .lines
                    .iter_mut()
                    .find(|l| l.item_id == item)
                    .ok_or(ServiceError::NotFound { kind: "cart item" })?;
                line.quantity = quantity;
                Some(line.sku.clone())
            }
            ValidOp::Remove { item } => {
                let before = cart.lines.len();
                cart.lines.retain(|l| l.item_id != item);
                if cart.lines.len() == before {
                    return Err(ServiceError::NotFound { kind: "cart item" });
                }
                None
            }
            ValidOp::Clear => {
                cart.lines.clear();
                None
            }
            ValidOp::HoldAll => {
                if cart.lines.is_empty() {
                    return Err(ServiceError::conflict(
                        "cart_empty",
                        "the cart has no items to reserve".into(),
                        serde_json::Value::Null,
                    ));
                }
                return Ok(Touched::All);
            }
        };
        let total: i64 = cart.lines.iter().map(|l| l.quantity).sum();
        if total > self.settings.max_total_quantity {
            return Err(ServiceError::invalid(
                "quantity",
                "cart_too_large",
                &format!(
                    "the cart would hold {total} units; at most {}",
                    self.settings.max_total_quantity
                ),
            ));
        }
        Ok(touched.map(Touched::Sku).unwrap_or(Touched::None))
    }

    /// Decides how many units each line holds after the write. The line the shopper touched
    /// must be fully available (409 `insufficient_stock` otherwise); other lines whose holds
    /// lapsed are held again when stock allows, and stay unheld (flagged) when it does not.
    fn plan_holds(
        &self,
        cart: &mut CartRecord,
        old: Option<&CartRecord>,
        touched: &Touched,
    ) -> Result<(), ServiceError> {
        let old_held = |sku: &str| {
            old.and_then(|o| o.lines.iter().find(|l| l.sku == sku))
                .map(|l| l.held)
                .unwrap_or(0)
        };
        let policy = match touched {
            Touched::All => ReserveOn::Cart,
            _ => self.settings.reserve_on,
        };
        for line in &mut cart.lines {
            let is_touched = match touched {
                Touched::All => true,
                Touched::Sku(sku) => sku == &line.sku,
                Touched::None => false,
            };
            let available = self.stock.available(&line.sku);
            match policy {
                ReserveOn::Checkout => {
                    line.held = 0;
                    if is_touched && line.quantity > available {
                        return Err(insufficient(&line.sku, line.quantity, available));
                    }
                }
                ReserveOn::Cart => {
                    let held = old_held(&line.sku);
                    let could_hold = available + held;
                    if is_touched && line.quantity > could_hold {
                        return Err(insufficient(&line.sku, line.quantity, could_hold));
                    }
                    line.held = if line.quantity <= could_hold {
                        line.quantity
                    } else {
                        held.min(line.quantity)
                    };
                }
            }
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

    /// Commits cart changes with their holds in one batch. Callers hold the carts' stripes.
    fn commit(&self, changes: Vec<CartChange>) -> Result<(), ServiceError> {
        let now = now_ms();
        // Old and new hold per (SKU, holder), and the net change per SKU.
        let mut holds: BTreeMap<(String, CartKey), (i64, i64)> = BTreeMap::new();
        for change in &changes {
            for line in change.old.iter().flat_map(|c| c.lines.iter()) {
                holds.entry((line.sku.clone(), change.key)).or_default().0 += line.held;
            }
            for line in change.new.iter().flat_map(|c| c.lines.iter()) {
                holds.entry((line.sku.clone(), change.key)).or_default().1 += line.held;
            }
        }
        let mut net: BTreeMap<&str, i64> = BTreeMap::new();
        for ((sku, _), (old, new)) in &holds {
            *net.entry(sku.as_str()).or_default() += new - old;
        }

        // Take units first: memory never promises more than storage will hold.
        let mut taken: Vec<(&str, i64)> = Vec::new();
        let mut signals: Vec<String> = Vec::new();
        let mut events = Vec::new();
        for (sku, delta) in net.iter().filter(|(_, d)| **d > 0) {
            match self.stock.reserve(sku, *delta) {
                Ok(change) => {
                    taken.push((sku, *delta));
                    if change.flipped() {
                        signals.push(sku.to_string());
                    }
                    let threshold = self.stock.low_stock_threshold(sku);
                    if change.crossed_low(threshold) {
                        events.push((sku.to_string(), change.after.available()));
                    }
                }
                Err(e) => {
                    self.give_back(&taken);
                    let available = match e {
                        StockError::Insufficient { available } => available,
                        _ => 0,
                    };
                    return Err(insufficient(sku, *delta, available));
                }
            }
        }
        // A release from zero brings the SKU back in stock.
        for (sku, _) in net.iter().filter(|(_, d)| **d < 0) {
            if self.stock.available(sku) <= 0 {
                signals.push(sku.to_string());
            }
        }

        let result = (|| -> Result<(), ServiceError> {
            let mut batch = self.store.batch();
            for change in &changes {
                let index = |c: &CartRecord| index_keys(&change.key, c, &self.buckets);
                let old_index = change.old.as_deref().map(index).unwrap_or_default();
                let new_index = change.new.as_ref().map(index).unwrap_or_default();
                for k in old_index.iter().filter(|k| !new_index.contains(k)) {
                    batch.delete(CF_CART_EXPIRY, k);
                }
                for k in new_index.iter().filter(|k| !old_index.contains(k)) {
                    batch.put_raw(CF_CART_EXPIRY, k, &[]);
                }
                match &change.new {
                    Some(record) => batch.put(&change.key, record)?,
                    None => batch.delete(CF_CARTS, &change.key),
                }
            }
            for ((sku, holder), (old, new)) in &holds {
                if old == new {
                    continue;
                }
                let key = keys::reservation(sku, holder);
                if *new > 0 {
                    batch.put(
                        &key,
                        &ReservationRecord {
                            quantity: *new,
                            updated_at_ms: now,
                        },
                    )?;
                } else {
                    batch.delete(CF_RESERVATIONS, &key);
                }
            }
            for sku in &signals {
                batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
            }
            for (sku, available) in &events {
                if let Some(inv) = self.store.get::<InventoryRecord>(keys::sku(sku))? {
                    let event = low_stock_event(&inv.to_native(), *available, now);
                    batch.put(&event.id, &event)?;
                }
            }
            batch.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            self.give_back(&taken);
            return Err(e);
        }

        // Durable: now return released units and refresh caches.
        for (sku, delta) in net.iter().filter(|(_, d)| **d < 0) {
            if let Ok(change) = self.stock.release(sku, -delta) {
                if change.flipped() && !signals.iter().any(|s| s == sku) {
                    signals.push(sku.to_string());
                }
            }
        }
        for change in changes {
            match change.new {
                Some(record) => self.cache.insert(change.key, Arc::new(record)),
                None => self.cache.invalidate(&change.key),
            }
        }
        let products: Vec<[u8; 16]> = net
            .iter()
            .filter(|(_, d)| **d != 0)
            .filter_map(|(sku, _)| self.stock.product_of(sku))
            .collect();
        if !products.is_empty() {
            self.catalog.forget_product_pages(&products);
        }
        if !signals.is_empty() {
            let _ = self.signals.send(signals);
        }
        Ok(())
    }

    fn give_back(&self, taken: &[(&str, i64)]) {
        for (sku, delta) in taken {
            let _ = self.stock.release(sku, *delta);
        }
    }

    /// Every hold on a SKU with the cart that holds it (admin view of "who holds my stock").
    pub async fn holds_of(self: &Arc<Self>, actor: Actor, sku: String) -> Result<Vec<HoldView>, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            if this.stock.level(&sku).is_none() {
                return Err(ServiceError::NotFound { kind: "sku" });
            }
            let prefix = keys::reservation(&sku, &[]);
            let upper = keys::prefix_successor(&prefix);
            let mut raw = Vec::new();
            this.store
                .for_each_raw(CF_RESERVATIONS, &prefix, upper.as_deref(), |key, value| {
                    raw.push((key.to_vec(), value.to_vec()));
                    true
                })?;
            let mut holds = Vec::with_capacity(raw.len());
            for (key, value) in raw {
                let record = storefront_storage::Owned::<ReservationRecord>::from_slice(&key, &value)?;
                let holder = keys::reservation_parts(&key).map(|(_, h)| h).unwrap_or_default();
                let cart = <CartKey>::try_from(holder)
                    .ok()
                    .map(|k| this.load(&k))
                    .transpose()?
                    .flatten();
                holds.push(HoldView {
                    cart_id: cart.as_ref().map(|c| Id::from_bytes(c.id).to_string()),
                    quantity: record.archived().quantity.to_native(),
                    updated_at: super::view::rfc3339(record.archived().updated_at_ms.to_native()),
                });
            }
            Ok(holds)
        })
        .await
    }

    // ------------------------------------------------------------------ merge

    /// Merges a guest cart into the user's cart (at login), atomically: one batch moves the
    /// lines and their holds and retires the guest cart. Returns whether anything was merged;
    /// an unknown, expired or empty guest cart merges nothing.
    pub async fn merge_guest(self: &Arc<Self>, token: String, user: Id) -> Result<bool, ServiceError> {
        let this = self.clone();
        blocking(move || this.merge_sync(&token, user)).await
    }

    fn merge_sync(&self, token: &str, user: Id) -> Result<bool, ServiceError> {
        let Ok(guest_key) = guest_key(token) else {
            return Ok(false);
        };
        let user_key = keys::user_cart(&user.to_bytes());
        let _guard = self.lock(&[guest_key, user_key]);
        let now = now_ms();
        let Some(guest) = self.load(&guest_key)?.filter(|g| is_live(g, now)) else {
            return Ok(false);
        };
        if guest.lines.is_empty() {
            return Ok(false);
        }
        let user_old = self.load(&user_key)?;
        let user_live = user_old.clone().filter(|c| is_live(c, now));
        let mut cart = user_live
            .as_deref()
            .cloned()
            .unwrap_or_else(|| new_cart(Some(user), now));
        // Held units of both carts count as available to the merged line.
        let held_in = |c: Option<&CartRecord>, sku: &str| {
            c.and_then(|c| c.lines.iter().find(|l| l.sku == sku))
                .map(|l| l.held)
                .unwrap_or(0)
        };
        let limit = |sku: &str| {
            let mut limit = self.stock.available(sku);
            if self.settings.reserve_on == ReserveOn::Cart {
                limit += held_in(user_live.as_deref(), sku) + held_in(Some(&guest), sku);
            }
            limit.min(self.settings.max_line_quantity)
        };
        if self.settings.merge == MergeStrategy::Replace {
            cart.lines.clear();
        }
        for g in &guest.lines {
            let cap = limit(&g.sku);
            let room = cart.lines.len() < self.settings.max_lines;
            match cart.lines.iter_mut().find(|l| l.sku == g.sku) {
                Some(line) => {
                    let wanted = match self.settings.merge {
                        MergeStrategy::Sum => line.quantity + g.quantity,
                        MergeStrategy::Max | MergeStrategy::Replace => line.quantity.max(g.quantity),
                    };
                    // Capping never takes away what the user already had.
                    line.quantity = wanted.min(cap).max(line.quantity);
                }
                None if cap > 0 && room => {
                    let mut line = g.clone();
                    line.quantity = g.quantity.min(cap);
                    cart.lines.push(line);
                }
                None => {}
            }
        }
        for line in &mut cart.lines {
            line.held = match self.settings.reserve_on {
                ReserveOn::Cart => line.quantity.min(limit(&line.sku)),
                ReserveOn::Checkout => 0,
            };
        }
        self.record_activity(&mut cart, &CartOwner::User(user), now);
        let mut retired = self.retire(&guest, CartStatus::Merged, now);
        retired.version += 1;
        retired.updated_at_ms = now;
        self.commit(vec![
            CartChange {
                key: guest_key,
                old: Some(guest),
                new: Some(retired),
            },
            CartChange {
                key: user_key,
                old: user_old,
                new: Some(cart),
            },
        ])?;
        Ok(true)
    }

    // ---------------------------------------------------------------- expiry

    /// Releases expired holds and expires inactive carts, at most `sweep_batch` of each kind.
    pub fn sweep_once(&self, now: i64) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        for (kind, key) in self.due(ExpiryKind::Hold, now)? {
            let _guard = self.lock(&[key]);
            let Some(old) = self.load(&key)? else {
                self.drop_index_entry(kind)?;
                continue;
            };
            if old.holds_expire_at_ms == 0 || old.holds_expire_at_ms > now {
                self.drop_index_entry(kind)?;
                continue;
            }
            let mut new = (*old).clone();
            for line in &mut new.lines {
                line.held = 0;
            }
            new.holds_expire_at_ms = 0;
            self.commit(vec![CartChange {
                key,
                old: Some(old),
                new: Some(new),
            }])?;
            report.holds_released += 1;
        }
        for (kind, key) in self.due(ExpiryKind::Cart, now)? {
            let _guard = self.lock(&[key]);
            let Some(old) = self.load(&key)? else {
                self.drop_index_entry(kind)?;
                continue;
            };
            if old.expires_at_ms > now {
                self.drop_index_entry(kind)?;
                continue;
            }
            let new = if old.status == CartStatus::Active {
                report.carts_expired += 1;
                Some(self.retire(&old, CartStatus::Expired, now))
            } else {
                report.tombstones_removed += 1;
                None
            };
            self.commit(vec![CartChange {
                key,
                old: Some(old),
                new,
            }])?;
        }
        Ok(report)
    }

    /// Index entries of one kind due by `now`, oldest first.
    fn due(&self, kind: ExpiryKind, now: i64) -> Result<Vec<(Vec<u8>, CartKey)>, ServiceError> {
        let lower = [kind as u8];
        let upper = keys::cart_expiry(kind, now.saturating_add(1), &[0; 17]);
        let mut due = Vec::new();
        self.store
            .for_each_raw(CF_CART_EXPIRY, &lower, Some(&upper), |key, _| {
                if let Some((_, cart)) = keys::cart_expiry_parts(key) {
                    due.push((key.to_vec(), cart));
                }
                due.len() < self.settings.sweep_batch.max(1)
            })?;
        Ok(due)
    }

    fn drop_index_entry(&self, key: Vec<u8>) -> Result<(), ServiceError> {
        let mut batch = self.store.batch();
        batch.delete(CF_CART_EXPIRY, &key);
        batch.commit()?;
        Ok(())
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

    /// Reprices every line from the catalog and computes the breakdown.
    fn view(
        &self,
        cart: Option<&CartRecord>,
        owner: &CartOwner,
        location: Option<TaxLocation>,
    ) -> Result<CartView, ServiceError> {
        let currency = self.settings.currency;
        let money = |amount| Money { amount, currency };
        let lines = cart.map(|c| c.lines.as_slice()).unwrap_or_default();
        let mut ids: Vec<[u8; 16]> = lines.iter().map(|l| l.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let products = self.store.multi_get::<ProductRecord, _>(&ids)?;
        let mut items = Vec::with_capacity(lines.len());
        let mut subtotal = 0i64;
        for line in lines {
            let product = ids
                .binary_search(&line.product_id)
                .ok()
                .and_then(|i| products[i].as_ref())
                .map(|p| p.archived())
                .filter(|p| p.status == ProductStatus::Published);
            let variant = product.and_then(|p| p.variants.iter().find(|v| v.sku == line.sku));
            let available = self.stock.available(&line.sku);
            let unit = variant
                .map(|v| v.price_cents.to_native())
                .unwrap_or(line.unit_price_cents_at_add);
            let purchasable = variant.is_some();
            let line_total = unit * line.quantity;
            if purchasable {
                subtotal += line_total;
            }
            let enough = match self.settings.reserve_on {
                ReserveOn::Cart => line.held >= line.quantity || available + line.held >= line.quantity,
                ReserveOn::Checkout => available >= line.quantity,
            };
            items.push(CartLineView {
                item_id: Id::from_bytes(line.item_id).to_string(),
                sku: line.sku.clone(),
                product_id: Id::from_bytes(line.product_id).to_string(),
                slug: product.map(|p| p.slug.to_string()),
                title: product.map(|p| p.title.to_string()).unwrap_or_default(),
                variant_title: variant.map(|v| v.title.to_string()).unwrap_or_default(),
                image: product.and_then(|p| p.images.first()).map(|i| i.url.to_string()),
                quantity: line.quantity,
                unit_price: money(unit),
                unit_price_at_add: money(line.unit_price_cents_at_add),
                price_changed: purchasable && unit != line.unit_price_cents_at_add,
                line_total: money(line_total),
                held: line.held,
                available,
                status: if !purchasable {
                    "unavailable"
                } else if !enough {
                    "insufficient_stock"
                } else {
                    "ok"
                },
            });
        }
        let location = match (location, owner) {
            (Some(l), _) => Some(l),
            (None, CartOwner::User(id)) => self.default_location(*id)?,
            _ => None,
        };
        let (rate, region) = self.pricing.tax_rate(location.as_ref());
        // Coupons land with checkout: this is where a discount policy plugs in.
        let discount = 0;
        let b = self.pricing.breakdown(subtotal, discount, !items.is_empty(), rate);
        Ok(CartView {
            id: cart.map(|c| Id::from_bytes(c.id).to_string()),
            version: cart.map(|c| c.version).unwrap_or(0),
            item_count: lines.iter().map(|l| l.quantity).sum(),
            items,
            subtotal: money(b.subtotal),
            discount: money(b.discount),
            shipping: money(b.shipping),
            tax: money(b.tax),
            total: money(b.total),
            tax_rate_bps: b.tax_rate_bps,
            tax_region: region,
            coupon: cart.and_then(|c| c.coupon.clone()),
            reserve_on: match self.settings.reserve_on {
                ReserveOn::Cart => "cart",
                ReserveOn::Checkout => "checkout",
            },
            expires_at: cart.map(|c| super::view::rfc3339(c.expires_at_ms)),
            holds_expire_at: cart
                .filter(|c| c.holds_expire_at_ms > 0)
                .map(|c| super::view::rfc3339(c.holds_expire_at_ms)),
        })
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
}

const CART_NOT_FOUND: ServiceError = ServiceError::Missing {
    code: "cart_not_found",
    message: "no cart matches this X-Cart-Token",
};

const CART_EXPIRED: ServiceError = ServiceError::Missing {
    code: "cart_expired",
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

fn insufficient(sku: &str, requested: i64, available: i64) -> ServiceError {
    ServiceError::conflict(
        "insufficient_stock",
        format!("only {} of SKU {sku} available", available.max(0)),
        serde_json::json!({ "sku": sku, "requested": requested, "available": available.max(0) }),
    )
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

/// The expiry-index entries a cart record needs.
///
/// PERF: deadlines are rounded *up* to a bucket (1/32 of the lifetime, 1 s to 60 s), so the
/// writes of an active shopper within one bucket leave the index untouched instead of deleting
/// and re-inserting two keys each time (memtable inserts were the largest cost of a cart
/// write). The sweeper reaches an entry no earlier than the exact deadline in the record, which
/// it re-checks; a cart lives at most one bucket longer than its lifetime.
fn index_keys(key: &CartKey, cart: &CartRecord, buckets: &ExpiryBuckets) -> Vec<[u8; 26]> {
    let mut entries = vec![keys::cart_expiry(
        ExpiryKind::Cart,
        round_up(cart.expires_at_ms, buckets.cart_ms),
        key,
    )];
    if cart.holds_expire_at_ms > 0 {
        entries.push(keys::cart_expiry(
            ExpiryKind::Hold,
            round_up(cart.holds_expire_at_ms, buckets.hold_ms),
            key,
        ));
    }
    entries
}

/// Index granularity of cart and hold deadlines.
#[derive(Debug, Clone, Copy)]
struct ExpiryBuckets {
    cart_ms: i64,
    hold_ms: i64,
}

impl ExpiryBuckets {
    fn new(settings: &CartSettings) -> ExpiryBuckets {
        let bucket = |ttl: Duration| (ttl.as_millis() as i64 / 32).clamp(1_000, 60_000);
        ExpiryBuckets {
            cart_ms: bucket(settings.guest_ttl.min(settings.user_ttl)),
            hold_ms: bucket(settings.hold_ttl),
        }
    }
}

fn round_up(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms.div_euclid(bucket_ms).saturating_add(1).saturating_mul(bucket_ms)
}

/// Runs the sweeper until cancelled: every `interval`, batches until nothing is due.
pub async fn run_sweeper(carts: Arc<Carts>, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        loop {
            let c = carts.clone();
            match tokio::task::spawn_blocking(move || c.sweep_once(now_ms())).await {
                Ok(Ok(report)) if report.total() > 0 => {
                    tracing::info!(?report, "cart sweeper");
                    if report.total() < carts.settings.sweep_batch {
                        break;
                    }
                }
                Ok(Ok(_)) => break,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cart sweeper failed");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cart sweeper panicked");
                    break;
                }
            }
            if cancel.is_cancelled() {
                return;
            }
        }
    }
}

/// Applies stock signals (availability crossing zero through holds) to listings, search and
/// the CDN; first replays the signals a crash left pending.
pub async fn run_stock_signals(
    catalog: Arc<Catalog>,
    mut signals: mpsc::UnboundedReceiver<Vec<String>>,
    cancel: CancellationToken,
) {
    let pending = {
        let c = catalog.clone();
        tokio::task::spawn_blocking(move || c.pending_stock_signals()).await
    };
    let mut skus: Vec<String> = match pending {
        Ok(Ok(skus)) => skus,
        _ => Vec::new(),
    };
    loop {
        if !skus.is_empty() {
            skus.sort_unstable();
            skus.dedup();
            let (c, batch) = (catalog.clone(), std::mem::take(&mut skus));
            match tokio::task::spawn_blocking(move || c.refresh_stock(&batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "stock signal failed; it stays pending until restart"),
                Err(e) => tracing::error!(error = %e, "stock signal task panicked"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            next = signals.recv() => match next {
                Some(more) => {
                    skus.extend(more);
                    // Coalesce a burst into one transaction.
                    while let Ok(more) = signals.try_recv() {
                        skus.extend(more);
                    }
                }
                None => return,
            },
        }
    }
}
