//! Checkout: the saga from a cart to a paid order.
//!
//! 1. Check the request and price the cart on the server (never the client's prices).
//! 2. In one batch: hand the cart's holds over to a new `pending_payment` order (taking what the
//!    cart did not hold, all or nothing), with its index entries, its first timeline event, and
//!    the order's id noted in the idempotency record.
//! 3. Ask the provider to authorize, outside every lock and batch.
//! 4. In one batch: confirm (sell the held stock, empty the cart's bought lines, outbox events,
//!    the stored answer) or fail (release the holds, keep the cart).
//!
//! Every step is durable before the next begins. A crash between them leaves an order waiting
//! for its payment; [`recovery::Recovery`] asks the provider what became of it and finishes it,
//! and a repeat of the request with its `Idempotency-Key` resumes it. Fail points (the `fail`
//! crate, compiled in with the `failpoints` feature only) let the tests crash between steps.

pub mod recovery;
mod webhook;

use std::sync::Arc;

use storefront_storage::cf::CF_ORDER_INDEX;
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{
    FulfilmentRecord, FulfilmentStatusRecord, OrderLineRecord, OrderPhaseRecord, OrderRecord, PaymentRecord,
    PaymentStatusRecord, ShippingChoiceRecord,
};
use storefront_storage::records::UserRecord;
use storefront_storage::{Batch, Store};

use super::auth::addresses::{address_of, record_of};
use super::auth::Actor;
use super::cart::{CartOwner, Carts, Destination};
use super::coupon::{Coupons, Customer, NotApplied};
use super::idempotency::{Answer, Begin, Idempotency, Running, Slot};
use super::inventory::StockLedger;
use super::order::fulfilment::payment_error;
use super::order::{new_token, token_hash, Event, Orders, Viewer};
use super::payment::stripe::Stripe;
use super::payment::{Authorization, PaymentError, Payments};
use super::view::order::OrderView;
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::coupon::Rejection;
use crate::domain::error::DomainError;
use crate::domain::order::{allocate, CheckoutInput};
use crate::domain::pricing::TaxLocation;
use crate::domain::user::{check_address, Address, AddressInput, Email};
use crate::domain::{Currency, FieldErrors, Id, Money};

/// A checkout request, checked.
#[derive(Debug, Clone)]
struct Checked {
    shipping: Address,
    billing: Address,
    shipping_method: Option<String>,
    email: String,
    provider: String,
    method: serde_json::Value,
    expected_total: Option<i64>,
}

/// The checkout service.
pub struct Checkout {
    store: Store,
    clock: SharedClock,
    orders: Arc<Orders>,
    carts: Arc<Carts>,
    coupons: Arc<Coupons>,
    stock: Arc<StockLedger>,
    payments: Arc<Payments>,
    idempotency: Arc<Idempotency>,
    currency: Currency,
    /// The Stripe provider, for webhook verification.
    stripe: Option<Arc<Stripe>>,
}

/// How a checkout request starts.
enum Start {
    /// The key's answer is stored: replay it.
    Replay(Answer),
    /// The provider's breaker is open: nothing was reserved.
    Unavailable(PaymentError),
    /// An order waits for its payment: the one just created, or one a dead attempt left.
    Pay {
        running: Running,
        order: Id,
        token: Option<String>,
        created: Option<Box<OrderRecord>>,
    },
}

impl Checkout {
    /// The service over `orders`.
    pub fn new(orders: Arc<Orders>, stock: Arc<StockLedger>, stripe: Option<Arc<Stripe>>) -> Checkout {
        Checkout {
            store: orders.store.clone(),
            clock: orders.clock.clone(),
            carts: orders.carts.clone(),
            coupons: orders.coupons.clone(),
            payments: orders.payments.clone(),
            idempotency: orders.idempotency.clone(),
            currency: orders.settings.currency,
            orders,
            stock,
            stripe,
        }
    }

