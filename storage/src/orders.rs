//! rkyv records of checkout: orders (with their lines, fulfilments, payment and refunds
//! embedded, so an order page is one point read), their timeline events, and the idempotency
//! records of money-moving requests.

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::{AddressRecord, StoredRecord};

/// The phase of an order; its shown status derives from the phase, fulfilments and refunds.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum OrderPhaseRecord {
    /// Stock held, payment not settled.
    PendingPayment,
    /// The payment failed; stock released.
    PaymentFailed,
    /// Cancelled.
    Cancelled,
    /// Placed.
    Placed,
}

/// The state of one fulfilment.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum FulfilmentStatusRecord {
    /// Not started.
    Pending,
    /// Being prepared.
    Processing,
    /// Handed to the carrier.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled.
    Cancelled,
}

/// One line of an order: a snapshot of what was bought, at the price paid.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct OrderLineRecord {
    /// The SKU.
    pub sku: String,
    /// Its product.
    pub product_id: Id,
    /// The product's seller.
    pub seller_id: Option<Id>,
    /// Product title at checkout.
    pub title: String,
    /// Variant title at checkout.
    pub variant_title: String,
    /// Unit price, minor units.
    pub unit_price_cents: i64,
    /// Units bought.
    pub quantity: i64,
    /// Unit price × quantity.
    pub line_total_cents: i64,
    /// The line's share of the discount.
    pub discount_cents: i64,
    /// The line's share of the order's tax.
    pub tax_cents: i64,
    /// Units refunded so far.
    pub refunded_quantity: i64,
    /// Units put back into stock so far.
    pub restocked_quantity: i64,
    /// For a line an exchange added: the SKU it replaces.
    pub replaces: Option<String>,
}

/// One seller's part of an order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct FulfilmentRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// The seller (none for products without one).
    pub seller_id: Option<Id>,
    /// State.
    pub status: FulfilmentStatusRecord,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// What this shipment's shipping cost, minor units (the order's shipping is their sum).
    pub shipping_cents: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

/// The shipping method an order was placed with, as it was then.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ShippingChoiceRecord {
    /// The method's code within its zone.
    pub code: String,
    /// What the shopper saw.
    pub name: String,
    /// Delivery estimate, in days.
    pub min_days: u16,
    /// Delivery estimate, in days.
    pub max_days: u16,
}

/// The state of a return.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum ReturnStatusRecord {
    /// Asked for by the customer.
    Requested,
    /// Accepted by the seller or an admin; the goods are on their way back.
    Approved,
    /// Refused.
    Rejected,
    /// The goods arrived; refunded (and exchanged) as asked.
    Received,
}

/// One line of a return.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ReturnLineRecord {
    /// The SKU sent back.
    pub sku: String,
    /// Units sent back.
    pub quantity: i64,
    /// Why, as the customer gave it.
    pub reason: String,
    /// For an exchange: the variant wanted instead (same product).
    pub exchange_sku: Option<String>,
    /// The exchange variant's unit price when the exchange was asked for.
    pub exchange_unit_price_cents: i64,
}

/// A return (or exchange) request of an order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ReturnRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// State.
    pub status: ReturnStatusRecord,
    /// The lines.
    pub lines: Vec<ReturnLineRecord>,
    /// Whether receipt put the units back into stock.
    pub restocked: bool,
    /// The refund made on receipt, minor units (after what exchanges cost).
    pub refunded_cents: i64,
    /// What exchanges cost beyond the returned goods, charged on approval, minor units.
    pub charged_cents: i64,
    /// The reviewer's note.
    pub note: Option<String>,
    /// Asked for, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

/// The state of an order's payment.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum PaymentStatusRecord {
    /// Not asked yet, or the answer is not in.
    Pending,
    /// Authorized, not captured.
    Authorized,
    /// Captured (all of the total).
    Captured,
    /// Declined or failed.
    Failed,
    /// Voided before capture.
    Voided,
    /// Waiting for a manual payment (cash on delivery, bank transfer).
    AwaitingManual,
}

/// One refund.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct RefundRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Amount, minor units.
    pub amount_cents: i64,
    /// The provider's reference.
    pub reference: String,
    /// Lines refunded: (sku, quantity).
    pub lines: Vec<(String, i64)>,
    /// Whether the refunded units went back into stock.
    pub restocked: bool,
    /// Why, as the admin gave it.
    pub reason: Option<String>,
    /// When, Unix milliseconds.
    pub created_at_ms: i64,
}

