//! Notifications: outbox events delivered, at least once, to every sink that wants them
//! (webhook endpoints, and email), with retries, a dead-letter queue and replay.
//!
//! - **Fan-out** ([`dispatch::Dispatcher`]): each outbox event becomes one delivery per
//!   subscribed sink, and moves to the event log, in one batch. An event stays in the outbox
//!   until that batch commits, so none is lost between the database and the queue; a crash
//!   before it simply fans the event out again.
//! - **Delivery** ([`dispatch::Courier`]): deliveries come due in time order. Each sink has
//!   its own budget of deliveries in flight, so a slow or failing endpoint holds only its own.
//!   A failure is retried after an exponential backoff with jitter (`backon`); after
//!   `max_attempts` the delivery moves to the dead letters. Every delivery carries the event
//!   id (`webhook-id`), so receivers can deduplicate the repeats at-least-once implies.
//! - **Retention** ([`dispatch::Retention`]): the event log and finished deliveries are
//!   deleted after `retention_secs`.
//!
//! Admins manage endpoints (`/admin/webhooks`) and deliveries (`/admin/deliveries`: list,
//! show with attempts, replay, discard); every admin action is kept in the delivery's history.

pub mod dispatch;
pub mod email;
pub mod webhook;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use storefront_storage::cf::{CF_DEAD_LETTERS, CF_DELIVERIES, CF_DELIVERY_DUE, CF_WEBHOOKS};
use storefront_storage::notifications::{AttemptRecord, DeliveryRecord, DeliveryStateRecord, WebhookRecord};
use storefront_storage::records::encode;
use storefront_storage::{Batch, Owned, Store};

use super::auth::Actor;
use super::events::outbox::new_event;
use super::view::notify::{DeliveryView, WebhookView};
use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::{FieldErrors, Id};
use crate::worker::{Background, Wake};
use email::Mailer;

/// The delivery history kept per delivery.
const HISTORY: usize = 20;

/// Settings of notifications.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// First retry wait.
    pub backoff_initial: Duration,
    /// Longest retry wait.
    pub backoff_max: Duration,
    /// How long the event log and finished deliveries are kept.
    pub retention: Duration,
    /// Deliveries in flight per sink.
    pub concurrency_per_sink: usize,
    /// Webhooks may target private networks.
    pub allow_private_targets: bool,
    /// Webhook answer timeout.
    pub webhook_timeout: Duration,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    /// Deliveries a sink took.
    pub delivered: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    /// Failed attempts scheduled for a retry.
    pub retried: AtomicU64,
    /// Deliveries that ran out of attempts.
    pub died: AtomicU64,
    /// Dead letters now.
    pub dead_letters: AtomicI64,
}

/// The notifications service.
pub struct Notifications {
    store: Store,
    clock: SharedClock,
    settings: NotifySettings,
    webhooks: ArcSwap<Vec<WebhookRecord>>,
    mailer: Arc<Mailer>,
    http: reqwest::Client,
    /// Deliveries being attempted now, and how many per sink.
    in_flight: Mutex<InFlight>,
    /// Wakes the courier (new deliveries, a finished attempt, a replay).
    courier: Wake,
    /// Where fan-out, attempts and their bookkeeping run, below the requests' priority.
    background: Background,
    writes: Mutex<()>,
    /// Counters.
    pub metrics: NotifyMetrics,
}

#[derive(Default)]
struct InFlight {
    ids: std::collections::HashSet<[u8; 16]>,
    per_sink: HashMap<String, usize>,
    /// Attempts finished and not recorded yet: the courier writes them in one batch per step.
    done: Vec<dispatch::Finished>,
}

/// The due-index key of a delivery.
fn due_key(at_ms: i64, id: &[u8; 16]) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&at_ms.to_be_bytes());
    key[8..].copy_from_slice(id);
    key
}

/// Which sinks a delivery list filter means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    Any,
    One(DeliveryStateRecord),
}

