//! The price breakdown of a cart: subtotal, discount, shipping, tax and total, in integer
//! minor units with one explicit rounding rule.
//!
//! Rules, in order:
//! 1. `subtotal` = Σ unit price × quantity of purchasable lines.
//! 2. `discount` is clamped to `0..=subtotal`.
//! 3. `shipping` is what the chosen method costs (see [`super::shipping`]); 0 for an empty cart.
//! 4. `tax` = rate × (`subtotal − discount`, plus shipping when shipping is taxable), computed
//!    once on the whole order in basis points and rounded half up to the minor unit (so 0.5
//!    cent rounds to 1 cent). Per-line rounding would drift by up to a cent per line.
//! 5. `total` = `subtotal − discount + shipping + tax`.
//!
//! The tax rate is looked up by `COUNTRY-REGION` (e.g. `US-CA`), then `COUNTRY`, then the
//! default rate.

use std::collections::BTreeMap;

/// Tax rules from `[pricing]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PricingRules {
    /// Whether tax applies to shipping.
    pub shipping_taxable: bool,
    /// Rate when no region/country matches, in basis points (1/100 of a percent).
    pub default_tax_bps: u32,
    /// Rates by `COUNTRY` or `COUNTRY-REGION`, in basis points.
    pub tax_bps: BTreeMap<String, u32>,
}

/// Where the order ships, for the tax lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxLocation {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region, state or province code (may be empty).
    pub region: String,
}

/// The computed breakdown; all amounts in minor units of the store currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Breakdown {
    /// Sum of line totals.
    pub subtotal: i64,
    /// Discount applied (never more than the subtotal).
    pub discount: i64,
    /// Shipping charge.
    pub shipping: i64,
    /// Tax.
    pub tax: i64,
    /// What the shopper pays.
    pub total: i64,
    /// Tax rate used, in basis points.
    pub tax_rate_bps: u32,
}

impl PricingRules {
    /// The tax rate for a location and the key it matched (`None` = the default rate).
    pub fn tax_rate(&self, location: Option<&TaxLocation>) -> (u32, Option<String>) {
        if let Some(loc) = location {
            let country = loc.country.trim().to_ascii_uppercase();
            let region = loc.region.trim().to_ascii_uppercase();
            if !region.is_empty() {
                let key = format!("{country}-{region}");
                if let Some(rate) = self.tax_bps.get(&key) {
                    return (*rate, Some(key));
                }
            }
            if let Some(rate) = self.tax_bps.get(&country) {
                return (*rate, Some(country));
            }
        }
        (self.default_tax_bps, None)
    }

    /// Computes the breakdown for a subtotal, a requested discount and a shipping charge.
    pub fn breakdown(&self, subtotal: i64, discount: i64, shipping: i64, tax_rate_bps: u32) -> Breakdown {
        let subtotal = subtotal.max(0);
        let discount = discount.clamp(0, subtotal);
        let net = subtotal - discount;
        let shipping = shipping.max(0);
        let taxable = net + if self.shipping_taxable { shipping } else { 0 };
        let tax = round_half_up_bps(taxable, tax_rate_bps);
        Breakdown {
            subtotal,
            discount,
            shipping,
            tax,
            total: net + shipping + tax,
            tax_rate_bps,
        }
    }
}

/// `amount × bps / 10 000`, rounded half up, without overflow.
pub fn round_half_up_bps(amount: i64, bps: u32) -> i64 {
    let scaled = amount.max(0) as i128 * bps as i128;
    ((scaled + 5_000) / 10_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PricingRules {
        PricingRules {
            shipping_taxable: false,
            default_tax_bps: 0,
            tax_bps: [("US-CA".to_string(), 725), ("DE".to_string(), 1_900)].into(),
        }
    }

    fn at(country: &str, region: &str) -> TaxLocation {
        TaxLocation {
            country: country.into(),
            region: region.into(),
        }
    }

    #[test]
    fn tax_rounds_half_up_once_per_order() {
        // 7.25% of 1 234 = 89.465 → 89; of 1 000 = 72.5 → 73.
        assert_eq!(round_half_up_bps(1_234, 725), 89);
        assert_eq!(round_half_up_bps(1_000, 725), 73);
        assert_eq!(round_half_up_bps(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn total_adds_up_and_discount_is_clamped() {
        let r = rules();
        let (rate, key) = r.tax_rate(Some(&at("us", "ca")));
        assert_eq!((rate, key.as_deref()), (725, Some("US-CA")));
        let b = r.breakdown(2_000, 500, 599, rate);
        assert_eq!(b.tax, 109); // 7.25% of 1 500 = 108.75
        assert_eq!(b.total, 2_000 - 500 + 599 + 109);
        assert_eq!(r.breakdown(300, 1_000, 599, 0).discount, 300);
    }

    #[test]
    fn tax_rate_falls_back_from_region_to_country_to_default() {
        let r = rules();
        assert_eq!(r.tax_rate(Some(&at("DE", "BY"))).0, 1_900);
        assert_eq!(r.tax_rate(Some(&at("US", "NY"))).0, 0);
        assert_eq!(r.tax_rate(None), (0, None));
    }

    #[test]
    fn taxable_shipping_is_taxed() {
        let mut r = rules();
        r.shipping_taxable = true;
        let b = r.breakdown(1_000, 0, 599, 1_000);
        assert_eq!(b.tax, 160); // 10% of 1 000 + 599, half up
    }
}
