//! Automatic promotions: the admin's rules (a percentage off, or buy X get Y free, on a
//! scope) and the best one for each cart line. The promotions live in storage and, for
//! pricing, in a snapshot in memory that every write replaces, so pricing a cart reads no
//! storage for them.

use std::sync::Arc;

use arc_swap::ArcSwap;
use storefront_storage::cf::CF_COUPONS;
use storefront_storage::coupons::{PromotionRecord, PromotionRuleRecord};
use storefront_storage::{keys, Owned, Store};

use super::auth::Actor;
use super::cart::PricedLine;
use super::catalog::Catalog;
use super::coupon::{resolve_scope, Scope};
use super::generation::Generation;
use super::view::promotion::PromotionView;
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::promotion::{self, PromotionInput, PromotionRule};
use crate::domain::{query, FieldErrors, Id};

/// The promotion service.
pub struct Promotions {
    store: Store,
    clock: SharedClock,
    catalog: Arc<Catalog>,
    live: ArcSwap<Vec<PromotionRecord>>,
    writes: std::sync::Mutex<()>,
    /// Advanced after every reload (what cached cart prices read).
    pricing: Arc<Generation>,
}

fn rule_of(r: PromotionRuleRecord) -> PromotionRule {
    match r {
        PromotionRuleRecord::Percent { percent } => PromotionRule::Percent(percent),
        PromotionRuleRecord::BuyGet { buy, get } => PromotionRule::BuyGet { buy, get },
    }
}

impl Promotions {
    /// Opens the service, loading every promotion.
    pub fn new(
        store: Store,
        clock: SharedClock,
        catalog: Arc<Catalog>,
        pricing: Arc<Generation>,
    ) -> Result<Promotions, ServiceError> {
        let promotions = Promotions {
            pricing,
            live: ArcSwap::from_pointee(Vec::new()),
            store,
            clock,
            catalog,
            writes: std::sync::Mutex::new(()),
        };
        promotions.reload()?;
        Ok(promotions)
    }

