//! Coupon rules: what a coupon is (validated terms), whether it applies to a cart, and how
//! much it takes off each line.
//!
//! One rounding rule for every coupon: the discount is computed on the eligible lines'
//! total and rounded down to the minor unit (a percentage never gives away a fraction), then
//! capped by `max_discount` and by the eligible total; it is then spread over the eligible
//! lines in proportion to their totals by the largest-remainder method, so the lines' shares
//! always add up to the discount exactly and no line goes below zero.

use serde::Deserialize;

use super::order::allocate;
use super::FieldErrors;

/// The longest coupon code.
pub const MAX_CODE_LEN: usize = 40;

/// Body of `POST /admin/coupons` and `PATCH /admin/coupons/{code}` (where `code` is absent
/// and absent fields stay as they are).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponInput {
    /// The code shoppers type; case-insensitive, 1–40 letters, digits, `-` or `_`.
    pub code: Option<String>,
    /// `percent` or `fixed`.
    pub kind: Option<String>,
    /// Percent (1–100), or minor units for `fixed`.
    pub value: Option<i64>,
    /// A cap on the discount, minor units.
    pub max_discount: Option<i64>,
    /// The eligible subtotal the cart must reach, minor units.
    pub min_subtotal: Option<i64>,
    /// Valid from (RFC 3339).
    pub starts_at: Option<String>,
    /// Valid until, exclusive (RFC 3339).
    pub ends_at: Option<String>,
    /// Redemptions allowed in all.
    pub max_uses: Option<i64>,
    /// Redemptions allowed per customer (a signed-in user, or a guest's email).
    pub max_uses_per_customer: Option<i64>,
    /// Only these products (ids or slugs).
    pub products: Option<Vec<String>>,
    /// Only products in these categories or below them (ids or slugs).
    pub categories: Option<Vec<String>>,
    /// Only these sellers' products (ids or slugs).
    pub sellers: Option<Vec<String>>,
    /// Only a customer's first order (signed-in customers only).
    pub first_order_only: Option<bool>,
}

/// How a coupon takes money off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponKind {
    /// A percentage of the eligible lines.
    Percent,
    /// A fixed amount off the eligible lines.
    Fixed,
}

impl CouponKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CouponKind::Percent => "percent",
            CouponKind::Fixed => "fixed",
        }
    }
}

/// A coupon's money and time terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponTerms {
    /// Percent or fixed.
    pub kind: CouponKind,
    /// Percent (1–100) or minor units.
    pub value: i64,
    /// Cap on the discount.
    pub max_discount: Option<i64>,
    /// Eligible subtotal to reach.
    pub min_subtotal: i64,
    /// Valid from, Unix ms.
    pub starts_at_ms: Option<i64>,
    /// Valid until (exclusive), Unix ms.
    pub ends_at_ms: Option<i64>,
    /// Redemptions in all.
    pub max_uses: Option<i64>,
    /// Redemptions per customer.
    pub max_uses_per_customer: Option<i64>,
    /// First orders only.
    pub first_order_only: bool,
}

/// The normalized form of a code (upper case), or a field error.
pub fn normalize_code(code: &str, errors: &mut FieldErrors) -> String {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() {
        errors.add("code", "required", "must not be empty");
    } else if code.len() > MAX_CODE_LEN
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errors.add(
            "code",
            "invalid",
            format!("1 to {MAX_CODE_LEN} letters, digits, '-' or '_'"),
        );
    }
    code
}

/// Validates `input` over `base` (the coupon's current terms, for a patch), recording each
/// invalid field.
pub fn terms(input: &CouponInput, base: Option<&CouponTerms>, errors: &mut FieldErrors) -> Option<CouponTerms> {
    let kind = match (input.kind.as_deref(), base) {
        (Some("percent"), _) => CouponKind::Percent,
        (Some("fixed"), _) => CouponKind::Fixed,
        (Some(_), _) => {
            errors.add("kind", "invalid", "must be percent or fixed");
            CouponKind::Fixed
        }
        (None, Some(b)) => b.kind,
        (None, None) => {
            errors.add("kind", "required", "must be percent or fixed");
            CouponKind::Fixed
        }
    };
    let value = match input.value.or(base.map(|b| b.value)) {
        Some(v) if kind == CouponKind::Percent && !(1..=100).contains(&v) => {
            errors.add("value", "out_of_range", "a percentage from 1 to 100");
            v
        }
        Some(v) if v < 1 => {
            errors.add("value", "out_of_range", "at least 1 minor unit");
            v
        }
        Some(v) => v,
        None => {
            errors.add("value", "required", "must be given");
            0
        }
    };
    let positive = |field: &str, v: Option<i64>, errors: &mut FieldErrors| {
        if v.is_some_and(|v| v < 1) {
            errors.add(field, "out_of_range", "must be at least 1");
        }
        v
    };
    let max_discount = positive(
        "max_discount",
        input.max_discount.or(base.and_then(|b| b.max_discount)),
        errors,
    );
    let max_uses = positive("max_uses", input.max_uses.or(base.and_then(|b| b.max_uses)), errors);
    let max_uses_per_customer = positive(
        "max_uses_per_customer",
        input
            .max_uses_per_customer
            .or(base.and_then(|b| b.max_uses_per_customer)),
        errors,
    );
    let min_subtotal = input.min_subtotal.or(base.map(|b| b.min_subtotal)).unwrap_or(0);
    if min_subtotal < 0 {
        errors.add("min_subtotal", "out_of_range", "must not be negative");
    }
    let starts_at_ms =
        super::query::time("starts_at", input.starts_at.as_deref(), errors).or(base.and_then(|b| b.starts_at_ms));
    let ends_at_ms =
        super::query::time("ends_at", input.ends_at.as_deref(), errors).or(base.and_then(|b| b.ends_at_ms));
    if let (Some(s), Some(e)) = (starts_at_ms, ends_at_ms) {
        if e <= s {
            errors.add("ends_at", "out_of_range", "must be after starts_at");
        }
    }
    Some(CouponTerms {
        kind,
        value,
        max_discount,
        min_subtotal,
        starts_at_ms,
        ends_at_ms,
        max_uses,
        max_uses_per_customer,
        first_order_only: input
            .first_order_only
            .or(base.map(|b| b.first_order_only))
            .unwrap_or(false),
    })
}

