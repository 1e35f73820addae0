//! Typed domain errors, and the one table of error codes.
//!
//! A [`DomainError`] says what cannot be done and why, with the facts a client needs to
//! recover (`InsufficientStock { sku, requested, available }`). It is not a fault: faults are
//! the service layer's `Internal` errors and answer an opaque 500.
//!
//! [`Code`] is the table every error code of the API comes from: its stable snake_case name
//! and its HTTP status, written once (meilisearch's `Code` is the model). Nothing else mints
//! error codes, so a client can rely on the list the OpenAPI document publishes.

use serde_json::{json, Value};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = ($name:literal, $status:literal),)*) => {
        /// Every error code of the API, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// Returns the stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// Returns the HTTP status.
            pub fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }
        }
    };
}

codes! {
    /// The request cannot be understood.
    BadRequest = ("bad_request", 400),
    /// The body is not valid JSON.
    MalformedJson = ("malformed_json", 400),
    /// A pagination cursor was not produced by this listing.
    InvalidCursor = ("invalid_cursor", 400),
    /// No credentials where they are required.
    Unauthorized = ("unauthorized", 401),
    /// Wrong email or password.
    InvalidCredentials = ("invalid_credentials", 401),
    /// An access token that is malformed or signed with an unknown key.
    InvalidToken = ("invalid_token", 401),
    /// An access token past its expiry.
    TokenExpired = ("token_expired", 401),
    /// A refresh token that is unknown, expired or revoked.
    InvalidRefreshToken = ("invalid_refresh_token", 401),
    /// A refresh token presented a second time: its session was revoked.
    RefreshTokenReused = ("refresh_token_reused", 401),
    /// An access token of a session that ended (logout, revoke-all, a password change).
    TokenRevoked = ("token_revoked", 401),
    /// The caller may not do this.
    Forbidden = ("forbidden", 403),
    /// The store asks customers to verify their email first.
    EmailUnverified = ("email_unverified", 403),
    /// No such entity.
    NotFound = ("not_found", 404),
    /// No such route.
    RouteNotFound = ("route_not_found", 404),
    /// No cart matches the cart token.
    CartNotFound = ("cart_not_found", 404),
    /// The cart expired or was merged into an account.
    CartExpired = ("cart_expired", 404),
    /// The route exists, but not with this method.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// A product, category or seller slug that is taken.
    SlugTaken = ("slug_taken", 409),
    /// A SKU that belongs to another product.
    SkuTaken = ("sku_taken", 409),
    /// An external id that another product has.
    ExternalIdTaken = ("external_id_taken", 409),
    /// An email address that has an account.
    EmailTaken = ("email_taken", 409),
    /// On-hand stock would fall below what is reserved.
    BelowReserved = ("below_reserved", 409),
    /// The cart has no items.
    CartEmpty = ("cart_empty", 409),
    /// Fewer units are available than asked for.
    InsufficientStock = ("insufficient_stock", 409),
    /// The cart changed while checkout read it; read it again.
    CartChanged = ("cart_changed", 409),
    /// Some cart lines can no longer be bought (unpublished or removed).
    ItemsUnavailable = ("items_unavailable", 409),
    /// The total differs from the `expected_total` the shopper saw.
    PriceChanged = ("price_changed", 409),
    /// The order cannot go to that status from its current one.
    InvalidTransition = ("invalid_transition", 409),
    /// A coupon with this code exists.
    CouponTaken = ("coupon_taken", 409),
    /// Another shipping zone already covers one of the areas.
    ZoneOverlap = ("zone_overlap", 409),
    /// The order's return window has closed.
    ReturnWindowClosed = ("return_window_closed", 409),
    /// The user already reviewed this product.
    ReviewExists = ("review_exists", 409),
    /// The user already voted this review helpful.
    AlreadyVoted = ("already_voted", 409),
    /// The review already has the seller's reply.
    ReplyExists = ("reply_exists", 409),
    /// The order has no invoice: it was never confirmed.
    InvoiceUnavailable = ("invoice_unavailable", 409),
    /// Another backup is being written.
    BackupRunning = ("backup_running", 409),
    /// A backup of that name exists.
    BackupExists = ("backup_exists", 409),
    /// The coupon's last use went to another order while this one was placed.
    CouponExhausted = ("coupon_exhausted", 409),
    /// The `Idempotency-Key` is used by a request that is still running.
    IdempotencyKeyInUse = ("idempotency_key_in_use", 409),
    /// The `Idempotency-Key` was used with another request.
    IdempotencyKeyReused = ("idempotency_key_reused", 422),
    /// The request needs an `Idempotency-Key` header.
    IdempotencyKeyRequired = ("idempotency_key_required", 400),
    /// A refund over what was captured and not refunded yet.
    RefundTooLarge = ("refund_exceeds_captured", 422),
    /// The payment was declined.
    PaymentDeclined = ("payment_declined", 402),
    /// The payment provider is failing; retry after `Retry-After`.
    PaymentUnavailable = ("payment_unavailable", 503),
    /// `If-Match` names another version.
    PreconditionFailed = ("precondition_failed", 412),
    /// The body is larger than the limit.
    PayloadTooLarge = ("payload_too_large", 413),
    /// The request URI is longer than the HTTP parser accepts (64 KiB).
    UriTooLong = ("uri_too_long", 414),
    /// More than 100 request headers, or a request head over the HTTP parser's buffer.
    HeadersTooLarge = ("headers_too_large", 431),
    /// The request body did not arrive within `[server] body_read_timeout_ms`.
    BodyTimeout = ("body_timeout", 408),
    /// The body is not JSON.
    UnsupportedMediaType = ("unsupported_media_type", 415),
    /// One or more fields are invalid; `details` lists each.
    ValidationFailed = ("validation_failed", 422),
    /// A rate limit was hit.
    RateLimited = ("rate_limited", 429),
    /// An internal fault; the cause is logged, never sent.
    Internal = ("internal", 500),
    /// Too much work in flight.
    Overloaded = ("overloaded", 503),
    /// The search index is still catching up with storage after a start.
    NotReady = ("not_ready", 503),
    /// The request took longer than the timeout.
    Timeout = ("timeout", 503),
}

