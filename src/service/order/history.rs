//! Orders from another system's history (the purchase-history import): written as placed,
//! paid and delivered, without the checkout saga, stock or events, so shoppers see them in
//! their order history, reviews see verified purchases, and recommendations learn from them.

use storefront_storage::cf::CF_ORDER_INDEX;
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{
    FulfilmentRecord, FulfilmentStatusRecord, OrderLineRecord, OrderPhaseRecord, OrderRecord, PaymentRecord,
    PaymentStatusRecord, ShippingChoiceRecord,
};
use storefront_storage::records::AddressRecord;

use super::Orders;
use crate::domain::Id;
use crate::service::ServiceError;

/// One line of a historical order.
#[derive(Debug, Clone)]
pub struct HistoricalLine {
    /// The product.
    pub product_id: Id,
    /// Its SKU.
    pub sku: String,
    /// Title at the time.
    pub title: String,
    /// Unit price paid, minor units.
    pub unit_price_cents: i64,
    /// Units.
    pub quantity: i64,
}

/// An order of the source system.
#[derive(Debug, Clone)]
pub struct HistoricalOrder {
    /// Its number there (kept as the order number, so both systems name it alike).
    pub number: u64,
    /// The customer's account, if known.
    pub user_id: Option<Id>,
    /// The customer's email.
    pub email: String,
    /// ISO country of the delivery.
    pub country: String,
    /// Lines.
    pub lines: Vec<HistoricalLine>,
    /// When it was placed, Unix milliseconds.
    pub placed_at_ms: i64,
}

/// What an import of historical orders did.
#[derive(Debug, Default, Clone, Copy)]
pub struct HistoryOutcome {
    /// Orders written.
    pub written: usize,
    /// Orders already there (a re-import).
    pub present: usize,
}

impl Orders {
    /// Writes historical orders in one batch; an order whose number is taken is skipped (so a
    /// re-import changes nothing).
    pub fn import_history(&self, orders: &[HistoricalOrder]) -> Result<HistoryOutcome, ServiceError> {
        let mut outcome = HistoryOutcome::default();
        let mut batch = self.store.batch();
        for h in orders {
            let number_key = keys::order_index(OrderIndex::Number, &[], &h.number.to_be_bytes());
            if self.store.get_raw(CF_ORDER_INDEX, &number_key)?.is_some() {
                outcome.present += 1;
                continue;
            }
            let id = Id::from_time_ms(h.placed_at_ms);
            let lines: Vec<OrderLineRecord> = h
                .lines
                .iter()
                .map(|l| OrderLineRecord {
                    sku: l.sku.clone(),
                    product_id: l.product_id.to_bytes(),
                    seller_id: None,
                    title: l.title.clone(),
                    variant_title: String::new(),
                    unit_price_cents: l.unit_price_cents,
                    quantity: l.quantity,
                    line_total_cents: l.unit_price_cents * l.quantity,
                    discount_cents: 0,
                    tax_cents: 0,
                    refunded_quantity: 0,
                    restocked_quantity: 0,
                    replaces: None,
                })
                .collect();
            let total: i64 = lines.iter().map(|l| l.line_total_cents).sum();
            let address = AddressRecord {
                id: [0; 16],
                name: String::new(),
                line1: String::new(),
                line2: String::new(),
                city: String::new(),
                region: String::new(),
                postal_code: String::new(),
                country: h.country.clone(),
                phone: String::new(),
            };
            let order = OrderRecord {
                id: id.to_bytes(),
                number: h.number,
                version: 1,
                phase: OrderPhaseRecord::Placed,
                user_id: h.user_id.map(Id::to_bytes),
                email: h.email.clone(),
                guest_token_hash: None,
                cart_key: Vec::new(),
                lines,
                fulfilments: vec![FulfilmentRecord {
                    id: Id::from_time_ms(h.placed_at_ms).to_bytes(),
                    seller_id: None,
                    status: FulfilmentStatusRecord::Delivered,
                    carrier: None,
                    tracking_number: None,
                    shipping_cents: 0,
                    updated_at_ms: h.placed_at_ms,
                }],
                currency: self.settings.currency.to_string(),
                subtotal_cents: total,
                discount_cents: 0,
                shipping_cents: 0,
                tax_cents: 0,
                total_cents: total,
                tax_rate_bps: 0,
                shipping_address: address.clone(),
                billing_address: address,
                payment: PaymentRecord {
                    provider: "import".into(),
                    status: PaymentStatusRecord::Captured,
                    reference: Some(format!("history:{}", h.number)),
                    idempotency_key: format!("history-{}", h.number),
                    method: "null".into(),
                    authorized_cents: total,
                    captured_cents: total,
                    refunded_cents: 0,
                    failure: None,
                },
                refunds: Vec::new(),
                shipping_method: ShippingChoiceRecord {
                    code: "import".into(),
                    name: "Imported".into(),
                    min_days: 0,
                    max_days: 0,
                },
                returns: Vec::new(),
                holds_stock: false,
                next_event: 0,
                created_at_ms: h.placed_at_ms,
                updated_at_ms: h.placed_at_ms,
            };
            if let Some(user) = h.user_id {
                batch.put_raw(
                    CF_ORDER_INDEX,
                    &keys::order_index(OrderIndex::User, &user.to_bytes(), &order.id),
                    &[],
                );
            }
            batch.put_raw(CF_ORDER_INDEX, &number_key, &order.id);
            batch.put(&order.id, &order)?;
            outcome.written += 1;
        }
        batch.commit()?;
        Ok(outcome)
    }
}