/// Why a coupon does not apply; `code()` is the reason code clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Before its validity window.
    NotStarted,
    /// After its validity window.
    Expired,
    /// The eligible lines do not reach the minimum.
    MinSubtotal {
        /// The minimum, minor units.
        min: i64,
    },
    /// No line of the cart is eligible.
    NotApplicable,
    /// Every use is taken.
    Exhausted,
    /// This customer used it as often as allowed.
    CustomerLimit,
    /// Only for a signed-in customer's first order.
    FirstOrderOnly,
}

impl Rejection {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::NotStarted => "coupon_not_started",
            Rejection::Expired => "coupon_expired",
            Rejection::MinSubtotal { .. } => "coupon_min_subtotal",
            Rejection::NotApplicable => "coupon_not_applicable",
            Rejection::Exhausted => "coupon_exhausted",
            Rejection::CustomerLimit => "coupon_customer_limit",
            Rejection::FirstOrderOnly => "coupon_first_order_only",
        }
    }

    /// A sentence for people.
    pub fn message(self) -> String {
        match self {
            Rejection::NotStarted => "this coupon is not valid yet".into(),
            Rejection::Expired => "this coupon has expired".into(),
            Rejection::MinSubtotal { min } => format!("the eligible items must come to at least {min} minor units"),
            Rejection::NotApplicable => "no item in the cart is eligible for this coupon".into(),
            Rejection::Exhausted => "this coupon has been used up".into(),
            Rejection::CustomerLimit => "you have used this coupon as often as it allows".into(),
            Rejection::FirstOrderOnly => "this coupon is for a signed-in customer's first order".into(),
        }
    }
}

/// What is known of the coupon's use when it is evaluated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Redemptions in all.
    pub uses: i64,
    /// The customer's redemptions.
    pub customer_uses: i64,
    /// The customer's earlier orders; `None` for a guest.
    pub prior_orders: Option<u64>,
}

