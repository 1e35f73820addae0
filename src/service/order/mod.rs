//! Orders: who may see an order, its timeline, lists, and the two ends of a payment: an order
//! confirmed (stock sold, cart emptied) or failed (stock released, cart kept).
//!
//! - [`fulfilment`]: sellers moving their fulfilments, and cancellation;
//! - [`refund`]: refunds and manual payments;
//! - [`invoice`]: invoice numbers and the PDF;
//! - [`notes`]: notes on the timeline;
//! - [`timeline`]: the timeline, and who sees which of its events.
//!
//! Every change to an order runs under the order's stripe lock and commits the order, its
//! index entries, its timeline event, its outbox events and (for money-moving requests) the
//! stored idempotent answer in one batch. Provider calls happen before the lock is taken.

pub mod fulfilment;
pub mod history;
pub mod invoice;
pub mod notes;
pub mod refund;
pub mod returns;
pub mod timeline;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use storefront_storage::cf::{CF_ORDERS, CF_ORDER_INDEX};
use storefront_storage::keys::{self, CartKey, OrderIndex};
use storefront_storage::orders::{OrderEventRecord, OrderPhaseRecord, OrderRecord, PaymentStatusRecord};
use storefront_storage::records::OutboxRecord;
use storefront_storage::{Batch, Store};
use subtle::ConstantTimeEq;

use super::auth::Actor;
use super::cart::Carts;
use super::coupon::Coupons;
use super::idempotency::{Idempotency, Slot};
use super::inventory::{HoldChanges, Inventory};
use super::payment::{Authorization, PaymentRequest, Payments};
use super::view::order::{status_of, OrderPage, OrderView};
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::order::{CaptureMode, OrderStatus};
use crate::domain::user::Role;
use crate::domain::{query, Currency, FieldErrors, Id};

/// Settings of orders and checkout.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// Store currency.
    pub currency: Currency,
    /// When payments are captured.
    pub capture: CaptureMode,
    /// How long an order may wait for its payment before recovery settles it.
    pub recovery_after: Duration,
    /// How long idempotency keys are kept.
    pub idempotency_ttl: Duration,
    /// The store's name on invoices.
    pub store_name: String,
    /// How long after delivery returns may be asked for.
    pub return_window: Duration,
    /// Signed-in customers must have verified their email to check out.
    pub require_verified_email: bool,
}

/// Who is looking at an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// An admin: everything.
    Admin,
    /// The customer who placed it.
    Customer,
    /// The guest holding its token.
    Guest,
    /// A seller with lines in it: their lines and fulfilment only.
    Seller(Id),
}

impl Viewer {
    /// The timeline's name for this viewer.
    pub fn actor(&self) -> String {
        match self {
            Viewer::Admin => "admin".into(),
            Viewer::Customer => "customer".into(),
            Viewer::Guest => "guest".into(),
            Viewer::Seller(id) => format!("seller:{id}"),
        }
    }

    fn seller(&self) -> Option<Id> {
        match self {
            Viewer::Seller(id) => Some(*id),
            _ => None,
        }
    }
}

/// What an outbox event says of an order.
pub(crate) struct Event<'a> {
    pub(crate) actor: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) from: Option<OrderStatus>,
    pub(crate) data: serde_json::Value,
}

/// The orders service.
pub struct Orders {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) carts: Arc<Carts>,
    pub(crate) coupons: Arc<Coupons>,
    pub(crate) payments: Arc<Payments>,
    pub(crate) idempotency: Arc<Idempotency>,
    pub(crate) settings: OrderSettings,
    stripes: Box<[Mutex<()>]>,
    /// The last order number handed out.
    numbers: AtomicU64,
    /// The last invoice number given; held while numbering.
    invoice_numbers: Mutex<invoice::InvoiceCounter>,
    placed: std::sync::OnceLock<PlacedObserver>,
}

/// What is told of every placed order (see [`Orders::on_placed`]).
pub type PlacedObserver = Box<dyn Fn(&OrderRecord) + Send + Sync>;

