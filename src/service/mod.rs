//! Use cases. Services own the business rules, talk to storage, and hand the HTTP layer
//! ready-to-send representations; they never see request or response types.

pub mod auth;
pub mod cart;
pub mod catalog;
pub mod category_rules;
pub mod category_tree;
pub mod error;
pub mod eval;
pub mod import;
pub mod outbox;
pub mod purge;
pub mod retention;
pub mod search;
pub mod stock;
pub mod view;

pub use catalog::Catalog;
pub use error::ServiceError;

/// Runs blocking storage work on tokio's blocking pool so async workers never wait on disk.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking task failed: {e}")))?
}
