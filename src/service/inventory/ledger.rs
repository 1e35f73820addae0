//! Live stock counters: lock-free reservations that can never oversell.
//!
//! Each SKU has one `AtomicU64` that packs on-hand (high 32 bits) and reserved (low 32 bits).
//! Every change is one compare-and-swap loop (`fetch_update`) with checked arithmetic on both
//! halves, so the pair is always read and written together and available = on-hand − reserved
//! can never drop below zero. There is no lock: the map of SKUs is a lock-free `papaya` map and
//! contention on one SKU only retries the CAS. `MAX_STOCK` (10⁹) fits in 32 bits.
//!
//! Durability is the callers' job, under one rule: memory never promises more than storage
//! holds. Changes that lower availability (reserve, lower on-hand) are applied *before* their
//! durable write and undone if it fails; changes that raise it (release, raise on-hand) are
//! applied *after* it. A crash can therefore only lose in-memory holds that were never
//! acknowledged, and [`StockLedger::load`] rebuilds exact counters from the inventory records
//! and the reservation records.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use storefront_storage::cf::CF_RESERVATIONS;
use storefront_storage::keys::{self, Id};
use storefront_storage::records::{InventoryRecord, ReservationRecord};
use storefront_storage::{Owned, Store};

use crate::service::ServiceError;

/// On-hand and reserved units of one SKU at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockLevel {
    /// Units physically in stock.
    pub on_hand: i64,
    /// Units held by carts and orders.
    pub reserved: i64,
}

impl StockLevel {
    /// Units that can still be reserved.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    fn pack(self) -> u64 {
        ((self.on_hand as u64) << 32) | (self.reserved as u64 & 0xffff_ffff)
    }

    fn unpack(word: u64) -> StockLevel {
        StockLevel {
            on_hand: (word >> 32) as i64,
            reserved: (word & 0xffff_ffff) as i64,
        }
    }
}

/// A counter change that could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockError {
    /// Fewer units are available than requested.
    Insufficient {
        /// Units available at the time of the attempt.
        available: i64,
    },
    /// On-hand would drop below what is already reserved.
    BelowReserved {
        /// Units reserved at the time of the attempt.
        reserved: i64,
    },
    /// The SKU has no stock record.
    UnknownSku,
}

/// A successful change: the level before and after, for callers that react to crossings
/// (out of stock, back in stock, low stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockChange {
    /// Level before the change.
    pub before: StockLevel,
    /// Level after the change.
    pub after: StockLevel,
}

impl StockChange {
    /// True when the SKU went in or out of stock.
    pub fn flipped(&self) -> bool {
        (self.before.available() > 0) != (self.after.available() > 0)
    }

    /// True when availability fell to or below `threshold` from above it (`threshold` 0 = off).
    pub fn crossed_low(&self, threshold: i64) -> bool {
        threshold > 0 && self.before.available() > threshold && self.after.available() <= threshold
    }
}

struct StockCell {
    level: AtomicU64,
    low_stock_threshold: AtomicI64,
    product_id: Id,
}

impl StockCell {
    fn load(&self) -> StockLevel {
        StockLevel::unpack(self.level.load(Ordering::Acquire))
    }

    fn update(&self, f: impl Fn(StockLevel) -> Result<StockLevel, StockError>) -> Result<StockChange, StockError> {
        let mut failure = None;
        let result = self.level.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            match f(StockLevel::unpack(word)) {
                Ok(next) => Some(next.pack()),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        match result {
            Ok(word) => {
                let before = StockLevel::unpack(word);
                Ok(StockChange {
                    before,
                    after: f(before).expect("the closure accepted this level"),
                })
            }
            Err(_) => Err(failure.expect("fetch_update fails only when the closure refuses")),
        }
    }
}

/// Largest value either half of the packed word can hold.
const HALF_MAX: i64 = u32::MAX as i64;

/// The live counters of every SKU.
pub struct StockLedger {
    cells: papaya::HashMap<Box<str>, StockCell>,
}

impl StockLedger {
    /// An empty ledger.
    pub fn new() -> StockLedger {
        StockLedger {
            cells: papaya::HashMap::new(),
        }
    }

