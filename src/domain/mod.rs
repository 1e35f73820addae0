//! Domain types and rules: ids, money, slugs, SKUs and catalog validation.
//!
//! Nothing here imports HTTP, RocksDB or tantivy; services convert between these types and
//! storage records.

pub mod catalog;
pub mod id;
pub mod money;
pub mod pricing;
pub mod slug;
pub mod user;
pub mod validation;

pub use id::Id;
pub use money::{Currency, Money};
pub use slug::Slug;
pub use validation::{FieldError, FieldErrors};
