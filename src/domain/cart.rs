//! Cart rules: how much a cart may hold, how many units each line holds in stock, and how a
//! guest cart merges into a user's at login. Pure functions over quantities; the cart service
//! applies them to its records.

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::FieldErrors;

/// When stock is held for a shopper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReserveOn {
    /// Adding to the cart holds stock for the hold lifetime, extended by cart activity.
    Cart,
    /// The cart only checks availability; stock is held at checkout.
    Checkout,
}

impl ReserveOn {
    /// Returns the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReserveOn::Cart => "cart",
            ReserveOn::Checkout => "checkout",
        }
    }
}

/// How a guest cart merges into the user's cart at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeStrategy {
    /// Add the quantities, capped at available stock.
    Sum,
    /// Keep the larger quantity per SKU.
    Max,
    /// The guest cart replaces the user's cart.
    Replace,
}

/// Body of `POST /cart/items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemInput {
    /// The SKU to add (required); adding a SKU already in the cart grows its line.
    pub sku: Option<String>,
    /// Units to add (required), 1 to `[cart] max_line_quantity`.
    pub quantity: Option<i64>,
}

/// Body of `POST /cart/coupon`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponCodeInput {
    /// The code (any case).
    pub code: Option<String>,
}

/// Body of `PATCH /cart/items/{item_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityInput {
    /// The line's new quantity (required), 1 to `[cart] max_line_quantity`.
    pub quantity: Option<i64>,
}

/// Size limits of a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLimits {
    /// Largest quantity of one line.
    pub max_line_quantity: i64,
    /// Most lines.
    pub max_lines: usize,
    /// Largest total quantity.
    pub max_total_quantity: i64,
}

impl CartLimits {
    /// Checks a requested quantity (1 to the line limit), recording what is wrong.
    pub fn check_quantity(&self, quantity: Option<i64>, errors: &mut FieldErrors) -> i64 {
        match quantity {
            None => errors.add("quantity", "required", "must be given"),
            Some(q) if q <= 0 => errors.add("quantity", "out_of_range", "must be at least 1"),
            Some(q) if q > self.max_line_quantity => errors.add(
                "quantity",
                "out_of_range",
                format!("must be at most {}", self.max_line_quantity),
            ),
            Some(q) => return q,
        }
        0
    }

    /// The quantity of a line after adding `quantity` units to it (`existing` is `None` for a
    /// new line in a cart of `lines` lines).
    pub fn after_add(&self, existing: Option<i64>, quantity: i64, lines: usize) -> Result<i64, FieldErrors> {
        let mut errors = FieldErrors::default();
        match existing {
            Some(held) if held + quantity > self.max_line_quantity => errors.add(
                "quantity",
                "out_of_range",
                format!(
                    "the line would hold {}; at most {} per line",
                    held + quantity,
                    self.max_line_quantity
                ),
            ),
            Some(held) => return Ok(held + quantity),
            None if lines >= self.max_lines => errors.add(
                "sku",
                "too_many_lines",
                format!("a cart holds at most {} lines", self.max_lines),
            ),
            None => return Ok(quantity),
        }
        Err(errors)
    }

    /// Checks the cart's total quantity.
    pub fn check_total(&self, total: i64) -> Result<(), FieldErrors> {
        if total <= self.max_total_quantity {
            return Ok(());
        }
        let mut errors = FieldErrors::default();
        errors.add(
            "quantity",
            "cart_too_large",
            format!("the cart would hold {total} units; at most {}", self.max_total_quantity),
        );
        Err(errors)
    }
}

/// One line as hold planning sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldRequest<'a> {
    /// The SKU.
    pub sku: &'a str,
    /// Units the shopper wants.
    pub quantity: i64,
    /// Units the line held before this change.
    pub held_before: i64,
    /// Units available to others right now (excluding what this line holds).
    pub available: i64,
    /// Whether the shopper touched this line (it must then be fully available).
    pub touched: bool,
}