    /// Rebuilds the counters from storage: on-hand from the inventory records, reserved as the
    /// sum of each SKU's reservation records.
    pub fn load(store: &Store) -> Result<StockLedger, ServiceError> {
        let ledger = StockLedger::new();
        store.for_each::<InventoryRecord>(&[], |_, inv| {
            ledger.insert(
                inv.sku.as_str(),
                inv.product_id,
                inv.on_hand.to_native(),
                inv.low_stock_threshold.to_native(),
            );
            true
        })?;
        let mut bad = None;
        store.for_each_raw(CF_RESERVATIONS, &[], None, |key, value| {
            let parsed = keys::reservation_parts(key).and_then(|(sku, _)| {
                Owned::<ReservationRecord>::from_slice(key, value)
                    .ok()
                    .map(|r| (sku, r))
            });
            match parsed {
                Some((sku, r)) => {
                    let quantity = r.archived().quantity.to_native();
                    let cells = ledger.cells.pin();
                    match cells.get(sku) {
                        Some(cell) => {
                            let mut level = cell.load();
                            level.reserved += quantity;
                            cell.level.store(level.pack(), Ordering::Release);
                        }
                        None => tracing::warn!(sku, quantity, "reservation for a SKU without stock record"),
                    }
                    true
                }
                None => {
                    bad = Some(key.to_vec());
                    false
                }
            }
        })?;
        if let Some(key) = bad {
            return Err(ServiceError::internal(format!("corrupt reservation key {key:?}")));
        }
        Ok(ledger)
    }

    /// Adds (or replaces) a SKU's counters; used on load and when a variant is created.
    pub fn insert(&self, sku: &str, product_id: Id, on_hand: i64, low_stock_threshold: i64) {
        let reserved = self.level(sku).map(|l| l.reserved).unwrap_or(0);
        self.cells.pin().insert(
            sku.into(),
            StockCell {
                level: AtomicU64::new(
                    StockLevel {
                        on_hand: on_hand.clamp(0, HALF_MAX),
                        reserved,
                    }
                    .pack(),
                ),
                low_stock_threshold: AtomicI64::new(low_stock_threshold),
                product_id,
            },
        );
    }

    /// Current level of a SKU.
    pub fn level(&self, sku: &str) -> Option<StockLevel> {
        self.cells.pin().get(sku).map(StockCell::load)
    }

    /// Units available now (0 for an unknown SKU).
    pub fn available(&self, sku: &str) -> i64 {
        self.level(sku).map(|l| l.available()).unwrap_or(0)
    }

    /// The product a SKU belongs to.
    pub fn product_of(&self, sku: &str) -> Option<Id> {
        self.cells.pin().get(sku).map(|c| c.product_id)
    }

