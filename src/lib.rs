//! storefront: an e-commerce backend that runs a whole shop on one box.
//!
//! A tour of the layout (dependencies point inward: `http → service → domain`, and
//! `service → storage, index`; the `storefront-storage` and `storefront-index` crates know
//! nothing of HTTP or of each other):
//! - [`app`]: configuration becomes settings; `Services` wires the store, the clock and every
//!   service and worker; `App { build, local_addr, run_until_stopped }` serves.
//! - [`cli`]: the `storefront` command's subcommands (serve, import, reindex, eval-search).
//! - [`config`]: `config.toml` plus `STOREFRONT__SECTION__KEY` overrides; nothing else reads it.
//! - [`domain`]: rules without I/O: ids, money, catalog validation, product facts, cart rules,
//!   pricing, query parsing, and the one table of error codes.
//! - [`service`]: use cases over storage and the index (catalog, inventory, carts, accounts,
//!   search, events), handing out ready-to-send representations.
//! - [`http`]: the axum router, edge layers, extractors and the one error-to-status map;
//!   handlers are thin.
//! - [`worker`]: the one shape of background work, supervised the same way.
//! - [`clock`]: time as a dependency, so expiry is tested by moving a manual clock.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod service;
pub mod telemetry;
pub mod worker;

pub use app::{App, Services, Settings};
