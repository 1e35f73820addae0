//! Categories and sellers: their writes, and the in-memory snapshot of both.
//!
//! The tree and the seller directory are small and read on every listing and product render,
//! so readers get an `Arc` snapshot through `ArcSwap` without locking; every write to them
//! rebuilds the snapshot after its batch is durable. Moving a category rewrites the listing
//! entries of every product below it in the same batch.

use std::collections::HashMap;
use std::sync::Arc;

use storefront_index::relevance::name_key;
use storefront_storage::cf::CF_SLUGS;
use storefront_storage::keys::{self, SlugKind};
use storefront_storage::listing::{self, Scope};
use storefront_storage::records::{CategoryRecord, ChangeOp, EntityKind, ProductRecord, SellerRecord};
use storefront_storage::{Owned, Txn};

use super::listing::facts;
use super::{check_version, tags, Catalog, Invalidation};
use crate::domain::catalog::{self as rules, CategoryInput, SellerInput};
use crate::domain::error::DomainError;
use crate::domain::{FieldErrors, Id, Slug};
use crate::service::auth::Actor;
use crate::service::{blocking, ServiceError};

/// A category node.
#[derive(Debug, Clone)]
pub struct CategoryNode {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Parent.
    pub parent: Option<Id>,
    /// Position among siblings.
    pub position: i32,
    /// Children sorted by position then name.
    pub children: Vec<Id>,
    /// Record version.
    pub version: u64,
}

/// The category tree.
#[derive(Debug, Default)]
pub struct CategoryTree {
    nodes: HashMap<Id, CategoryNode>,
    by_slug: HashMap<String, Id>,
    /// Ids by [`name_key`] of the name.
    by_name: HashMap<String, Vec<Id>>,
    roots: Vec<Id>,
}

impl CategoryTree {
    /// Builds the tree from stored records.
    pub fn build(records: &[Owned<CategoryRecord>]) -> CategoryTree {
        let mut tree = CategoryTree::default();
        for owned in records {
            let r = owned.archived();
            let id = Id::from_bytes(r.id);
            tree.by_slug.insert(r.slug.to_string(), id);
            tree.by_name.entry(name_key(&r.name)).or_default().push(id);
            tree.nodes.insert(
                id,
                CategoryNode {
                    id,
                    slug: r.slug.to_string(),
                    name: r.name.to_string(),
                    parent: r.parent_id.as_ref().map(|p| Id::from_bytes(*p)),
                    position: r.position.to_native(),
                    children: Vec::new(),
                    version: r.version.to_native(),
                },
            );
        }
        let links: Vec<(Id, Option<Id>)> = tree.nodes.values().map(|n| (n.id, n.parent)).collect();
        for (id, parent) in links {
            match parent.filter(|p| tree.nodes.contains_key(p)) {
                Some(p) => tree.nodes.get_mut(&p).expect("checked").children.push(id),
                None => tree.roots.push(id),
            }
        }
        let order = |tree: &CategoryTree, ids: &mut Vec<Id>| {
            ids.sort_by(|a, b| {
                let (a, b) = (&tree.nodes[a], &tree.nodes[b]);
                (a.position, &a.name).cmp(&(b.position, &b.name))
            })
        };
        let mut roots = std::mem::take(&mut tree.roots);
        order(&tree, &mut roots);
        tree.roots = roots;
        let ids: Vec<Id> = tree.nodes.keys().copied().collect();
        for id in ids {
            let mut children = std::mem::take(&mut tree.nodes.get_mut(&id).expect("present").children);
            order(&tree, &mut children);
            tree.nodes.get_mut(&id).expect("present").children = children;
        }
        tree
    }

    /// Resolves an id or slug.
    pub fn resolve(&self, key: &str) -> Option<&CategoryNode> {
        match Id::parse(key) {
            Some(id) => self.nodes.get(&id),
            None => self.by_slug.get(key).and_then(|id| self.nodes.get(id)),
        }
    }

    /// The one category whose name is `text` up to case, punctuation and plurals ("cases" names
    /// "Cases"); `None` when no category or several have that name.
    pub fn named(&self, text: &str) -> Option<&CategoryNode> {
        match self.by_name.get(&name_key(text))?.as_slice() {
            [id] => self.nodes.get(id),
            _ => None,
        }
    }

