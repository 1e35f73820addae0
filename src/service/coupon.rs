//! Coupons: the admin's (and a seller's own) codes, whether a code applies to a cart, and
//! their redemption.
//!
//! A redemption is taken in the batch that creates the order, under the coupon's stripe lock
//! (read, check the limits, count): 100 shoppers racing for the last 10 uses give exactly 10
//! discounted orders. A failed or cancelled order gives its use back in the batch that fails
//! or cancels it. The counts live in storage, so they are exact after a restart.

use std::sync::{Arc, Mutex, MutexGuard};

use storefront_storage::cf::{CF_COUPONS, CF_ORDER_INDEX};
use storefront_storage::coupons::{CouponKindRecord, CouponRecord};
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{OrderPhaseRecord, OrderRecord};
use storefront_storage::{Batch, Store};

use super::auth::Actor;
use super::cart::PricedLine;
use super::catalog::{Catalog, CategoryTree};
use super::promotion::Promotions;
use super::view::coupon::CouponView;
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::coupon::{self, CouponInput, CouponKind, CouponTerms, Rejection, Usage};
use crate::domain::error::DomainError;
use crate::domain::promotion::Stacking;
use crate::domain::user::Role;
use crate::domain::{FieldErrors, Id};

const STRIPES: usize = 64;

/// Who redeems a coupon: a signed-in user, or a guest known by their email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Customer {
    /// A signed-in user.
    User(Id),
    /// A guest's normalized email; `None` while a guest cart has no email yet.
    Guest(Option<String>),
}

impl Customer {
    fn key(&self) -> Option<Vec<u8>> {
        match self {
            Customer::User(id) => Some([b"u".as_slice(), &id.to_bytes()].concat()),
            Customer::Guest(Some(email)) => Some([b"g".as_slice(), email.to_lowercase().as_bytes()].concat()),
            Customer::Guest(None) => None,
        }
    }
}

/// Why a code does not take money off a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// No coupon has this code.
    Unknown,
    /// The coupon's rules refuse it.
    Rejected(Rejection),
}

impl NotApplied {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            NotApplied::Unknown => "coupon_not_found",
            NotApplied::Rejected(r) => r.code(),
        }
    }

    /// A sentence for people.
    pub fn message(self) -> String {
        match self {
            NotApplied::Unknown => "no coupon has this code".into(),
            NotApplied::Rejected(r) => r.message(),
        }
    }

    /// A 422 on `field`.
    pub fn invalid(self, field: &str) -> ServiceError {
        let mut errors = FieldErrors::default();
        errors.add(field, self.code(), self.message());
        ServiceError::Validation(errors.into_vec())
    }
}

/// A coupon applied to priced lines: its code and each line's share of the discount.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The code (upper case).
    pub code: String,
    /// Each line's discount, minor units, in the lines' order.
    pub lines: Vec<i64>,
}

/// What comes off a cart's lines.
#[derive(Debug, Clone)]
pub struct Discounts {
    /// Each line's automatic promotion: what it takes off, and its name.
    pub promotions: Vec<(i64, Option<String>)>,
    /// Each line's cost after its promotion (what a coupon applies to).
    pub nets: Vec<i64>,
    /// The coupon's outcome, when the cart has one.
    pub coupon: Option<Result<Applied, NotApplied>>,
}

impl Discounts {
    /// Each line's whole discount.
    pub fn per_line(&self) -> Vec<i64> {
        let coupon = match &self.coupon {
            Some(Ok(a)) => a.lines.as_slice(),
            _ => &[],
        };
        self.promotions
            .iter()
            .enumerate()
            .map(|(i, (p, _))| p + coupon.get(i).copied().unwrap_or(0))
            .collect()
    }
}

/// What a coupon or promotion covers: products, categories (and below) and sellers; an empty
/// list covers any.
pub(crate) struct Scope<'a> {
    pub(crate) products: &'a [[u8; 16]],
    pub(crate) categories: &'a [[u8; 16]],
    pub(crate) sellers: &'a [[u8; 16]],
}

impl Scope<'_> {
    /// Whether it covers `line` (a purchasable line only).
    pub(crate) fn covers(&self, tree: &CategoryTree, line: &PricedLine) -> bool {
        line.purchasable
            && (self.products.is_empty() || self.products.contains(&line.product_id))
            && (self.sellers.is_empty() || line.seller_id.is_some_and(|s| self.sellers.contains(&s)))
            && (self.categories.is_empty()
                || line.category_id.is_some_and(|c| {
                    tree.path_up(Id::from_bytes(c))
                        .iter()
                        .any(|a| self.categories.contains(&a.to_bytes()))
                }))
    }
}

