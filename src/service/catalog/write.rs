//! Product and variant writes: create, import upserts, and every edit through one path.
//!
//! Each write is one storage transaction that stages the product record, its slug and SKU
//! index entries, its listing entries and its changelog entry (with the CDN tags it affects),
//! then applies the [`Invalidation`] it returns once the batch is durable. Edits go through
//! [`Catalog::edit_product`], which owns loading, authorisation, `If-Match`, the version bump
//! and the write; callers only say what changes.

use std::sync::Arc;

use storefront_storage::cf::{CF_EXTERNAL_IDS, CF_INVENTORY, CF_PRODUCTS, CF_SLUGS, CF_VARIANTS};
use storefront_storage::keys::{self, SlugKind};
use storefront_storage::listing;
use storefront_storage::records::{
    AttributeRecord, AttributeValue as StoredValue, ChangeOp, EntityKind, ImageRecord, InventoryRecord, ProductRecord,
    ProductStatus, VariantRecord,
};
use storefront_storage::Txn;

use super::listing::facts;
use super::{check_version, tags, Catalog, Invalidation};
use crate::domain::catalog::{
    self as rules, Attribute, AttributeValue, Image, NewProduct, NewVariant, ProductInput, ProductPatch, Status,
    VariantInput, VariantPatch,
};
use crate::domain::error::DomainError;
use crate::domain::product::RatingSummary;
use crate::domain::{FieldErrors, Id, Slug};
use crate::service::auth::Actor;
use crate::service::inventory;
use crate::service::{blocking, ServiceError};

/// Where an imported product comes from, for idempotent re-imports.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Created through the API.
    Api,
    /// Imported from a named feed (`jsonl`, `chorus`); `external_id` identifies the product.
    Feed(&'a str),
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new product was created.
    Created,
    /// An existing product changed.
    Updated,
    /// The product already matched the input.
    Unchanged,
}

/// A product body whose references are resolved.
#[derive(Debug, Clone)]
pub struct ResolvedProduct {
    /// Validated fields.
    pub product: NewProduct,
    /// Category.
    pub category_id: Option<Id>,
    /// Seller.
    pub seller_id: Option<Id>,
}

/// Which product an edit addresses.
enum Target {
    /// By product id or slug.
    Product(String),
    /// The product that owns a SKU.
    Sku(String),
}

impl Catalog {
    /// Resolves category and seller references, appending to `errors`.
    pub(crate) fn resolve_refs(
        &self,
        category: Option<&str>,
        seller: Option<&str>,
        errors: &mut FieldErrors,
    ) -> (Option<Id>, Option<Id>) {
        let category = category.and_then(|c| {
            let found = self.categories.load().resolve(c).map(|n| n.id);
            if found.is_none() {
                errors.add("category", "unknown", "no such category");
            }
            found
        });
        let seller = seller.and_then(|s| {
            let found = self.sellers.load().resolve(s).map(|s| s.id);
            if found.is_none() {
                errors.add("seller", "unknown", "no such seller");
            }
            found
        });
        (category, seller)
    }

    /// Validates a product body from the API (category by id/slug only).
    pub fn validate_product(&self, input: &ProductInput) -> Result<ResolvedProduct, ServiceError> {
        let mut errors = FieldErrors::default();
        let product = rules::check_product(input, self.settings.currency, &mut errors);
        if input.category_path.is_some() {
            errors.add(
                "category_path",
                "unsupported",
                "category_path is accepted by import only; use category",
            );
        }
        let (category_id, seller_id) =
            self.resolve_refs(input.category.as_deref(), input.seller.as_deref(), &mut errors);
        errors
            .finish(ResolvedProduct {
                product,
                category_id,
                seller_id,
            })
            .map_err(ServiceError::Validation)
    }