    /// The slugs from the root down to `id`, as the search index's facet path (`/audio/headphones`).
    pub fn slug_path(&self, id: Id) -> String {
        let mut path = String::new();
        for ancestor in self.path_up(id).into_iter().rev() {
            if let Some(node) = self.nodes.get(&ancestor) {
                path.push('/');
                path.push_str(&node.slug);
            }
        }
        path
    }

    /// Returns a node.
    pub fn get(&self, id: Id) -> Option<&CategoryNode> {
        self.nodes.get(&id)
    }

    /// Returns the root nodes in display order.
    pub fn roots(&self) -> impl Iterator<Item = &CategoryNode> {
        self.roots.iter().filter_map(|id| self.nodes.get(id))
    }

    /// Returns `id` followed by its ancestors up to the root. Cycles are cut defensively.
    pub fn path_up(&self, id: Id) -> Vec<Id> {
        let mut path = Vec::new();
        let mut current = Some(id);
        while let Some(c) = current {
            if path.contains(&c) || path.len() > 64 {
                break;
            }
            let Some(node) = self.nodes.get(&c) else {
                break;
            };
            path.push(c);
            current = node.parent;
        }
        path
    }

    /// Returns whether `ancestor` is `id` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: Id, id: Id) -> bool {
        self.path_up(id).contains(&ancestor)
    }

    /// Finds a child of `parent` (or a root) by case-insensitive name.
    pub fn child_named(&self, parent: Option<Id>, name: &str) -> Option<&CategoryNode> {
        let candidates: &[Id] = match parent {
            Some(p) => &self.nodes.get(&p)?.children,
            None => &self.roots,
        };
        candidates
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// Returns the number of categories.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Returns whether there are no categories.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A seller summary.
#[derive(Debug, Clone)]
pub struct SellerSummary {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// Creation time, Unix ms.
    pub created_at_ms: i64,
}

/// All sellers, by id and slug.
#[derive(Debug, Default)]
pub struct SellerDirectory {
    by_id: HashMap<Id, SellerSummary>,
    by_slug: HashMap<String, Id>,
}

impl SellerDirectory {
    /// Builds the directory from stored records.
    pub fn build(records: &[Owned<SellerRecord>]) -> SellerDirectory {
        let mut dir = SellerDirectory::default();
        for owned in records {
            let r = owned.archived();
            let id = Id::from_bytes(r.id);
            dir.by_slug.insert(r.slug.to_string(), id);
            dir.by_id.insert(
                id,
                SellerSummary {
                    id,
                    slug: r.slug.to_string(),
                    name: r.name.to_string(),
                    version: r.version.to_native(),
                    created_at_ms: r.created_at_ms.to_native(),
                },
            );
        }
        dir
    }

    /// Resolves an id or slug.
    pub fn resolve(&self, key: &str) -> Option<&SellerSummary> {
        match Id::parse(key) {
            Some(id) => self.by_id.get(&id),
            None => self.by_slug.get(key).and_then(|id| self.by_id.get(id)),
        }
    }

    /// Returns a seller.
    pub fn get(&self, id: Id) -> Option<&SellerSummary> {
        self.by_id.get(&id)
    }
}

/// The slug namespace's wire name, for errors.
fn kind_name(kind: SlugKind) -> &'static str {
    match kind {
        SlugKind::Product => "product",
        SlugKind::Category => "category",
        SlugKind::Seller => "seller",
    }
}

/// Claims a category or seller slug for `id`: the given one when it is free (409
/// `slug_taken` otherwise), or one derived from `name`, made unique with the id's tail.
fn claim_slug(
    txn: &mut Txn<'_>,
    kind: SlugKind,
    given: Option<&Slug>,
    name: &str,
    id: Id,
) -> Result<String, ServiceError> {
    let slug = match given {
        Some(s) => {
            ensure_slug_free(txn, kind, s.as_str())?;
            s.as_str().to_owned()
        }
        None => {
            let base = Slug::derive(name, 80).unwrap_or_else(|| Slug::parse("item").expect("valid"));
            if txn.get_raw(CF_SLUGS, &keys::slug(kind, base.as_str()))?.is_none() {
                base.as_str().to_owned()
            } else {
                let hex = id.to_string().replace('-', "");
                base.with_suffix(&hex[hex.len() - 10..]).as_str().to_owned()
            }
        }
    };
    txn.put_raw(CF_SLUGS, &keys::slug(kind, &slug), &id.to_bytes());
    Ok(slug)
}