/// The body of every error answer: `{"error":{"code","message","details"}}` (`details`
/// only when there are some).
pub fn envelope(code: Code, message: &str, details: Option<&Value>) -> Vec<u8> {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), Value::from(code.as_str()));
    error.insert("message".into(), Value::from(message));
    if let Some(details) = details {
        error.insert("details".into(), details.clone());
    }
    serde_json::to_vec(&json!({ "error": error }))
        .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec())
}

/// What the domain refuses to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Fewer units are available than requested.
    #[error("only {available} of SKU {sku} available")]
    InsufficientStock {
        /// The SKU.
        sku: String,
        /// Units asked for.
        requested: i64,
        /// Units available.
        available: i64,
    },
    /// On-hand would drop below what carts and orders hold.
    #[error("on_hand {on_hand} is below the {reserved} units currently reserved")]
    BelowReserved {
        /// The on-hand count asked for.
        on_hand: i64,
        /// Units reserved.
        reserved: i64,
    },
    /// The cart has nothing to act on.
    #[error("the cart has no items to reserve")]
    CartEmpty,
    /// A slug of a product, category or seller is taken.
    #[error("{kind} slug {slug} is already used")]
    SlugTaken {
        /// `product`, `category` or `seller`.
        kind: &'static str,
        /// The slug.
        slug: String,
    },
    /// A SKU belongs to another product.
    #[error("SKU {sku} belongs to another product")]
    SkuTaken {
        /// The SKU.
        sku: String,
    },
    /// An external id is used by another product.
    #[error("a product with this external_id already exists")]
    ExternalIdTaken {
        /// The external id.
        external_id: String,
    },
    /// An email address has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Lines short of stock, each with what is available.
    #[error("{} line(s) of the cart are short of stock", lines.len())]
    Shortfall {
        /// (sku, requested, available) per line that falls short.
        lines: Vec<(String, i64, i64)>,
    },
    /// The cart changed while checkout read it.
    #[error("the cart changed during checkout; review it and check out again")]
    CartChanged,
    /// Cart lines that can no longer be bought.
    #[error("some items can no longer be bought")]
    ItemsUnavailable {
        /// Their SKUs.
        skus: Vec<String>,
    },
    /// The total is not the one the shopper saw.
    #[error("the total is now {actual}, not the expected {expected}")]
    PriceChanged {
        /// The total the shopper saw.
        expected: i64,
        /// The total now.
        actual: i64,
        /// The breakdown now.
        breakdown: Value,
    },
    /// A status change the order's state does not allow.
    #[error("an order that is {from} cannot become {to}")]
    InvalidTransition {
        /// Current status.
        from: &'static str,
        /// Asked status.
        to: String,
        /// What it may become.
        allowed: Vec<&'static str>,
    },
    /// A coupon with this code exists.
    #[error("a coupon with the code {code} exists")]
    CouponTaken {
        /// The code.
        code: String,
    },
    /// Checkout needs a verified email.
    #[error("verify your email address before checking out (see the link sent at registration)")]
    EmailUnverified,
    /// Another shipping zone covers some of the areas.
    #[error("another zone already covers {}", areas.join(", "))]
    ZoneOverlap {
        /// The areas, each with the zone that has it.
        areas: Vec<String>,
    },
    /// The user already reviewed this product.
    #[error("you already reviewed this product; edit your review instead")]
    ReviewExists,
    /// Another backup is being written.
    #[error("a backup is being written; wait for it to finish")]
    BackupRunning,
    /// A backup of that name exists.
    #[error("a backup named {name} exists; choose another name")]
    BackupExists {
        /// The name.
        name: String,
    },
    /// The user already voted this review helpful.
    #[error("you already voted this review helpful")]
    AlreadyVoted,
    /// The review already has a reply.
    #[error("this review already has a reply")]
    ReplyExists,
    /// The return window closed.
    #[error("returns closed on {closed_at}")]
    ReturnWindowClosed {
        /// When (RFC 3339).
        closed_at: String,
    },
    /// Every use of the coupon is taken, or the customer's are.
    #[error("the coupon {code} has been used up")]
    CouponExhausted {
        /// The code.
        code: String,
    },
    /// The `Idempotency-Key` is in use by a running request.
    #[error("a request with this Idempotency-Key is still running")]
    IdempotencyKeyInUse,
    /// The `Idempotency-Key` was used for another request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// The request needs an `Idempotency-Key`.
    #[error("this request needs an Idempotency-Key header")]
    IdempotencyKeyRequired,
    /// A refund over what is left to refund.
    #[error("at most {refundable} can be refunded")]
    RefundTooLarge {
        /// What is left to refund.
        refundable: i64,
    },
    /// The payment was declined.
    #[error("the payment was declined ({reason})")]
    PaymentDeclined {
        /// The provider's reason.
        reason: String,
        /// The order, which stays as `payment_failed`.
        order: Value,
    },
    /// The provider is failing.
    #[error("the payment provider is unavailable; retry in {retry_after_secs} s")]
    PaymentUnavailable {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
}

