//! Product facts: the rules that decide what shoppers see of a product, wherever it is shown
//! (product page, listing, search, cart, checkout).

use super::catalog::Status;

/// Whether shoppers may see and buy the product.
pub fn is_visible(status: Status) -> bool {
    status == Status::Published
}

/// The price a product is listed at: its cheapest variant's (0 without variants).
pub fn lowest_price(prices: impl IntoIterator<Item = i64>) -> i64 {
    prices.into_iter().min().unwrap_or(0)
}

/// Whether any variant can be bought now.
pub fn in_stock(available: impl IntoIterator<Item = i64>) -> bool {
    available.into_iter().any(|a| a > 0)
}

/// The ratings of a product, kept as a sum and a count so a new rating is an addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RatingSummary {
    /// Sum of all ratings (each 1–5).
    pub sum: u64,
    /// Number of ratings.
    pub count: u32,
}

impl RatingSummary {
    /// The mean rating rounded to two decimals, `None` when unrated.
    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum as f64 / self.count as f64 * 100.0).round() / 100.0)
    }

    /// The mean rating × 100, truncated (0 when unrated): the integer that listings sort and
    /// search filters by, so both agree on a product's place.
    pub fn x100(&self) -> u64 {
        (self.sum * 100).checked_div(self.count as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_published_products_are_visible() {
        assert!(is_visible(Status::Published));
        assert!(!is_visible(Status::Draft));
        assert!(!is_visible(Status::Archived));
    }

    #[test]
    fn the_listed_price_is_the_cheapest_variant() {
        assert_eq!(lowest_price([1999, 999, 4999]), 999);
        assert_eq!(lowest_price([]), 0);
    }

    #[test]
    fn a_product_is_in_stock_when_any_variant_is() {
        assert!(in_stock([0, 0, 3]));
        assert!(!in_stock([0, -1]));
    }

    #[test]
    fn ratings_average_to_two_decimals_and_sort_by_hundredths() {
        let r = RatingSummary { sum: 14, count: 3 };
        assert_eq!(r.average(), Some(4.67));
        assert_eq!(r.x100(), 466);
        assert_eq!(RatingSummary::default().average(), None);
        assert_eq!(RatingSummary::default().x100(), 0);
    }
}
