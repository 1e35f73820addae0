//! Search views: a result page with its facets, and autocomplete suggestions.

use std::collections::HashMap;

use serde::Serialize;

use super::ListingItem;
use crate::domain::{Id, Money};

/// One category facet value.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CategoryFacet {
    /// The category's slug (the `category` filter value).
    pub value: String,
    /// The category's id.
    pub id: Option<Id>,
    /// Its name.
    pub name: String,
    /// Matching products in it (descendants included).
    pub count: u64,
}

/// A facet value with its count.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ValueCount {
    /// The value (as the filter takes it).
    pub value: String,
    /// Matching products with it.
    pub count: u64,
}

/// A price range with its count.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PriceBucket {
    /// Lowest price in the bucket.
    pub from: Money,
    /// Price the bucket ends below; absent for the last one.
    pub to: Option<Money>,
    /// Matching products in it.
    pub count: usize,
}

/// A rating threshold with its count.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RatingBucket {
    /// Lowest average rating.
    pub min: f64,
    /// Matching products rated at least that.
    pub count: usize,
}

/// Facet counts of a search.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Facets {
    /// Categories.
    pub category: Vec<CategoryFacet>,
    /// Brands (the most common spelling of each).
    pub brand: Vec<ValueCount>,
    /// Price ranges.
    pub price: Vec<PriceBucket>,
    /// Rating thresholds.
    pub rating: Vec<RatingBucket>,
    /// Values of the configured facet attributes, by attribute name.
    pub attributes: HashMap<String, Vec<ValueCount>>,
}

/// A page of `GET /search`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchPage<'a> {
    /// The matching products on this page.
    pub items: Vec<ListingItem<'a>>,
    /// Matching products in all.
    pub total: usize,
    /// This page's number, from 1.
    pub page: usize,
    /// Page size.
    pub limit: usize,
    /// The next page's number; absent on the last page.
    pub next_page: Option<usize>,
    /// Facet counts over all matches.
    pub facets: Facets,
    /// Time spent in the index, milliseconds.
    pub took_ms: f64,
}

/// One autocomplete suggestion.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct SuggestionView<'a> {
    /// Text to show.
    pub text: &'a str,
    /// `product`, `brand` or `category`.
    pub kind: &'static str,
    /// Product or category slug (brands have none).
    pub slug: Option<&'a str>,
}

/// The answer of `GET /search/suggest`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Suggestions<'a> {
    /// Suggestions, best first.
    pub items: Vec<SuggestionView<'a>>,
    /// Time spent, milliseconds.
    pub took_ms: f64,
}
