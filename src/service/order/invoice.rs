//! Invoices: a number for every confirmed order, sequential and gap-free, and the PDF.
//!
//! Confirming an order queues it (an index entry in the confirmation's batch). One numbering
//! step at a time takes the queue in order, gives each order the next numbers and commits
//! them with the new highest number in one batch; the counter in memory moves only after the
//! commit. A crash before the commit loses nothing and skips nothing: the same orders get the
//! same numbers on the next step. Numbering runs as a worker, and on demand when an invoice is
//! asked for before the worker reached it.

use std::sync::Arc;

use storefront_storage::cf::CF_ORDER_INDEX;
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::OrderRecord;
use storefront_storage::records::SellerRecord;

use super::{Orders, Viewer};
use crate::domain::error::Code;
use crate::domain::Id;
use crate::service::auth::addresses::address_of;
use crate::service::auth::Actor;
use crate::service::view::invoice::{self, InvoiceDocument, InvoiceLine};
use crate::service::view::order::status_of;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Orders numbered per step, at most: small steps, often, keep the work off the tail of
/// checkout latency.
const NUMBER_BATCH: usize = 200;

/// The invoice number as printed: `INV-` and six digits at least.
pub fn invoice_label(number: u64) -> String {
    format!("INV-{number:06}")
}

/// How far a numbering step looks back behind the newest confirmation it numbered: a
/// confirmation commits within moments of the time in its key, and starting the scan there
/// skips the deleted queue entries before it (a scan over them grows with every order).
const LOOKBACK_MS: i64 = 5_000;

/// Every this many steps, one scans the whole queue, so a confirmation that committed later
/// than the look-back still gets its number soon.
const WHOLE_SCAN_EVERY: u64 = 300;

/// The invoice counter: the last number given, and where the queue scan starts.
#[derive(Debug, Default)]
pub(crate) struct InvoiceCounter {
    /// The last number given.
    pub(crate) last: u64,
    /// Confirmation time (Unix ms) the next scan starts from.
    from_ms: i64,
    /// Steps run.
    steps: u64,
}

impl InvoiceCounter {
    /// A counter at `last`, scanning the whole queue first.
    pub(crate) fn new(last: u64) -> InvoiceCounter {
        InvoiceCounter {
            last,
            from_ms: 0,
            steps: 0,
        }
    }
}

/// The queue entry of an order confirmed at `confirmed_ms`.
pub(crate) fn queue_key(confirmed_ms: i64, order: &[u8; 16]) -> Vec<u8> {
    keys::order_index(OrderIndex::Uninvoiced, &confirmed_ms.max(0).to_be_bytes(), order)
}

impl Orders {
    /// Numbers up to `limit` queued orders; returns how many. `whole` scans the whole queue
    /// (an invoice asked for), not only the recent part.
    pub(crate) fn number_invoices(&self, limit: usize, whole: bool) -> Result<usize, ServiceError> {
        let mut counter = self.invoice_numbers.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = keys::order_index(OrderIndex::Uninvoiced, &[], &[]);
        let whole = whole || counter.steps % WHOLE_SCAN_EVERY == 0;
        counter.steps += 1;
        let from = if whole { 0 } else { counter.from_ms };
        let start = keys::order_index(OrderIndex::Uninvoiced, &from.to_be_bytes(), &[]);
        let mut queued = Vec::new();
        self.store.for_each_raw(
            CF_ORDER_INDEX,
            &start,
            keys::prefix_successor(&prefix).as_deref(),
            |key, _| {
                if let (Ok(at), Ok(id)) = (<[u8; 8]>::try_from(&key[1..9]), <[u8; 16]>::try_from(&key[9..])) {
                    queued.push((i64::from_be_bytes(at), id));
                }
                queued.len() < limit
            },
        )?;
        if queued.is_empty() {
            return Ok(0);
        }
        let mut batch = self.store.batch();
        let mut next = counter.last;
        // The queue entry goes in the batch that gives the number: an order is numbered once.
        for (at, id) in &queued {
            batch.delete(CF_ORDER_INDEX, &queue_key(*at, id));
            next += 1;
            batch.put_raw(
                CF_ORDER_INDEX,
                &keys::order_index(OrderIndex::Invoice, &[], id),
                &next.to_be_bytes(),
            );
        }
        batch.put_raw(
            CF_ORDER_INDEX,
            &keys::order_index(OrderIndex::InvoiceNumber, &[], &[]),
            &next.to_be_bytes(),
        );
        batch.commit()?;
        counter.last = next;
        let newest = queued.iter().map(|(at, _)| *at).max().unwrap_or(0);
        counter.from_ms = counter.from_ms.max(newest - LOOKBACK_MS);
        Ok(queued.len())
    }