/// Resolves a scope's products, categories and sellers (ids or slugs) to ids, recording each
/// unknown one as `products[i]`, `categories[i]` or `sellers[i]`; an absent list stays `None`.
pub(crate) fn resolve_scope(
    catalog: &Catalog,
    lists: [&Option<Vec<String>>; 3],
    errors: &mut FieldErrors,
) -> Result<[Option<Vec<[u8; 16]>>; 3], ServiceError> {
    let categories = catalog.categories();
    let sellers = catalog.sellers();
    let mut out = [None, None, None];
    for (slot, (field, keys)) in out
        .iter_mut()
        .zip(["products", "categories", "sellers"].into_iter().zip(lists))
    {
        let Some(keys) = keys else { continue };
        let mut ids = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let found = match field {
                "products" => catalog.resolve_product_id(k)?,
                "categories" => categories.resolve(k).map(|n| n.id),
                _ => sellers.resolve(k).map(|s| s.id),
            };
            match found {
                Some(id) => ids.push(id.to_bytes()),
                None => errors.add(format!("{field}[{i}]"), "unknown", format!("no such {field} entry")),
            }
        }
        *slot = Some(ids);
    }
    Ok(out)
}

/// The coupon service (with the automatic promotions it stacks with).
pub struct Coupons {
    store: Store,
    clock: SharedClock,
    catalog: Arc<Catalog>,
    promotions: Arc<Promotions>,
    stacking: Stacking,
    stripes: Box<[Mutex<()>]>,
}