const STRIPES: usize = 256;
/// Order numbers start after this, so the first order is `SF-100001`.
const FIRST_NUMBER: u64 = 100_000;

/// The highest number in a number index, 0 when it is empty.
fn highest_number(store: &Store, index: OrderIndex) -> Result<u64, ServiceError> {
    let prefix = keys::order_index(index, &[], &[]);
    let mut last = 0;
    store.for_each_raw(
        CF_ORDER_INDEX,
        &prefix,
        keys::prefix_successor(&prefix).as_deref(),
        |key, _| {
            if let Ok(n) = <[u8; 8]>::try_from(&key[1..]) {
                last = last.max(u64::from_be_bytes(n));
            }
            true
        },
    )?;
    Ok(last)
}

/// The SHA-256 of a guest's order token.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh guest order token: 256 random bits, URL-safe.
pub(crate) fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The answer a failed checkout stores under its key: the slot, the status, and the body
/// made from the failed order.
pub(crate) type FailedAnswer<'a> = (&'a Slot, u16, &'a dyn Fn(&OrderView) -> Vec<u8>);

impl Orders {
    /// The service; reads the highest order number in use.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        clock: SharedClock,
        inventory: Arc<Inventory>,
        carts: Arc<Carts>,
        coupons: Arc<Coupons>,
        payments: Arc<Payments>,
        idempotency: Arc<Idempotency>,
        settings: OrderSettings,
    ) -> Result<Orders, ServiceError> {
        let last = highest_number(&store, OrderIndex::Number)?.max(FIRST_NUMBER);
        let last_invoice = store
            .get_raw(CF_ORDER_INDEX, &keys::order_index(OrderIndex::InvoiceNumber, &[], &[]))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        Ok(Orders {
            clock,
            inventory,
            carts,
            coupons,
            payments,
            idempotency,
            settings,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            numbers: AtomicU64::new(last),
            invoice_numbers: Mutex::new(invoice::InvoiceCounter::new(last_invoice)),
            placed: std::sync::OnceLock::new(),
            store,
        })
    }

    /// The next order number.
    pub(crate) fn next_number(&self) -> u64 {
        // Relaxed: numbers need uniqueness only; their order follows their batches.
        self.numbers.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Locks an order's stripe for a read-modify-write.
    pub(crate) fn lock(&self, id: Id) -> MutexGuard<'_, ()> {
        let i = (xxhash_rust::xxh3::xxh3_64(&id.to_bytes()) % STRIPES as u64) as usize;
        self.stripes[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads an order.
    pub(crate) fn load(&self, id: Id) -> Result<Option<OrderRecord>, ServiceError> {
        Ok(self.store.get::<OrderRecord>(&id.to_bytes())?.map(|o| o.to_native()))
    }

    fn load_or_404(&self, id: Id) -> Result<OrderRecord, ServiceError> {
        self.load(id)?.ok_or(ServiceError::NotFound { kind: "order" })
    }

    /// Who `actor` (or the holder of `token`) is to `order`; 404 for anyone else, so that
    /// order ids cannot be probed.
    pub fn viewer(&self, actor: &Actor, token: Option<&str>, order: &OrderRecord) -> Result<Viewer, ServiceError> {
        if actor.is_admin() {
            return Ok(Viewer::Admin);
        }
        let not_found = ServiceError::NotFound { kind: "order" };
        match actor {
            Actor::User { id, role, seller } => {
                if order.user_id == Some(id.to_bytes()) {
                    return Ok(Viewer::Customer);
                }
                match (role, seller) {
                    (Role::Seller, Some(s)) if order.lines.iter().any(|l| l.seller_id == Some(s.to_bytes())) => {
                        Ok(Viewer::Seller(*s))
                    }
                    _ => Err(not_found),
                }
            }
            Actor::Anonymous | Actor::System => {
                let (Some(token), Some(hash)) = (token, order.guest_token_hash) else {
                    return Err(not_found);
                };
                if bool::from(token_hash(token).ct_eq(&hash)) {
                    Ok(Viewer::Guest)
                } else {
                    Err(not_found)
                }
            }
        }
    }

    /// The view of an order for `viewer`.
    pub fn view(&self, order: &OrderRecord, viewer: Viewer) -> OrderView {
        OrderView::new(order, self.settings.currency, viewer.seller())
    }

    /// `GET /orders/{id}`.
    pub async fn get(self: &Arc<Self>, actor: Actor, id: Id, token: Option<String>) -> Result<OrderView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let order = this.load_or_404(id)?;
            let viewer = this.viewer(&actor, token.as_deref(), &order)?;
            Ok(this.view(&order, viewer))
        })
        .await
    }

    /// `GET /orders`: a customer's own, a seller's (orders with their lines), or for admins
    /// every order, filtered; newest first, with a cursor.
    pub async fn list(self: &Arc<Self>, actor: Actor, filter: ListFilter) -> Result<OrderPage, ServiceError> {
        actor.require_signed_in()?;
        let this = self.clone();
        blocking(move || this.list_sync(actor, filter)).await
    }

    fn list_sync(&self, actor: Actor, filter: ListFilter) -> Result<OrderPage, ServiceError> {
        let mut errors = FieldErrors::default();
        let limit = query::limit(filter.limit.as_deref(), &mut errors);
        let status = filter.status.as_deref().and_then(|s| {
            let parsed = OrderStatus::parse(s);
            if parsed.is_none() {
                errors.add("status", "invalid", "not an order status");
            }
            parsed
        });
        let seller_filter = filter.seller.as_deref().and_then(|s| {
            let parsed = Id::parse(s);
            if parsed.is_none() {
                errors.add("seller", "invalid", "must be a seller id");
            }
            parsed
        });
        let from = query::time("from", filter.from.as_deref(), &mut errors);
        let to = query::time("to", filter.to.as_deref(), &mut errors);
        let cursor = match filter.cursor.as_deref() {
            None => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                    .ok_or(ServiceError::InvalidCursor)?,
            ),
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        // Which index to walk, and whose lines a seller sees.
        let (prefix, viewer): (Option<Vec<u8>>, Viewer) = if actor.is_admin() {
            match seller_filter {
                Some(s) => (
                    Some(keys::order_index(OrderIndex::Seller, &s.to_bytes(), &[])),
                    Viewer::Admin,
                ),
                None => (None, Viewer::Admin),
            }
        } else {
            match actor {
                Actor::User {
                    role: Role::Seller,
                    seller: Some(s),
                    ..
                } => (
                    Some(keys::order_index(OrderIndex::Seller, &s.to_bytes(), &[])),
                    Viewer::Seller(s),
                ),
                Actor::User { id, .. } => (
                    Some(keys::order_index(OrderIndex::User, &id.to_bytes(), &[])),
                    Viewer::Customer,
                ),
                _ => return Err(ServiceError::Forbidden("sign in to list orders")),
            }
        };
        // Newest first: walk the ids backwards from the cursor.
        let mut ids: Vec<[u8; 16]> = Vec::new();
        let mut scanned_ids = Vec::new();
        match &prefix {
            Some(prefix) => {
                self.store.for_each_raw(
                    CF_ORDER_INDEX,
                    prefix,
                    keys::prefix_successor(prefix).as_deref(),
                    |key, _| {
                        if let Ok(id) = <[u8; 16]>::try_from(&key[prefix.len()..]) {
                            scanned_ids.push(id);
                        }
                        true
                    },
                )?;
            }
            None => {
                self.store.for_each_raw(CF_ORDERS, &[], None, |key, _| {
                    if let Ok(id) = <[u8; 16]>::try_from(key) {
                        scanned_ids.push(id);
                    }
                    true
                })?;
            }
        }
        scanned_ids.reverse();
        let start = match cursor {
            Some(c) => scanned_ids.iter().position(|id| *id < c).unwrap_or(scanned_ids.len()),
            None => 0,
        };
        let mut items = Vec::new();
        let mut next_cursor = None;
        for id in &scanned_ids[start..] {
            if items.len() == limit {
                next_cursor = ids.last().map(|last: &[u8; 16]| URL_SAFE_NO_PAD.encode(last));
                break;
            }
            let Some(order) = self.load(Id::from_bytes(*id))? else {
                continue;
            };
            let accepted = status.is_none_or(|s| status_of(&order) == s)
                && from.is_none_or(|f| order.created_at_ms >= f)
                && to.is_none_or(|t| order.created_at_ms < t);
            ids.push(*id);
            if accepted {
                items.push(self.view(&order, viewer));
            }
        }
        Ok(OrderPage { items, next_cursor })
    }

    // ------------------------------------------------------------ staging

    /// Stages a timeline event of `order` (advancing its event sequence).
    pub(crate) fn stage_event(
        &self,
        batch: &mut Batch<'_>,
        event: &Event<'_>,
        order: &mut OrderRecord,
    ) -> Result<OrderEventRecord, ServiceError> {
        let to = status_of(order);
        let record = OrderEventRecord {
            at_ms: self.clock.now_ms(),
            actor: event.actor.to_owned(),
            kind: event.kind.to_owned(),
            from_status: event.from.filter(|f| *f != to).map(|f| f.as_str().to_owned()),
            to_status: event.from.filter(|f| *f != to).map(|_| to.as_str().to_owned()),
            data: event.data.to_string(),
        };
        batch.put(&keys::order_event(&order.id, order.next_event), &record)?;
        order.next_event += 1;
        Ok(record)
    }

    /// Stages an outbox event about `order`.
    pub(crate) fn stage_outbox(
        &self,
        batch: &mut Batch<'_>,
        topic: &str,
        order: &OrderRecord,
        extra: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let mut payload = serde_json::json!({
            "order_id": Id::from_bytes(order.id),
            "number": crate::domain::order::order_number(order.number),
            "status": status_of(order).as_str(),
            "email": order.email,
            "total": { "amount": order.total_cents, "currency": order.currency },
        });
        if let (Some(map), serde_json::Value::Object(more)) = (payload.as_object_mut(), extra) {
            map.extend(more);
        }
        let now = self.clock.now_ms();
        let event = OutboxRecord {
            id: Id::new().to_bytes(),
            topic: topic.to_owned(),
            payload: payload.to_string(),
            created_at_ms: now,
            attempts: 0,
            next_attempt_at_ms: now,
        };
        batch.put(&event.id, &event)?;
        Ok(())
    }

    /// Stages the order record (version and update time bumped).
    pub(crate) fn stage_order(&self, batch: &mut Batch<'_>, order: &mut OrderRecord) -> Result<(), ServiceError> {
        order.version += 1;
        order.updated_at_ms = self.clock.now_ms();
        batch.put(&order.id, order)?;
        Ok(())
    }

    /// The payment request of an order (the same every time it is asked, so every call is
    /// idempotent at the provider).
    pub(crate) fn payment_request(&self, order: &OrderRecord) -> PaymentRequest {
        PaymentRequest {
            idempotency_key: order.payment.idempotency_key.clone(),
            amount: order.total_cents,
            currency: self.settings.currency,
            method: serde_json::from_str(&order.payment.method).unwrap_or(serde_json::Value::Null),
            capture: self.settings.capture == CaptureMode::Immediate,
            description: crate::domain::order::order_number(order.number),
            order_id: Id::from_bytes(order.id),
        }
    }

    fn cart_key(order: &OrderRecord) -> Option<CartKey> {
        CartKey::try_from(order.cart_key.as_slice()).ok()
    }

    /// The holder bytes of an order's stock holds.
    pub(crate) fn holder(id: [u8; 16]) -> [u8; 17] {
        let mut holder = [0u8; 17];
        holder[0] = b'o';
        holder[1..].copy_from_slice(&id);
        holder
    }

    // ------------------------------------------------------------ payment ends

    /// The payment went through: the order is placed, its held stock sold, its lines taken out
    /// of the cart, in one batch with its events and (given `answer`) the idempotent answer.
    /// An order no longer waiting for its payment is returned as it is.
    pub(crate) fn confirm(
        &self,
        id: Id,
        authorization: &Authorization,
        answer: Option<(&Slot, Option<&str>)>,
    ) -> Result<OrderRecord, ServiceError> {
        let _guard = self.lock(id);
        let mut order = self.load_or_404(id)?;
        if order.phase != OrderPhaseRecord::PendingPayment {
            return Ok(order);
        }
        let from = status_of(&order);
        let (kind, topic) = match authorization {
            Authorization::Authorized { reference, captured } => {
                order.payment.reference = Some(reference.clone());
                order.payment.authorized_cents = order.total_cents;
                if *captured {
                    order.payment.status = PaymentStatusRecord::Captured;
                    order.payment.captured_cents = order.total_cents;
                    ("payment_captured", "payment_captured")
                } else {
                    order.payment.status = PaymentStatusRecord::Authorized;
                    ("payment_authorized", "payment_authorized")
                }
            }
            Authorization::AwaitingManual { reference } => {
                order.payment.reference = Some(reference.clone());
                order.payment.status = PaymentStatusRecord::AwaitingManual;
                ("payment_awaiting", "payment_pending")
            }
        };
        order.phase = OrderPhaseRecord::Placed;
        order.holds_stock = false;
        let holder = Self::holder(order.id);
        let sold: Vec<(String, i64, Vec<u8>)> = order
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity, holder.to_vec()))
            .collect();
        let ordered: Vec<(String, i64)> = order.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
        let now = self.clock.now_ms();
        let cart_key = Self::cart_key(&order);
        let mut stage = |batch: &mut Batch<'_>| {
            let sale = self.inventory.sell(batch, &sold, now)?;
            let system = "system";
            self.stage_event(
                batch,
                &Event {
                    actor: system,
                    kind,
                    from: None,
                    data: serde_json::json!({ "reference": order.payment.reference }),
                },
                &mut order,
            )?;
            self.stage_event(
                batch,
                &Event {
                    actor: system,
                    kind: "order_placed",
                    from: Some(from),
                    data: serde_json::Value::Null,
                },
                &mut order,
            )?;
            self.stage_outbox(batch, "order_placed", &order, serde_json::Value::Null)?;
            self.stage_outbox(batch, topic, &order, serde_json::Value::Null)?;
            batch.delete(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Pending, &[], &order.id));
            batch.put_raw(CF_ORDER_INDEX, &invoice::queue_key(now, &order.id), &[]);
            self.stage_order(batch, &mut order)?;
            if let Some((slot, token)) = answer {
                let mut view = self.view(&order, Viewer::Admin);
                view.order_token = token.map(str::to_owned);
                let body = serde_json::to_vec(&view).map_err(|e| ServiceError::internal_from("order view", e))?;
                self.idempotency.stage_done(batch, slot, 201, &body)?;
            }
            Ok(sale)
        };
        let sale = match cart_key {
            Some(key) => self.carts.remove_ordered(key, &ordered, stage)?,
            None => {
                let mut batch = self.store.batch();
                let sale = stage(&mut batch)?;
                batch.commit()?;
                sale
            }
        };
        sale.done();
        if let Some(observe) = self.placed.get() {
            observe(&order);
        }
        Ok(order)
    }

    /// Calls `observe` with every order once it is placed (after its batch is durable); set
    /// once, by whoever learns from purchases.
    pub fn on_placed(&self, observe: PlacedObserver) {
        let _ = self.placed.set(observe);
    }

    /// The payment failed (declined, or never completed): the order's holds are released and
    /// the cart is left as it is, in one batch with its events and (given `answer`) the stored
    /// answer. An order no longer waiting for its payment is returned as it is.
    pub(crate) fn fail(
        &self,
        id: Id,
        reason: &str,
        answer: Option<FailedAnswer<'_>>,
    ) -> Result<OrderRecord, ServiceError> {
        let _guard = self.lock(id);
        let mut order = self.load_or_404(id)?;
        if order.phase != OrderPhaseRecord::PendingPayment {
            return Ok(order);
        }
        let from = status_of(&order);
        order.phase = OrderPhaseRecord::PaymentFailed;
        order.payment.status = PaymentStatusRecord::Failed;
        order.payment.failure = Some(reason.to_owned());
        self.release_holds(&mut order, |this, batch, order| {
            this.stage_event(
                batch,
                &Event {
                    actor: "system",
                    kind: "payment_failed",
                    from: Some(from),
                    data: serde_json::json!({ "reason": reason }),
                },
                order,
            )?;
            this.stage_outbox(batch, "payment_failed", order, serde_json::json!({ "reason": reason }))?;
            batch.delete(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Pending, &[], &order.id));
            this.stage_order(batch, order)?;
            if let Some((slot, status, body)) = answer {
                let view = this.view(order, Viewer::Admin);
                this.idempotency.stage_done(batch, slot, status, &body(&view))?;
            }
            Ok(())
        })?;
        Ok(order)
    }

    /// Releases the stock an order still holds and gives back the coupon use it took (it
    /// failed, or is cancelled), committing that with what `stage` adds.
    pub(crate) fn release_holds(
        &self,
        order: &mut OrderRecord,
        stage: impl FnOnce(&Self, &mut Batch<'_>, &mut OrderRecord) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        let mut holds = HoldChanges::new();
        if order.holds_stock {
            let holder = Self::holder(order.id);
            for line in &order.lines {
                holds.add(&line.sku, &holder, line.quantity, 0);
            }
        }
        order.holds_stock = false;
        let taken = self.inventory.take(&holds)?;
        let mut batch = self.store.batch();
        let staged = self
            .inventory
            .stage_holds(&mut batch, &holds, &taken, self.clock.now_ms())
            .and_then(|()| stage(self, &mut batch, order))
            .and_then(|()| {
                // The coupon stays locked until its use is given back in storage.
                let _coupon = self.coupons.stage_give_back(&mut batch, order.id)?;
                Ok(batch.commit()?)
            });
        if let Err(e) = staged {
            taken.give_back();
            return Err(e);
        }
        self.inventory.settle(&holds, taken)
    }

    /// Orders waiting for their payment, oldest first, at most `limit`.
    pub(crate) fn pending(&self, limit: usize) -> Result<Vec<Id>, ServiceError> {
        let prefix = keys::order_index(OrderIndex::Pending, &[], &[]);
        let mut ids = Vec::new();
        self.store.for_each_raw(
            CF_ORDER_INDEX,
            &prefix,
            keys::prefix_successor(&prefix).as_deref(),
            |key, _| {
                if let Ok(id) = <[u8; 16]>::try_from(&key[1..]) {
                    ids.push(Id::from_bytes(id));
                }
                ids.len() < limit
            },
        )?;
        Ok(ids)
    }

    /// Reads an order for a change by `actor`: the order and who they are to it.
    pub(crate) fn load_for(
        &self,
        actor: &Actor,
        token: Option<&str>,
        id: Id,
    ) -> Result<(OrderRecord, Viewer), ServiceError> {
        let order = self.load_or_404(id)?;
        let viewer = self.viewer(actor, token, &order)?;
        Ok((order, viewer))
    }

    /// The number of orders waiting for their payment (for `/metrics`).
    pub fn pending_count(&self) -> usize {
        self.pending(usize::MAX).map(|p| p.len()).unwrap_or(0)
    }
}

/// Filters of `GET /orders`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    /// Only orders with this status.
    pub status: Option<String>,
    /// Only orders with lines of this seller (admins).
    pub seller: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}
