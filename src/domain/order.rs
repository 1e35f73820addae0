//! Orders: the states an order and its fulfilments go through, the one table of transitions,
//! how the order's status follows from its fulfilments and refunds, and how a total is split
//! across lines without losing a cent.
//!
//! An order lives in one of four phases: waiting for its payment (`pending_payment`), failed
//! (`payment_failed`), cancelled, or placed. A placed order has one fulfilment per seller, each
//! moving `pending → processing → shipped → delivered`; the order shows the least advanced of
//! them (`confirmed` while none has started), unless refunds say otherwise.

use serde::{Deserialize, Serialize};

/// The status an order shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, stock held, the payment not settled yet.
    PendingPayment,
    /// The payment was declined or never completed; the stock was released.
    PaymentFailed,
    /// Placed and paid (or, for manual payments, awaiting the payment); nothing shipped yet.
    Confirmed,
    /// A seller is preparing a fulfilment.
    Processing,
    /// Every fulfilment is on its way.
    Shipped,
    /// Every fulfilment arrived.
    Delivered,
    /// Cancelled before shipment: stock restocked or released, payment voided or refunded.
    Cancelled,
    /// Part of the captured amount was refunded.
    PartiallyRefunded,
    /// The whole captured amount was refunded.
    Refunded,
}

impl OrderStatus {
    /// Every status, in the order of the lifecycle.
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::PendingPayment,
        OrderStatus::PaymentFailed,
        OrderStatus::Confirmed,
        OrderStatus::Processing,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    /// Returns the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The phase of an order, kept in its record; the status shown derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the payment.
    PendingPayment,
    /// The payment failed.
    PaymentFailed,
    /// Cancelled.
    Cancelled,
    /// Placed; its fulfilments and refunds say the rest.
    Placed,
}

/// The state of one seller's part of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfilmentStatus {
    /// Not started.
    Pending,
    /// Being prepared.
    Processing,
    /// Handed to the carrier.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled with the order.
    Cancelled,
}

impl FulfilmentStatus {
    /// Returns the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FulfilmentStatus::Pending => "pending",
            FulfilmentStatus::Processing => "processing",
            FulfilmentStatus::Shipped => "shipped",
            FulfilmentStatus::Delivered => "delivered",
            FulfilmentStatus::Cancelled => "cancelled",
        }
    }

    /// The states a fulfilment may move to from this one.
    pub fn next(self) -> &'static [FulfilmentStatus] {
        use FulfilmentStatus::*;
        match self {
            Pending => &[Processing, Shipped, Cancelled],
            Processing => &[Shipped, Cancelled],
            Shipped => &[Delivered],
            Delivered | Cancelled => &[],
        }
    }
}

/// What an order's status can be changed to by hand (`PATCH /orders/{id}/status`), from a
/// status: the one transition table. Fulfilment steps (`processing`, `shipped`, `delivered`)
/// apply to one fulfilment; `cancelled` to the whole order, before anything shipped. Payment
/// results and refunds move the status on their own and are not in the table.
pub fn allowed_transitions(from: OrderStatus) -> &'static [OrderStatus] {
    use OrderStatus::*;
    match from {
        PendingPayment => &[Cancelled],
        Confirmed => &[Processing, Shipped, Cancelled],
        Processing => &[Processing, Shipped, Cancelled],
        Shipped => &[Shipped, Delivered],
        PartiallyRefunded => &[Processing, Shipped, Delivered],
        PaymentFailed | Delivered | Cancelled | Refunded => &[],
    }
}

/// Whether a status change by hand is allowed.
pub fn may_transition(from: OrderStatus, to: OrderStatus) -> bool {
    allowed_transitions(from).contains(&to)
}

