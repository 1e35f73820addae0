//! Catalog views: the product page, listing items and pages, the category tree and sellers.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use storefront_storage::records::{ArchivedProductRecord, ArchivedVariantRecord};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::{min_price, product_status, rfc3339, Attributes, Images, ProductRating, Rating, Ref};
use crate::domain::review::Histogram;
use crate::domain::{Currency, Id, Money};
use crate::service::catalog::taxonomy::{CategoryNode, CategoryTree, SellerSummary};

/// A variant (SKU) on a product page, with its live availability.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VariantView<'a> {
    sku: &'a str,
    title: &'a str,
    price: Money,
    compare_at_price: Option<Money>,
    attributes: Attributes<'a>,
    weight_grams: u32,
    available: i64,
    in_stock: bool,
}

/// The product detail document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductView<'a> {
    id: Id,
    external_id: Option<&'a str>,
    slug: &'a str,
    title: &'a str,
    description: &'a str,
    brand: Option<&'a str>,
    status: &'static str,
    price: Money,
    in_stock: bool,
    category: Option<Ref<'a>>,
    category_path: Vec<Ref<'a>>,
    seller: Option<Ref<'a>>,
    images: Images<'a>,
    attributes: Attributes<'a>,
    variants: Vec<VariantView<'a>>,
    rating: ProductRating,
    version: u64,
    created_at: String,
    updated_at: String,
}

impl<'a> ProductView<'a> {
    /// Builds the view; `available[i]` is the available stock of variant `i`.
    pub fn new(
        p: &'a ArchivedProductRecord,
        currency: Currency,
        available: &[i64],
        tree: &'a CategoryTree,
        seller: Option<&'a SellerSummary>,
        histogram: Histogram,
    ) -> ProductView<'a> {
        let path: Vec<Ref<'a>> = p
            .category_id
            .as_ref()
            .map(|c| {
                let mut ids = tree.path_up(Id::from_bytes(*c));
                ids.reverse();
                ids.into_iter().filter_map(|id| tree.get(id)).map(Ref::from).collect()
            })
            .unwrap_or_default();
        let variants: Vec<VariantView<'a>> = p
            .variants
            .iter()
            .zip(available.iter().copied().chain(std::iter::repeat(0)))
            .map(|(v, available): (&'a ArchivedVariantRecord, i64)| VariantView {
                sku: v.sku.as_str(),
                title: v.title.as_str(),
                price: Money::new(v.price_cents.to_native(), currency),
                compare_at_price: v.compare_at_cents.as_ref().map(|c| Money::new(c.to_native(), currency)),
                attributes: Attributes(&v.attributes),
                weight_grams: v.weight_grams.to_native(),
                available: available.max(0),
                in_stock: available > 0,
            })
            .collect();
        ProductView {
            id: Id::from_bytes(p.id),
            external_id: p.external_id.as_ref().map(|s| s.as_str()),
            slug: p.slug.as_str(),
            title: p.title.as_str(),
            description: p.description.as_str(),
            brand: p.brand.as_ref().map(|s| s.as_str()),
            status: product_status(&p.status).as_str(),
            price: Money::new(min_price(p), currency),
            in_stock: variants.iter().any(|v| v.in_stock),
            category: path.last().map(|c| Ref {
                id: c.id,
                slug: c.slug,
                name: c.name,
            }),
            category_path: path,
            seller: seller.map(Ref::from),
            images: Images(&p.images),
            attributes: Attributes(&p.attributes),
            variants,
            rating: ProductRating::new(Rating::of(p), histogram),
            version: p.version.to_native(),
            created_at: rfc3339(p.created_at_ms.to_native()),
            updated_at: rfc3339(p.updated_at_ms.to_native()),
        }
    }
}

/// A product in a listing page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingItem<'a> {
    id: Id,
    external_id: Option<&'a str>,
    slug: &'a str,
    title: &'a str,
    brand: Option<&'a str>,
    price: Money,
    image: Option<&'a str>,
    in_stock: bool,
    rating: Rating,
    category_id: Option<Id>,
    seller_id: Option<Id>,
    created_at: String,
}

