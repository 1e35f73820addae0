//! Domain types and rules, without I/O: ids, money, slugs, catalog validation, product facts,
//! cart rules, pricing, query parsing, category rules, and the one table of error codes.
//!
//! Nothing here imports HTTP, RocksDB or tantivy; services convert between these types and
//! storage records. Rules are unit-tested next to them.

pub mod cart;
pub mod catalog;
pub mod category_rules;
pub mod coupon;
pub mod error;
pub mod id;
pub mod money;
pub mod order;
pub mod pricing;
pub mod product;
pub mod promotion;
pub mod query;
pub mod review;
pub mod shipping;
pub mod slug;
pub mod user;
pub mod validation;

pub use id::Id;
pub use money::{Currency, Money};
pub use slug::Slug;
pub use validation::{FieldError, FieldErrors};
