//! Idempotency keys of money-moving requests (Stripe's semantics): the first request with a
//! key runs, and its answer is stored in the same batch as the change it made; a repeat with
//! the same request gets that answer again, a repeat with another request is refused (422), and
//! a repeat while the first still runs gets 409.
//!
//! Keys are scoped to the caller (a user, or a guest's cart) and kept for `ttl`. A record left
//! unfinished by a process that died is taken over by the next repeat: if the first attempt got
//! as far as creating an order, the repeat resumes that order instead of starting another.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use storefront_storage::cf::CF_IDEMPOTENCY;
use storefront_storage::keys;
use storefront_storage::orders::IdempotencyRecord;
use storefront_storage::{Batch, Store};

use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::error::DomainError;
use crate::domain::Id;
use crate::worker::{Progress, Worker};

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Where a request with a key stands.
#[derive(Debug)]
pub enum Begin {
    /// Run it (the record is written and marked running in this process until the guard
    /// drops).
    Run(Running),
    /// It ran: answer what it answered.
    Replay {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// An earlier attempt died after creating this order: finish that one. The bytes are what
    /// the attempt noted with the order (a guest's order token).
    Resume(Running, Id, Vec<u8>),
}

/// The answer of a money-moving request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    /// Replayed from an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
}

/// A running request's record, finished by [`Idempotency::stage_done`].
#[derive(Debug, Clone)]
pub struct Slot {
    key: Vec<u8>,
}

/// A running request's slot, released (a repeat is no longer "in use") when dropped: however
/// the request ends, even when its future is dropped while the slot crosses a thread.
pub struct Running {
    idempotency: Arc<Idempotency>,
    /// The slot.
    pub slot: Slot,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("slot", &self.slot).finish()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.idempotency.release(&self.slot);
    }
}

/// The idempotency service.
pub struct Idempotency {
    store: Store,
    clock: SharedClock,
    ttl: Duration,
    /// This process's id in the records it writes.
    owner: u64,
    /// Records this process is running now (held only to look up or change the set).
    running: Mutex<HashSet<Vec<u8>>>,
    /// Striped by key: a key's check-and-write is atomic, different keys never wait on each
    /// other (or on each other's fsync).
    stripes: Box<[Mutex<()>]>,
}

const STRIPES: usize = 256;