    /// `POST /checkout`: places the caller's cart as an order and pays for it.
    pub async fn checkout(
        self: &Arc<Self>,
        actor: Actor,
        owner: CartOwner,
        key: Option<String>,
        raw_body: Vec<u8>,
        input: CheckoutInput,
    ) -> Result<Answer, ServiceError> {
        let key = Idempotency::check_key(key.as_deref())?;
        let this = self.clone();
        let hash = Idempotency::hash(&[b"POST /checkout", &raw_body]);
        // One trip to the blocking pool for the checks, the key and the order (each trip is a
        // hand-off between threads on the checkout hot path). The slot is held by a guard
        // from the moment it is taken, so a request dropped mid-way never leaves it in use.
        let start = blocking(move || {
            let checked = this.check(&actor, &input)?;
            let scope = Carts::key_of(&owner)?.ok_or(ServiceError::Missing {
                code: crate::domain::error::Code::CartNotFound,
                message: "no cart to check out: add items first",
            })?;
            let (running, resume) = match this.idempotency.begin(&scope, &key, hash)? {
                Begin::Replay { status, body } => {
                    return Ok(Start::Replay(Answer {
                        status,
                        body,
                        replayed: true,
                    }))
                }
                Begin::Resume(running, order, note) => (running, Some((order, note))),
                Begin::Run(running) => (running, None),
            };
            if let Some((order, note)) = resume {
                let token = String::from_utf8(note).ok().filter(|t| !t.is_empty());
                return Ok(Start::Pay {
                    running,
                    order,
                    token,
                    created: None,
                });
            }
            if let Err(e) = this.payments.available(&checked.provider) {
                this.idempotency.forget(&running.slot)?;
                return Ok(Start::Unavailable(e));
            }
            match this.create(&actor, &owner, &checked, &running.slot) {
                Ok((order, token)) => Ok(Start::Pay {
                    running,
                    order: Id::from_bytes(order.id),
                    token,
                    created: Some(Box::new(order)),
                }),
                Err(e) => {
                    // Nothing was written: a retry with the key starts afresh.
                    this.idempotency.forget(&running.slot)?;
                    Err(e)
                }
            }
        })
        .await?;
        let (running, order, token, created) = match start {
            Start::Replay(answer) => return Ok(answer),
            Start::Unavailable(e) => return Err(payment_error(e)),
            Start::Pay {
                running,
                order,
                token,
                created,
            } => (running, order, token, created),
        };
        fail::fail_point!("checkout-after-reserve", |_| std::process::abort());
        self.finish(&running.slot, order, token.as_deref(), created.map(|o| *o))
            .await
    }

    async fn forget(&self, slot: &Slot) -> Result<(), ServiceError> {
        let (idempotency, slot) = (self.idempotency.clone(), slot.clone());
        blocking(move || idempotency.forget(&slot)).await
    }

    /// Pays for a created order (`created`, as this request wrote it) and settles it; also
    /// finishes an order a dead attempt left (read again here).
    async fn finish(
        self: &Arc<Self>,
        slot: &Slot,
        id: Id,
        token: Option<&str>,
        created: Option<OrderRecord>,
    ) -> Result<Answer, ServiceError> {
        let order = match created {
            Some(order) => order,
            None => {
                let orders = self.orders.clone();
                blocking(move || orders.load(id)?.ok_or(ServiceError::NotFound { kind: "order" })).await?
            }
        };
        if order.phase != OrderPhaseRecord::PendingPayment {
            // Settled since (by recovery): answer what it became, and store that answer.
            return self.answer_settled(slot, order, token).await;
        }
        let request = self.orders.payment_request(&order);
        let outcome = self.payments.authorize(&order.payment.provider, &request).await;
        fail::fail_point!("checkout-after-authorize", |_| std::process::abort());
        let orders = self.orders.clone();
        let (slot_c, token_c) = (slot.clone(), token.map(str::to_owned));
        match outcome {
            Ok(authorization) => {
                let auth = authorization.clone();
                let settled = blocking(move || orders.confirm(id, &auth, Some((&slot_c, token_c.as_deref())))).await?;
                if settled.phase == OrderPhaseRecord::Cancelled {
                    // Cancelled while the provider answered: give the money back.
                    if let Authorization::Authorized { reference, .. } = &authorization {
                        let _ = self
                            .payments
                            .void(&settled.payment.provider, reference, &settled.payment.idempotency_key)
                            .await;
                    }
                    return self.answer_settled(slot, settled, token).await;
                }
                let mut view = self.orders.view(&settled, Viewer::Admin);
                view.order_token = token.map(str::to_owned);
                Ok(Answer {
                    status: 201,
                    body: serde_json::to_vec(&view).map_err(|e| ServiceError::internal_from("order view", e))?,
                    replayed: false,
                })
            }
            Err(PaymentError::Declined { reason }) => {
                let reason_c = reason.clone();
                let body = move |view: &OrderView| declined_body(&reason_c, view);
                let failed = blocking(move || orders.fail(id, &reason, Some((&slot_c, 402, &body)))).await?;
                let view = self.orders.view(&failed, Viewer::Admin);
                Ok(Answer {
                    status: 402,
                    body: declined_body(failed.payment.failure.as_deref().unwrap_or("declined"), &view),
                    replayed: false,
                })
            }
            Err(e @ PaymentError::Indeterminate { .. }) => {
                // The provider may have taken the money: the order keeps waiting with its
                // stock held, recovery (or a webhook) settles it, and a repeat with the key
                // asks the provider again under the same payment key.
                tracing::warn!(order = %id, error = %e, "payment outcome unknown; left for recovery");
                Err(payment_error(e))
            }
            Err(e @ PaymentError::Unavailable { .. }) => {
                // The provider failed: the order fails and releases its stock; the key is
                // forgotten so the shopper can simply try again.
                blocking(move || orders.fail(id, "payment_unavailable", None)).await?;
                self.forget(slot).await?;
                Err(payment_error(e))
            }
        }
    }