/// The status an order shows, from its phase, its fulfilments and its money.
///
/// A placed order shows its refunds first (`refunded` once everything captured came back,
/// `partially_refunded` while some did), then the least advanced live fulfilment.
pub fn derive_status(phase: Phase, fulfilments: &[FulfilmentStatus], captured: i64, refunded: i64) -> OrderStatus {
    match phase {
        Phase::PendingPayment => return OrderStatus::PendingPayment,
        Phase::PaymentFailed => return OrderStatus::PaymentFailed,
        Phase::Cancelled => return OrderStatus::Cancelled,
        Phase::Placed => {}
    }
    if refunded > 0 && refunded >= captured {
        return OrderStatus::Refunded;
    }
    if refunded > 0 {
        return OrderStatus::PartiallyRefunded;
    }
    let live = fulfilments.iter().filter(|f| **f != FulfilmentStatus::Cancelled);
    match live.min() {
        None | Some(FulfilmentStatus::Pending) => {
            if fulfilments
                .iter()
                .any(|f| *f > FulfilmentStatus::Pending && *f != FulfilmentStatus::Cancelled)
            {
                OrderStatus::Processing
            } else {
                OrderStatus::Confirmed
            }
        }
        Some(FulfilmentStatus::Processing) => OrderStatus::Processing,
        Some(FulfilmentStatus::Shipped) => OrderStatus::Shipped,
        Some(FulfilmentStatus::Delivered) => OrderStatus::Delivered,
        Some(FulfilmentStatus::Cancelled) => OrderStatus::Cancelled,
    }
}

/// Whether an order may still be cancelled: nothing of it has shipped.
pub fn cancellable(status: OrderStatus, fulfilments: &[FulfilmentStatus]) -> bool {
    matches!(
        status,
        OrderStatus::PendingPayment | OrderStatus::Confirmed | OrderStatus::Processing
    ) && fulfilments
        .iter()
        .all(|f| matches!(f, FulfilmentStatus::Pending | FulfilmentStatus::Processing))
}

/// Splits `total` across lines in proportion to `weights`, in integer minor units, so the parts
/// add up to `total` exactly (largest remainder: the cents left after flooring go to the lines
/// with the largest fractions, earlier lines first on ties).
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| (*w).max(0) as i128).sum();
    if sum == 0 || total == 0 {
        return vec![0; weights.len()];
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut fractions = Vec::with_capacity(weights.len());
    let mut given = 0i64;
    for (i, w) in weights.iter().enumerate() {
        let exact = total as i128 * (*w).max(0) as i128;
        let part = (exact / sum) as i64;
        parts.push(part);
        fractions.push((exact % sum, i));
        given += part;
    }
    fractions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in fractions.into_iter().take((total - given) as usize) {
        parts[i] += 1;
    }
    parts
}