/// The discount of each line (`lines`: each line's total and whether the coupon covers it),
/// or why the coupon does not apply at `now_ms`.
pub fn discount(terms: &CouponTerms, lines: &[(i64, bool)], usage: Usage, now_ms: i64) -> Result<Vec<i64>, Rejection> {
    if terms.starts_at_ms.is_some_and(|s| now_ms < s) {
        return Err(Rejection::NotStarted);
    }
    if terms.ends_at_ms.is_some_and(|e| now_ms >= e) {
        return Err(Rejection::Expired);
    }
    if terms.first_order_only && usage.prior_orders != Some(0) {
        return Err(Rejection::FirstOrderOnly);
    }
    if terms.max_uses.is_some_and(|m| usage.uses >= m) {
        return Err(Rejection::Exhausted);
    }
    if terms.max_uses_per_customer.is_some_and(|m| usage.customer_uses >= m) {
        return Err(Rejection::CustomerLimit);
    }
    let weights: Vec<i64> = lines
        .iter()
        .map(|&(total, eligible)| if eligible { total.max(0) } else { 0 })
        .collect();
    let eligible: i64 = weights.iter().sum();
    if eligible == 0 {
        return Err(Rejection::NotApplicable);
    }
    if eligible < terms.min_subtotal {
        return Err(Rejection::MinSubtotal {
            min: terms.min_subtotal,
        });
    }
    let raw = match terms.kind {
        CouponKind::Percent => ((eligible as i128 * terms.value as i128) / 100) as i64,
        CouponKind::Fixed => terms.value,
    };
    let total = raw.min(terms.max_discount.unwrap_or(i64::MAX)).min(eligible);
    Ok(allocate(total, &weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn percent(value: i64) -> CouponTerms {
        CouponTerms {
            kind: CouponKind::Percent,
            value,
            max_discount: None,
            min_subtotal: 0,
            starts_at_ms: None,
            ends_at_ms: None,
            max_uses: None,
            max_uses_per_customer: None,
            first_order_only: false,
        }
    }

    #[test]
    fn a_percentage_rounds_down_and_is_spread_by_largest_remainder() {
        // 15% of 333 = 49.95 → 49; shares of 49 over 111 ×3 are 16.33 each → 17, 16, 16.
        let d = discount(
            &percent(15),
            &[(111, true), (111, true), (111, true)],
            Usage::default(),
            0,
        )
        .unwrap();
        assert_eq!(d, vec![17, 16, 16]);
    }

    #[test]
    fn only_eligible_lines_are_discounted_and_caps_hold() {
        let mut t = percent(50);
        t.max_discount = Some(300);
        let d = discount(&t, &[(1000, true), (5000, false)], Usage::default(), 0).unwrap();
        assert_eq!(d, vec![300, 0]);
        let fixed = CouponTerms {
            kind: CouponKind::Fixed,
            value: 5000,
            ..percent(1)
        };
        assert_eq!(
            discount(&fixed, &[(1200, true)], Usage::default(), 0).unwrap(),
            vec![1200]
        );
    }

    #[test]
    fn each_rule_has_its_reason() {
        let mut t = percent(10);
        t.starts_at_ms = Some(100);
        t.ends_at_ms = Some(200);
        let line = [(1000, true)];
        assert_eq!(discount(&t, &line, Usage::default(), 99), Err(Rejection::NotStarted));
        assert_eq!(discount(&t, &line, Usage::default(), 200), Err(Rejection::Expired));
        assert!(discount(&t, &line, Usage::default(), 150).is_ok());
        let mut t = percent(10);
        t.min_subtotal = 2000;
        assert_eq!(
            discount(&t, &line, Usage::default(), 0),
            Err(Rejection::MinSubtotal { min: 2000 })
        );
        assert_eq!(
            discount(&percent(10), &[(1000, false)], Usage::default(), 0),
            Err(Rejection::NotApplicable)
        );
        let mut t = percent(10);
        t.max_uses = Some(3);
        t.max_uses_per_customer = Some(1);
        let used = |uses, customer_uses| Usage {
            uses,
            customer_uses,
            prior_orders: None,
        };
        assert_eq!(discount(&t, &line, used(3, 0), 0), Err(Rejection::Exhausted));
        assert_eq!(discount(&t, &line, used(1, 1), 0), Err(Rejection::CustomerLimit));
        let mut t = percent(10);
        t.first_order_only = true;
        assert_eq!(discount(&t, &line, Usage::default(), 0), Err(Rejection::FirstOrderOnly));
        let first = Usage {
            prior_orders: Some(0),
            ..Usage::default()
        };
        assert!(discount(&t, &line, first, 0).is_ok());
    }

    #[test]
    fn terms_list_every_bad_field() {
        let mut errors = FieldErrors::default();
        let input = CouponInput {
            kind: Some("bogus".into()),
            max_uses: Some(0),
            starts_at: Some("2026-02-01T00:00:00Z".into()),
            ends_at: Some("2026-01-01T00:00:00Z".into()),
            ..CouponInput::default()
        };
        terms(&input, None, &mut errors);
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["kind", "value", "max_uses", "ends_at"]);
        let mut errors = FieldErrors::default();
        assert_eq!(normalize_code(" summer-10 ", &mut errors), "SUMMER-10");
        normalize_code("no spaces", &mut errors);
        assert_eq!(errors.into_vec().len(), 1);
    }

    proptest! {
        #[test]
        fn shares_add_up_and_stay_within_their_lines(
            weights in proptest::collection::vec(0i64..1_000_000, 1..12),
            fraction in 0.0f64..=1.0,
        ) {
            let sum: i64 = weights.iter().sum();
            let total = (sum as f64 * fraction) as i64;
            let shares = allocate(total, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), total.min(sum));
            for (s, w) in shares.iter().zip(&weights) {
                prop_assert!(*s >= 0 && s <= w);
            }
        }

        #[test]
        fn a_discount_never_exceeds_the_eligible_lines_or_its_cap(
            lines in proptest::collection::vec((1i64..100_000, any::<bool>()), 1..10),
            pct in 1i64..=100,
            cap in proptest::option::of(1i64..50_000),
        ) {
            let mut t = percent(pct);
            t.max_discount = cap;
            let eligible: i64 = lines.iter().filter(|l| l.1).map(|l| l.0).sum();
            match discount(&t, &lines, Usage::default(), 0) {
                Ok(d) => {
                    let total: i64 = d.iter().sum();
                    prop_assert_eq!(total, (eligible * pct / 100).min(cap.unwrap_or(i64::MAX)));
                    for (share, line) in d.iter().zip(&lines) {
                        let room = if line.1 { line.0 } else { 0 };
                        prop_assert!(*share <= room);
                    }
                }
                Err(r) => prop_assert_eq!(r, Rejection::NotApplicable),
            }
        }
    }
}