    /// The answer of an order settled without this request, stored under its key.
    async fn answer_settled(
        &self,
        slot: &Slot,
        order: OrderRecord,
        token: Option<&str>,
    ) -> Result<Answer, ServiceError> {
        let mut view = self.orders.view(&order, Viewer::Admin);
        view.order_token = token.map(str::to_owned);
        let (status, body) = match order.phase {
            OrderPhaseRecord::PaymentFailed => (
                402,
                declined_body(order.payment.failure.as_deref().unwrap_or("declined"), &view),
            ),
            _ => (
                201,
                serde_json::to_vec(&view).map_err(|e| ServiceError::internal_from("order view", e))?,
            ),
        };
        let (idempotency, slot, stored) = (self.idempotency.clone(), slot.clone(), body.clone());
        let store = self.store.clone();
        blocking(move || {
            let mut batch = store.batch();
            idempotency.stage_done(&mut batch, &slot, status, &stored)?;
            Ok(batch.commit()?)
        })
        .await?;
        Ok(Answer {
            status,
            body,
            replayed: false,
        })
    }

    /// Checks a checkout body (422 with every bad field) before anything is reserved.
    fn check(&self, actor: &Actor, input: &CheckoutInput) -> Result<Checked, ServiceError> {
        let mut errors = FieldErrors::default();
        let user = match actor {
            Actor::User { id, .. } => self.store.get::<UserRecord>(&id.to_bytes())?.map(|u| u.to_native()),
            _ => None,
        };
        if self.orders.settings.require_verified_email && user.as_ref().is_some_and(|u| !u.email_verified) {
            return Err(DomainError::EmailUnverified.into());
        }
        let check_one = |prefix: &str, input: &AddressInput, errors: &mut FieldErrors| {
            let mut own = FieldErrors::default();
            let address = check_address(&Address::default(), input, &mut own);
            errors.nest(prefix, own);
            address
        };
        let shipping = match (&input.shipping_address, &input.address_id) {
            (Some(_), Some(_)) => {
                errors.add(
                    "address_id",
                    "conflict",
                    "give shipping_address or address_id, not both",
                );
                None
            }
            (Some(a), None) => Some(check_one("shipping_address", a, &mut errors)),
            (None, Some(id)) => {
                let saved = Id::parse(id).and_then(|id| {
                    user.as_ref()?
                        .addresses
                        .iter()
                        .find(|a| a.id == id.to_bytes())
                        .map(address_of)
                });
                if saved.is_none() {
                    errors.add("address_id", "unknown", "not one of your saved addresses");
                }
                saved
            }
            (None, None) => {
                errors.add("shipping_address", "required", "give shipping_address or address_id");
                None
            }
        };
        let billing = input
            .billing_address
            .as_ref()
            .map(|a| check_one("billing_address", a, &mut errors));
        let email = match (&input.email, &user) {
            (Some(raw), _) => match Email::parse(raw) {
                Ok(e) => Some(e.as_str().to_owned()),
                Err(message) => {
                    errors.add("email", "invalid", message);
                    None
                }
            },
            (None, Some(user)) => Some(user.email.clone()),
            (None, None) => {
                errors.add("email", "required", "guests give an email address for the order");
                None
            }
        };
        let (provider, method) = match &input.payment {
            None => {
                errors.add("payment", "required", "must be given");
                (String::new(), serde_json::Value::Null)
            }
            Some(p) => {
                let method = serde_json::Value::Object(p.fields.clone());
                self.payments.check(p.provider.as_deref(), &method, &mut errors);
                (p.provider.clone().unwrap_or_default(), method)
            }
        };
        let expected_total = input.expected_total.and_then(|m: Money| {
            if m.currency != self.currency {
                errors.add(
                    "expected_total.currency",
                    "mismatch",
                    format!("the store sells in {}", self.currency),
                );
                None
            } else {
                Some(m.amount)
            }
        });
        let (Some(shipping), Some(email), true) = (shipping, email, errors.is_empty()) else {
            return Err(ServiceError::Validation(errors.into_vec()));
        };
        Ok(Checked {
            billing: billing.unwrap_or_else(|| shipping.clone()),
            shipping,
            shipping_method: input.shipping_method.as_deref().map(|m| m.trim().to_owned()),
            email,
            provider,
            method,
            expected_total,
        })
    }