impl Notifications {
    /// Opens the service, loading the endpoints and counting the dead letters.
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: NotifySettings,
        mailer: Arc<Mailer>,
        courier: Wake,
    ) -> Result<Notifications, ServiceError> {
        let http = webhook::client(settings.allow_private_targets, settings.webhook_timeout);
        let n = Notifications {
            store,
            clock,
            webhooks: ArcSwap::from_pointee(Vec::new()),
            mailer,
            http,
            in_flight: Mutex::new(InFlight::default()),
            courier,
            background: Background::start("notifications")
                .map_err(|e| ServiceError::internal_from("starting the notification thread", e))?,
            writes: Mutex::new(()),
            metrics: NotifyMetrics::default(),
            settings,
        };
        n.reload()?;
        let mut dead = 0;
        n.store.for_each_raw(CF_DEAD_LETTERS, &[], None, |_, _| {
            dead += 1;
            true
        })?;
        n.metrics.dead_letters.store(dead, Ordering::Relaxed);
        Ok(n)
    }

    /// Ends the delivery attempts in flight (at shutdown, after the workers). An attempt cut
    /// short stays due in the store and is made again after the restart: delivery is at least
    /// once, and receivers deduplicate by delivery id.
    pub async fn stop(&self) {
        self.background.stop().await;
    }

    fn reload(&self) -> Result<(), ServiceError> {
        let mut all = Vec::new();
        let mut failed = None;
        self.store.for_each_raw(CF_WEBHOOKS, &[], None, |key, value| {
            match Owned::<WebhookRecord>::from_slice(key, value) {
                Ok(r) => all.push(r.to_native()),
                Err(e) => failed = Some(e),
            }
            failed.is_none()
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.webhooks.store(Arc::new(all));
        Ok(())
    }

    /// The sinks that want an event (a `ping` goes to its endpoint only).
    fn sinks_for(&self, topic: &str, payload: &serde_json::Value) -> Vec<String> {
        if topic == PING {
            let id = payload["webhook_id"].as_str().unwrap_or_default();
            return self
                .webhooks
                .load()
                .iter()
                .filter(|w| Id::from_bytes(w.id).to_string() == id)
                .map(|w| format!("webhook:{}", Id::from_bytes(w.id)))
                .collect();
        }
        let mut sinks: Vec<String> = self
            .webhooks
            .load()
            .iter()
            .filter(|w| w.active && w.events.iter().any(|e| e == "*" || e == topic))
            .map(|w| format!("webhook:{}", Id::from_bytes(w.id)))
            .collect();
        if self.mailer.wants(topic, payload) {
            sinks.push("email".to_owned());
        }
        sinks
    }

    // ------------------------------------------------------------ webhooks

    fn check_webhook(&self, input: &WebhookInput, record: &mut WebhookRecord, patch: bool) -> Result<(), ServiceError> {
        let mut errors = FieldErrors::default();
        match &input.url {
            Some(url) => match webhook::check_url(url, self.settings.allow_private_targets) {
                Ok(u) => record.url = u.to_string(),
                Err(why) => errors.add("url", "invalid", why),
            },
            None if !patch => errors.add("url", "required", "must be given"),
            None => {}
        }
        match &input.events {
            Some(events) if events.is_empty() => errors.add("events", "required", "name event types, or [\"*\"]"),
            Some(events) => {
                for (i, e) in events.iter().enumerate() {
                    if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                        errors.add(
                            format!("events[{i}]"),
                            "unknown",
                            format!("one of {}", EVENT_TYPES.join(", ")),
                        );
                    }
                }
                record.events = events.clone();
            }
            None if !patch => errors.add("events", "required", "name event types, or [\"*\"]"),
            None => {}
        }
        if let Some(secret) = &input.secret {
            if webhook::secret_key(secret).is_none() {
                errors.add(
                    "secret",
                    "invalid",
                    "a Standard Webhooks secret: whsec_ and 16-64 bytes in base64",
                );
            } else {
                record.secret = secret.clone();
            }
        }
        if let Some(active) = input.active {
            record.active = active;
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        record.updated_at_ms = self.clock.now_ms();
        Ok(())
    }

    fn save_webhook(&self, record: &WebhookRecord) -> Result<(), ServiceError> {
        let mut batch = self.store.batch();
        batch.put(&record.id, record)?;
        batch.commit()?;
        self.reload()
    }

    /// `POST /admin/webhooks`: registers an endpoint; the answer shows its secret.
    pub async fn create_webhook(
        self: &Arc<Self>,
        actor: Actor,
        input: WebhookInput,
    ) -> Result<WebhookView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let now = this.clock.now_ms();
            let mut record = WebhookRecord {
                id: Id::new().to_bytes(),
                url: String::new(),
                events: Vec::new(),
                secret: webhook::new_secret(),
                active: true,
                version: 1,
                created_at_ms: now,
                updated_at_ms: now,
            };
            this.check_webhook(&input, &mut record, false)?;
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.save_webhook(&record)?;
            Ok(WebhookView::new(&record))
        })
        .await
    }

    /// `POST /admin/webhooks/{id}/ping`: sends `count` test events (`ping`) to one endpoint, to
    /// check a receiver or to load-test it.
    pub async fn ping(self: &Arc<Self>, actor: Actor, id: Id, count: Option<u32>) -> Result<u32, ServiceError> {
        actor.require_admin()?;
        let count = count.unwrap_or(1);
        if !(1..=10_000).contains(&count) {
            return Err(ServiceError::invalid("count", "out_of_range", "1 to 10000"));
        }
        let this = self.clone();
        blocking(move || {
            this.store
                .get::<WebhookRecord>(&id.to_bytes())?
                .ok_or(ServiceError::NotFound { kind: "webhook" })?;
            let now = this.clock.now_ms();
            let mut batch = this.store.batch();
            for n in 0..count {
                let event = new_event(PING, serde_json::json!({ "webhook_id": id, "n": n }), now);
                batch.put(&event.id, &event)?;
            }
            batch.commit()?;
            Ok(count)
        })
        .await
    }

    /// `GET /admin/webhooks`.
    pub async fn list_webhooks(self: &Arc<Self>, actor: Actor) -> Result<Vec<WebhookView>, ServiceError> {
        actor.require_admin()?;
        Ok(self.webhooks.load().iter().map(WebhookView::new).collect())
    }

    /// `PATCH /admin/webhooks/{id}`.
    pub async fn update_webhook(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: WebhookInput,
    ) -> Result<WebhookView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut record = this
                .store
                .get::<WebhookRecord>(&id.to_bytes())?
                .ok_or(ServiceError::NotFound { kind: "webhook" })?
                .to_native();
            this.check_webhook(&input, &mut record, true)?;
            record.version += 1;
            this.save_webhook(&record)?;
            Ok(WebhookView::new(&record))
        })
        .await
    }

    /// `DELETE /admin/webhooks/{id}`: its deliveries still waiting are dropped when due.
    pub async fn delete_webhook(self: &Arc<Self>, actor: Actor, id: Id) -> Result<(), ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            this.store
                .get::<WebhookRecord>(&id.to_bytes())?
                .ok_or(ServiceError::NotFound { kind: "webhook" })?;
            let mut batch = this.store.batch();
            batch.delete(CF_WEBHOOKS, &id.to_bytes());
            batch.commit()?;
            this.reload()
        })
        .await
    }

    // ---------------------------------------------------------- deliveries

    /// Reads a delivery, live or dead: the record and whether it is a dead letter.
    fn find_delivery(&self, id: Id) -> Result<Option<(DeliveryRecord, bool)>, ServiceError> {
        if let Some(r) = self.store.get::<DeliveryRecord>(&id.to_bytes())? {
            return Ok(Some((r.to_native(), false)));
        }
        match self.store.get_raw(CF_DEAD_LETTERS, &id.to_bytes())? {
            Some(raw) => Ok(Some((
                Owned::<DeliveryRecord>::from_slice(&id.to_bytes(), &raw)?.to_native(),
                true,
            ))),
            None => Ok(None),
        }
    }

    /// `GET /admin/deliveries`: deliveries in id (creation) order after `cursor`, filtered.
    pub async fn list_deliveries(
        self: &Arc<Self>,
        actor: Actor,
        filter: DeliveryFilter,
    ) -> Result<(Vec<DeliveryView>, Option<String>), ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        let state = match filter.status.as_deref() {
            None => StateFilter::Any,
            Some("pending") => StateFilter::One(DeliveryStateRecord::Pending),
            Some("failed") => StateFilter::One(DeliveryStateRecord::Failed),
            Some("delivered") => StateFilter::One(DeliveryStateRecord::Delivered),
            Some("dead") => StateFilter::One(DeliveryStateRecord::Dead),
            Some("discarded") => StateFilter::One(DeliveryStateRecord::Discarded),
            Some(_) => {
                errors.add("status", "invalid", "pending, failed, delivered, dead or discarded");
                StateFilter::Any
            }
        };
        let limit = match filter.limit.as_deref().map(str::parse::<usize>) {
            None => 50,
            Some(Ok(n)) if (1..=500).contains(&n) => n,
            Some(_) => {
                errors.add("limit", "out_of_range", "1 to 500");
                50
            }
        };
        let after = match filter.cursor.as_deref().map(Id::parse) {
            None => None,
            Some(Some(id)) => Some(id),
            Some(None) => {
                errors.add("cursor", "invalid", "a delivery id from the last page");
                None
            }
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let cfs: &[&'static str] = match state {
                StateFilter::One(DeliveryStateRecord::Dead | DeliveryStateRecord::Discarded) => &[CF_DEAD_LETTERS],
                StateFilter::One(_) => &[CF_DELIVERIES],
                StateFilter::Any => &[CF_DELIVERIES, CF_DEAD_LETTERS],
            };
            let lower = after
                .map(|a| [a.to_bytes().as_slice(), &[0]].concat())
                .unwrap_or_default();
            let mut found: Vec<DeliveryRecord> = Vec::new();
            let mut failed = None;
            for cf in cfs {
                this.store.for_each_raw(cf, &lower, None, |key, value| {
                    match Owned::<DeliveryRecord>::from_slice(key, value) {
                        Ok(r) => {
                            let d = r.archived();
                            let keep = match state {
                                StateFilter::Any => true,
                                StateFilter::One(s) => d.state == s,
                            } && filter.sink.as_deref().is_none_or(|s| d.sink == s)
                                && filter.topic.as_deref().is_none_or(|t| d.topic == t);
                            if keep {
                                found.push(r.to_native());
                            }
                        }
                        Err(e) => failed = Some(e),
                    }
                    failed.is_none() && found.len() <= limit
                })?;
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
            found.sort_by_key(|d| d.id);
            let more = found.len() > limit;
            found.truncate(limit);
            let next = more
                .then(|| found.last().map(|d| Id::from_bytes(d.id).to_string()))
                .flatten();
            Ok((found.iter().map(DeliveryView::new).collect(), next))
        })
        .await
    }

    /// `GET /admin/deliveries/{id}`: one delivery with its attempts.
    pub async fn get_delivery(self: &Arc<Self>, actor: Actor, id: Id) -> Result<DeliveryView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let (d, _) = this
                .find_delivery(id)?
                .ok_or(ServiceError::NotFound { kind: "delivery" })?;
            Ok(DeliveryView::new(&d))
        })
        .await
    }

    fn note(&self, d: &mut DeliveryRecord, what: &str) {
        let now = self.clock.now_ms();
        d.history.push(AttemptRecord {
            at_ms: now,
            status: 0,
            note: Some(what.to_owned()),
            duration_ms: 0,
        });
        if d.history.len() > HISTORY {
            d.history.remove(0);
        }
        d.updated_at_ms = now;
    }

    /// Stages `d` as pending and due now (out of the dead letters when it was one).
    fn stage_replay(
        &self,
        batch: &mut Batch<'_>,
        mut d: DeliveryRecord,
        dead: bool,
    ) -> Result<DeliveryRecord, ServiceError> {
        let now = self.clock.now_ms();
        if dead {
            batch.delete(CF_DEAD_LETTERS, &d.id);
        } else {
            batch.delete(CF_DELIVERY_DUE, &due_key(d.next_attempt_at_ms, &d.id));
        }
        self.note(&mut d, "replayed by admin");
        d.state = DeliveryStateRecord::Pending;
        d.attempts = 0;
        d.next_attempt_at_ms = now;
        batch.put(&d.id, &d)?;
        batch.put_raw(CF_DELIVERY_DUE, &due_key(now, &d.id), d.sink.as_bytes());
        Ok(d)
    }

    /// `POST /admin/deliveries/{id}/replay`: tries it again now, with all its attempts.
    pub async fn replay(self: &Arc<Self>, actor: Actor, id: Id) -> Result<DeliveryView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        let view = blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let (d, dead) = this
                .find_delivery(id)?
                .ok_or(ServiceError::NotFound { kind: "delivery" })?;
            if this
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ids
                .contains(&d.id)
            {
                return Err(ServiceError::Missing {
                    code: crate::domain::error::Code::InvalidTransition,
                    message: "the delivery is being attempted right now",
                });
            }
            let mut batch = this.store.batch();
            let d = this.stage_replay(&mut batch, d, dead)?;
            batch.commit()?;
            if dead {
                this.metrics.dead_letters.fetch_sub(1, Ordering::Relaxed);
            }
            tracing::info!(delivery = %id, "delivery replayed by admin");
            Ok(DeliveryView::new(&d))
        })
        .await?;
        self.courier.wake();
        Ok(view)
    }

    /// `POST /admin/deliveries/replay`: every dead letter (not the discarded) again.
    pub async fn replay_dead(self: &Arc<Self>, actor: Actor) -> Result<usize, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        let n = blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut dead = Vec::new();
            let mut failed = None;
            this.store.for_each_raw(CF_DEAD_LETTERS, &[], None, |key, value| {
                match Owned::<DeliveryRecord>::from_slice(key, value) {
                    Ok(r) if r.archived().state == DeliveryStateRecord::Dead => dead.push(r.to_native()),
                    Ok(_) => {}
                    Err(e) => failed = Some(e),
                }
                failed.is_none()
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            let n = dead.len();
            for chunk in dead.chunks(500) {
                let mut batch = this.store.batch();
                for d in chunk {
                    this.stage_replay(&mut batch, d.clone(), true)?;
                }
                batch.commit()?;
                this.metrics
                    .dead_letters
                    .fetch_sub(chunk.len() as i64, Ordering::Relaxed);
            }
            tracing::info!(count = n, "dead letters replayed by admin");
            Ok(n)
        })
        .await?;
        self.courier.wake();
        Ok(n)
    }

    /// `DELETE /admin/deliveries/{id}`: gives up on a delivery; it is kept, `discarded`, with
    /// the dead letters until retention.
    pub async fn discard(self: &Arc<Self>, actor: Actor, id: Id) -> Result<DeliveryView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.writes.lock().unwrap_or_else(|p| p.into_inner());
            let (mut d, dead) = this
                .find_delivery(id)?
                .ok_or(ServiceError::NotFound { kind: "delivery" })?;
            let mut batch = this.store.batch();
            if !dead {
                batch.delete(CF_DELIVERIES, &d.id);
                batch.delete(CF_DELIVERY_DUE, &due_key(d.next_attempt_at_ms, &d.id));
            }
            this.note(&mut d, "discarded by admin");
            d.state = DeliveryStateRecord::Discarded;
            batch.put_raw(CF_DEAD_LETTERS, &d.id, &encode(&d)?);
            batch.commit()?;
            if !dead {
                this.metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(delivery = %id, "delivery discarded by admin");
            Ok(DeliveryView::new(&d))
        })
        .await
    }

    /// Per sink: deliveries waiting and the age of the oldest due one, milliseconds (for
    /// `/metrics`; reads at most the first 10 000 due entries).
    pub fn lag_per_sink(&self) -> Vec<(String, u64, i64)> {
        let now = self.clock.now_ms();
        let mut per: HashMap<String, (u64, i64)> = HashMap::new();
        let mut seen = 0;
        let _ = self.store.for_each_raw(CF_DELIVERY_DUE, &[], None, |key, value| {
            let due = key
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(now, i64::from_be_bytes);
            let entry = per.entry(String::from_utf8_lossy(value).into_owned()).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = entry.1.max(now - due);
            seen += 1;
            seen < 10_000
        });
        let mut out: Vec<(String, u64, i64)> = per.into_iter().map(|(s, (n, lag))| (s, n, lag.max(0))).collect();
        out.sort();
        out
    }
}

