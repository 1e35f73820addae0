//! An in-memory snapshot of the category tree and of sellers, rebuilt after each write to them.
//!
//! Both are small and read on every listing and product render, so readers get an `Arc`
//! snapshot through `ArcSwap` without locking.

use std::collections::HashMap;

use storefront_storage::records::{CategoryRecord, SellerRecord};
use storefront_storage::Owned;

use storefront_index::relevance::name_key;

use crate::domain::Id;

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