    /// Prices the cart and creates the order with the cart's stock handed over to it.
    fn create(
        &self,
        actor: &Actor,
        owner: &CartOwner,
        checked: &Checked,
        slot: &Slot,
    ) -> Result<(OrderRecord, Option<String>), ServiceError> {
        let (cart_key, cart, lines) = self.carts.snapshot(owner)?;
        if lines.is_empty() {
            return Err(DomainError::CartEmpty.into());
        }
        let unavailable: Vec<String> = lines.iter().filter(|l| !l.purchasable).map(|l| l.sku.clone()).collect();
        if !unavailable.is_empty() {
            return Err(DomainError::ItemsUnavailable { skus: unavailable }.into());
        }
        let short: Vec<(String, i64, i64)> = lines
            .iter()
            .filter_map(|l| {
                let could = self.stock.available(&l.sku) + l.held;
                (l.quantity > could).then(|| (l.sku.clone(), l.quantity, could.max(0)))
            })
            .collect();
        if !short.is_empty() {
            return Err(DomainError::Shortfall { lines: short }.into());
        }
        let location = TaxLocation {
            country: checked.shipping.country.clone(),
            region: checked.shipping.region.clone(),
        };
        let customer = match actor {
            Actor::User { id, .. } => Customer::User(*id),
            _ => Customer::Guest(Some(checked.email.clone())),
        };
        let to = Destination {
            location: Some(location),
            method: checked.shipping_method.clone(),
        };
        let priced = self
            .carts
            .breakdown(&lines, owner, &to, cart.coupon.as_deref().map(|c| (c, &customer)))?;
        let chosen = match (&priced.chosen, &checked.shipping_method) {
            (Some(offer), asked) if asked.as_ref().is_none_or(|a| *a == offer.method.code) => offer.clone(),
            (_, asked) => {
                let offered: Vec<&str> = priced.offers.iter().map(|o| o.method.code.as_str()).collect();
                let message = match (asked, offered.is_empty()) {
                    (_, true) => format!("no shipping method ships to {}", checked.shipping.country),
                    (Some(a), false) => format!("{a} does not ship there; choose one of {}", offered.join(", ")),
                    (None, false) => unreachable!("the cheapest offer is chosen when none is asked for"),
                };
                return Err(ServiceError::invalid("shipping_method", "unavailable", &message));
            }
        };
        let discounts = priced.discounts.per_line();
        let nets = priced.discounts.nets.clone();
        let applied = match priced.discounts.coupon {
            None => None,
            Some(Ok(applied)) => Some(applied),
            Some(Err(NotApplied::Rejected(Rejection::Exhausted | Rejection::CustomerLimit))) => {
                return Err(DomainError::CouponExhausted {
                    code: cart.coupon.clone().unwrap_or_default(),
                }
                .into())
            }
            Some(Err(why)) => return Err(why.invalid("coupon")),
        };
        let b = priced.breakdown;
        if let Some(expected) = checked.expected_total.filter(|e| *e != b.total) {
            let money = |amount| Money::new(amount, self.currency);
            return Err(DomainError::PriceChanged {
                expected,
                actual: b.total,
                breakdown: serde_json::json!({
                    "subtotal": money(b.subtotal),
                    "discount": money(b.discount),
                    "shipping": money(b.shipping),
                    "tax": money(b.tax),
                    "total": money(b.total),
                }),
            }
            .into());
        }
        let id = Id::new();
        let now = self.clock.now_ms();
        let taxed: Vec<i64> = lines
            .iter()
            .zip(&discounts)
            .map(|(l, d)| l.unit_price * l.quantity - d)
            .collect();
        let taxes = allocate(b.tax, &taxed);
        let order_lines: Vec<OrderLineRecord> = lines
            .iter()
            .zip(&taxes)
            .zip(&discounts)
            .map(|((l, tax), discount)| OrderLineRecord {
                sku: l.sku.clone(),
                product_id: l.product_id,
                seller_id: l.seller_id,
                title: l.title.clone(),
                variant_title: l.variant_title.clone(),
                unit_price_cents: l.unit_price,
                quantity: l.quantity,
                line_total_cents: l.unit_price * l.quantity,
                discount_cents: *discount,
                tax_cents: *tax,
                refunded_quantity: 0,
                restocked_quantity: 0,
                replaces: None,
            })
            .collect();
        let user = match actor {
            Actor::User { id, .. } => Some(*id),
            _ => None,
        };
        let token = user.is_none().then(new_token);
        let mut order = OrderRecord {
            id: id.to_bytes(),
            number: self.orders.next_number(),
            version: 0,
            phase: OrderPhaseRecord::PendingPayment,
            user_id: user.map(Id::to_bytes),
            email: checked.email.clone(),
            guest_token_hash: token.as_deref().map(token_hash),
            cart_key: cart_key.to_vec(),
            lines: order_lines,
            fulfilments: priced
                .sellers
                .iter()
                .zip(&chosen.quote.per_parcel)
                .map(|(seller, shipping)| FulfilmentRecord {
                    id: Id::new().to_bytes(),
                    seller_id: *seller,
                    status: FulfilmentStatusRecord::Pending,
                    carrier: None,
                    tracking_number: None,
                    shipping_cents: *shipping,
                    updated_at_ms: now,
                })
                .collect(),
            currency: self.currency.to_string(),
            subtotal_cents: b.subtotal,
            discount_cents: b.discount,
            shipping_cents: b.shipping,
            tax_cents: b.tax,
            total_cents: b.total,
            tax_rate_bps: b.tax_rate_bps,
            shipping_address: record_of(Id::from_bytes([0; 16]), checked.shipping.clone()),
            billing_address: record_of(Id::from_bytes([0; 16]), checked.billing.clone()),
            payment: PaymentRecord {
                provider: checked.provider.clone(),
                status: PaymentStatusRecord::Pending,
                reference: None,
                idempotency_key: format!("order-{id}"),
                method: checked.method.to_string(),
                authorized_cents: 0,
                captured_cents: 0,
                refunded_cents: 0,
                failure: None,
            },
            refunds: Vec::new(),
            shipping_method: ShippingChoiceRecord {
                code: chosen.method.code.clone(),
                name: chosen.method.name.clone(),
                min_days: chosen.method.min_days,
                max_days: chosen.method.max_days,
            },
            returns: Vec::new(),
            holds_stock: true,
            next_event: 0,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let holder = Orders::holder(order.id);
        let actor_name = if user.is_some() { "customer" } else { "guest" };
        let order_id = order.id;
        let mut place = |coupon: &mut dyn FnMut(&mut Batch<'_>) -> Result<(), ServiceError>| {
            self.carts.hand_over(cart_key, cart.version, &holder, |batch| {
                coupon(batch)?;
                if let Some(user) = user {
                    batch.put_raw(
                        CF_ORDER_INDEX,
                        &keys::order_index(OrderIndex::User, &user.to_bytes(), &order.id),
                        &[],
                    );
                }
                for seller in priced.sellers.iter().flatten() {
                    batch.put_raw(
                        CF_ORDER_INDEX,
                        &keys::order_index(OrderIndex::Seller, seller, &order.id),
                        &[],
                    );
                }
                batch.put_raw(
                    CF_ORDER_INDEX,
                    &keys::order_index(OrderIndex::Number, &[], &order.number.to_be_bytes()),
                    &order.id,
                );
                batch.put_raw(
                    CF_ORDER_INDEX,
                    &keys::order_index(OrderIndex::Pending, &[], &order.id),
                    &[],
                );
                self.orders.stage_event(
                    batch,
                    &Event {
                        actor: actor_name,
                        kind: "order_created",
                        from: None,
                        data: serde_json::json!({ "total": order.total_cents, "provider": order.payment.provider }),
                    },
                    &mut order,
                )?;
                self.orders.stage_order(batch, &mut order)?;
                self.idempotency
                    .stage_order(batch, slot, id, token.as_deref().unwrap_or("").as_bytes())
            })
        };
        match &applied {
            Some(a) => self
                .coupons
                .redeem(a, &lines, &nets, &customer, order_id, "coupon", place)?,
            None => place(&mut |_| Ok(()))?,
        }
        Ok((order, token))
    }
}

/// The body of a declined checkout: the error, with the failed order in its details.
fn declined_body(reason: &str, view: &OrderView) -> Vec<u8> {
    DomainError::PaymentDeclined {
        reason: reason.to_owned(),
        order: serde_json::to_value(view).unwrap_or(serde_json::Value::Null),
    }
    .body()
}