impl Coupons {
    /// Builds the service.
    pub fn new(
        store: Store,
        clock: SharedClock,
        catalog: Arc<Catalog>,
        promotions: Arc<Promotions>,
        stacking: Stacking,
    ) -> Coupons {
        Coupons {
            store,
            clock,
            catalog,
            promotions,
            stacking,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The automatic promotions coupons stack with.
    pub(crate) fn promotions(&self) -> &Promotions {
        &self.promotions
    }

    fn lock(&self, code: &str) -> MutexGuard<'_, ()> {
        let stripe = (xxhash_rust::xxh3::xxh3_64(code.as_bytes()) % STRIPES as u64) as usize;
        self.stripes[stripe].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, code: &str) -> Result<Option<CouponRecord>, ServiceError> {
        Ok(self
            .store
            .get::<CouponRecord>(&keys::coupon(code))?
            .map(|r| r.to_native()))
    }

    fn view(&self, c: &CouponRecord) -> CouponView {
        CouponView::new(c, self.catalog.currency())
    }

    // ---------------------------------------------------------------- admin

    /// The coupons `actor` manages: all for admins, a seller's own for a seller.
    fn owner_of(actor: &Actor) -> Result<Option<Option<Id>>, ServiceError> {
        actor.require_signed_in()?;
        if actor.is_admin() {
            return Ok(None);
        }
        match actor {
            Actor::User {
                role: Role::Seller,
                seller: Some(s),
                ..
            } => Ok(Some(Some(*s))),
            _ => Err(ServiceError::Forbidden("only admins and sellers manage coupons")),
        }
    }

    fn managed(actor: &Actor, c: &CouponRecord) -> Result<(), ServiceError> {
        match Self::owner_of(actor)? {
            Some(owner) if c.owner_seller.map(Id::from_bytes) != owner => {
                Err(ServiceError::NotFound { kind: "coupon" })
            }
            _ => Ok(()),
        }
    }

    /// Validates `input` into `record`'s terms and scope (a new coupon when `record` is fresh).
    fn apply_input(
        &self,
        actor: &Actor,
        input: &CouponInput,
        record: &mut CouponRecord,
        base: Option<&CouponTerms>,
        mut errors: FieldErrors,
    ) -> Result<(), ServiceError> {
        let terms = coupon::terms(input, base, &mut errors);
        let [products, cats, sels] = resolve_scope(
            &self.catalog,
            [&input.products, &input.categories, &input.sellers],
            &mut errors,
        )?;
        if let (Some(Some(_)), Some(s)) = (Self::owner_of(actor)?, &sels) {
            if !s.is_empty() {
                errors.add(
                    "sellers",
                    "forbidden",
                    "a seller's coupon covers their own products only",
                );
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let t = terms.expect("terms are given when no field is invalid");
        record.kind = match t.kind {
            CouponKind::Percent => CouponKindRecord::Percent,
            CouponKind::Fixed => CouponKindRecord::Fixed,
        };
        record.value = t.value;
        record.max_discount_cents = t.max_discount;
        record.min_subtotal_cents = t.min_subtotal;
        record.starts_at_ms = t.starts_at_ms;
        record.ends_at_ms = t.ends_at_ms;
        record.max_uses = t.max_uses;
        record.max_uses_per_customer = t.max_uses_per_customer;
        record.first_order_only = t.first_order_only;
        if let Some(p) = products {
            record.products = p;
        }
        if let Some(c) = cats {
            record.categories = c;
        }
        if let Some(s) = sels {
            record.sellers = s;
        }
        record.updated_at_ms = self.clock.now_ms();
        Ok(())
    }

    /// `POST /admin/coupons`.
    pub async fn create(self: &Arc<Self>, actor: Actor, input: CouponInput) -> Result<CouponView, ServiceError> {
        let owner = Self::owner_of(&actor)?.flatten();
        let this = self.clone();
        blocking(move || {
            let mut errors = FieldErrors::default();
            let code = match input.code.as_deref() {
                Some(c) => coupon::normalize_code(c, &mut errors),
                None => {
                    errors.add("code", "required", "must be given");
                    String::new()
                }
            };
            let now = this.clock.now_ms();
            let mut record = CouponRecord {
                code: code.clone(),
                kind: CouponKindRecord::Fixed,
                value: 0,
                max_discount_cents: None,
                min_subtotal_cents: 0,
                starts_at_ms: None,
                ends_at_ms: None,
                max_uses: None,
                max_uses_per_customer: None,
                uses: 0,
                products: Vec::new(),
                categories: Vec::new(),
                sellers: Vec::new(),
                first_order_only: false,
                owner_seller: owner.map(|o| o.to_bytes()),
                created_at_ms: now,
                updated_at_ms: now,
            };
            this.apply_input(&actor, &input, &mut record, None, errors)?;
            let _guard = this.lock(&code);
            if this.load(&code)?.is_some() {
                return Err(DomainError::CouponTaken { code }.into());
            }
            let mut batch = this.store.batch();
            batch.put(&keys::coupon(&code), &record)?;
            batch.commit()?;
            Ok(this.view(&record))
        })
        .await
    }

    /// `GET /admin/coupons`: every coupon the caller manages, by code.
    pub async fn list(self: &Arc<Self>, actor: Actor) -> Result<Vec<CouponView>, ServiceError> {
        let owner = Self::owner_of(&actor)?;
        let this = self.clone();
        blocking(move || {
            let mut out = Vec::new();
            let upper = keys::prefix_successor(keys::COUPON_PREFIX);
            let mut failed = None;
            this.store
                .for_each_raw(CF_COUPONS, keys::COUPON_PREFIX, upper.as_deref(), |key, value| {
                    match storefront_storage::Owned::<CouponRecord>::from_slice(key, value) {
                        Ok(r) => {
                            let r = r.to_native();
                            if owner.is_none_or(|o| r.owner_seller.map(Id::from_bytes) == o) {
                                out.push(this.view(&r));
                            }
                            true
                        }
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            Ok(out)
        })
        .await
    }

    /// `GET /admin/coupons/{code}`.
    pub async fn get(self: &Arc<Self>, actor: Actor, code: String) -> Result<CouponView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let code = code.trim().to_ascii_uppercase();
            let record = this.load(&code)?.ok_or(ServiceError::NotFound { kind: "coupon" })?;
            Self::managed(&actor, &record)?;
            Ok(this.view(&record))
        })
        .await
    }

    /// `PATCH /admin/coupons/{code}`: absent fields stay; the code and the uses do not change.
    pub async fn update(
        self: &Arc<Self>,
        actor: Actor,
        code: String,
        input: CouponInput,
    ) -> Result<CouponView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let code = code.trim().to_ascii_uppercase();
            let _guard = this.lock(&code);
            let mut record = this.load(&code)?.ok_or(ServiceError::NotFound { kind: "coupon" })?;
            Self::managed(&actor, &record)?;
            let mut errors = FieldErrors::default();
            if input.code.is_some() {
                errors.add("code", "immutable", "a coupon's code cannot change; create another");
            }
            let base = terms_of(&record);
            this.apply_input(&actor, &input, &mut record, Some(&base), errors)?;
            let mut batch = this.store.batch();
            batch.put(&keys::coupon(&code), &record)?;
            batch.commit()?;
            Ok(this.view(&record))
        })
        .await
    }

