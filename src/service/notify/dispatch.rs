//! The notification workers: fan-out of outbox events into deliveries, the courier that
//! attempts them, and retention. Their writes are not fsynced on their own: a batch lost with
//! a crash leaves the event in the outbox or the delivery due, so it is simply done again
//! (at least once), and the next synced write of the store makes them durable anyway.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use backon::BackoffBuilder;
use storefront_storage::cf::{CF_DEAD_LETTERS, CF_DELIVERIES, CF_DELIVERY_DUE, CF_EVENT_LOG, CF_OUTBOX};
use storefront_storage::notifications::{AttemptRecord, DeliveryRecord, DeliveryStateRecord};
use storefront_storage::records::{encode, OutboxRecord};
use storefront_storage::Owned;

use super::{due_key, webhook, Notifications, HISTORY};
use crate::domain::Id;
use crate::service::view::rfc3339;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Events fanned out per step.
const FAN_OUT_STEP: usize = 500;
/// Due entries read per courier step.
const DUE_SCAN: usize = 5_000;
/// Events that carry a secret (a single-use token for the email): they are not kept in the
/// event log, and a delivery's copy is blanked once it is delivered.
const SECRET_TOPICS: &[&str] = &["password_reset_requested", "email_verification_requested"];

/// Every this many steps a scan starts at the very beginning, not at its floor.
const FULL_SCAN_EVERY: u32 = 100;

/// Where the next scan of a consumed-from-the-front index starts. Consumed entries leave
/// tombstones that a scan from the start would wade through on every step (they were the
/// largest cost of a delivery); the floor skips them. An entry that appears below the floor
/// (an event whose batch committed after a later one's) is found by the full scan every
/// [`FULL_SCAN_EVERY`] steps.
#[derive(Debug, Default)]
struct ScanFloor {
    steps: u32,
    floor: Vec<u8>,
}

impl ScanFloor {
    /// The key the next scan starts at.
    fn start(&mut self) -> Vec<u8> {
        self.steps = self.steps.wrapping_add(1);
        if self.steps % FULL_SCAN_EVERY == 1 {
            Vec::new()
        } else {
            self.floor.clone()
        }
    }
}

/// The smallest UUIDv7 key of `ms`: where events of that millisecond begin.
fn id_floor(ms: i64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..6].copy_from_slice(&(ms.max(0) as u64).to_be_bytes()[2..]);
    key
}

/// Where a fan-out step starts.
type Hint = Arc<std::sync::Mutex<ScanFloor>>;

/// Turns outbox events into deliveries.
pub struct Dispatcher {
    notify: Arc<Notifications>,
    hint: Hint,
}

impl Dispatcher {
    /// The fan-out of `notify`.
    pub fn new(notify: Arc<Notifications>) -> Dispatcher {
        Dispatcher {
            notify,
            hint: Arc::default(),
        }
    }
}