impl<'a> ListingItem<'a> {
    /// Builds a listing item.
    pub fn new(p: &'a ArchivedProductRecord, currency: Currency, in_stock: bool) -> ListingItem<'a> {
        ListingItem {
            id: Id::from_bytes(p.id),
            external_id: p.external_id.as_ref().map(|s| s.as_str()),
            slug: p.slug.as_str(),
            title: p.title.as_str(),
            brand: p.brand.as_ref().map(|s| s.as_str()),
            price: Money::new(min_price(p), currency),
            image: p.images.first().map(|i| i.url.as_str()),
            in_stock,
            rating: Rating::of(p),
            category_id: p.category_id.as_ref().map(|c| Id::from_bytes(*c)),
            seller_id: p.seller_id.as_ref().map(|s| Id::from_bytes(*s)),
            created_at: rfc3339(p.created_at_ms.to_native()),
        }
    }
}

/// A category with its subtree.
pub struct CategoryTreeView<'a> {
    /// The tree.
    pub tree: &'a CategoryTree,
    /// The node, `None` for the whole forest.
    pub node: Option<&'a CategoryNode>,
}

impl Serialize for CategoryTreeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Node<'a>(&'a CategoryTree, &'a CategoryNode);
        impl Serialize for Node<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let (tree, node) = (self.0, self.1);
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("id", &node.id)?;
                map.serialize_entry("slug", &node.slug)?;
                map.serialize_entry("name", &node.name)?;
                map.serialize_entry("parent_id", &node.parent)?;
                map.serialize_entry("position", &node.position)?;
                map.serialize_entry("version", &node.version)?;
                let children: Vec<Node<'_>> = node
                    .children
                    .iter()
                    .filter_map(|c| tree.get(*c))
                    .map(|c| Node(tree, c))
                    .collect();
                map.serialize_entry("children", &children)?;
                map.end()
            }
        }
        match self.node {
            None => {
                let mut map = s.serialize_map(Some(1))?;
                let roots: Vec<Node<'_>> = self.tree.roots().map(|n| Node(self.tree, n)).collect();
                map.serialize_entry("items", &roots)?;
                map.end()
            }
            Some(node) => {
                let mut ids = self.tree.path_up(node.id);
                ids.reverse();
                let path: Vec<Ref<'_>> = ids
                    .into_iter()
                    .filter_map(|id| self.tree.get(id))
                    .map(Ref::from)
                    .collect();
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("category", &Node(self.tree, node))?;
                map.serialize_entry("path", &path)?;
                map.end()
            }
        }
    }
}

/// Seller document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SellerView<'a> {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: &'a str,
    /// Name.
    pub name: &'a str,
    /// Version.
    pub version: u64,
    /// Creation time.
    pub created_at: String,
}

impl<'a> From<&'a SellerSummary> for SellerView<'a> {
    fn from(s: &'a SellerSummary) -> Self {
        SellerView {
            id: s.id,
            slug: &s.slug,
            name: &s.name,
            version: s.version,
            created_at: rfc3339(s.created_at_ms),
        }
    }
}

impl utoipa::PartialSchema for CategoryTreeView<'_> {
    fn schema() -> RefOr<Schema> {
        let node = || {
            ObjectBuilder::new()
                .property("id", <Id as utoipa::PartialSchema>::schema())
                .property("slug", ObjectBuilder::new().schema_type(Type::String))
                .property("name", ObjectBuilder::new().schema_type(Type::String))
                .property(
                    "parent_id",
                    ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                            Type::String,
                            Type::Null,
                        ]))
                        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Uuid,
                        )))
                        .description(Some("The parent's id; null for a root")),
                )
                .property("position", ObjectBuilder::new().schema_type(Type::Integer))
                .property("version", ObjectBuilder::new().schema_type(Type::Integer))
                .property(
                    "children",
                    ArrayBuilder::new().items(ObjectBuilder::new().description(Some("a node, nested"))),
                )
        };
        ObjectBuilder::new()
            .description(Some(
                "The whole tree (`items`: the roots with their children), or one category \
                 (`category` with its subtree, and `path`: the breadcrumb from the root)",
            ))
            .property("items", ArrayBuilder::new().items(node()))
            .property("category", node())
            .property(
                "path",
                ArrayBuilder::new().items(<Ref as utoipa::PartialSchema>::schema()),
            )
            .into()
    }
}

impl utoipa::ToSchema for CategoryTreeView<'_> {}

/// A page of `GET /products`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingPage<'a> {
    /// The products on the page.
    pub items: Vec<ListingItem<'a>>,
    /// Cursor of the next page; absent on the last one.
    pub next_cursor: Option<String>,
    /// Products in the listing, when it is known exactly (no post-filter).
    pub total: Option<u64>,
    /// Page size.
    pub limit: usize,
}