    fn reload(&self) -> Result<(), ServiceError> {
        let upper = keys::prefix_successor(keys::PROMOTION_PREFIX);
        let mut all = Vec::new();
        let mut failed = None;
        self.store.for_each_raw(
            CF_COUPONS,
            keys::PROMOTION_PREFIX,
            upper.as_deref(),
            |key, value| match Owned::<PromotionRecord>::from_slice(key, value) {
                Ok(r) => {
                    all.push(r.to_native());
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.live.store(Arc::new(all));
        self.pricing.advance();
        Ok(())
    }

    /// The first instant after `now_ms` at which a promotion starts or ends: until then, what
    /// [`Promotions::best_per_line`] gives a cart cannot change with time.
    pub(crate) fn next_change_after(&self, now_ms: i64) -> Option<i64> {
        self.live
            .load()
            .iter()
            .filter(|p| p.active)
            .flat_map(|p| [p.starts_at_ms, p.ends_at_ms])
            .flatten()
            .filter(|at| *at > now_ms)
            .min()
    }

    /// Each line's best promotion at `now_ms`: what it takes off, and its name.
    pub(crate) fn best_per_line(&self, lines: &[PricedLine], now_ms: i64) -> Vec<(i64, Option<String>)> {
        let live = self.live.load();
        let running: Vec<&PromotionRecord> = live
            .iter()
            .filter(|p| {
                p.active && p.starts_at_ms.is_none_or(|s| now_ms >= s) && p.ends_at_ms.is_none_or(|e| now_ms < e)
            })
            .collect();
        if running.is_empty() {
            return vec![(0, None); lines.len()];
        }
        let tree = self.catalog.categories();
        lines
            .iter()
            .map(|line| {
                let covering: Vec<&PromotionRecord> = running
                    .iter()
                    .copied()
                    .filter(|p| {
                        Scope {
                            products: &p.products,
                            categories: &p.categories,
                            sellers: &p.sellers,
                        }
                        .covers(&tree, line)
                    })
                    .collect();
                let rules: Vec<PromotionRule> = covering.iter().map(|p| rule_of(p.rule)).collect();
                match promotion::best(&rules, line.unit_price, line.quantity) {
                    Some((i, amount)) => (amount, Some(covering[i].name.clone())),
                    None => (0, None),
                }
            })
            .collect()
    }

    fn view(&self, p: &PromotionRecord) -> PromotionView {
        PromotionView::new(p)
    }

    fn load(&self, id: Id) -> Result<PromotionRecord, ServiceError> {
        self.store
            .get::<PromotionRecord>(&keys::promotion(&id.to_bytes()))?
            .map(|r| r.to_native())
            .ok_or(ServiceError::NotFound { kind: "promotion" })
    }

    /// Validates `input` into `record` (a patch when `patch`).
    fn apply_input(
        &self,
        input: &PromotionInput,
        record: &mut PromotionRecord,
        patch: bool,
    ) -> Result<(), ServiceError> {
        let mut errors = FieldErrors::default();
        match input.name.as_deref().map(str::trim) {
            Some(name) => {
                errors.text("name", name, true, 80);
                record.name = name.to_owned();
            }
            None if !patch => errors.add("name", "required", "must be given"),
            None => {}
        }
        let rule = promotion::rule(input, patch.then(|| rule_of(record.rule)), &mut errors);
        let [products, cats, sels] = resolve_scope(
            &self.catalog,
            [&input.products, &input.categories, &input.sellers],
            &mut errors,
        )?;
        let starts = query::time("starts_at", input.starts_at.as_deref(), &mut errors).or(record.starts_at_ms);
        let ends = query::time("ends_at", input.ends_at.as_deref(), &mut errors).or(record.ends_at_ms);
        if let (Some(s), Some(e)) = (starts, ends) {
            if e <= s {
                errors.add("ends_at", "out_of_range", "must be after starts_at");
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        record.rule = match rule {
            PromotionRule::Percent(percent) => PromotionRuleRecord::Percent { percent },
            PromotionRule::BuyGet { buy, get } => PromotionRuleRecord::BuyGet { buy, get },
        };
        if let Some(p) = products {
            record.products = p;
        }
        if let Some(c) = cats {
            record.categories = c;
        }
        if let Some(s) = sels {
            record.sellers = s;
        }
        record.starts_at_ms = starts;
        record.ends_at_ms = ends;
        if let Some(a) = input.active {
            record.active = a;
        }
        record.updated_at_ms = self.clock.now_ms();
        Ok(())
    }

    fn save(&self, record: &PromotionRecord) -> Result<(), ServiceError> {
        let mut batch = self.store.batch();
        batch.put(&keys::promotion(&record.id), record)?;
        batch.commit()?;
        self.reload()
    }

    /// `POST /admin/promotions`.
    pub async fn create(self: &Arc<Self>, actor: Actor, input: PromotionInput) -> Result<PromotionView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let now = this.clock.now_ms();
            let mut record = PromotionRecord {
                id: Id::new().to_bytes(),
                name: String::new(),
                rule: PromotionRuleRecord::Percent { percent: 1 },
                products: Vec::new(),
                categories: Vec::new(),
                sellers: Vec::new(),
                starts_at_ms: None,
                ends_at_ms: None,
                active: true,
                created_at_ms: now,
                updated_at_ms: now,
            };
            this.apply_input(&input, &mut record, false)?;
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.save(&record)?;
            Ok(this.view(&record))
        })
        .await
    }

    /// `GET /admin/promotions`: every promotion, oldest first.
    pub async fn list(self: &Arc<Self>, actor: Actor) -> Result<Vec<PromotionView>, ServiceError> {
        actor.require_admin()?;
        Ok(self.live.load().iter().map(|p| self.view(p)).collect())
    }

    /// `PATCH /admin/promotions/{id}`.
    pub async fn update(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: PromotionInput,
    ) -> Result<PromotionView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut record = this.load(id)?;
            this.apply_input(&input, &mut record, true)?;
            this.save(&record)?;
            Ok(this.view(&record))
        })
        .await
    }

    /// `DELETE /admin/promotions/{id}`.
    pub async fn delete(self: &Arc<Self>, actor: Actor, id: Id) -> Result<(), ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.load(id)?;
            let mut batch = this.store.batch();
            batch.delete(CF_COUPONS, &keys::promotion(&id.to_bytes()));
            batch.commit()?;
            this.reload()
        })
        .await
    }
}