impl Idempotency {
    /// The service; records live for `ttl`.
    pub fn new(store: Store, clock: SharedClock, ttl: Duration) -> Idempotency {
        Idempotency {
            store,
            clock,
            ttl,
            owner: rand::random(),
            running: Mutex::new(HashSet::new()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn is_running(&self, key: &[u8]) -> bool {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// The hash a request is recognised by.
    pub fn hash(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in parts {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    /// Checks the key, before any work: 400 without one, and a bounded length.
    pub fn check_key(key: Option<&str>) -> Result<String, ServiceError> {
        match key.map(str::trim) {
            None | Some("") => Err(DomainError::IdempotencyKeyRequired.into()),
            Some(k) if k.len() > MAX_KEY_LEN || !k.bytes().all(|b| b.is_ascii_graphic()) => Err(ServiceError::invalid(
                "Idempotency-Key",
                "invalid",
                "must be 1 to 255 visible ASCII characters",
            )),
            Some(k) => Ok(k.to_owned()),
        }
    }

    /// Starts a request with `key` in `scope`. The slot it gives is held from the moment it is
    /// taken, so however the request ends (even dropped while it crosses threads) a repeat is
    /// not refused as "in use" once it is over.
    pub fn begin(self: &Arc<Self>, scope: &[u8], key: &str, request_hash: [u8; 32]) -> Result<Begin, ServiceError> {
        let record_key = keys::idempotency(scope, key);
        let stripe = (xxhash_rust::xxh3::xxh3_64(&record_key) % STRIPES as u64) as usize;
        let _guard = self.stripes[stripe].lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        let existing = self
            .store
            .get::<IdempotencyRecord>(&record_key)?
            .map(|r| r.to_native())
            .filter(|r| r.expires_at_ms > now);
        let resume = match existing {
            Some(r) if r.request_hash != request_hash => return Err(DomainError::IdempotencyKeyReused.into()),
            Some(r) if r.status != 0 => {
                return Ok(Begin::Replay {
                    status: r.status,
                    body: r.body,
                })
            }
            Some(_) if self.is_running(&record_key) => return Err(DomainError::IdempotencyKeyInUse.into()),
            // An unfinished record nobody runs: its process died.
            Some(r) => r.order_id.map(|o| (Id::from_bytes(o), r.body)),
            None => None,
        };
        let record = IdempotencyRecord {
            request_hash,
            owner: self.owner,
            order_id: resume.as_ref().map(|(o, _)| o.to_bytes()),
            status: 0,
            body: resume.as_ref().map(|(_, note)| note.clone()).unwrap_or_default(),
            created_at_ms: now,
            expires_at_ms: now + self.ttl.as_millis() as i64,
        };
        let mut batch = self.store.batch();
        batch.put(&record_key, &record)?;
        // Unsynced: a record of a request that has done nothing yet. Whatever the request then
        // changes commits in a synced batch, which makes this durable with it; a crash before
        // loses only a record of nothing.
        batch.commit_unsynced()?;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record_key.clone());
        let slot = Running {
            idempotency: self.clone(),
            slot: Slot { key: record_key },
        };
        Ok(match resume {
            Some((order, note)) => Begin::Resume(slot, order, note),
            None => Begin::Run(slot),
        })
    }

    /// Notes the order a running request created (and `note`, what a resumed attempt needs to
    /// answer), in the batch that creates it.
    pub fn stage_order(&self, batch: &mut Batch<'_>, slot: &Slot, order: Id, note: &[u8]) -> Result<(), ServiceError> {
        if let Some(mut record) = self.store.get::<IdempotencyRecord>(&slot.key)?.map(|r| r.to_native()) {
            record.order_id = Some(order.to_bytes());
            record.body = note.to_vec();
            batch.put(&slot.key, &record)?;
        }
        Ok(())
    }

    /// Stores the answer, in the batch of the change it reports.
    pub fn stage_done(&self, batch: &mut Batch<'_>, slot: &Slot, status: u16, body: &[u8]) -> Result<(), ServiceError> {
        if let Some(mut record) = self.store.get::<IdempotencyRecord>(&slot.key)?.map(|r| r.to_native()) {
            record.status = status;
            record.body = body.to_vec();
            batch.put(&slot.key, &record)?;
        }
        Ok(())
    }

    /// The request finished (answered or not); a repeat is no longer "in use". Only the
    /// slot's guard calls it, once: a second release could free a newer request's slot.
    fn release(&self, slot: &Slot) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&slot.key);
    }

    /// Forgets a request that changed nothing, so a retry with the key starts afresh (once
    /// the slot's guard drops).
    pub fn forget(&self, slot: &Slot) -> Result<(), ServiceError> {
        let mut batch = self.store.batch();
        batch.delete(CF_IDEMPOTENCY, &slot.key);
        batch.commit()?;
        Ok(())
    }

    /// Runs a request that changes one record under a key: a repeat answers the stored
    /// answer; a failure is forgotten (a retry runs again). The answer is stored right after
    /// the change, in a batch of its own: a crash between the two leaves the key free, and a
    /// retry then meets the change already made (and is refused by the state it finds).
    pub async fn run<F, Fut>(
        self: &Arc<Self>,
        scope: Vec<u8>,
        key: String,
        hash: [u8; 32],
        f: F,
    ) -> Result<Answer, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, ServiceError>>,
    {
        let this = self.clone();
        let running = match blocking(move || this.begin(&scope, &key, hash)).await? {
            Begin::Replay { status, body } => {
                return Ok(Answer {
                    status,
                    body,
                    replayed: true,
                })
            }
            Begin::Run(running) | Begin::Resume(running, _, _) => running,
        };
        let outcome = f().await;
        let this = self.clone();
        match &outcome {
            Ok(answer) => {
                let (status, body) = (answer.status, answer.body.clone());
                blocking(move || {
                    let mut batch = this.store.batch();
                    this.stage_done(&mut batch, &running.slot, status, &body)?;
                    batch.commit()?;
                    Ok(())
                })
                .await?
            }
            Err(_) => blocking(move || this.forget(&running.slot)).await?,
        }
        outcome
    }

    /// Deletes expired records, at most `limit`; returns how many.
    pub fn sweep(&self, limit: usize) -> Result<usize, ServiceError> {
        let now = self.clock.now_ms();
        let mut expired = Vec::new();
        self.store.for_each::<IdempotencyRecord>(&[], |key, record| {
            if record.expires_at_ms.to_native() <= now {
                expired.push(key.to_vec());
            }
            expired.len() < limit
        })?;
        if !expired.is_empty() {
            let mut batch = self.store.batch();
            for key in &expired {
                batch.delete(CF_IDEMPOTENCY, key);
            }
            batch.commit()?;
        }
        Ok(expired.len())
    }
}

/// Deletes expired idempotency records.
pub struct IdempotencySweeper {
    idempotency: Arc<Idempotency>,
}

impl IdempotencySweeper {
    /// The sweeper of `idempotency`.
    pub fn new(idempotency: Arc<Idempotency>) -> IdempotencySweeper {
        IdempotencySweeper { idempotency }
    }
}

const SWEEP_BATCH: usize = 1000;

#[async_trait::async_trait]
impl Worker for IdempotencySweeper {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let idempotency = self.idempotency.clone();
        let swept = blocking(move || idempotency.sweep(SWEEP_BATCH)).await?;
        Ok(if swept == SWEEP_BATCH {
            Progress::Worked
        } else {
            Progress::Idle
        })
    }
}
