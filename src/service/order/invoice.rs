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

/// Orders numbered per step, at most.
const NUMBER_BATCH: usize = 500;

/// The invoice number as printed: `INV-` and six digits at least.
pub fn invoice_label(number: u64) -> String {
    format!("INV-{number:06}")
}

impl Orders {
    /// Numbers up to `limit` queued orders; returns how many.
    pub(crate) fn number_invoices(&self, limit: usize) -> Result<usize, ServiceError> {
        let mut last = self.invoice_numbers.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = keys::order_index(OrderIndex::Uninvoiced, &[], &[]);
        let mut queued = Vec::new();
        self.store.for_each_raw(
            CF_ORDER_INDEX,
            &prefix,
            keys::prefix_successor(&prefix).as_deref(),
            |key, _| {
                if let Ok(id) = <[u8; 16]>::try_from(&key[1..]) {
                    queued.push(id);
                }
                queued.len() < limit
            },
        )?;
        if queued.is_empty() {
            return Ok(0);
        }
        let mut batch = self.store.batch();
        let mut next = *last;
        for id in &queued {
            batch.delete(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Uninvoiced, &[], id));
            // An order numbered before a crash that left its queue entry keeps its number.
            if self
                .store
                .get_raw(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Invoice, &[], id))?
                .is_some()
            {
                continue;
            }
            next += 1;
            batch.put_raw(
                CF_ORDER_INDEX,
                &keys::order_index(OrderIndex::Invoice, &[], id),
                &next.to_be_bytes(),
            );
            batch.put_raw(
                CF_ORDER_INDEX,
                &keys::order_index(OrderIndex::InvoiceNumber, &[], &next.to_be_bytes()),
                id,
            );
        }
        batch.commit()?;
        *last = next;
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
                    this.number_invoices(NUMBER_BATCH)?;
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
            lines: order
                .lines
                .iter()
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
        let numbered = blocking(move || orders.number_invoices(NUMBER_BATCH)).await?;
        Ok(if numbered == NUMBER_BATCH {
            Progress::Worked
        } else {
            Progress::Idle
        })
    }
}