    /// `DELETE /admin/coupons/{code}`: carts holding it lose it at their next pricing; orders
    /// that used it keep their discount.
    pub async fn delete(self: &Arc<Self>, actor: Actor, code: String) -> Result<(), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let code = code.trim().to_ascii_uppercase();
            let _guard = this.lock(&code);
            let record = this.load(&code)?.ok_or(ServiceError::NotFound { kind: "coupon" })?;
            Self::managed(&actor, &record)?;
            let mut batch = this.store.batch();
            batch.delete(CF_COUPONS, &keys::coupon(&code));
            batch.commit()?;
            Ok(())
        })
        .await
    }

    // ------------------------------------------------------- carts and orders

    /// The discount `code` gives `lines` (costing `nets` each after their promotions) bought
    /// by `customer`, or why it gives none.
    fn evaluate(
        &self,
        code: &str,
        lines: &[PricedLine],
        nets: &[i64],
        customer: &Customer,
    ) -> Result<Result<Applied, NotApplied>, ServiceError> {
        let code = code.trim().to_ascii_uppercase();
        let Some(record) = self.load(&code)? else {
            return Ok(Err(NotApplied::Unknown));
        };
        self.evaluate_record(&record, lines, nets, customer)
    }

    /// What comes off each line: its best automatic promotion and (given `coupon`) the
    /// coupon's share, stacked by the configured rule.
    pub(crate) fn discounts(
        &self,
        lines: &[PricedLine],
        coupon: Option<(&str, &Customer)>,
    ) -> Result<Discounts, ServiceError> {
        let gross: Vec<i64> = lines
            .iter()
            .map(|l| if l.purchasable { l.unit_price * l.quantity } else { 0 })
            .collect();
        let promotions = self.promotions.best_per_line(lines, self.clock.now_ms());
        let nets: Vec<i64> = gross.iter().zip(&promotions).map(|(g, (d, _))| g - d).collect();
        let Some((code, customer)) = coupon else {
            return Ok(Discounts {
                promotions,
                nets,
                coupon: None,
            });
        };
        if self.stacking == Stacking::Exclusive {
            let alone = self.evaluate(code, lines, &gross, customer)?;
            if alone.is_ok() {
                return Ok(Discounts {
                    promotions: vec![(0, None); lines.len()],
                    nets: gross,
                    coupon: Some(alone),
                });
            }
        }
        let coupon = self.evaluate(code, lines, &nets, customer)?;
        Ok(Discounts {
            promotions,
            nets,
            coupon: Some(coupon),
        })
    }

    fn evaluate_record(
        &self,
        record: &CouponRecord,
        lines: &[PricedLine],
        nets: &[i64],
        customer: &Customer,
    ) -> Result<Result<Applied, NotApplied>, ServiceError> {
        let categories = self.catalog.categories();
        let scope = Scope {
            products: &record.products,
            categories: &record.categories,
            sellers: &record.sellers,
        };
        let weighted: Vec<(i64, bool)> = lines
            .iter()
            .zip(nets)
            .map(|(l, net)| {
                let covered =
                    scope.covers(&categories, l) && record.owner_seller.is_none_or(|o| l.seller_id == Some(o));
                (*net, covered)
            })
            .collect();
        let customer_uses = match customer.key() {
            Some(k) => self.customer_uses(&record.code, &k)?,
            None => 0,
        };
        let prior_orders = match customer {
            Customer::User(id) if record.first_order_only => Some(self.placed_orders(*id)?),
            _ => None,
        };
        let usage = Usage {
            uses: record.uses,
            customer_uses,
            prior_orders,
        };
        Ok(
            match coupon::discount(&terms_of(record), &weighted, usage, self.clock.now_ms()) {
                Ok(shares) => Ok(Applied {
                    code: record.code.clone(),
                    lines: shares,
                }),
                Err(r) => Err(NotApplied::Rejected(r)),
            },
        )
    }

    fn customer_uses(&self, code: &str, customer: &[u8]) -> Result<i64, ServiceError> {
        Ok(self
            .store
            .get_raw(CF_COUPONS, &keys::coupon_use(code, customer))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_be_bytes)
            .unwrap_or(0))
    }

    /// How many of a user's orders were placed (a failed or cancelled one is no first order).
    fn placed_orders(&self, user: Id) -> Result<u64, ServiceError> {
        let prefix = keys::order_index(OrderIndex::User, &user.to_bytes(), &[]);
        let upper = keys::prefix_successor(&prefix);
        let mut ids = Vec::new();
        self.store
            .for_each_raw(CF_ORDER_INDEX, &prefix, upper.as_deref(), |key, _| {
                if let Ok(id) = <[u8; 16]>::try_from(&key[prefix.len()..]) {
                    ids.push(id);
                }
                true
            })?;
        let mut placed = 0;
        for order in self.store.multi_get::<OrderRecord, _>(&ids)?.into_iter().flatten() {
            if matches!(order.to_native().phase, OrderPhaseRecord::Placed) {
                placed += 1;
            }
        }
        Ok(placed)
    }

    /// Takes a use of `applied` for `order` (bought by `customer`) and hands the batch that
    /// creates the order to `write`, all under the coupon's lock; the last use taken by
    /// someone else meanwhile answers 409 `coupon_exhausted`, and a coupon that stopped
    /// applying 422 on `field`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn redeem<T>(
        &self,
        applied: &Applied,
        lines: &[PricedLine],
        nets: &[i64],
        customer: &Customer,
        order: [u8; 16],
        field: &str,
        write: impl FnOnce(&mut dyn FnMut(&mut Batch<'_>) -> Result<(), ServiceError>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _guard = self.lock(&applied.code);
        let mut record = self
            .load(&applied.code)?
            .ok_or_else(|| NotApplied::Unknown.invalid(field))?;
        match self.evaluate_record(&record, lines, nets, customer)? {
            Ok(now) if now.lines == applied.lines => {}
            Ok(_) => return Err(NotApplied::Rejected(Rejection::NotApplicable).invalid(field)),
            Err(NotApplied::Rejected(Rejection::Exhausted | Rejection::CustomerLimit)) => {
                return Err(DomainError::CouponExhausted { code: record.code }.into())
            }
            Err(e) => return Err(e.invalid(field)),
        }
        record.uses += 1;
        let customer_key = customer.key().unwrap_or_default();
        let customer_uses = self.customer_uses(&record.code, &customer_key)? + 1;
        let mut stage = |batch: &mut Batch<'_>| {
            batch.put(&keys::coupon(&record.code), &record)?;
            if !customer_key.is_empty() {
                batch.put_raw(
                    CF_COUPONS,
                    &keys::coupon_use(&record.code, &customer_key),
                    &customer_uses.to_be_bytes(),
                );
            }
            let mut redemption = record.code.as_bytes().to_vec();
            redemption.push(0);
            redemption.extend_from_slice(&customer_key);
            batch.put_raw(CF_COUPONS, &keys::coupon_order(&order), &redemption);
            Ok(())
        };
        write(&mut stage)
    }

    /// Gives back the use `order` took, if it took one, in `batch`; the returned guard holds
    /// the coupon until the caller has committed the batch.
    pub(crate) fn stage_give_back(
        &self,
        batch: &mut Batch<'_>,
        order: [u8; 16],
    ) -> Result<Option<MutexGuard<'_, ()>>, ServiceError> {
        let key = keys::coupon_order(&order);
        let Some(redemption) = self.store.get_raw(CF_COUPONS, &key)? else {
            return Ok(None);
        };
        let (code, customer) = match redemption.iter().position(|b| *b == 0) {
            Some(i) => (
                String::from_utf8_lossy(&redemption[..i]).into_owned(),
                redemption[i + 1..].to_vec(),
            ),
            None => (String::from_utf8_lossy(&redemption).into_owned(), Vec::new()),
        };
        let guard = self.lock(&code);
        if let Some(mut record) = self.load(&code)? {
            record.uses = (record.uses - 1).max(0);
            batch.put(&keys::coupon(&code), &record)?;
        }
        if !customer.is_empty() {
            let left = (self.customer_uses(&code, &customer)? - 1).max(0);
            batch.put_raw(CF_COUPONS, &keys::coupon_use(&code, &customer), &left.to_be_bytes());
        }
        batch.delete(CF_COUPONS, &key);
        Ok(Some(guard))
    }
}

/// A record's terms, as the domain rules read them.
fn terms_of(r: &CouponRecord) -> CouponTerms {
    CouponTerms {
        kind: match r.kind {
            CouponKindRecord::Percent => CouponKind::Percent,
            CouponKindRecord::Fixed => CouponKind::Fixed,
        },
        value: r.value,
        max_discount: r.max_discount_cents,
        min_subtotal: r.min_subtotal_cents,
        starts_at_ms: r.starts_at_ms,
        ends_at_ms: r.ends_at_ms,
        max_uses: r.max_uses,
        max_uses_per_customer: r.max_uses_per_customer,
        first_order_only: r.first_order_only,
    }
}