impl DomainError {
    /// Returns the error's code.
    pub fn code(&self) -> Code {
        match self {
            DomainError::InsufficientStock { .. } => Code::InsufficientStock,
            DomainError::BelowReserved { .. } => Code::BelowReserved,
            DomainError::CartEmpty => Code::CartEmpty,
            DomainError::SlugTaken { .. } => Code::SlugTaken,
            DomainError::SkuTaken { .. } => Code::SkuTaken,
            DomainError::ExternalIdTaken { .. } => Code::ExternalIdTaken,
            DomainError::EmailTaken => Code::EmailTaken,
            DomainError::Shortfall { .. } => Code::InsufficientStock,
            DomainError::CartChanged => Code::CartChanged,
            DomainError::ItemsUnavailable { .. } => Code::ItemsUnavailable,
            DomainError::PriceChanged { .. } => Code::PriceChanged,
            DomainError::InvalidTransition { .. } => Code::InvalidTransition,
            DomainError::CouponTaken { .. } => Code::CouponTaken,
            DomainError::CouponExhausted { .. } => Code::CouponExhausted,
            DomainError::ZoneOverlap { .. } => Code::ZoneOverlap,
            DomainError::EmailUnverified => Code::EmailUnverified,
            DomainError::ReturnWindowClosed { .. } => Code::ReturnWindowClosed,
            DomainError::ReviewExists => Code::ReviewExists,
            DomainError::BackupRunning => Code::BackupRunning,
            DomainError::BackupExists { .. } => Code::BackupExists,
            DomainError::AlreadyVoted => Code::AlreadyVoted,
            DomainError::ReplyExists => Code::ReplyExists,
            DomainError::IdempotencyKeyInUse => Code::IdempotencyKeyInUse,
            DomainError::IdempotencyKeyReused => Code::IdempotencyKeyReused,
            DomainError::IdempotencyKeyRequired => Code::IdempotencyKeyRequired,
            DomainError::RefundTooLarge { .. } => Code::RefundTooLarge,
            DomainError::PaymentDeclined { .. } => Code::PaymentDeclined,
            DomainError::PaymentUnavailable { .. } => Code::PaymentUnavailable,
        }
    }

