//! API integration tests: one binary, each test starts the real server on 127.0.0.1:0 with a
//! fresh temporary data directory and talks HTTP to it.

mod access;
mod audit;
mod auth;
mod backup;
mod cart;
mod categories;
mod checkout;
mod coupons;
mod crash;
mod crash_loop;
mod durability;
mod fuzz;
mod helpers;
mod import;
mod inventory;
mod invoices;
mod listing;
mod notifications;
mod ops;
mod products;
mod promotions;
mod purge;
mod recommendations;
mod returns;
mod reviews;
mod search;
mod shipping;
mod slow_clients;
mod stripe;
mod tls;
mod varnish;
mod wire_errors;
mod wishlist;