/// A human-readable order number: `SF-` and the store's sequence.
pub fn order_number(seq: u64) -> String {
    format!("SF-{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use FulfilmentStatus as F;

    #[test]
    fn a_placed_order_shows_its_least_advanced_fulfilment() {
        let placed = |fs: &[F]| derive_status(Phase::Placed, fs, 1000, 0);
        assert_eq!(placed(&[F::Pending, F::Pending]), OrderStatus::Confirmed);
        assert_eq!(placed(&[F::Shipped, F::Pending]), OrderStatus::Processing);
        assert_eq!(placed(&[F::Processing, F::Shipped]), OrderStatus::Processing);
        assert_eq!(placed(&[F::Shipped, F::Delivered]), OrderStatus::Shipped);
        assert_eq!(placed(&[F::Delivered, F::Delivered]), OrderStatus::Delivered);
    }

    #[test]
    fn refunds_and_phases_come_before_fulfilments() {
        assert_eq!(
            derive_status(Phase::Placed, &[F::Delivered], 1000, 400),
            OrderStatus::PartiallyRefunded
        );
        assert_eq!(
            derive_status(Phase::Placed, &[F::Delivered], 1000, 1000),
            OrderStatus::Refunded
        );
        assert_eq!(
            derive_status(Phase::Cancelled, &[F::Cancelled], 1000, 1000),
            OrderStatus::Cancelled
        );
        assert_eq!(
            derive_status(Phase::PendingPayment, &[F::Pending], 0, 0),
            OrderStatus::PendingPayment
        );
    }

    #[test]
    fn illegal_transitions_are_refused_and_the_allowed_ones_listed() {
        assert!(may_transition(OrderStatus::Confirmed, OrderStatus::Shipped));
        assert!(!may_transition(OrderStatus::Shipped, OrderStatus::Cancelled));
        assert!(!may_transition(OrderStatus::Delivered, OrderStatus::Processing));
        assert!(allowed_transitions(OrderStatus::Refunded).is_empty());
        assert!(F::Shipped.next().contains(&F::Delivered) && !F::Shipped.next().contains(&F::Cancelled));
    }

    #[test]
    fn only_orders_with_nothing_shipped_can_be_cancelled() {
        assert!(cancellable(OrderStatus::Confirmed, &[F::Pending, F::Processing]));
        assert!(!cancellable(OrderStatus::Processing, &[F::Shipped, F::Processing]));
        assert!(!cancellable(OrderStatus::PaymentFailed, &[F::Pending]));
    }

    #[test]
    fn every_status_round_trips_its_wire_name() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(order_number(100042), "SF-100042");
    }

    #[test]
    fn allocation_hands_out_the_remainder_by_largest_fraction() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(7, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate(10, &[3, 1]), vec![8, 2]);
    }

    proptest! {
        #[test]
        fn allocated_parts_always_add_up(total in 0i64..10_000_000, weights in proptest::collection::vec(0i64..1_000_000, 1..20)) {
            let parts = allocate(total, &weights);
            if weights.iter().sum::<i64>() > 0 {
                prop_assert_eq!(parts.iter().sum::<i64>(), total);
            }
            prop_assert!(parts.iter().all(|p| *p >= 0));
        }
    }
}

/// When a payment is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// With the authorization, at checkout.
    Immediate,
    /// When the order (its first fulfilment) ships.
    OnShipment,
}

/// The longest refund reason kept.
pub const MAX_REFUND_REASON_CHARS: usize = 500;

/// Body of `POST /checkout`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    /// Where the order ships (or `address_id`).
    pub shipping_address: Option<super::user::AddressInput>,
    /// A saved address of the signed-in customer to ship to.
    pub address_id: Option<String>,
    /// Where it is billed (default: the shipping address).
    pub billing_address: Option<super::user::AddressInput>,
    /// Contact email; required for guests (customers default to their account's).
    pub email: Option<String>,
    /// A shipping method id (the store's single method when absent).
    pub shipping_method: Option<String>,
    /// The payment: `{"provider": "test" | "manual" | "stripe", ...provider fields}`.
    pub payment: Option<PaymentInput>,
    /// The total the shopper saw; a different total answers 409 `price_changed`.
    pub expected_total: Option<super::Money>,
}

/// The payment of a checkout.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct PaymentInput {
    /// `test`, `manual` or `stripe`.
    pub provider: Option<String>,
    /// Provider fields: `card` for `test` (`4242424242424242` succeeds, `4000000000000002` is
    /// declined, `4000000000000119` fails at the processor), `method` for `manual`
    /// (`cash_on_delivery` or `bank_transfer`), `payment_method` (`pm_...`) for `stripe`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The longest order note kept.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Body of `POST /orders/{id}/notes`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// The note, 1 to 2000 characters.
    pub text: Option<String>,
    /// Shown to the customer too (default false: staff and the order's sellers only).
    pub customer_visible: Option<bool>,
}

/// Body of `PATCH /orders/{id}/status`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeInput {
    /// `processing`, `shipped`, `delivered` (a fulfilment) or `cancelled` (the order).
    pub status: Option<String>,
    /// The fulfilment to move (default: the caller's, or the only one).
    pub fulfilment_id: Option<String>,
    /// Carrier, when shipping.
    pub carrier: Option<String>,
    /// Tracking number, when shipping.
    pub tracking_number: Option<String>,
}

