//! Column-family names: one column family per record kind.
//!
//! Adding a column family is backwards compatible (it is created on open); renaming or removing
//! one requires a schema-version bump in [`crate::store::SCHEMA_VERSION`].

/// Schema version, counters and cursors of background consumers.
pub const CF_META: &str = "meta";
/// Product records by product id.
pub const CF_PRODUCTS: &str = "products";
/// SKU → product id (the SKU uniqueness index; variants themselves live in the product record).
pub const CF_VARIANTS: &str = "variants";
/// Category records by category id.
pub const CF_CATEGORIES: &str = "categories";
/// Seller records by seller id.
pub const CF_SELLERS: &str = "sellers";
/// Unique slugs: `kind byte + slug` → entity id.
pub const CF_SLUGS: &str = "slugs";
/// Source id of imported products: `source + external id` → product id.
pub const CF_EXTERNAL_IDS: &str = "external_ids";
/// Listing index: scope + sort key + product id → compact filter fields.
pub const CF_PRODUCT_LISTING: &str = "product_listing";
/// Inventory records by SKU.
pub const CF_INVENTORY: &str = "inventory";
/// User accounts.
pub const CF_USERS: &str = "users";
/// Normalised email → user id (the email uniqueness index).
pub const CF_USER_EMAILS: &str = "user_emails";
/// SHA-256 of a refresh token → its record.
pub const CF_REFRESH_TOKENS: &str = "refresh_tokens";
/// `user id ‖ family id` → refresh-token family (rotation chain) state.
pub const CF_TOKEN_FAMILIES: &str = "token_families";
/// Shopping carts.
pub const CF_CARTS: &str = "carts";
/// Orders.
pub const CF_ORDERS: &str = "orders";
/// Idempotency keys of money-moving requests.
pub const CF_IDEMPOTENCY: &str = "idempotency";
/// Sequence-numbered changelog of catalog changes (consumed by the indexer and the CDN purger).
pub const CF_CHANGELOG: &str = "changelog";
/// Durable outbox of notifications/events awaiting delivery.
pub const CF_OUTBOX: &str = "outbox";
/// Stock holds: `sku ‖ 0 ‖ holder` (a cart or an order) → reserved quantity. Reserved stock of
/// a SKU is the sum over its prefix, so holds and on-hand counts never overwrite each other.
pub const CF_RESERVATIONS: &str = "reservations";
/// Time index of carts: `kind ‖ time ‖ cart key` for cart expiry and hold expiry, read by the
/// sweeper in time order.
pub const CF_CART_EXPIRY: &str = "cart_expiry";

/// Secondary indexes of orders: by customer, by seller, by number, and the orders awaiting
/// their payment (see [`crate::keys::OrderIndex`]); values are order ids.
pub const CF_ORDER_INDEX: &str = "order_index";
/// Order timelines: `order id ‖ sequence` → one append-only event.
pub const CF_ORDER_EVENTS: &str = "order_events";
/// Coupons by code, with their redemptions: per customer, and per order (so a failed or
/// cancelled order gives its use back).
pub const CF_COUPONS: &str = "coupons";
/// Shipping zones with their methods, by id (read whole at start and after each change).
pub const CF_SHIPPING: &str = "shipping";
/// Outbox events handed to their sinks, kept for `[notifications] retention_secs`.
pub const CF_EVENT_LOG: &str = "event_log";
/// Webhook endpoints by id.
pub const CF_WEBHOOKS: &str = "webhooks";
/// Deliveries of events to sinks (pending, failed, delivered) by id.
pub const CF_DELIVERIES: &str = "deliveries";
/// When deliveries are due: `due (Unix ms, i64 BE) ‖ delivery id` → empty.
pub const CF_DELIVERY_DUE: &str = "delivery_due";
/// Deliveries out of attempts (or discarded) by id.
pub const CF_DEAD_LETTERS: &str = "dead_letters";
/// Password-reset and email-verification tokens by SHA-256.
pub const CF_USER_TOKENS: &str = "user_tokens";
/// Product reviews by id.
pub const CF_REVIEWS: &str = "reviews";
/// Review indexes: by product, by author, awaiting moderation, and helpful votes (see
/// [`crate::reviews::ReviewIndex`]).
pub const CF_REVIEW_INDEX: &str = "review_index";
/// Rating histograms of products, by product id.
pub const CF_RATINGS: &str = "ratings";
/// Wishlist entries: `user id ‖ product id`.
pub const CF_WISHLISTS: &str = "wishlists";
/// Who watches a product: `product id ‖ user id` → empty (the alert fan-out reads it).
pub const CF_WISHLIST_WATCHERS: &str = "wishlist_watchers";
/// The behaviour log (views, add-to-carts) by sequence number, for recommendations.
pub const CF_BEHAVIOUR: &str = "behaviour";
/// The audit log of admin, seller and money actions, append-only, by time-ordered id.
pub const CF_AUDIT: &str = "audit";

/// Every column family, in creation order.
pub const ALL_CFS: &[&str] = &[
    CF_META,
    CF_PRODUCTS,
    CF_VARIANTS,
    CF_CATEGORIES,
    CF_SELLERS,
    CF_SLUGS,
    CF_EXTERNAL_IDS,
    CF_PRODUCT_LISTING,
    CF_INVENTORY,
    CF_USERS,
    CF_USER_EMAILS,
    CF_REFRESH_TOKENS,
    CF_TOKEN_FAMILIES,
    CF_CARTS,
    CF_ORDERS,
    CF_IDEMPOTENCY,
    CF_CHANGELOG,
    CF_OUTBOX,
    CF_RESERVATIONS,
    CF_CART_EXPIRY,
    CF_ORDER_INDEX,
    CF_ORDER_EVENTS,
    CF_COUPONS,
    CF_SHIPPING,
    CF_EVENT_LOG,
    CF_WEBHOOKS,
    CF_DELIVERIES,
    CF_DELIVERY_DUE,
    CF_DEAD_LETTERS,
    CF_USER_TOKENS,
    CF_REVIEWS,
    CF_REVIEW_INDEX,
    CF_RATINGS,
    CF_WISHLISTS,
    CF_WISHLIST_WATCHERS,
    CF_BEHAVIOUR,
    CF_AUDIT,
];

/// Column families read mostly by exact key, which get bloom filters.
pub const POINT_LOOKUP_CFS: &[&str] = &[
    CF_PRODUCTS,
    CF_VARIANTS,
    CF_CATEGORIES,
    CF_SELLERS,
    CF_SLUGS,
    CF_EXTERNAL_IDS,
    CF_INVENTORY,
    CF_USERS,
    CF_USER_EMAILS,
    CF_REFRESH_TOKENS,
    CF_TOKEN_FAMILIES,
    CF_CARTS,
    CF_ORDERS,
    CF_IDEMPOTENCY,
    CF_ORDER_EVENTS,
    CF_COUPONS,
    CF_DELIVERIES,
    CF_USER_TOKENS,
    CF_REVIEWS,
    CF_RATINGS,
    CF_WISHLISTS,
];
