//! Automatic promotions (no code): a percentage off, or "buy X, get Y free", on the lines
//! they cover, and how they stack with a coupon.
//!
//! Each line gets the one promotion that takes the most off it. With the default stacking
//! ([`Stacking::Combine`]) a coupon then applies to what the lines cost after their
//! promotions; with [`Stacking::Exclusive`] a cart whose coupon applies gets no automatic
//! promotion. Amounts round down to the minor unit, like coupons.

use serde::{Deserialize, Serialize};

use super::FieldErrors;

/// How promotions and a coupon combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stacking {
    /// The best promotion per line, then one coupon on what is left.
    #[default]
    Combine,
    /// A coupon that applies replaces the promotions.
    Exclusive,
}

/// Body of `POST /admin/promotions` and `PATCH /admin/promotions/{id}` (absent fields stay).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionInput {
    /// What shoppers see on the line, e.g. "10% off audio" (1–80 characters).
    pub name: Option<String>,
    /// `percent` or `buy_x_get_y`.
    pub kind: Option<String>,
    /// For `percent`: 1–100.
    pub percent: Option<i64>,
    /// For `buy_x_get_y`: units bought (at least 1)...
    pub buy: Option<i64>,
    /// ...for this many more free (at least 1), of the same SKU.
    pub get: Option<i64>,
    /// Only these products (ids or slugs).
    pub products: Option<Vec<String>>,
    /// Only products in these categories or below them (ids or slugs).
    pub categories: Option<Vec<String>>,
    /// Only these sellers' products (ids or slugs).
    pub sellers: Option<Vec<String>>,
    /// Valid from (RFC 3339).
    pub starts_at: Option<String>,
    /// Valid until, exclusive (RFC 3339).
    pub ends_at: Option<String>,
    /// Switched on (default true).
    pub active: Option<bool>,
}

/// What a promotion takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionRule {
    /// A percentage of the line.
    Percent(i64),
    /// Of every `buy + get` units of the line, `get` are free.
    BuyGet {
        /// Units paid.
        buy: i64,
        /// Units free.
        get: i64,
    },
}

impl PromotionRule {
    /// What it takes off a line of `quantity` units at `unit_price`.
    pub fn discount(self, unit_price: i64, quantity: i64) -> i64 {
        let total = unit_price * quantity;
        match self {
            PromotionRule::Percent(p) => ((total as i128 * p as i128) / 100) as i64,
            PromotionRule::BuyGet { buy, get } => (quantity / (buy + get)) * get * unit_price,
        }
        .clamp(0, total.max(0))
    }
}

/// Validates the rule of `input` over `base` (a patch's current rule), recording bad fields.
pub fn rule(input: &PromotionInput, base: Option<PromotionRule>, errors: &mut FieldErrors) -> PromotionRule {
    let kind = input.kind.as_deref().or(match base {
        Some(PromotionRule::Percent(_)) => Some("percent"),
        Some(PromotionRule::BuyGet { .. }) => Some("buy_x_get_y"),
        None => None,
    });
    match kind {
        Some("percent") => {
            let p = input.percent.or(match base {
                Some(PromotionRule::Percent(p)) => Some(p),
                _ => None,
            });
            match p {
                Some(p @ 1..=100) => PromotionRule::Percent(p),
                Some(_) => {
                    errors.add("percent", "out_of_range", "a percentage from 1 to 100");
                    PromotionRule::Percent(1)
                }
                None => {
                    errors.add("percent", "required", "must be given for a percent promotion");
                    PromotionRule::Percent(1)
                }
            }
        }
        Some("buy_x_get_y") => {
            let (b0, g0) = match base {
                Some(PromotionRule::BuyGet { buy, get }) => (Some(buy), Some(get)),
                _ => (None, None),
            };
            let mut count = |field: &str, v: Option<i64>| match v {
                Some(n @ 1..=1000) => n,
                Some(_) => {
                    errors.add(field, "out_of_range", "from 1 to 1000");
                    1
                }
                None => {
                    errors.add(field, "required", "must be given for buy_x_get_y");
                    1
                }
            };
            let buy = count("buy", input.buy.or(b0));
            let get = count("get", input.get.or(g0));
            PromotionRule::BuyGet { buy, get }
        }
        Some(_) => {
            errors.add("kind", "invalid", "must be percent or buy_x_get_y");
            PromotionRule::Percent(1)
        }
        None => {
            errors.add("kind", "required", "must be percent or buy_x_get_y");
            PromotionRule::Percent(1)
        }
    }
}

/// The index of the promotion (of `candidates`, each a rule) that takes the most off a line,
/// and how much; the first on ties.
pub fn best(candidates: &[PromotionRule], unit_price: i64, quantity: i64) -> Option<(usize, i64)> {
    candidates
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.discount(unit_price, quantity)))
        .filter(|(_, d)| *d > 0)
        .fold(None, |best: Option<(usize, i64)>, (i, d)| match best {
            Some((_, b)) if b >= d => best,
            _ => Some((i, d)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buy_two_get_one_frees_one_unit_in_three() {
        let r = PromotionRule::BuyGet { buy: 2, get: 1 };
        assert_eq!(r.discount(500, 2), 0);
        assert_eq!(r.discount(500, 3), 500);
        assert_eq!(r.discount(500, 7), 1000);
        assert_eq!(PromotionRule::Percent(15).discount(333, 1), 49, "rounded down");
    }

    #[test]
    fn the_best_promotion_wins_and_ties_go_to_the_first() {
        let rules = [
            PromotionRule::Percent(10),
            PromotionRule::BuyGet { buy: 2, get: 1 },
            PromotionRule::Percent(30),
        ];
        assert_eq!(best(&rules, 1000, 3), Some((1, 1000)));
        assert_eq!(best(&rules, 1000, 1), Some((2, 300)));
        assert_eq!(
            best(&[PromotionRule::Percent(10), PromotionRule::Percent(10)], 1000, 1),
            Some((0, 100))
        );
        assert_eq!(best(&[PromotionRule::BuyGet { buy: 5, get: 1 }], 1000, 2), None);
    }

    #[test]
    fn rules_list_every_bad_field() {
        let mut errors = FieldErrors::default();
        rule(
            &PromotionInput {
                kind: Some("buy_x_get_y".into()),
                buy: Some(0),
                ..PromotionInput::default()
            },
            None,
            &mut errors,
        );
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["buy", "get"]);
    }

    proptest! {
        #[test]
        fn a_promotion_never_takes_more_than_the_line(
            price in 0i64..100_000, quantity in 1i64..500, pct in 1i64..=100, buy in 1i64..10, get in 1i64..10,
        ) {
            for r in [PromotionRule::Percent(pct), PromotionRule::BuyGet { buy, get }] {
                let d = r.discount(price, quantity);
                prop_assert!(d >= 0 && d <= price * quantity);
            }
        }
    }
}