/// Decides how many units a line holds after a change.
///
/// The line the shopper touched must be fully available (`InsufficientStock` otherwise);
/// other lines whose holds lapsed are held again when stock allows, and keep what they hold
/// when it does not (the cart flags them). With `ReserveOn::Checkout` nothing is held.
pub fn plan_hold(policy: ReserveOn, line: HoldRequest<'_>) -> Result<i64, DomainError> {
    let short = |available: i64| DomainError::InsufficientStock {
        sku: line.sku.to_owned(),
        requested: line.quantity,
        available: available.max(0),
    };
    match policy {
        ReserveOn::Checkout => {
            if line.touched && line.quantity > line.available {
                return Err(short(line.available));
            }
            Ok(0)
        }
        ReserveOn::Cart => {
            let could_hold = line.available + line.held_before;
            if line.touched && line.quantity > could_hold {
                return Err(short(could_hold));
            }
            Ok(if line.quantity <= could_hold {
                line.quantity
            } else {
                line.held_before.min(line.quantity)
            })
        }
    }
}

/// The quantity of a merged line: the user's line (if any) and the guest's, combined by the
/// strategy and capped at `cap` (what stock and the line limit allow), never below what the
/// user already had. `None` drops a new line that nothing of can be had.
pub fn merged_quantity(strategy: MergeStrategy, user: Option<i64>, guest: i64, cap: i64) -> Option<i64> {
    match user {
        Some(mine) => {
            let wanted = match strategy {
                MergeStrategy::Sum => mine + guest,
                MergeStrategy::Max | MergeStrategy::Replace => mine.max(guest),
            };
            Some(wanted.min(cap).max(mine))
        }
        None if cap > 0 => Some(guest.min(cap)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: CartLimits = CartLimits {
        max_line_quantity: 10,
        max_lines: 2,
        max_total_quantity: 15,
    };

    fn line(quantity: i64, held_before: i64, available: i64, touched: bool) -> HoldRequest<'static> {
        HoldRequest {
            sku: "A",
            quantity,
            held_before,
            available,
            touched,
        }
    }

    #[test]
    fn zero_and_oversized_quantities_are_rejected() {
        let mut errors = FieldErrors::default();
        LIMITS.check_quantity(Some(0), &mut errors);
        LIMITS.check_quantity(Some(11), &mut errors);
        LIMITS.check_quantity(None, &mut errors);
        assert_eq!(LIMITS.check_quantity(Some(3), &mut errors), 3);
        let codes: Vec<_> = errors.into_vec().into_iter().map(|e| e.code).collect();
        assert_eq!(codes, vec!["out_of_range", "out_of_range", "required"]);
    }

    #[test]
    fn adding_respects_the_line_and_line_count_limits() {
        assert_eq!(LIMITS.after_add(Some(4), 6, 1).unwrap(), 10);
        assert!(LIMITS.after_add(Some(4), 7, 1).is_err());
        assert_eq!(LIMITS.after_add(None, 3, 1).unwrap(), 3);
        assert!(LIMITS.after_add(None, 3, 2).is_err());
        assert!(LIMITS.check_total(15).is_ok());
        assert!(LIMITS.check_total(16).is_err());
    }

    #[test]
    fn a_touched_line_must_be_fully_available() {
        let err = plan_hold(ReserveOn::Cart, line(5, 1, 3, true)).unwrap_err();
        assert_eq!(
            err,
            DomainError::InsufficientStock {
                sku: "A".into(),
                requested: 5,
                available: 4
            }
        );
        assert_eq!(plan_hold(ReserveOn::Cart, line(4, 1, 3, true)), Ok(4));
        assert!(plan_hold(ReserveOn::Checkout, line(4, 0, 3, true)).is_err());
    }

    #[test]
    fn an_untouched_short_line_keeps_what_it_holds() {
        assert_eq!(plan_hold(ReserveOn::Cart, line(5, 2, 1, false)), Ok(2));
        assert_eq!(plan_hold(ReserveOn::Cart, line(5, 0, 9, false)), Ok(5));
        assert_eq!(plan_hold(ReserveOn::Checkout, line(5, 0, 0, false)), Ok(0));
    }

    #[test]
    fn merging_follows_the_strategy_and_never_takes_from_the_user() {
        assert_eq!(merged_quantity(MergeStrategy::Sum, Some(2), 3, 10), Some(5));
        assert_eq!(merged_quantity(MergeStrategy::Sum, Some(2), 3, 4), Some(4));
        assert_eq!(merged_quantity(MergeStrategy::Max, Some(2), 3, 10), Some(3));
        assert_eq!(merged_quantity(MergeStrategy::Sum, Some(6), 3, 4), Some(6));
        assert_eq!(merged_quantity(MergeStrategy::Sum, None, 3, 2), Some(2));
        assert_eq!(merged_quantity(MergeStrategy::Sum, None, 3, 0), None);
    }
}