    /// Creates a product through the API.
    pub async fn create_product(self: &Arc<Self>, actor: Actor, input: ProductInput) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut resolved = self.validate_product(&input)?;
        if resolved.seller_id.is_none() {
            resolved.seller_id = actor.own_seller();
        }
        actor.may_manage_catalog(resolved.seller_id)?;
        let this = self.clone();
        blocking(move || {
            let (id, outcome, inv) = this.store.transact(|txn| this.upsert_in(txn, &resolved, Source::Api))?;
            debug_assert_eq!(outcome, UpsertOutcome::Created);
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Creates or updates many products in one atomic batch (imports).
    pub fn upsert_batch(
        &self,
        items: &[ResolvedProduct],
        source: Source<'_>,
    ) -> Result<Vec<Result<UpsertOutcome, ServiceError>>, ServiceError> {
        let (outcomes, inv) = self.store.transact(|txn| {
            let mut all = Invalidation::default();
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                match self.upsert_in(txn, item, source) {
                    Ok((_, outcome, inv)) => {
                        all.merge(inv);
                        outcomes.push(Ok(outcome));
                    }
                    // A refused row is reported and skipped; its checks ran before any write.
                    Err(e @ (ServiceError::Domain(_) | ServiceError::Validation(_))) => outcomes.push(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            Ok((outcomes, all))
        })?;
        self.apply(inv)?;
        Ok(outcomes)
    }

    fn upsert_in(
        &self,
        txn: &mut Txn<'_>,
        item: &ResolvedProduct,
        source: Source<'_>,
    ) -> Result<(Id, UpsertOutcome, Invalidation), ServiceError> {
        let p = &item.product;
        let external_key = match (source, &p.external_id) {
            (Source::Feed(feed), Some(ext)) => Some(keys::external_id(feed, ext)),
            (Source::Api, Some(ext)) => Some(keys::external_id("api", ext)),
            (_, None) => None,
        };
        let existing_id = match &external_key {
            Some(k) => txn
                .get_raw(CF_EXTERNAL_IDS, k)?
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()),
            None => None,
        };
        if let (Source::Api, Some(_)) = (source, existing_id) {
            return Err(DomainError::ExternalIdTaken {
                external_id: p.external_id.clone().unwrap_or_default(),
            }
            .into());
        }
        let old = match existing_id {
            Some(id) => txn.get::<ProductRecord>(&id)?.map(|o| o.to_native()),
            None => None,
        };
        let id = old.as_ref().map(|o| Id::from_bytes(o.id)).unwrap_or_else(Id::new);
        let now = txn.now_ms();

        // Slug: keep an existing product's slug unless one is given explicitly.
        let slug = match (&p.slug, &old) {
            (Some(s), _) => s.as_str().to_owned(),
            (None, Some(o)) => o.slug.clone(),
            (None, None) => {
                let base = Slug::derive(&p.title, 80).unwrap_or_else(|| Slug::parse("product").expect("valid"));
                let candidate = match (source, &p.external_id) {
                    (Source::Feed(_), Some(ext)) => Slug::derive(ext, 30)
                        .map(|e| base.with_suffix(e.as_str()))
                        .unwrap_or(base),
                    _ => base,
                };
                if slug_owner(txn, candidate.as_str())?.is_some_and(|owner| owner != id.to_bytes()) {
                    let hex = id.to_string().replace('-', "");
                    candidate.with_suffix(&hex[hex.len() - 10..]).as_str().to_owned()
                } else {
                    candidate.as_str().to_owned()
                }
            }
        };
        ensure_product_slug_free(txn, &slug, id.to_bytes())?;
        for variant in &p.variants {
            if sku_owner(txn, &variant.sku)?.is_some_and(|owner| owner != id.to_bytes()) {
                return Err(DomainError::SkuTaken {
                    sku: variant.sku.clone(),
                }
                .into());
            }
        }

        let mut record = ProductRecord {
            id: id.to_bytes(),
            version: old.as_ref().map(|o| o.version + 1).unwrap_or(1),
            external_id: p.external_id.clone(),
            slug,
            title: p.title.clone(),
            description: p.description.clone(),
            brand: p.brand.clone(),
            category_id: item.category_id.map(Id::to_bytes),
            seller_id: item.seller_id.map(Id::to_bytes),
            status: record_status(p.status),
            currency: self.settings.currency.to_string(),
            images: p.images.iter().map(image_record).collect(),
            attributes: p.attributes.iter().map(attribute_record).collect(),
            variants: p.variants.iter().map(variant_record).collect(),
            rating_sum: old.as_ref().map(|o| o.rating_sum).unwrap_or(0),
            rating_count: old.as_ref().map(|o| o.rating_count).unwrap_or(0),
            created_at_ms: old.as_ref().map(|o| o.created_at_ms).unwrap_or(now),
            updated_at_ms: now,
        };
        if let Some(old) = &old {
            let mut same = record.clone();
            same.version = old.version;
            same.updated_at_ms = old.updated_at_ms;
            if &same == old {
                return Ok((id, UpsertOutcome::Unchanged, Invalidation::default()));
            }
        }
        // New SKUs get their initial stock; existing SKUs keep theirs; dropped SKUs are freed.
        for variant in &p.variants {
            if txn.get::<InventoryRecord>(keys::sku(&variant.sku))?.is_none() {
                txn.put(
                    keys::sku(&variant.sku),
                    &inventory::new_record(&variant.sku, id, variant.stock, now),
                )?;
            }
            txn.put_raw(CF_VARIANTS, keys::sku(&variant.sku), &id.to_bytes());
        }
        if let Some(old) = &old {
            for gone in old
                .variants
                .iter()
                .filter(|v| !record.variants.iter().any(|n| n.sku == v.sku))
            {
                txn.delete(CF_VARIANTS, keys::sku(&gone.sku));
                txn.delete(CF_INVENTORY, keys::sku(&gone.sku));
            }
        }
        if let Some(k) = &external_key {
            txn.put_raw(CF_EXTERNAL_IDS, k, &id.to_bytes());
        }
        record.version = record.version.max(1);
        let outcome = if old.is_some() {
            UpsertOutcome::Updated
        } else {
            UpsertOutcome::Created
        };
        let inv = self.write_product(txn, old.as_ref(), Some(&record))?;
        Ok((id, outcome, inv))
    }

    /// Stages the product record, its slug, listing entries and changelog entry, and returns
    /// what the write invalidates. `old`/`new` of `None` mean created/deleted.
    fn write_product(
        &self,
        txn: &mut Txn<'_>,
        old: Option<&ProductRecord>,
        new: Option<&ProductRecord>,
    ) -> Result<Invalidation, ServiceError> {
        let tree = self.categories.load();
        let old_facts = match old {
            Some(o) => facts(txn, o, &tree, &self.stock)?,
            None => None,
        };
        let new_facts = match new {
            Some(n) => facts(txn, n, &tree, &self.stock)?,
            None => None,
        };
        if old_facts != new_facts {
            txn.update_listing(old_facts.as_ref(), new_facts.as_ref());
        }
        let mut inv = Invalidation::default();
        if let Some(n) = new {
            for v in n.variants.iter().filter(|v| self.stock.level(&v.sku).is_none()) {
                if let Some(r) = txn.get::<InventoryRecord>(keys::sku(&v.sku))? {
                    let r = r.archived();
                    inv.stock_added.push((
                        v.sku.clone(),
                        n.id,
                        r.on_hand.to_native(),
                        r.low_stock_threshold.to_native(),
                    ));
                }
            }
        }
        if let Some(o) = old {
            inv.stock_removed.extend(
                o.variants
                    .iter()
                    .filter(|v| new.is_none_or(|n| !n.variants.iter().any(|nv| nv.sku == v.sku)))
                    .map(|v| v.sku.clone()),
            );
        }
        // What the change can alter decides what it purges (see `tags`).
        let mut change_tags = vec![tags::SEARCH.to_owned()];
        for record in old.iter().chain(new.iter()) {
            inv.product(record);
            change_tags.push(tags::product_id(Id::from_bytes(record.id)));
        }
        for f in old_facts.iter().chain(new_facts.iter()) {
            inv.scopes.extend(listing::scopes_of(f));
            if old_facts != new_facts {
                change_tags.extend(tags::lists(f));
            }
        }
        let named = |p: &ProductRecord| (p.title.clone(), p.brand.clone(), p.category_id, p.status);
        if old.map(named) != new.map(named) {
            change_tags.push(tags::SUGGEST.to_owned());
        }
        tags::dedup(&mut change_tags);
        if let Some(o) = old {
            if new.is_none_or(|n| n.slug != o.slug) {
                txn.delete(CF_SLUGS, &keys::slug(SlugKind::Product, &o.slug));
            }
        }
        let (op, id) = match (old, new) {
            (_, Some(n)) => {
                txn.put(&n.id, n)?;
                txn.put_raw(CF_SLUGS, &keys::slug(SlugKind::Product, &n.slug), &n.id);
                (ChangeOp::Upsert, n.id)
            }
            (Some(o), None) => {
                txn.delete(CF_PRODUCTS, &o.id);
                (ChangeOp::Delete, o.id)
            }
            (None, None) => return Ok(inv),
        };
        txn.record_change(EntityKind::Product, op, &id, change_tags);
        Ok(inv)
    }

    /// Stages a product's new rating summary (its reviews changed) in `txn`: the record keeps
    /// its version, as no editor changed it, but its listing entries, index document and
    /// pages follow. Returns what to invalidate once committed; nothing when it is unchanged.
    pub(crate) fn stage_rating(
        &self,
        txn: &mut Txn<'_>,
        product: &Id,
        summary: RatingSummary,
    ) -> Result<Invalidation, ServiceError> {
        let Some(old) = txn.get::<ProductRecord>(&product.to_bytes())?.map(|p| p.to_native()) else {
            return Ok(Invalidation::default());
        };
        if old.rating_sum == summary.sum && old.rating_count == summary.count {
            return Ok(Invalidation::default());
        }
        let mut new = old.clone();
        new.rating_sum = summary.sum;
        new.rating_count = summary.count;
        self.write_product(txn, Some(&old), Some(&new))
    }

    /// The one path of every product edit: finds the product, checks that the actor may
    /// manage it and that `If-Match` holds, lets `edit` change a copy inside the transaction,
    /// then bumps the version and writes it.
    async fn edit_product<F>(
        self: &Arc<Self>,
        actor: Actor,
        target: Target,
        if_match: Option<u64>,
        edit: F,
    ) -> Result<Id, ServiceError>
    where
        F: FnOnce(&mut Txn<'_>, &mut ProductRecord) -> Result<(), ServiceError> + Send + 'static,
    {
        actor.require_catalog_writer()?;
        let this = self.clone();
        blocking(move || {
            let (id, inv) = this.store.transact(|txn| {
                let key = match &target {
                    Target::Product(key) => this
                        .resolve_product_id(key)?
                        .ok_or(ServiceError::NotFound { kind: "product" })?
                        .to_bytes(),
                    Target::Sku(sku) => sku_owner(txn, sku)?.ok_or(ServiceError::NotFound { kind: "sku" })?,
                };
                let old = load_for_write(txn, &actor, &key, if_match)?;
                let mut new = old.clone();
                edit(txn, &mut new)?;
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                let inv = this.write_product(txn, Some(&old), Some(&new))?;
                Ok::<_, ServiceError>((Id::from_bytes(key), inv))
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Applies a partial update to a product.
    pub async fn update_product(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        patch: ProductPatch,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        if let Some(title) = &patch.title {
            errors.text("title", title, true, rules::MAX_TITLE_LEN);
        }
        if let Some(description) = &patch.description {
            errors.text("description", description, false, rules::MAX_DESCRIPTION_LEN);
        }
        let slug = rules::check_slug(patch.slug.as_deref(), &mut errors);
        let brand = patch
            .brand
            .as_ref()
            .map(|b| rules::check_brand(b.as_deref(), &mut errors));
        let status = patch
            .status
            .as_deref()
            .map(|s| rules::check_status(Some(s), &mut errors));
        let images = patch
            .images
            .as_deref()
            .map(|i| rules::check_images(Some(i), &mut errors));
        let attributes = patch
            .attributes
            .as_ref()
            .map(|a| rules::check_attributes("attributes", Some(a), &mut errors));
        let category = patch
            .category
            .as_ref()
            .map(|c| self.resolve_refs(c.as_deref(), None, &mut errors).0);
        let seller = patch
            .seller
            .as_ref()
            .map(|s| self.resolve_refs(None, s.as_deref(), &mut errors).1);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        self.edit_product(actor, Target::Product(key), if_match, move |txn, new| {
            if let Some(t) = &patch.title {
                new.title = t.trim().to_owned();
            }
            if let Some(d) = &patch.description {
                new.description = d.trim().to_owned();
            }
            if let Some(s) = &slug {
                ensure_product_slug_free(txn, s.as_str(), new.id)?;
                new.slug = s.as_str().to_owned();
            }
            if let Some(b) = brand {
                new.brand = b;
            }
            if let Some(s) = status {
                new.status = record_status(s);
            }
            if let Some(i) = &images {
                new.images = i.iter().map(image_record).collect();
            }
            if let Some(a) = &attributes {
                new.attributes = a.iter().map(attribute_record).collect();
            }
            if let Some(c) = category {
                new.category_id = c.map(Id::to_bytes);
            }
            if let Some(s) = seller {
                actor.may_manage_catalog(s)?;
                new.seller_id = s.map(Id::to_bytes);
            }
            Ok(())
        })
        .await
    }

    /// Adds a variant to a product.
    pub async fn add_variant(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        input: VariantInput,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        let variant = rules::check_variant("", &input, self.settings.currency, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        self.edit_product(actor, Target::Product(key), if_match, move |txn, new| {
            if new.variants.len() >= rules::MAX_VARIANTS {
                return Err(ServiceError::invalid(
                    "variants",
                    "too_many",
                    "the product already has the maximum number of variants",
                ));
            }
            if sku_owner(txn, &variant.sku)?.is_some() {
                return Err(DomainError::SkuTaken { sku: variant.sku }.into());
            }
            new.variants.push(variant_record(&variant));
            txn.put_raw(CF_VARIANTS, keys::sku(&variant.sku), &new.id);
            let record = inventory::new_record(&variant.sku, Id::from_bytes(new.id), variant.stock, txn.now_ms());
            txn.put(keys::sku(&variant.sku), &record)?;
            Ok(())
        })
        .await
    }

    /// Updates a variant by SKU. `If-Match` refers to the owning product's version.
    pub async fn update_variant(
        self: &Arc<Self>,
        actor: Actor,
        sku: String,
        patch: VariantPatch,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        let currency = self.settings.currency;
        if let Some(t) = &patch.title {
            errors.text("title", t, false, 200);
        }
        let price = rules::check_price("price", patch.price.as_ref(), false, currency, &mut errors);
        let compare_at = patch
            .compare_at_price
            .as_ref()
            .map(|c| rules::check_price("compare_at_price", c.as_ref(), false, currency, &mut errors));
        let attributes = patch
            .attributes
            .as_ref()
            .map(|a| rules::check_attributes("attributes", Some(a), &mut errors));
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        self.edit_product(actor, Target::Sku(sku.clone()), if_match, move |_, new| {
            let v = new
                .variants
                .iter_mut()
                .find(|v| v.sku == sku)
                .ok_or(ServiceError::NotFound { kind: "sku" })?;
            if let Some(t) = &patch.title {
                v.title = t.trim().to_owned();
            }
            if let Some(p) = price {
                v.price_cents = p;
            }
            if let Some(c) = compare_at {
                v.compare_at_cents = c;
            }
            if let Some(a) = &attributes {
                v.attributes = a.iter().map(attribute_record).collect();
            }
            if let Some(w) = patch.weight_grams {
                v.weight_grams = w;
            }
            if v.compare_at_cents.is_some_and(|c| c < v.price_cents) {
                return Err(ServiceError::invalid(
                    "compare_at_price.amount",
                    "below_price",
                    "must not be lower than the price",
                ));
            }
            Ok(())
        })
        .await
    }

    /// Deletes a product, its slug, SKUs and stock records.
    pub async fn delete_product(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        if_match: Option<u64>,
    ) -> Result<(), ServiceError> {
        actor.require_catalog_writer()?;
        let this = self.clone();
        blocking(move || {
            let id = this
                .resolve_product_id(&key)?
                .ok_or(ServiceError::NotFound { kind: "product" })?;
            let inv = this.store.transact(|txn| {
                let old = load_for_write(txn, &actor, &id.to_bytes(), if_match)?;
                // Listing facts are computed before the stock records go away.
                let inv = this.write_product(txn, Some(&old), None)?;
                for v in &old.variants {
                    txn.delete(CF_VARIANTS, keys::sku(&v.sku));
                    txn.delete(CF_INVENTORY, keys::sku(&v.sku));
                }
                if let Some(ext) = &old.external_id {
                    for feed in ["api", "jsonl", "chorus"] {
                        let k = keys::external_id(feed, ext);
                        if txn.get_raw(CF_EXTERNAL_IDS, &k)?.as_deref() == Some(&old.id[..]) {
                            txn.delete(CF_EXTERNAL_IDS, &k);
                        }
                    }
                }
                Ok::<_, ServiceError>(inv)
            })?;
            this.apply(inv)
        })
        .await
    }
}

/// Loads a product for modification, enforcing ownership and `If-Match`.
fn load_for_write(
    txn: &Txn<'_>,
    actor: &Actor,
    key: &[u8],
    if_match: Option<u64>,
) -> Result<ProductRecord, ServiceError> {
    let product = txn
        .get::<ProductRecord>(key)?
        .ok_or(ServiceError::NotFound { kind: "product" })?
        .to_native();
    actor.may_manage_catalog(product.seller_id.map(Id::from_bytes))?;
    check_version(product.version, if_match)?;
    Ok(product)
}

fn slug_owner(txn: &Txn<'_>, slug: &str) -> Result<Option<[u8; 16]>, ServiceError> {
    Ok(txn
        .get_raw(CF_SLUGS, &keys::slug(SlugKind::Product, slug))?
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
}

/// Fails with 409 `slug_taken` when another product has `slug`.
fn ensure_product_slug_free(txn: &Txn<'_>, slug: &str, product: [u8; 16]) -> Result<(), ServiceError> {
    if slug_owner(txn, slug)?.is_some_and(|owner| owner != product) {
        return Err(DomainError::SlugTaken {
            kind: "product",
            slug: slug.to_owned(),
        }
        .into());
    }
    Ok(())
}

fn sku_owner(txn: &Txn<'_>, sku: &str) -> Result<Option<[u8; 16]>, ServiceError> {
    Ok(txn
        .get_raw(CF_VARIANTS, keys::sku(sku))?
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
}

fn record_status(s: Status) -> ProductStatus {
    match s {
        Status::Draft => ProductStatus::Draft,
        Status::Published => ProductStatus::Published,
        Status::Archived => ProductStatus::Archived,
    }
}

fn image_record(i: &Image) -> ImageRecord {
    ImageRecord {
        url: i.url.trim().to_owned(),
        alt: i.alt.trim().to_owned(),
    }
}

fn attribute_record(a: &Attribute) -> AttributeRecord {
    AttributeRecord {
        name: a.name.clone(),
        value: match &a.value {
            AttributeValue::Text(t) => StoredValue::Text(t.clone()),
            AttributeValue::Number(n) => StoredValue::Number(*n),
            AttributeValue::Bool(b) => StoredValue::Bool(*b),
        },
    }
}

fn variant_record(v: &NewVariant) -> VariantRecord {
    VariantRecord {
        sku: v.sku.clone(),
        title: v.title.clone(),
        price_cents: v.price_cents,
        compare_at_cents: v.compare_at_cents,
        attributes: v.attributes.iter().map(attribute_record).collect(),
        weight_grams: v.weight_grams,
    }
}