/// An order's payment.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct PaymentRecord {
    /// Provider name (`test`, `manual`, `stripe`).
    pub provider: String,
    /// State.
    pub status: PaymentStatusRecord,
    /// The provider's reference (a PaymentIntent id...).
    pub reference: Option<String>,
    /// The key every call to the provider for this payment carries.
    pub idempotency_key: String,
    /// What the provider needs to authorize (e.g. a test card or a payment method), as JSON.
    pub method: String,
    /// Amount authorized, minor units.
    pub authorized_cents: i64,
    /// Amount captured.
    pub captured_cents: i64,
    /// Amount refunded.
    pub refunded_cents: i64,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// An order, keyed by its id in [`crate::cf::CF_ORDERS`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct OrderRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Sequential number of the store.
    pub number: u64,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Phase.
    pub phase: OrderPhaseRecord,
    /// The customer, for signed-in orders.
    pub user_id: Option<Id>,
    /// The contact email.
    pub email: String,
    /// SHA-256 of a guest's order token.
    pub guest_token_hash: Option<[u8; 32]>,
    /// The cart the order came from.
    pub cart_key: Vec<u8>,
    /// Lines.
    pub lines: Vec<OrderLineRecord>,
    /// One per seller.
    pub fulfilments: Vec<FulfilmentRecord>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Σ line totals.
    pub subtotal_cents: i64,
    /// Discount.
    pub discount_cents: i64,
    /// Shipping.
    pub shipping_cents: i64,
    /// Tax.
    pub tax_cents: i64,
    /// What the shopper pays.
    pub total_cents: i64,
    /// Tax rate, basis points.
    pub tax_rate_bps: u32,
    /// Where it ships.
    pub shipping_address: AddressRecord,
    /// Where it is billed.
    pub billing_address: AddressRecord,
    /// The payment.
    pub payment: PaymentRecord,
    /// Refunds, oldest first.
    pub refunds: Vec<RefundRecord>,
    /// How it ships.
    pub shipping_method: ShippingChoiceRecord,
    /// Returns and exchanges, oldest first.
    pub returns: Vec<ReturnRecord>,
    /// Whether the order still holds stock (pending payment).
    pub holds_stock: bool,
    /// Next timeline sequence.
    pub next_event: u32,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for OrderRecord {
    const CF: &'static str = crate::cf::CF_ORDERS;
}

/// One timeline event of an order: a state change, a payment event, a refund or a note.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct OrderEventRecord {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Who (`customer`, `guest`, `admin`, `seller:<id>`, `system`).
    pub actor: String,
    /// What, e.g. `order_placed`, `payment_authorized`, `status_changed`.
    pub kind: String,
    /// Status before, when it changed.
    pub from_status: Option<String>,
    /// Status after, when it changed.
    pub to_status: Option<String>,
    /// Details as JSON.
    pub data: String,
}

impl StoredRecord for OrderEventRecord {
    const CF: &'static str = crate::cf::CF_ORDER_EVENTS;
}

/// The stored outcome of a money-moving request, keyed by the caller and its
/// `Idempotency-Key`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct IdempotencyRecord {
    /// SHA-256 of the request (method, path, body): a reuse with another request is refused.
    pub request_hash: [u8; 32],
    /// The process that runs the request; another process finding it unfinished knows the
    /// first attempt died.
    pub owner: u64,
    /// The order the request created, once it did.
    pub order_id: Option<Id>,
    /// The answer's status, once finished (0 while running).
    pub status: u16,
    /// The answer's body, once finished.
    pub body: Vec<u8>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// When the record may be forgotten.
    pub expires_at_ms: i64,
}

impl StoredRecord for IdempotencyRecord {
    const CF: &'static str = crate::cf::CF_IDEMPOTENCY;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{encode, Owned};

    #[test]
    fn an_order_round_trips_through_rkyv() {
        let address = AddressRecord {
            id: [1; 16],
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Springfield".into(),
            region: "CA".into(),
            postal_code: "90000".into(),
            country: "US".into(),
            phone: String::new(),
        };
        let order = OrderRecord {
            id: [2; 16],
            number: 100001,
            version: 1,
            phase: OrderPhaseRecord::Placed,
            user_id: None,
            email: "a@example.com".into(),
            guest_token_hash: Some([3; 32]),
            cart_key: vec![b'g'; 17],
            lines: vec![OrderLineRecord {
                sku: "A-1".into(),
                product_id: [4; 16],
                seller_id: Some([5; 16]),
                title: "Lamp".into(),
                variant_title: "Default".into(),
                unit_price_cents: 1500,
                quantity: 2,
                line_total_cents: 3000,
                discount_cents: 0,
                tax_cents: 240,
                refunded_quantity: 0,
                restocked_quantity: 0,
                replaces: None,
            }],
            fulfilments: vec![FulfilmentRecord {
                id: [6; 16],
                seller_id: Some([5; 16]),
                status: FulfilmentStatusRecord::Shipped,
                carrier: Some("UPS".into()),
                tracking_number: Some("1Z".into()),
                shipping_cents: 599,
                updated_at_ms: 9,
            }],
            currency: "USD".into(),
            subtotal_cents: 3000,
            discount_cents: 0,
            shipping_cents: 599,
            tax_cents: 240,
            total_cents: 3839,
            tax_rate_bps: 800,
            shipping_address: address.clone(),
            billing_address: address,
            payment: PaymentRecord {
                provider: "test".into(),
                status: PaymentStatusRecord::Captured,
                reference: Some("pi_1".into()),
                idempotency_key: "k".into(),
                method: "{}".into(),
                authorized_cents: 3839,
                captured_cents: 3839,
                refunded_cents: 0,
                failure: None,
            },
            refunds: vec![],
            shipping_method: ShippingChoiceRecord {
                code: "standard".into(),
                name: "Standard".into(),
                min_days: 2,
                max_days: 5,
            },
            returns: vec![ReturnRecord {
                id: [7; 16],
                status: ReturnStatusRecord::Approved,
                lines: vec![ReturnLineRecord {
                    sku: "A-1".into(),
                    quantity: 1,
                    reason: "too big".into(),
                    exchange_sku: Some("A-2".into()),
                    exchange_unit_price_cents: 1600,
                }],
                restocked: false,
                refunded_cents: 0,
                charged_cents: 100,
                note: None,
                created_at_ms: 3,
                updated_at_ms: 4,
            }],
            holds_stock: false,
            next_event: 3,
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let bytes = encode(&order).unwrap();
        let owned = Owned::<OrderRecord>::from_slice(b"k", &bytes).unwrap();
        assert_eq!(owned.to_native(), order);
    }
}
