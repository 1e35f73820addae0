//! The behaviour log: product views, add-to-carts and purchases, recorded without making any
//! request wait. A request only offers its action to a bounded in-memory queue (dropped and
//! counted when full); the recommendation worker drains it, writes views and add-to-carts to
//! RocksDB in one batch per step, and feeds the models. Purchases are already durable as
//! orders, so they only feed the models.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use storefront_storage::cf::CF_BEHAVIOUR;
use storefront_storage::reco::{BehaviourKind, BehaviourRecord};
use storefront_storage::{Owned, Store};
use tokio::sync::mpsc;

use super::models::{Model, Signal};
use super::PastOrder;
use crate::domain::Id;
use crate::service::ServiceError;

/// One recorded action.
#[derive(Debug, Clone)]
pub enum Action {
    /// A product page view or an add-to-cart.
    Browse {
        /// Which.
        kind: BehaviourKind,
        /// The product.
        product: Id,
        /// The signed-in user.
        user: Option<Id>,
        /// A guest's pseudonymous session (0: none).
        session: u64,
        /// When.
        at_ms: i64,
    },
    /// A placed order.
    Order(PastOrder),
}

/// The recording end: cheap to call from any request.
pub struct Recorder {
    queue: mpsc::Sender<Action>,
    dropped: AtomicU64,
}

/// The draining end, owned by the worker.
pub struct Drain {
    queue: Mutex<mpsc::Receiver<Action>>,
}

/// A recorder and its drain, with room for `capacity` waiting actions.
pub fn channel(capacity: usize) -> (Recorder, Drain) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        Recorder {
            queue: tx,
            dropped: AtomicU64::new(0),
        },
        Drain { queue: Mutex::new(rx) },
    )
}

impl Recorder {
    /// Offers an action; when the queue is full it is dropped and counted, never waited for.
    pub fn record(&self, action: Action) {
        if self.queue.try_send(action).is_err() {
            // Relaxed: a statistic.
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Actions dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The signal a stored behaviour kind feeds.
pub fn signal(kind: BehaviourKind) -> Signal {
    match kind {
        BehaviourKind::View => Signal::View,
        BehaviourKind::Cart => Signal::Cart,
    }
}

/// Key of a behaviour record: its time and a per-process counter, so entries sort by time
/// and retention deletes a prefix.
pub fn key(at_ms: i64, n: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

impl Drain {
    /// Takes up to `max` waiting actions.
    pub fn take(&self, max: usize) -> Vec<Action> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while out.len() < max {
            match queue.try_recv() {
                Ok(a) => out.push(a),
                Err(_) => break,
            }
        }
        out
    }
}

/// How long anonymous counts gather in memory before they are written. A flood of anonymous
/// views of a large catalog touches thousands of products per step; writing each step's
/// counts filled the behaviour log with a million records within minutes of a benchmark
/// and held its memtables at their limit. Once per window costs at most one record per
/// product viewed in it; a crash loses at most one window of counts (never an order).
pub const TALLY_WINDOW_MS: i64 = 10_000;

/// A step's browse actions split by what they are worth: signed-in and session actions each
/// on their own (they link products), anonymous ones coalesced per product and kind (they
/// only count).
pub struct Coalesced {
    /// One record per signed-in or session action.
    pub linked: Vec<BehaviourRecord>,
    /// One record per product and kind, with its count.
    pub anonymous: Vec<BehaviourRecord>,
}

/// Splits and coalesces a step's browse actions.
pub fn coalesce(actions: &[Action]) -> Coalesced {
    let mut linked = Vec::new();
    let mut anonymous = Tally::default();
    for a in actions {
        let Action::Browse {
            kind,
            product,
            user,
            session,
            at_ms,
        } = a
        else {
            continue;
        };
        let record = BehaviourRecord {
            kind: *kind,
            product_id: product.to_bytes(),
            user_id: user.map(Id::to_bytes),
            session: *session,
            at_ms: *at_ms,
            count: 1,
        };
        if user.is_none() && *session == 0 {
            anonymous.add(&record, *at_ms);
        } else {
            linked.push(record);
        }
    }
    Coalesced {
        linked,
        anonymous: anonymous.drain().collect(),
    }
}

/// Anonymous counts gathered per product and kind, in first-seen order.
#[derive(Default)]
pub struct Tally {
    slots: rustc_hash::FxHashMap<(u8, [u8; 16]), usize>,
    records: Vec<BehaviourRecord>,
    /// When the oldest count arrived (by the clock); `None` while empty.
    since_ms: Option<i64>,
}

impl Tally {
    /// Adds an anonymous record's count, keeping the latest time.
    pub fn add(&mut self, r: &BehaviourRecord, now_ms: i64) {
        let records = &mut self.records;
        let slot = *self.slots.entry((r.kind as u8, r.product_id)).or_insert_with(|| {
            records.push(BehaviourRecord { count: 0, ..r.clone() });
            records.len() - 1
        });
        let held = &mut self.records[slot];
        held.count = held.count.saturating_add(r.count.max(1));
        held.at_ms = held.at_ms.max(r.at_ms);
        self.since_ms.get_or_insert(now_ms);
    }

    /// Whether the oldest count has waited a whole window by `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        self.since_ms.is_some_and(|since| now_ms - since >= TALLY_WINDOW_MS)
    }

    /// The gathered records.
    pub fn records(&self) -> &[BehaviourRecord] {
        &self.records
    }

    /// Forgets every gathered record (once written).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.since_ms = None;
        self.records.clear();
    }

    /// Takes every gathered record, leaving the tally empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, BehaviourRecord> {
        self.slots.clear();
        self.since_ms = None;
        self.records.drain(..)
    }
}