    /// The SKU's low-stock threshold (0 = off).
    pub fn low_stock_threshold(&self, sku: &str) -> i64 {
        self.cells
            .pin()
            .get(sku)
            .map(|c| c.low_stock_threshold.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Sets the SKU's low-stock threshold.
    pub fn set_low_stock_threshold(&self, sku: &str, threshold: i64) {
        if let Some(cell) = self.cells.pin().get(sku) {
            cell.low_stock_threshold.store(threshold, Ordering::Relaxed);
        }
    }

    fn update(
        &self,
        sku: &str,
        f: impl Fn(StockLevel) -> Result<StockLevel, StockError>,
    ) -> Result<StockChange, StockError> {
        let cells = self.cells.pin();
        cells.get(sku).ok_or(StockError::UnknownSku)?.update(f)
    }

    /// Holds `quantity` units, or fails without changing anything when fewer are available.
    pub fn reserve(&self, sku: &str, quantity: i64) -> Result<StockChange, StockError> {
        self.update(sku, |l| {
            let available = l.available();
            match available.checked_sub(quantity) {
                Some(left) if left >= 0 && quantity >= 0 => Ok(StockLevel {
                    on_hand: l.on_hand,
                    reserved: l.reserved + quantity,
                }),
                _ => Err(StockError::Insufficient { available }),
            }
        })
    }

    /// Returns `quantity` held units. Releasing more than is held is a caller bug; the counter
    /// stops at zero rather than wrapping.
    pub fn release(&self, sku: &str, quantity: i64) -> Result<StockChange, StockError> {
        self.update(sku, |l| {
            let reserved = l.reserved.checked_sub(quantity).unwrap_or(0).max(0);
            Ok(StockLevel {
                on_hand: l.on_hand,
                reserved,
            })
        })
    }

    /// Adds `delta` units on hand (negative removes), refusing to go below what is reserved.
    pub fn adjust_on_hand(&self, sku: &str, delta: i64) -> Result<StockChange, StockError> {
        self.update(sku, |l| match l.on_hand.checked_add(delta) {
            Some(on_hand) if on_hand >= l.reserved && on_hand <= HALF_MAX => Ok(StockLevel {
                on_hand,
                reserved: l.reserved,
            }),
            _ => Err(StockError::BelowReserved { reserved: l.reserved }),
        })
    }

    /// Sells `quantity` held units: on-hand and reserved both drop, in one step, so
    /// availability does not move. Fails without changing anything when fewer are held.
    pub fn sell(&self, sku: &str, quantity: i64) -> Result<StockChange, StockError> {
        self.update(sku, |l| {
            if quantity < 0 || l.reserved < quantity || l.on_hand < quantity {
                return Err(StockError::Insufficient { available: l.reserved });
            }
            Ok(StockLevel {
                on_hand: l.on_hand - quantity,
                reserved: l.reserved - quantity,
            })
        })
    }

    /// Undoes [`StockLedger::sell`] (the sale's batch failed).
    pub fn unsell(&self, sku: &str, quantity: i64) -> Result<StockChange, StockError> {
        self.update(sku, |l| {
            Ok(StockLevel {
                on_hand: (l.on_hand + quantity).min(HALF_MAX),
                reserved: (l.reserved + quantity).min(HALF_MAX),
            })
        })
    }

    /// Forgets a SKU (its variant was removed).
    pub fn remove(&self, sku: &str) {
        self.cells.pin().remove(sku);
    }

    /// Number of SKUs tracked.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when no SKU is tracked.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

impl Default for StockLedger {
    fn default() -> Self {
        StockLedger::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(i64),
        Release(i64),
        Adjust(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0i64..20).prop_map(Op::Reserve),
            (0i64..20).prop_map(Op::Release),
            (-20i64..20).prop_map(Op::Adjust),
        ]
    }

    proptest! {
        /// The ledger behaves exactly like a plain sequential model and never lets available
        /// drop below zero, whatever sequence of operations arrives.
        #[test]
        fn counters_match_a_sequential_model(start in 0i64..50, ops in proptest::collection::vec(op(), 0..200)) {
            let ledger = StockLedger::new();
            ledger.insert("A", [0; 16], start, 0);
            let (mut on_hand, mut reserved) = (start, 0i64);
            for op in ops {
                match op {
                    Op::Reserve(q) => {
                        let ok = ledger.reserve("A", q).is_ok();
                        prop_assert_eq!(ok, on_hand - reserved >= q);
                        if ok { reserved += q; }
                    }
                    Op::Release(q) => {
                        let q = q.min(reserved);
                        ledger.release("A", q).unwrap();
                        reserved -= q;
                    }
                    Op::Adjust(d) => {
                        let ok = ledger.adjust_on_hand("A", d).is_ok();
                        prop_assert_eq!(ok, on_hand + d >= reserved);
                        if ok { on_hand += d; }
                    }
                }
                let level = ledger.level("A").unwrap();
                prop_assert_eq!(level, StockLevel { on_hand, reserved });
                prop_assert!(level.available() >= 0);
            }
        }

        #[test]
        fn packing_round_trips(on_hand in 0i64..=HALF_MAX, reserved in 0i64..=HALF_MAX) {
            let level = StockLevel { on_hand, reserved };
            prop_assert_eq!(StockLevel::unpack(level.pack()), level);
        }
    }

    #[test]
    fn concurrent_reservers_never_take_more_than_on_hand() {
        for _ in 0..20 {
            let ledger = Arc::new(StockLedger::new());
            ledger.insert("A", [0; 16], 10, 0);
            let wins = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (ledger, wins) = (ledger.clone(), wins.clone());
                    std::thread::spawn(move || {
                        for _ in 0..50 {
                            if ledger.reserve("A", 1).is_ok() {
                                wins.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(wins.load(Ordering::Relaxed), 10);
            assert_eq!(
                ledger.adjust_on_hand("A", -1),
                Err(StockError::BelowReserved { reserved: 10 })
            );
            assert_eq!(
                ledger.level("A").unwrap(),
                StockLevel {
                    on_hand: 10,
                    reserved: 10
                }
            );
        }
    }

    #[test]
    fn a_sale_lowers_on_hand_and_reserved_together() {
        let ledger = StockLedger::new();
        ledger.insert("A", [0; 16], 5, 0);
        ledger.reserve("A", 3).unwrap();
        let sale = ledger.sell("A", 2).unwrap();
        assert_eq!(
            sale.after,
            StockLevel {
                on_hand: 3,
                reserved: 1
            }
        );
        assert_eq!(sale.after.available(), sale.before.available());
        assert!(ledger.sell("A", 2).is_err(), "only one unit is still held");
        ledger.unsell("A", 2).unwrap();
        assert_eq!(
            ledger.level("A").unwrap(),
            StockLevel {
                on_hand: 5,
                reserved: 3
            }
        );
    }

    #[test]
    fn crossings_are_reported() {
        let ledger = StockLedger::new();
        ledger.insert("A", [0; 16], 4, 2);
        assert!(!ledger.reserve("A", 1).unwrap().crossed_low(2));
        let change = ledger.reserve("A", 1).unwrap();
        assert!(change.crossed_low(2) && !change.flipped());
        let change = ledger.reserve("A", 2).unwrap();
        assert!(change.flipped() && !change.crossed_low(2));
        assert_eq!(ledger.reserve("A", 1), Err(StockError::Insufficient { available: 0 }));
        assert_eq!(
            ledger.adjust_on_hand("A", -1),
            Err(StockError::BelowReserved { reserved: 4 })
        );
        assert!(ledger.release("A", 1).unwrap().flipped());
        assert_eq!(ledger.reserve("B", 1), Err(StockError::UnknownSku));
    }
}
