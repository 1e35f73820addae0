//! Rendered cart reads: the JSON of `GET /cart`, kept while everything it shows is unchanged,
//! so a repeated read costs a hash lookup and a few counter reads instead of a repricing.
//!
//! Repricing reads every line's product from storage, the promotions, the shipping zones and,
//! for a signed-in shopper, the default address, then serialises the result: about three times
//! a product page. Yet between two reads of a cart almost nothing it shows changes. A page is
//! current while all of these hold, each checked without a lock or a storage read:
//!
//! - the cart record is the one it was rendered from (every committed cart write replaces the
//!   in-memory record, so pointer identity is exact);
//! - the catalog's content generation (products, categories, sellers), the pricing generation
//!   (promotions, shipping zones) and, for a user priced at their default address, the users
//!   generation are those taken before rendering (see [`crate::service::generation`]);
//! - the clock is before the first instant a promotion starts or ends, or the cart expires;
//! - every line's available stock is the count the page shows.
//!
//! A cart with a coupon is repriced on every read: a coupon's limits count other shoppers'
//! orders, which no generation here follows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quick_cache::sync::Cache;
use storefront_storage::keys::CartKey;
use storefront_storage::records::CartRecord;

use super::{CartOwner, Carts, Destination};
use crate::service::view::CartView;
use crate::service::ServiceError;

/// A cart read as sent: the JSON body and the cart version (its `ETag`).
#[derive(Debug)]
pub struct CartPage {
    /// The `CartView` JSON.
    pub body: Bytes,
    /// The cart version.
    pub version: u64,
    basis: Option<Basis>,
}

/// What a kept page was rendered from.
#[derive(Debug)]
struct Basis {
    record: Arc<CartRecord>,
    generations: Generations,
    until_ms: i64,
    available: Box<[i64]>,
}

/// The generations a rendering read; `users` is 0 when the page does not depend on an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generations {
    catalog: u64,
    pricing: u64,
    users: u64,
}

/// How reads were answered, for `/metrics`.
#[derive(Debug, Default)]
pub(super) struct PageCounts {
    served: AtomicU64,
    rendered: AtomicU64,
}

/// Kept pages by cart and destination.
pub(super) type PageCache = Cache<(CartKey, String), Arc<CartPage>, PageWeighter>;

/// Weighs pages by their size, for a cache bounded in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PageWeighter;

impl quick_cache::Weighter<(CartKey, String), Arc<CartPage>> for PageWeighter {
    fn weight(&self, key: &(CartKey, String), page: &Arc<CartPage>) -> u64 {
        // MEM: a kept page also keeps its cart record alive, after the cart cache let it go.
        let record = page.basis.as_ref().map_or(0, |b| {
            b.record.lines.iter().map(|l| l.sku.len() + 8 + 96).sum::<usize>() + 160
        });
        (key.1.len() + page.body.len() + record + 160) as u64
    }
}

pub(super) fn page_cache(bytes: u64) -> Option<PageCache> {
    const TYPICAL_PAGE: u64 = 1_600;
    (bytes > 0).then(|| Cache::with_weighter((bytes / TYPICAL_PAGE).max(16) as usize, bytes, PageWeighter))
}

/// The part of a page's key that names where the cart is priced for; empty for the default.
fn destination_key(to: &Destination) -> String {
    if to.location.is_none() && to.method.is_none() {
        return String::new();
    }
    let (country, region) = to
        .location
        .as_ref()
        .map_or(("", ""), |l| (l.country.as_str(), l.region.as_str()));
    format!(
        "{}\0{country}\0{region}\0{}",
        u8::from(to.location.is_some()),
        to.method.as_deref().unwrap_or("")
    )
}

impl Carts {
    /// The generations a rendering for `owner` priced at `to` depends on, read now.
    pub(super) fn generations(&self, owner: &CartOwner, to: &Destination) -> Generations {
        let by_address = matches!(owner, CartOwner::User(_)) && to.location.is_none();
        Generations {
            catalog: self.catalog.content_generation(),
            pricing: self.pricing_generation.current(),
            users: if by_address { self.users_generation.current() } else { 0 },
        }
    }