/// One fan-out step: scans the outbox from just after the last event it handed out.
fn fan_out(n: &Notifications, hint_cell: &Hint) -> Result<Progress, ServiceError> {
    {
        let lower = hint_cell.lock().unwrap_or_else(|p| p.into_inner()).start();
        let mut events: Vec<(Vec<u8>, Vec<u8>, OutboxRecord)> = Vec::new();
        let mut failed = None;
        n.store.for_each_raw(CF_OUTBOX, &lower, None, |key, value| {
            match Owned::<OutboxRecord>::from_slice(key, value) {
                Ok(r) => events.push((key.to_vec(), value.to_vec(), r.to_native())),
                Err(e) => failed = Some(e),
            }
            failed.is_none() && events.len() < FAN_OUT_STEP
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let Some(last) = events.iter().map(|(k, _, _)| k.clone()).max() else {
            return Ok(Progress::Idle);
        };
        let now = n.clock.now_ms();
        let mut batch = n.store.batch();
        let mut made = 0;
        for (key, raw, event) in &events {
            let data: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
            let body = serde_json::json!({
                "id": Id::from_bytes(event.id),
                "type": event.topic,
                "created_at": rfc3339(event.created_at_ms),
                "data": data,
            })
            .to_string();
            for sink in n.sinks_for(&event.topic, &data) {
                let d = DeliveryRecord {
                    id: Id::new().to_bytes(),
                    event_id: event.id,
                    topic: event.topic.clone(),
                    sink: sink.clone(),
                    payload: body.clone(),
                    state: DeliveryStateRecord::Pending,
                    attempts: 0,
                    next_attempt_at_ms: now,
                    history: Vec::new(),
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                batch.put(&d.id, &d)?;
                batch.put_raw(CF_DELIVERY_DUE, &due_key(now, &d.id), sink.as_bytes());
                made += 1;
            }
            batch.delete(CF_OUTBOX, key);
            if !SECRET_TOPICS.contains(&event.topic.as_str()) {
                batch.put_raw(CF_EVENT_LOG, key, raw);
            }
        }
        batch.commit_unsynced()?;
        {
            let mut hint = hint_cell.lock().unwrap_or_else(|p| p.into_inner());
            let next = [last.as_slice(), &[0]].concat();
            if next > hint.floor {
                hint.floor = next;
            }
        }
        if made > 0 {
            n.courier.wake();
        }
        Ok(Progress::Worked)
    }
}

#[async_trait::async_trait]
impl Worker for Dispatcher {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let (n, hint) = (self.notify.clone(), self.hint.clone());
        let background = &self.notify.background;
        background.run(move || fan_out(&n, &hint)).await
    }
}

/// Attempts the deliveries that are due.
pub struct Courier {
    notify: Arc<Notifications>,
    floor: Arc<std::sync::Mutex<ScanFloor>>,
}

impl Courier {
    /// The courier of `notify`.
    pub fn new(notify: Arc<Notifications>) -> Courier {
        Courier {
            notify,
            floor: Arc::default(),
        }
    }
}

/// A server dropped without [`Notifications::stop`] (an embedder's runtime shut down, a test
/// that ends) still ends its attempts: they hold the service, so without this they would keep
/// the store open until each finished, past the end of the process.
impl Drop for Courier {
    fn drop(&mut self) {
        self.notify.background.cancel();
    }
}

/// Claims due deliveries within each sink's budget. The scan starts at the head the last one
/// found: every later entry is due at or after it.
fn claim(
    n: &Notifications,
    floor: &std::sync::Mutex<ScanFloor>,
) -> Result<Vec<(DeliveryRecord, [u8; 24])>, ServiceError> {
    let now = n.clock.now_ms();
    let upper = due_key(now.saturating_add(1), &[0; 16]);
    let lower = floor.lock().unwrap_or_else(|p| p.into_inner()).start();
    let mut head: Option<Vec<u8>> = None;
    let mut due: Vec<([u8; 24], String)> = Vec::new();
    {
        let flight = n.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut scanned = 0;
        // The entries in flight sit at the head of the index; a little past them is enough to
        // fill every sink's budget, and a full scan per step would cost more than a delivery.
        let scan_limit = (flight.ids.len() + 1_024).min(DUE_SCAN);
        n.store
            .for_each_raw(CF_DELIVERY_DUE, &lower, Some(&upper), |key, value| {
                scanned += 1;
                if head.is_none() {
                    head = Some(key.to_vec());
                }
                if let (Ok(k), Ok(sink)) = (<[u8; 24]>::try_from(key), std::str::from_utf8(value)) {
                    let id: [u8; 16] = k[8..].try_into().expect("16 bytes");
                    let busy = flight.per_sink.get(sink).copied().unwrap_or(0) + taken.get(sink).copied().unwrap_or(0);
                    if !flight.ids.contains(&id) && busy < n.settings.concurrency_per_sink {
                        *taken.entry(sink.to_owned()).or_default() += 1;
                        due.push((k, sink.to_owned()));
                    }
                }
                scanned < scan_limit
            })?;
    }
    floor.lock().unwrap_or_else(|p| p.into_inner()).floor = head.unwrap_or_else(|| upper.to_vec());
    let mut claimed = Vec::new();
    let mut stale = n.store.batch();
    for (key, _) in due {
        let id: [u8; 16] = key[8..].try_into().expect("16 bytes");
        match n.store.get::<DeliveryRecord>(&id)? {
            Some(d) => claimed.push((d.to_native(), key)),
            // Discarded or replayed since the index was read.
            None => stale.delete(CF_DELIVERY_DUE, &key),
        }
    }
    stale.commit_unsynced()?;
    let mut flight = n.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    claimed.retain(|(d, _)| flight.ids.insert(d.id));
    for (d, _) in &claimed {
        *flight.per_sink.entry(d.sink.clone()).or_default() += 1;
    }
    Ok(claimed)
}

/// An attempt that finished: the delivery, its due key, and how it went.
pub(super) struct Finished {
    delivery: DeliveryRecord,
    key: [u8; 24],
    outcome: Outcome,
}

/// What one attempt came to.
struct Outcome {
    status: u16,
    error: Option<String>,
    took_ms: u32,
}

/// Attempts one delivery.
async fn attempt(n: &Notifications, d: &DeliveryRecord) -> Outcome {
    let started = Instant::now();
    let event_id = Id::from_bytes(d.event_id).to_string();
    let result: Result<u16, (u16, String)> = if let Some(endpoint) = d.sink.strip_prefix("webhook:") {
        let hook = n
            .webhooks
            .load()
            .iter()
            .find(|w| Id::from_bytes(w.id).to_string() == endpoint)
            .cloned();
        match hook {
            None => Err((0, "the endpoint was deleted".to_owned())),
            Some(hook) => match webhook::secret_key(&hook.secret) {
                None => Err((0, "the endpoint's secret is not valid".to_owned())),
                Some(key) => {
                    webhook::send(
                        &n.http,
                        &hook.url,
                        n.settings.allow_private_targets,
                        &key,
                        &event_id,
                        n.clock.now_ms() / 1000,
                        d.payload.clone(),
                    )
                    .await
                }
            },
        }
    } else if d.sink == "email" {
        let event: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
        match n.mailer.render(&d.topic, &event["data"]) {
            Ok(Some(email)) => n.mailer.send(email, &event_id).await.map(|()| 250).map_err(|e| (0, e)),
            Ok(None) => Ok(0),
            Err(e) => Err((0, format!("template: {e}"))),
        }
    } else {
        Err((0, format!("unknown sink {}", d.sink)))
    };
    let took_ms = started.elapsed().as_millis().min(u32::MAX as u128) as u32;
    match result {
        Ok(status) => Outcome {
            status,
            error: None,
            took_ms,
        },
        Err((status, why)) => Outcome {
            status,
            error: Some(why),
            took_ms,
        },
    }
}

/// Records finished attempts in one batch: delivered, due again after a backoff, or dead;
/// then frees their places in flight.
fn record_all(n: &Notifications) -> Result<usize, ServiceError> {
    let done = std::mem::take(&mut n.in_flight.lock().unwrap_or_else(|p| p.into_inner()).done);
    if done.is_empty() {
        return Ok(0);
    }
    let mut batch = n.store.batch();
    for f in &done {
        stage_outcome(n, &mut batch, f)?;
    }
    batch.commit_unsynced()?;
    let mut flight = n.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    for f in &done {
        flight.ids.remove(&f.delivery.id);
        if let Some(c) = flight.per_sink.get_mut(&f.delivery.sink) {
            *c = c.saturating_sub(1);
        }
    }
    Ok(done.len())
}

/// Stages one finished attempt.
fn stage_outcome(
    n: &Notifications,
    batch: &mut storefront_storage::Batch<'_>,
    f: &Finished,
) -> Result<(), ServiceError> {
    let (mut d, key) = (f.delivery.clone(), f.key);
    let outcome = &f.outcome;
    // A replay or discard while the attempt ran took the delivery over; leave it to them.
    let Some(current) = n.store.get::<DeliveryRecord>(&d.id)? else {
        return Ok(());
    };
    if current.archived().next_attempt_at_ms.to_native() != d.next_attempt_at_ms {
        return Ok(());
    }
    let now = n.clock.now_ms();
    d.attempts += 1;
    d.history.push(AttemptRecord {
        at_ms: now,
        status: outcome.status,
        note: outcome.error.clone(),
        duration_ms: outcome.took_ms,
    });
    if d.history.len() > HISTORY {
        d.history.remove(0);
    }
    d.updated_at_ms = now;
    batch.delete(CF_DELIVERY_DUE, &key);
    match outcome.error {
        None => {
            d.state = DeliveryStateRecord::Delivered;
            if SECRET_TOPICS.contains(&d.topic.as_str()) {
                d.payload = serde_json::json!({ "redacted": "carried a single-use token" }).to_string();
            }
            batch.put(&d.id, &d)?;
            n.metrics.delivered.fetch_add(1, Ordering::Relaxed);
        }
        Some(_) if d.attempts >= n.settings.max_attempts.max(1) => {
            d.state = DeliveryStateRecord::Dead;
            batch.delete(CF_DELIVERIES, &d.id);
            batch.put_raw(CF_DEAD_LETTERS, &d.id, &encode(&d)?);
            n.metrics.failed.fetch_add(1, Ordering::Relaxed);
            n.metrics.died.fetch_add(1, Ordering::Relaxed);
            n.metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(delivery = %Id::from_bytes(d.id), sink = %d.sink, topic = %d.topic, "delivery is dead after its last attempt");
        }
        Some(_) => {
            let wait = backon::ExponentialBuilder::new()
                .with_min_delay(n.settings.backoff_initial)
                .with_max_delay(n.settings.backoff_max)
                .with_jitter()
                .without_max_times()
                .build()
                .nth(d.attempts.saturating_sub(1) as usize)
                .unwrap_or(n.settings.backoff_max);
            d.state = DeliveryStateRecord::Failed;
            d.next_attempt_at_ms = now + wait.as_millis() as i64;
            batch.put(&d.id, &d)?;
            batch.put_raw(
                CF_DELIVERY_DUE,
                &due_key(d.next_attempt_at_ms, &d.id),
                d.sink.as_bytes(),
            );
            n.metrics.failed.fetch_add(1, Ordering::Relaxed);
            n.metrics.retried.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Worker for Courier {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let (n, floor) = (self.notify.clone(), self.floor.clone());
        let (recorded, claimed) = self
            .notify
            .background
            .run(move || Ok((record_all(&n)?, claim(&n, &floor)?)))
            .await?;
        if claimed.is_empty() {
            return Ok(if recorded > 0 { Progress::Worked } else { Progress::Idle });
        }
        for (d, key) in claimed {
            let n = self.notify.clone();
            // Each attempt runs on its own, so a slow sink never holds the others up; the
            // courier records what they came to in its next step.
            self.notify.background.spawn(async move {
                let outcome = attempt(&n, &d).await;
                n.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .done
                    .push(Finished {
                        delivery: d,
                        key,
                        outcome,
                    });
                n.courier.wake();
            });
        }
        Ok(Progress::Worked)
    }
}

/// Deletes the event log and finished deliveries past retention.
pub struct Retention {
    notify: Arc<Notifications>,
}

impl Retention {
    /// The retention of `notify`.
    pub fn new(notify: Arc<Notifications>) -> Retention {
        Retention { notify }
    }
}

#[async_trait::async_trait]
impl Worker for Retention {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let n = self.notify.clone();
        blocking(move || {
            let cutoff = n.clock.now_ms() - n.settings.retention.as_millis() as i64;
            let upper = id_floor(cutoff);
            let mut batch = n.store.batch();
            let mut deleted = 0usize;
            n.store.for_each_raw(CF_EVENT_LOG, &[], Some(&upper), |key, _| {
                batch.delete(CF_EVENT_LOG, key);
                deleted += 1;
                deleted < 10_000
            })?;
            for cf in [CF_DELIVERIES, CF_DEAD_LETTERS] {
                n.store.for_each_raw(cf, &[], Some(&upper), |key, value| {
                    if let Ok(d) = Owned::<DeliveryRecord>::from_slice(key, value) {
                        let state = &d.archived().state;
                        let finished =
                            *state == DeliveryStateRecord::Delivered || *state == DeliveryStateRecord::Discarded;
                        if finished && d.archived().updated_at_ms.to_native() < cutoff {
                            batch.delete(cf, key);
                            deleted += 1;
                            if cf == CF_DEAD_LETTERS {
                                n.metrics.dead_letters.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                    }
                    deleted < 10_000
                })?;
            }
            batch.commit_unsynced()?;
            Ok(if deleted >= 10_000 {
                Progress::Worked
            } else {
                Progress::Idle
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The millisecond of a UUIDv7.
    fn id_ms(id: &[u8]) -> i64 {
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&id[..6]);
        u64::from_be_bytes(b) as i64
    }

    #[test]
    fn id_floors_sort_before_every_id_of_their_millisecond() {
        let id = Id::new().to_bytes();
        let ms = id_ms(&id);
        assert!(id_floor(ms) <= id);
        assert!(id_floor(ms + 1) > id);
        assert_eq!(id_ms(&id_floor(ms)), ms);
    }
}
