//! Use cases. Services own the business rules' application, talk to storage and the index,
//! and hand the HTTP layer ready-to-send representations; they never see request or response
//! types of the HTTP layer, and never read the configuration (they get settings).
//!
//! - [`catalog`]: products, listings, categories and sellers;
//! - [`inventory`]: every stock change and the live counters;
//! - [`cart`]: carts, holds, merge and expiry;
//! - [`checkout`]: the saga from a cart to a paid order, and its recovery;
//! - [`order`]: orders, fulfilments, cancellations and refunds;
//! - [`payment`]: the payment providers behind one trait, each behind a circuit breaker;
//! - [`idempotency`]: idempotency keys of money-moving requests;
//! - [`auth`]: accounts, sessions, addresses;
//! - [`audit`]: the append-only log of admin, seller and money actions;
//! - [`search`]: the search index, queries and autocomplete;
//! - [`events`]: changelog consumers (CDN purge, retention) and the outbox;
//! - [`import`], [`eval`]: bulk import and the relevance evaluation;
//! - [`generation`]: the counters that tell derived values (cached carts) they are stale;
//! - [`health`]: readiness and store statistics for the operations endpoints;
//! - [`representation`], [`view`]: cached response bodies and the JSON views they hold.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod coupon;
pub mod error;
pub mod eval;
pub mod events;
pub mod generation;
pub mod health;
pub mod history;
pub mod idempotency;
pub mod import;
pub mod inventory;
pub mod notify;
pub mod order;
pub mod payment;
pub mod promotion;
pub mod reco;
pub mod representation;
pub mod review;
pub mod search;
pub mod shipping;
pub mod view;
pub mod wishlist;

pub use catalog::Catalog;
pub use error::ServiceError;

/// Runs blocking storage work on tokio's blocking pool so async workers never wait on disk.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::internal_from("blocking task failed", e))?
}