    /// The error's answer body.
    pub fn body(&self) -> Vec<u8> {
        envelope(self.code(), &self.to_string(), Some(&self.details()))
    }

    /// Returns the machine-readable facts of the error.
    pub fn details(&self) -> Value {
        match self {
            DomainError::InsufficientStock {
                sku,
                requested,
                available,
            } => json!({ "sku": sku, "requested": requested, "available": available }),
            DomainError::BelowReserved { reserved, .. } => json!({ "reserved": reserved }),
            DomainError::SlugTaken { slug, .. } => json!({ "slug": slug }),
            DomainError::SkuTaken { sku } => json!({ "sku": sku }),
            DomainError::ExternalIdTaken { external_id } => json!({ "external_id": external_id }),
            DomainError::EmailTaken => json!({ "field": "email" }),
            DomainError::Shortfall { lines } => json!({
                "lines": lines
                    .iter()
                    .map(|(sku, requested, available)| json!({ "sku": sku, "requested": requested, "available": available }))
                    .collect::<Vec<_>>()
            }),
            DomainError::ItemsUnavailable { skus } => json!({ "skus": skus }),
            DomainError::PriceChanged {
                expected,
                actual,
                breakdown,
            } => json!({ "expected": expected, "actual": actual, "breakdown": breakdown }),
            DomainError::InvalidTransition { from, to, allowed } => {
                json!({ "from": from, "to": to, "allowed": allowed })
            }
            DomainError::RefundTooLarge { refundable } => json!({ "refundable": refundable }),
            DomainError::CouponTaken { code } | DomainError::CouponExhausted { code } => json!({ "code": code }),
            DomainError::ZoneOverlap { areas } => json!({ "areas": areas }),
            DomainError::BackupExists { name } => json!({ "name": name }),
            DomainError::EmailUnverified => json!({}),
            DomainError::ReturnWindowClosed { closed_at } => json!({ "closed_at": closed_at }),
            DomainError::PaymentDeclined { reason, order } => json!({ "reason": reason, "order": order }),
            DomainError::PaymentUnavailable { retry_after_secs } => json!({ "retry_after_secs": retry_after_secs }),
            DomainError::CartEmpty
            | DomainError::BackupRunning
            | DomainError::ReviewExists
            | DomainError::AlreadyVoted
            | DomainError::ReplyExists
            | DomainError::CartChanged
            | DomainError::IdempotencyKeyInUse
            | DomainError::IdempotencyKeyReused
            | DomainError::IdempotencyKeyRequired => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_unique_snake_case_with_an_error_status() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} is listed twice");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert!((400..600).contains(&code.status()), "{name}");
        }
    }

    #[test]
    fn domain_errors_carry_their_code_and_facts() {
        let e = DomainError::InsufficientStock {
            sku: "A-1".into(),
            requested: 3,
            available: 1,
        };
        assert_eq!(e.code(), Code::InsufficientStock);
        assert_eq!(e.code().status(), 409);
        assert_eq!(e.details()["available"], 1);
        assert_eq!(e.to_string(), "only 1 of SKU A-1 available");
    }
}