    fn invoice_number(&self, id: &[u8; 16]) -> Result<Option<u64>, ServiceError> {
        Ok(self
            .store
            .get_raw(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Invoice, &[], id))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// `GET /orders/{id}/invoice`: the PDF, for the buyer (customer or guest token) and admins.
    pub async fn invoice(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        token: Option<String>,
    ) -> Result<(String, Vec<u8>), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let order = this.load_or_404(id)?;
            let viewer = this.viewer(&actor, token.as_deref(), &order)?;
            if matches!(viewer, Viewer::Seller(_)) {
                return Err(ServiceError::Forbidden(
                    "invoices go to the buyer and the store's staff",
                ));
            }
            let number = match this.invoice_number(&order.id)? {
                Some(n) => n,
                None => {
                    this.number_invoices(usize::MAX, true)?;
                    this.invoice_number(&order.id)?.ok_or(ServiceError::Missing {
                        code: Code::InvoiceUnavailable,
                        message: "only a confirmed order has an invoice",
                    })?
                }
            };
            let label = invoice_label(number);
            let pdf = invoice::render(&this.document(&order, &label)?);
            Ok((label, pdf))
        })
        .await
    }

    fn document(&self, order: &OrderRecord, label: &str) -> Result<InvoiceDocument, ServiceError> {
        let mut sellers: Vec<String> = Vec::new();
        for seller in order.lines.iter().filter_map(|l| l.seller_id) {
            let name = self
                .store
                .get::<SellerRecord>(&seller)?
                .map(|s| s.archived().name.to_string())
                .unwrap_or_else(|| "Unknown seller".into());
            if !sellers.contains(&name) {
                sellers.push(name);
            }
        }
        if order.lines.iter().any(|l| l.seller_id.is_none()) {
            sellers.insert(0, self.settings.store_name.clone());
        }
        Ok(InvoiceDocument {
            label: label.to_owned(),
            order_number: crate::domain::order::order_number(order.number),
            issued_at_ms: order.created_at_ms,
            status: status_of(order).as_str().to_owned(),
            store: self.settings.store_name.clone(),
            sellers,
            buyer_email: order.email.clone(),
            billing_address: address_of(&order.billing_address),
            shipping_address: address_of(&order.shipping_address),
            currency: self.settings.currency,
            // Lines an exchange added are a later transaction, not part of this sale.
            lines: order
                .lines
                .iter()
                .filter(|l| l.replaces.is_none())
                .map(|l| InvoiceLine {
                    title: if l.variant_title.is_empty() || l.variant_title == "Default" {
                        l.title.clone()
                    } else {
                        format!("{} ({})", l.title, l.variant_title)
                    },
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price_cents,
                    discount: l.discount_cents,
                    tax: l.tax_cents,
                    total: l.line_total_cents - l.discount_cents,
                })
                .collect(),
            subtotal: order.subtotal_cents,
            discount: order.discount_cents,
            shipping: order.shipping_cents,
            shipping_method: order.shipping_method.name.clone(),
            tax: order.tax_cents,
            tax_rate_bps: order.tax_rate_bps,
            total: order.total_cents,
            refunded: order.payment.refunded_cents,
        })
    }
}

/// Gives confirmed orders their invoice numbers.
pub struct InvoiceNumbering {
    orders: Arc<Orders>,
}

impl InvoiceNumbering {
    /// The worker over `orders`.
    pub fn new(orders: Arc<Orders>) -> InvoiceNumbering {
        InvoiceNumbering { orders }
    }
}

#[async_trait::async_trait]
impl Worker for InvoiceNumbering {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let orders = self.orders.clone();
        let numbered = blocking(move || orders.number_invoices(NUMBER_BATCH, false)).await?;
        Ok(if numbered == NUMBER_BATCH {
            Progress::Worked
        } else {
            Progress::Idle
        })
    }
}