/// Writes `records` in one batch; `counter` numbers them.
pub fn persist(store: &Store, records: &[BehaviourRecord], counter: &mut u32) -> Result<(), ServiceError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut batch = store.batch();
    for record in records {
        *counter = counter.wrapping_add(1);
        batch.put(&key(record.at_ms, *counter), record)?;
    }
    batch.commit()?;
    Ok(())
}

/// Feeds one stored (or coalesced) action to the model.
pub fn apply_record(model: &mut Model, r: &BehaviourRecord) {
    model.add_action(
        signal(r.kind),
        r.user_id.map(Id::from_bytes),
        r.session,
        Id::from_bytes(r.product_id),
        r.at_ms,
        r.count,
    );
}

/// Feeds the placed orders among `actions` to the model.
pub fn apply_orders(model: &mut Model, actions: &[Action]) {
    for a in actions {
        if let Action::Order(o) = a {
            model.add_order(o.user, &o.products, o.at_ms);
        }
    }
}

/// Feeds the stored behaviour log from `since_ms` on to the model, oldest first.
pub fn replay(store: &Store, model: &mut Model, since_ms: i64) -> Result<usize, ServiceError> {
    let mut n = 0;
    let mut failure = None;
    store.for_each_raw(CF_BEHAVIOUR, &key(since_ms, 0), None, |k, v| {
        match Owned::<BehaviourRecord>::from_slice(k, v) {
            Ok(r) => {
                apply_record(model, &r.to_native());
                n += 1;
            }
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(n),
    }
}

/// Deletes behaviour entries older than `before_ms`, at most `max`; returns how many.
pub fn expire(store: &Store, before_ms: i64, max: usize) -> Result<usize, ServiceError> {
    let mut keys = Vec::new();
    store.for_each_raw(CF_BEHAVIOUR, &[], Some(&key(before_ms, 0)), |k, _| {
        keys.push(k.to_vec());
        keys.len() < max
    })?;
    if !keys.is_empty() {
        let mut batch = store.batch();
        for k in &keys {
            batch.delete(CF_BEHAVIOUR, k);
        }
        batch.commit()?;
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(product: Id, user: Option<Id>, session: u64, at_ms: i64) -> Action {
        Action::Browse {
            kind: BehaviourKind::View,
            product,
            user,
            session,
            at_ms,
        }
    }

    #[test]
    fn anonymous_views_coalesce_per_product_and_linked_ones_stay_apart() {
        let (p, q, user) = (Id::new(), Id::new(), Id::new());
        let actions = vec![
            view(p, None, 0, 1),
            view(p, None, 0, 5),
            view(q, None, 0, 2),
            view(p, Some(user), 0, 3),
            view(p, None, 42, 4),
            view(p, None, 0, 6),
        ];
        let Coalesced { linked, anonymous } = coalesce(&actions);
        assert_eq!(anonymous.len(), 2);
        assert_eq!(
            (anonymous[0].count, anonymous[0].at_ms),
            (3, 6),
            "three anonymous views of p, the latest time"
        );
        assert_eq!(anonymous[1].count, 1);
        assert_eq!(linked.len(), 2);
        assert!(linked[0].user_id.is_some() && linked[1].session == 42);
    }

    #[test]
    fn a_tally_gathers_steps_until_its_window_has_passed() {
        let (p, q) = (Id::new(), Id::new());
        let mut tally = Tally::default();
        assert!(!tally.due(1_000_000), "an empty tally is never due");
        for (step, now) in [
            (vec![view(p, None, 0, 10), view(q, None, 0, 11)], 100),
            (vec![view(p, None, 0, 20)], 5_000),
        ] {
            for r in coalesce(&step).anonymous {
                tally.add(&r, now);
            }
        }
        assert!(!tally.due(100 + TALLY_WINDOW_MS - 1));
        assert!(tally.due(100 + TALLY_WINDOW_MS), "due a window after the first count");
        let flushed: Vec<_> = tally.drain().collect();
        assert_eq!(flushed.len(), 2, "one record per product across steps");
        assert_eq!((flushed[0].count, flushed[0].at_ms), (2, 20));
        assert!(!tally.due(i64::MAX) && tally.drain().next().is_none(), "drained");
    }
}