/// Units of one SKU to refund.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineInput {
    /// The SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// Body of `POST /orders/{id}/refunds`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// Amount in minor units (default: the lines' value with their tax, or everything left).
    pub amount: Option<i64>,
    /// Lines refunded.
    pub lines: Option<Vec<RefundLineInput>>,
    /// Put the refunded units back into stock.
    pub restock: Option<bool>,
    /// Why (a damaged parcel, a goodwill gesture...): kept with the refund and on the
    /// timeline; at most 500 characters.
    pub reason: Option<String>,
}

/// The most characters a return reason or a reviewer's note may have.
pub const MAX_RETURN_TEXT_CHARS: usize = 500;

/// Body of `POST /orders/{id}/returns`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    /// The delivered lines sent back.
    pub lines: Option<Vec<ReturnLineInput>>,
}

/// One line of a return request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLineInput {
    /// The order line's SKU.
    pub sku: String,
    /// Units sent back.
    pub quantity: i64,
    /// Why (1–500 characters).
    pub reason: String,
    /// For an exchange: another variant of the same product, wanted instead. The price
    /// difference is charged (or refunded) when the return is received.
    pub exchange_for: Option<String>,
}

/// Body of `PATCH /returns/{id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnUpdateInput {
    /// `approved` or `rejected` (from `requested`), `received` (from `approved`).
    pub status: Option<String>,
    /// On `received`: put the units back into stock (default true).
    pub restock: Option<bool>,
    /// A note for the customer (at most 500 characters).
    pub note: Option<String>,
}

/// The states of a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// Asked for.
    Requested,
    /// Accepted; the goods are on their way back.
    Approved,
    /// Refused.
    Rejected,
    /// Received, refunded and exchanged.
    Received,
}

impl ReturnStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Received => "received",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<ReturnStatus> {
        [
            ReturnStatus::Requested,
            ReturnStatus::Approved,
            ReturnStatus::Rejected,
            ReturnStatus::Received,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw.trim())
    }

    /// Where a return may go from here.
    pub fn next(self) -> &'static [ReturnStatus] {
        match self {
            ReturnStatus::Requested => &[ReturnStatus::Approved, ReturnStatus::Rejected],
            ReturnStatus::Approved => &[ReturnStatus::Received],
            ReturnStatus::Rejected | ReturnStatus::Received => &[],
        }
    }
}

/// What `units` of a line were paid: their share of the line after its discount, plus their
/// share of its tax, rounded down (so the shares of every unit never add up to more than was
/// paid).
pub fn units_value(line_total: i64, discount: i64, tax: i64, quantity: i64, units: i64) -> i64 {
    if quantity <= 0 {
        return 0;
    }
    ((line_total - discount + tax) as i128 * units as i128 / quantity as i128) as i64
}

#[cfg(test)]
mod return_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn return_states_move_forward_only() {
        assert_eq!(
            ReturnStatus::Requested.next(),
            &[ReturnStatus::Approved, ReturnStatus::Rejected]
        );
        assert!(ReturnStatus::Received.next().is_empty());
        assert!(!ReturnStatus::Approved.next().contains(&ReturnStatus::Rejected));
        assert_eq!(ReturnStatus::parse(" received "), Some(ReturnStatus::Received));
        assert_eq!(ReturnStatus::parse("refunded"), None);
    }

    proptest! {
        #[test]
        fn the_units_of_a_line_never_return_more_than_was_paid(
            unit in 1i64..100_000, quantity in 1i64..50, discount_pct in 0i64..100, tax_bps in 0i64..3_000,
            split in proptest::collection::vec(1i64..5, 1..10),
        ) {
            let total = unit * quantity;
            let discount = total * discount_pct / 100;
            let tax = (total - discount) * tax_bps / 10_000;
            let mut left = quantity;
            let mut paid_back = 0;
            for part in split {
                let units = part.min(left);
                if units == 0 { break; }
                paid_back += units_value(total, discount, tax, quantity, units);
                left -= units;
            }
            prop_assert!(paid_back <= total - discount + tax);
            if left == 0 {
                // Rounding down loses at most a minor unit per part.
                prop_assert!(total - discount + tax - paid_back < 10);
            }
        }
    }
}
