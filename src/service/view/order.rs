//! Order views: an order as its customer, an admin or a seller sees it, and its timeline.

use serde::Serialize;
use storefront_storage::orders::{
    FulfilmentStatusRecord, OrderEventRecord, OrderPhaseRecord, OrderRecord, PaymentStatusRecord,
};

use super::rfc3339;
use crate::domain::order::{self, FulfilmentStatus, OrderStatus, Phase};
use crate::domain::user::Address;
use crate::domain::{Currency, Id, Money};
use crate::service::auth::addresses::address_of;

/// One line of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderLineView {
    /// The SKU.
    pub sku: String,
    /// Its product.
    pub product_id: Id,
    /// The product's seller.
    pub seller_id: Option<Id>,
    /// Title at checkout.
    pub title: String,
    /// Variant title at checkout.
    pub variant_title: String,
    /// Unit price paid.
    pub unit_price: Money,
    /// Units.
    pub quantity: i64,
    /// Unit price × quantity.
    pub line_total: Money,
    /// What came off the line (its promotion and its share of the coupon).
    pub discount: Money,
    /// The line's share of the tax.
    pub tax: Money,
    /// Units refunded.
    pub refunded_quantity: i64,
    /// For a line an exchange added: the SKU it replaces.
    pub replaces: Option<String>,
}

/// One seller's part of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FulfilmentView {
    /// Id (for `PATCH /orders/{id}/status`).
    pub id: Id,
    /// The seller.
    pub seller_id: Option<Id>,
    /// State.
    pub status: FulfilmentStatus,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// What this shipment's shipping cost (each seller's parcel is priced on its own).
    pub shipping: Money,
    /// Last change.
    pub updated_at: String,
}

/// The shipping method an order was placed with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippingMethodView {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Delivery estimate, days.
    pub min_days: u16,
    /// Delivery estimate, days.
    pub max_days: u16,
}

/// The payment of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// `test`, `manual` or `stripe`.
    pub provider: String,
    /// `pending`, `authorized`, `captured`, `failed`, `voided` or `awaiting_manual`.
    pub status: &'static str,
    /// The provider's reference.
    pub reference: Option<String>,
    /// Amount authorized.
    pub authorized: Money,
    /// Amount captured.
    pub captured: Money,
    /// Amount refunded.
    pub refunded: Money,
    /// Why it failed.
    pub failure: Option<String>,
}

/// One refund.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundView {
    /// Id.
    pub id: Id,
    /// Amount.
    pub amount: Money,
    /// Lines refunded: SKU and units.
    pub lines: Vec<RefundLineView>,
    /// Whether the units went back into stock.
    pub restocked: bool,
    /// Why, as the admin gave it (`cancelled` for the refund of a cancellation).
    pub reason: Option<String>,
    /// When.
    pub created_at: String,
}

/// Units of a SKU in a refund.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundLineView {
    /// The SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// An order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Id (UUIDv7).
    pub id: Id,
    /// Human-readable number, e.g. `SF-100042`.
    pub number: String,
    /// Status.
    pub status: OrderStatus,
    /// Contact email.
    pub email: String,
    /// The customer (absent for guest orders).
    pub user_id: Option<Id>,
    /// Lines (a seller sees only theirs).
    pub items: Vec<OrderLineView>,
    /// One per seller (a seller sees only theirs).
    pub fulfilments: Vec<FulfilmentView>,
    /// Σ line totals.
    pub subtotal: Money,
    /// Discount.
    pub discount: Money,
    /// Shipping.
    pub shipping: Money,
    /// How it ships.
    pub shipping_method: ShippingMethodView,
    /// Tax.
    pub tax: Money,
    /// Total.
    pub total: Money,
    /// Tax rate, basis points.
    pub tax_rate_bps: u32,
    /// The payment.
    pub payment: PaymentView,
    /// Refunds.
    pub refunds: Vec<RefundView>,
    /// Where it ships.
    pub shipping_address: Address,
    /// Where it is billed.
    pub billing_address: Address,
    /// Version (for `If-Match`).
    pub version: u64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// The guest's token for reading and cancelling the order; only in the checkout answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_token: Option<String>,
}

/// The domain phase of a stored phase.
pub fn phase(p: OrderPhaseRecord) -> Phase {
    match p {
        OrderPhaseRecord::PendingPayment => Phase::PendingPayment,
        OrderPhaseRecord::PaymentFailed => Phase::PaymentFailed,
        OrderPhaseRecord::Cancelled => Phase::Cancelled,
        OrderPhaseRecord::Placed => Phase::Placed,
    }
}

/// The domain status of a stored fulfilment status.
pub fn fulfilment_status(s: FulfilmentStatusRecord) -> FulfilmentStatus {
    match s {
        FulfilmentStatusRecord::Pending => FulfilmentStatus::Pending,
        FulfilmentStatusRecord::Processing => FulfilmentStatus::Processing,
        FulfilmentStatusRecord::Shipped => FulfilmentStatus::Shipped,
        FulfilmentStatusRecord::Delivered => FulfilmentStatus::Delivered,
        FulfilmentStatusRecord::Cancelled => FulfilmentStatus::Cancelled,
    }
}