/// The test event of `POST /admin/webhooks/{id}/ping`.
pub const PING: &str = "ping";

/// Every event type a webhook may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "user_registered",
    "order_placed",
    "order_confirmed",
    "payment_failed",
    "payment_captured",
    "order_shipped",
    "order_delivered",
    "order_cancelled",
    "refund_issued",
    "return_requested",
    "low_stock",
    "cart_abandoned",
    "back_in_stock",
    "price_drop",
    "review_submitted",
];

/// Body of `POST /admin/webhooks` and `PATCH /admin/webhooks/{id}`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where deliveries go (http or https; loopback and private networks are refused unless
    /// `[webhooks] allow_private_targets`).
    pub url: Option<String>,
    /// Event types, or `["*"]` for all.
    pub events: Option<Vec<String>>,
    /// A Standard Webhooks secret (`whsec_<base64>`); generated when not given.
    pub secret: Option<String>,
    /// Paused endpoints receive nothing (default true).
    pub active: Option<bool>,
}

/// Filters of `GET /admin/deliveries`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// `pending`, `failed`, `delivered`, `dead` or `discarded`.
    pub status: Option<String>,
    /// `webhook:<id>` or `email`.
    pub sink: Option<String>,
    /// An event type.
    pub topic: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the last page.
    pub cursor: Option<String>,
}
