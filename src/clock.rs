//! Wall-clock time as a dependency.
//!
//! Every expiry decision (cart and hold lifetimes, token expiry, idempotency windows, the
//! recovery of stuck orders) reads the time from a [`Clock`] handed to the service, never from
//! `SystemTime` directly. Production uses [`SystemClock`]; tests use [`ManualClock`] and move
//! time forward instead of sleeping, so an expiry test takes milliseconds.
//!
//! Intervals between background steps are not wall-clock time: workers sleep on tokio's timer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Returns the current time, Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// A shared clock handle, as services hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; cheap to clone (clones share the time).
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at the current system time.
    pub fn new() -> ManualClock {
        ManualClock::at(SystemClock.now_ms())
    }

    /// A clock stopped at `now_ms`.
    pub fn at(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: Arc::new(AtomicI64::new(now_ms)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        // Relaxed: readers need the value only, not ordering with other memory.
        self.now_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::at(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
    }
}