/// The stored form of a fulfilment status.
pub fn fulfilment_record(s: FulfilmentStatus) -> FulfilmentStatusRecord {
    match s {
        FulfilmentStatus::Pending => FulfilmentStatusRecord::Pending,
        FulfilmentStatus::Processing => FulfilmentStatusRecord::Processing,
        FulfilmentStatus::Shipped => FulfilmentStatusRecord::Shipped,
        FulfilmentStatus::Delivered => FulfilmentStatusRecord::Delivered,
        FulfilmentStatus::Cancelled => FulfilmentStatusRecord::Cancelled,
    }
}

/// The status an order shows.
pub fn status_of(o: &OrderRecord) -> OrderStatus {
    let fulfilments: Vec<FulfilmentStatus> = o.fulfilments.iter().map(|f| fulfilment_status(f.status)).collect();
    order::derive_status(
        phase(o.phase),
        &fulfilments,
        o.payment.captured_cents,
        o.payment.refunded_cents,
    )
}

/// The wire name of a payment status.
pub fn payment_status(s: PaymentStatusRecord) -> &'static str {
    match s {
        PaymentStatusRecord::Pending => "pending",
        PaymentStatusRecord::Authorized => "authorized",
        PaymentStatusRecord::Captured => "captured",
        PaymentStatusRecord::Failed => "failed",
        PaymentStatusRecord::Voided => "voided",
        PaymentStatusRecord::AwaitingManual => "awaiting_manual",
    }
}

impl OrderView {
    /// The view of `o`; `seller` limits lines and fulfilments to one seller's.
    pub fn new(o: &OrderRecord, currency: Currency, seller: Option<Id>) -> OrderView {
        let money = |amount| Money::new(amount, currency);
        let mine = |s: &Option<[u8; 16]>| seller.is_none_or(|me| *s == Some(me.to_bytes()));
        OrderView {
            id: Id::from_bytes(o.id),
            number: order::order_number(o.number),
            status: status_of(o),
            email: o.email.clone(),
            user_id: o.user_id.map(Id::from_bytes),
            items: o
                .lines
                .iter()
                .filter(|l| mine(&l.seller_id))
                .map(|l| OrderLineView {
                    sku: l.sku.clone(),
                    product_id: Id::from_bytes(l.product_id),
                    seller_id: l.seller_id.map(Id::from_bytes),
                    title: l.title.clone(),
                    variant_title: l.variant_title.clone(),
                    unit_price: money(l.unit_price_cents),
                    quantity: l.quantity,
                    line_total: money(l.line_total_cents),
                    discount: money(l.discount_cents),
                    tax: money(l.tax_cents),
                    refunded_quantity: l.refunded_quantity,
                    replaces: l.replaces.clone(),
                })
                .collect(),
            fulfilments: o
                .fulfilments
                .iter()
                .filter(|f| mine(&f.seller_id))
                .map(|f| FulfilmentView {
                    id: Id::from_bytes(f.id),
                    seller_id: f.seller_id.map(Id::from_bytes),
                    status: fulfilment_status(f.status),
                    carrier: f.carrier.clone(),
                    tracking_number: f.tracking_number.clone(),
                    shipping: money(f.shipping_cents),
                    updated_at: rfc3339(f.updated_at_ms),
                })
                .collect(),
            subtotal: money(o.subtotal_cents),
            discount: money(o.discount_cents),
            shipping: money(o.shipping_cents),
            shipping_method: ShippingMethodView {
                code: o.shipping_method.code.clone(),
                name: o.shipping_method.name.clone(),
                min_days: o.shipping_method.min_days,
                max_days: o.shipping_method.max_days,
            },
            tax: money(o.tax_cents),
            total: money(o.total_cents),
            tax_rate_bps: o.tax_rate_bps,
            payment: PaymentView {
                provider: o.payment.provider.clone(),
                status: payment_status(o.payment.status),
                reference: o.payment.reference.clone(),
                authorized: money(o.payment.authorized_cents),
                captured: money(o.payment.captured_cents),
                refunded: money(o.payment.refunded_cents),
                failure: o.payment.failure.clone(),
            },
            refunds: o
                .refunds
                .iter()
                .map(|r| RefundView {
                    id: Id::from_bytes(r.id),
                    amount: money(r.amount_cents),
                    lines: r
                        .lines
                        .iter()
                        .map(|(sku, quantity)| RefundLineView {
                            sku: sku.clone(),
                            quantity: *quantity,
                        })
                        .collect(),
                    restocked: r.restocked,
                    reason: r.reason.clone(),
                    created_at: rfc3339(r.created_at_ms),
                })
                .collect(),
            shipping_address: address_of(&o.shipping_address),
            billing_address: address_of(&o.billing_address),
            version: o.version,
            created_at: rfc3339(o.created_at_ms),
            updated_at: rfc3339(o.updated_at_ms),
            order_token: None,
        }
    }
}

/// One timeline event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderEventView {
    /// When.
    pub at: String,
    /// Who: `customer`, `guest`, `admin`, `seller:<id>` or `system`.
    pub actor: String,
    /// What, e.g. `order_placed`, `payment_authorized`, `fulfilment_shipped`, `refund_issued`.
    pub kind: String,
    /// Status before, when it changed.
    pub from_status: Option<String>,
    /// Status after, when it changed.
    pub to_status: Option<String>,
    /// Details.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<&OrderEventRecord> for OrderEventView {
    fn from(e: &OrderEventRecord) -> Self {
        OrderEventView {
            at: rfc3339(e.at_ms),
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            from_status: e.from_status.clone(),
            to_status: e.to_status.clone(),
            data: serde_json::from_str(&e.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    /// Orders, newest first.
    pub items: Vec<OrderView>,
    /// Cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}
