//! Generations: counters that tell a value derived from some state whether it is still
//! current, without a lock or a storage read.
//!
//! The protocol: a writer advances the generation *after* its change is committed; a reader
//! takes the generation *before* it reads the state, and keeps what it derived only while the
//! generation is unchanged. A derivation that overlapped a write is then never trusted, and
//! one that did not is exact.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter advanced after every committed change of the state it guards.
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    /// The generation now; read it before reading the state.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the state changed; call it after the change is committed.
    pub fn advance(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}