/// Fails with 409 `slug_taken` when a category or seller slug is already used.
fn ensure_slug_free(txn: &Txn<'_>, kind: SlugKind, slug: &str) -> Result<(), ServiceError> {
    if txn.get_raw(CF_SLUGS, &keys::slug(kind, slug))?.is_some() {
        return Err(DomainError::SlugTaken {
            kind: kind_name(kind),
            slug: slug.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// Checks a category or seller name and slug.
fn check_name_and_slug(name: Option<&str>, slug: Option<&str>, errors: &mut FieldErrors) -> (String, Option<Slug>) {
    let name = name.unwrap_or("").trim().to_owned();
    errors.text("name", &name, true, 100);
    (name, rules::check_slug(slug, errors))
}

impl Catalog {
    /// Creates a category.
    pub async fn create_category(self: &Arc<Self>, actor: Actor, input: CategoryInput) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || this.create_category_sync(&input)).await
    }

    fn create_category_sync(&self, input: &CategoryInput) -> Result<Id, ServiceError> {
        let mut errors = FieldErrors::default();
        let (name, slug) = check_name_and_slug(input.name.as_deref(), input.slug.as_deref(), &mut errors);
        let tree = self.categories.load();
        let parent = match input.parent.as_ref().and_then(|p| p.as_deref()) {
            Some(p) => match tree.resolve(p) {
                Some(n) => Some(n.id),
                None => {
                    errors.add("parent", "unknown", "no such category");
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let id = Id::new();
        let inv = self.store.transact(|txn| -> Result<_, ServiceError> {
            let record = CategoryRecord {
                id: id.to_bytes(),
                version: 1,
                slug: claim_slug(txn, SlugKind::Category, slug.as_ref(), &name, id)?,
                name: name.clone(),
                parent_id: parent.map(Id::to_bytes),
                position: input.position.unwrap_or(0),
                created_at_ms: txn.now_ms(),
                updated_at_ms: txn.now_ms(),
            };
            txn.put(&record.id, &record)?;
            record_category_change(txn, id);
            Ok(Invalidation {
                categories: true,
                ..Invalidation::default()
            })
        })?;
        self.apply(inv)?;
        Ok(id)
    }

    /// Creates a category (or returns the existing child with that name) for each name of a
    /// path from the root, returning the leaf. Used by imports.
    pub fn ensure_category_path(&self, names: &[String]) -> Result<Option<Id>, ServiceError> {
        let mut parent: Option<Id> = None;
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let existing = self.categories.load().child_named(parent, name).map(|n| n.id);
            parent = Some(match existing {
                Some(id) => id,
                None => {
                    let input = CategoryInput {
                        name: Some(name.to_owned()),
                        slug: None,
                        parent: Some(parent.map(|p| p.to_string())),
                        position: None,
                    };
                    self.create_category_sync(&input)?
                }
            });
        }
        Ok(parent)
    }

    /// Updates a category. Moving it re-indexes the listing entries of every product below it.
    pub async fn update_category(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        input: CategoryInput,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        if let Some(name) = &input.name {
            errors.text("name", name, true, 100);
        }
        let slug = rules::check_slug(input.slug.as_deref(), &mut errors);
        let tree = self.categories.load_full();
        let node = tree
            .resolve(&key)
            .ok_or(ServiceError::NotFound { kind: "category" })?
            .clone();
        let parent = match &input.parent {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => match tree.resolve(p) {
                Some(n) if tree.is_ancestor_or_self(node.id, n.id) => {
                    errors.add("parent", "cycle", "a category cannot move below itself");
                    None
                }
                Some(n) => Some(Some(n.id)),
                None => {
                    errors.add("parent", "unknown", "no such category");
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let inv = this.store.transact(|txn| -> Result<_, ServiceError> {
                let old = txn
                    .get::<CategoryRecord>(&node.id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "category" })?
                    .to_native();
                check_version(old.version, if_match)?;
                let mut new = old.clone();
                if let Some(n) = &input.name {
                    new.name = n.trim().to_owned();
                }
                if let Some(s) = &slug {
                    if s.as_str() != old.slug {
                        txn.delete(CF_SLUGS, &keys::slug(SlugKind::Category, &old.slug));
                        new.slug = claim_slug(txn, SlugKind::Category, Some(s), &new.name, node.id)?;
                    }
                }
                if let Some(p) = input.position {
                    new.position = p;
                }
                if let Some(p) = parent {
                    new.parent_id = p.map(Id::to_bytes);
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                txn.put(&new.id, &new)?;
                let mut inv = Invalidation {
                    categories: true,
                    ..Invalidation::default()
                };
                if new.parent_id != old.parent_id {
                    inv.merge(this.reparent_products(txn, &tree, &old, &new)?);
                }
                record_category_change(txn, node.id);
                Ok(inv)
            })?;
            this.apply(inv)?;
            Ok(node.id)
        })
        .await
    }

    /// Rewrites listing entries of all products under a moved category.
    fn reparent_products(
        &self,
        txn: &mut Txn<'_>,
        tree: &CategoryTree,
        old: &CategoryRecord,
        new: &CategoryRecord,
    ) -> Result<Invalidation, ServiceError> {
        let path_of = |parent: Option<[u8; 16]>| -> Vec<[u8; 16]> {
            parent
                .map(|p| tree.path_up(Id::from_bytes(p)).into_iter().map(Id::to_bytes).collect())
                .unwrap_or_default()
        };
        let (old_parent_path, new_parent_path) = (path_of(old.parent_id), path_of(new.parent_id));
        let mut inv = Invalidation::default();
        for pid in &self.store.listing_ids(Scope::Category(old.id))? {
            let Some(product) = txn.get::<ProductRecord>(pid)? else {
                continue;
            };
            let product = product.to_native();
            let Some(old_facts) = facts(txn, &product, tree, &self.stock)? else {
                continue;
            };
            let mut new_facts = old_facts.clone();
            // The path is [leaf .. moved category, old ancestors..]: swap the ancestor tail.
            let keep = old_facts.category_path.len() - old_parent_path.len();
            new_facts.category_path.truncate(keep);
            new_facts.category_path.extend_from_slice(&new_parent_path);
            txn.update_listing(Some(&old_facts), Some(&new_facts));
            inv.scopes.extend(listing::scopes_of(&old_facts));
            inv.scopes.extend(listing::scopes_of(&new_facts));
            // Its old and new ancestors' listings gain or lose it.
            let mut change_tags = vec![tags::product_id(Id::from_bytes(*pid))];
            change_tags.extend(tags::lists(&old_facts));
            change_tags.extend(tags::lists(&new_facts));
            tags::dedup(&mut change_tags);
            txn.record_change(EntityKind::Product, ChangeOp::Upsert, pid, change_tags);
        }
        Ok(inv)
    }

    /// Creates a seller.
    pub async fn create_seller(self: &Arc<Self>, actor: Actor, input: SellerInput) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        let (name, slug) = check_name_and_slug(input.name.as_deref(), input.slug.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let id = Id::new();
            let inv = this.store.transact(|txn| -> Result<_, ServiceError> {
                let record = SellerRecord {
                    id: id.to_bytes(),
                    version: 1,
                    slug: claim_slug(txn, SlugKind::Seller, slug.as_ref(), &name, id)?,
                    name: name.clone(),
                    created_at_ms: txn.now_ms(),
                    updated_at_ms: txn.now_ms(),
                };
                txn.put(&record.id, &record)?;
                txn.record_change(EntityKind::Seller, ChangeOp::Upsert, &record.id, vec![tags::seller(id)]);
                Ok(Invalidation {
                    sellers: true,
                    ..Invalidation::default()
                })
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }
}

fn record_category_change(txn: &mut Txn<'_>, id: Id) {
    txn.record_change(
        EntityKind::Category,
        ChangeOp::Upsert,
        &id.to_bytes(),
        // Product pages show the path's names; search facets and suggestions show them too.
        vec![
            tags::CATEGORIES.into(),
            tags::category(id),
            tags::SEARCH.into(),
            tags::SUGGEST.into(),
        ],
    );
}