    /// The kept page of a read of `owner`'s cart priced at `to`, when it is still current.
    /// Never reads storage: a cart that is not in memory is a miss.
    pub fn current_page(&self, owner: &CartOwner, to: &Destination) -> Option<Arc<CartPage>> {
        let pages = self.pages.as_ref()?;
        let key = Self::key_of(owner).ok()??;
        let record = self.cache.get(&key)?;
        let page = pages.get(&(key, destination_key(to)))?;
        let basis = page.basis.as_ref()?;
        let current = Arc::ptr_eq(&basis.record, &record)
            && basis.generations == self.generations(owner, to)
            && self.clock.now_ms() < basis.until_ms
            && record.lines.len() == basis.available.len()
            && record
                .lines
                .iter()
                .zip(basis.available.iter())
                .all(|(line, shown)| self.stock.available(&line.sku) == *shown);
        if !current {
            return None;
        }
        self.page_counts.served.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    /// Kept pages: (reads served from one, reads rendered, pages kept now).
    pub fn page_stats(&self) -> (u64, u64, u64) {
        (
            self.page_counts.served.load(Ordering::Relaxed),
            self.page_counts.rendered.load(Ordering::Relaxed),
            self.pages.as_ref().map_or(0, |p| p.len() as u64),
        )
    }

    /// Renders a read of `record` (none: an empty cart) and keeps the page when it can be
    /// kept. `generations` must have been read before the record and the catalog were.
    pub(super) fn render_page(
        &self,
        key: Option<CartKey>,
        record: Option<Arc<CartRecord>>,
        owner: &CartOwner,
        to: &Destination,
        generations: Generations,
    ) -> Result<Arc<CartPage>, ServiceError> {
        self.page_counts.rendered.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_ms();
        let view = self.view(record.as_deref(), owner, to)?;
        let body =
            Bytes::from(serde_json::to_vec(&view).map_err(|e| ServiceError::internal_from("serialising the cart", e))?);
        let keep = match (&self.pages, key, record) {
            (Some(pages), Some(key), Some(record)) if record.coupon.is_none() => Some((pages, key, record)),
            _ => None,
        };
        let Some((pages, key, record)) = keep else {
            return Ok(Arc::new(CartPage {
                body,
                version: view.version,
                basis: None,
            }));
        };
        let until_ms = self
            .coupons
            .promotions()
            .next_change_after(now)
            .map_or(record.expires_at_ms, |at| at.min(record.expires_at_ms));
        let page = Arc::new(CartPage {
            body,
            version: view.version,
            basis: Some(Basis {
                available: available_shown(&view),
                record,
                generations,
                until_ms,
            }),
        });
        pages.insert((key, destination_key(to)), page.clone());
        Ok(page)
    }

    /// Drops the default-destination page of a cart that was just written (others age out;
    /// none of them is current any more).
    pub(super) fn forget_page(&self, key: &CartKey) {
        if let Some(pages) = &self.pages {
            pages.remove(&(*key, String::new()));
        }
    }
}

fn available_shown(view: &CartView) -> Box<[i64]> {
    view.items.iter().map(|item| item.available).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pricing::TaxLocation;

    #[test]
    fn destinations_that_price_differently_have_different_keys() {
        let at = |country: Option<&str>, region: &str, method: Option<&str>| Destination {
            location: country.map(|c| TaxLocation {
                country: c.into(),
                region: region.into(),
            }),
            method: method.map(Into::into),
        };
        let keys = [
            destination_key(&at(None, "", None)),
            destination_key(&at(Some(""), "", None)),
            destination_key(&at(Some("US"), "", None)),
            destination_key(&at(Some("US"), "CA", None)),
            destination_key(&at(Some("US"), "CA", Some("express"))),
            destination_key(&at(None, "", Some("express"))),
        ];
        assert!(keys[0].is_empty());
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
    }
}
