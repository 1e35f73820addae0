//! Server configuration: `config.toml`, then `STOREFRONT__SECTION__KEY` environment variables.
//!
//! Every key has a default here, and `config.toml` at the repository root documents each one;
//! a test keeps the two identical.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::domain::cart::{MergeStrategy, ReserveOn};
pub use crate::domain::order::CaptureMode;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// RocksDB.
    pub storage: StorageConfig,
    /// In-process response caches.
    pub cache: CacheConfig,
    /// Cache-Control headers for CDN-cacheable reads.
    pub http_cache: HttpCacheConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Catalog rules.
    pub catalog: CatalogConfig,
    /// CDN purge hook.
    pub cdn: CdnConfig,
    /// Search.
    pub search: SearchConfig,
    /// Carts.
    pub cart: CartConfig,
    /// Stock reservations.
    pub inventory: InventoryConfig,
    /// Shipping and tax.
    pub pricing: PricingConfig,
    /// Checkout and orders.
    pub checkout: CheckoutConfig,
    /// Payment providers.
    pub payments: PaymentsConfig,
    /// Delivery of outbox events to webhooks and email.
    pub notifications: NotificationsConfig,
    /// Webhook endpoints.
    pub webhooks: WebhooksConfig,
    /// Email.
    pub email: EmailConfig,
    /// Product reviews.
    pub reviews: ReviewsConfig,
    /// Recommendations and the behaviour log.
    pub recommendations: RecommendationsConfig,
    /// Backups.
    pub backup: BackupConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[notifications]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Attempts per delivery before it moves to the dead letters (the first and 3 retries).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each retry, with jitter.
    pub backoff_initial_ms: u64,
    /// Longest wait between retries.
    pub backoff_max_ms: u64,
    /// How long handed-out events and finished deliveries are kept.
    pub retention_secs: u64,
    /// How often the dispatcher looks for work when idle.
    pub interval_ms: u64,
    /// Deliveries in flight per sink (a slow sink holds only its own).
    pub concurrency_per_sink: usize,
    /// A cart with items and a known email, untouched this long, gets one `cart_abandoned`
    /// event (0: never).
    pub abandoned_cart_after_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            max_attempts: 4,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            retention_secs: 7 * 24 * 3600,
            interval_ms: 100,
            concurrency_per_sink: 16,
            abandoned_cart_after_secs: 24 * 3600,
        }
    }
}

/// `[backup]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where `POST /admin/backups` writes; a relative path is inside [storage] data_dir.
    /// Backups are hard-linked checkpoints, so this must be on the data directory's
    /// filesystem to be cheap; copy them elsewhere to keep them.
    pub dir: PathBuf,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: PathBuf::from("backups"),
        }
    }
}

/// `[reviews]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewsConfig {
    /// Which reviews are public without a moderator: `none`, `verified` (verified purchases)
    /// or `all`.
    pub auto_approve: String,
    /// When a purchase makes a review verified: `delivered` or `placed`.
    pub verified_purchase: String,
}

impl Default for ReviewsConfig {
    fn default() -> Self {
        ReviewsConfig {
            auto_approve: "verified".into(),
            verified_purchase: "delivered".into(),
        }
    }
}

/// `[recommendations]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendationsConfig {
    /// Half-life of a purchase's or view's weight in `popular`, days.
    pub popular_half_life_days: f64,
    /// Half-life of a shopper's own history in `personalized`, days.
    pub history_half_life_days: f64,
    /// What `personalized` leaves out: products the shopper bought this recently, days.
    pub exclude_bought_within_days: f64,
    /// `frequently-bought-together` needs at least this many orders with both products.
    pub min_support: u32,
    /// How much `frequently-bought-together` discounts a popular partner: 0 ranks by
    /// confidence (co-purchases), 1 by lift.
    pub popularity_damping: f64,
    /// In `personalized`: the weight of buying again against what goes with one's purchases.
    pub repeat_weight: f64,
    /// In `personalized`: the weight of what is popular now.
    pub popularity_prior: f64,
    /// Whether product views and add-to-carts are recorded (orders always teach the models).
    pub record_behaviour: bool,
    /// Views and add-to-carts are kept this long, days.
    pub behaviour_retention_days: u64,
    /// Actions waiting to be written; beyond it new ones are dropped (and counted), so no
    /// request ever waits on recording.
    pub queue_capacity: usize,
    /// How often the models take in new actions, milliseconds.
    pub interval_ms: u64,
}

impl Default for RecommendationsConfig {
    fn default() -> Self {
        RecommendationsConfig {
            popular_half_life_days: 14.0,
            history_half_life_days: 180.0,
            exclude_bought_within_days: 1.0,
            min_support: 2,
            popularity_damping: 0.2,
            repeat_weight: 3.0,
            popularity_prior: 0.1,
            record_behaviour: true,
            behaviour_retention_days: 90,
            queue_capacity: 65_536,
            interval_ms: 500,
        }
    }
}

/// `[webhooks]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow endpoints on loopback and private networks (tests, an intranet); off, such
    /// targets are refused when registered and when their name resolves to one (no SSRF).
    pub allow_private_targets: bool,
    /// Time for an endpoint to answer.
    pub timeout_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private_targets: false,
            timeout_ms: 5_000,
        }
    }
}

/// `[email]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `log` (write each email to the log; the default, so a new install needs no mail
    /// server) or `smtp`.
    pub transport: String,
    /// SMTP server.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: String,
    /// SMTP user (empty: no authentication).
    pub smtp_username: String,
    /// SMTP password (best given as `STOREFRONT__EMAIL__SMTP_PASSWORD`).
    pub smtp_password: String,
    /// The sender, e.g. `Storefront <shop@example.com>`.
    pub from: String,
    /// Where low-stock alerts go (empty: none are mailed).
    pub operations_to: String,
    /// The folder of templates (`<name>.subject`, `<name>.txt`, `<name>.html`); missing files
    /// fall back to the built-in ones.
    pub templates_dir: String,
    /// The shop's address, for links in emails.
    pub base_url: String,
    /// Whether checkout requires a signed-in customer to have verified their email.
    pub require_verified_for_checkout: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            transport: "log".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_security: "none".into(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            from: "Storefront <shop@example.com>".into(),
            operations_to: String::new(),
            templates_dir: "templates/email".into(),
            base_url: "http://127.0.0.1:8080".into(),
            require_verified_for_checkout: false,
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("transport", &self.transport)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_password", &"<redacted>")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port.
    pub listen: String,
    /// Tokio worker threads; 0 means one per core.
    pub worker_threads: usize,
    /// Threads of the blocking pool (storage reads and writes, searches, password hashing);
    /// 0 keeps tokio's default of 512.
    pub blocking_threads: usize,
    /// glibc malloc arenas (RocksDB's C++ heap; the Rust heap is mimalloc's); 0 keeps glibc's
    /// default of eight per core. Each arena keeps its own freed memory.
    pub malloc_arenas: usize,
    /// Whether the process may use transparent huge pages.
    pub transparent_huge_pages: bool,
    /// Maximum request body size.
    pub body_limit_bytes: usize,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
    /// Requests processed at once before new ones are shed with 503.
    pub max_in_flight: usize,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace_ms: u64,
    /// Origins allowed to call the API from browsers (CORS); empty sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// A connection must send a request's headers within this long, and an idle keep-alive
    /// connection is closed after it.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers); beyond it 431.
    pub max_header_bytes: usize,
    /// A request body must arrive within this long (408 otherwise).
    pub body_read_timeout_ms: u64,
    /// Open connections at most; more wait in the listen backlog. Keep it below the file
    /// descriptor limit (`ulimit -n`), with room for the store's files.
    pub max_connections: usize,
    /// Length of the listen backlog.
    pub listen_backlog: u32,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only (HTTP/2 or
    /// HTTP/1.1 by ALPN). SIGHUP reloads both files.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `Strict-Transport-Security: max-age` sent over TLS; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// When set, `/metrics` answers only `Authorization: Bearer <metrics_token>` (or the
    /// admin API key); empty leaves it open (bind to loopback or firewall it instead).
    pub metrics_token: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            worker_threads: 0,
            blocking_threads: 0,
            malloc_arenas: 2,
            transparent_huge_pages: false,
            body_limit_bytes: 1 << 20,
            request_timeout_ms: 10_000,
            max_in_flight: 4096,
            shutdown_grace_ms: 10_000,
            cors_allowed_origins: Vec::new(),
            header_read_timeout_ms: 5_000,
            max_header_bytes: 96 << 10,
            body_read_timeout_ms: 5_000,
            max_connections: 8_192,
            listen_backlog: 1_024,
            http2_max_concurrent_streams: 64,
            tls_cert: None,
            tls_key: None,
            hsts_max_age_secs: 31_536_000,
            metrics_token: String::new(),
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory of the RocksDB database.
    pub data_dir: PathBuf,
    /// fsync the write-ahead log before acknowledging each write.
    pub sync_writes: bool,
    /// Shared RocksDB block cache.
    pub block_cache_bytes: usize,
    /// Memtable size per column family.
    pub write_buffer_bytes: usize,
    /// Newest changelog entries kept even after every consumer applied them.
    pub changelog_retain_entries: u64,
    /// How often applied changelog entries are deleted; 0 keeps the whole changelog.
    pub changelog_retention_interval_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            sync_writes: true,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            changelog_retain_entries: 100_000,
            changelog_retention_interval_ms: 60_000,
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory for pre-serialised product pages, in bytes.
    pub product_bytes: u64,
    /// Memory for pre-serialised listing pages, in bytes.
    pub listing_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            product_bytes: 48 << 20,
            listing_bytes: 16 << 20,
        }
    }
}

/// `[http_cache]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpCacheConfig {
    /// Browser cache lifetime (`max-age`).
    pub max_age_secs: u64,
    /// Shared/CDN cache lifetime (`s-maxage`).
    pub s_maxage_secs: u64,
    /// Window in which a CDN may serve stale content while revalidating.
    pub stale_while_revalidate_secs: u64,
}

impl Default for HttpCacheConfig {
    fn default() -> Self {
        HttpCacheConfig {
            max_age_secs: 60,
            s_maxage_secs: 300,
            stale_while_revalidate_secs: 60,
        }
    }
}

impl HttpCacheConfig {
    /// Renders the `Cache-Control` value for public reads.
    pub fn header_value(&self) -> String {
        format!(
            "public, max-age={}, s-maxage={}, stale-while-revalidate={}",
            self.max_age_secs, self.s_maxage_secs, self.stale_while_revalidate_secs
        )
    }
}

/// `[auth]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer key with admin rights for automation. Empty disables it.
    pub admin_api_key: String,
    /// HS256 secret for access tokens; empty uses a random secret persisted in the data dir.
    pub jwt_secret: String,
    /// Key id (`kid`) of `jwt_secret`.
    pub jwt_key_id: String,
    /// Previous secret, still accepted for verification during a key rotation.
    pub jwt_previous_secret: String,
    /// Key id of `jwt_previous_secret`.
    pub jwt_previous_key_id: String,
    /// Issuer claim.
    pub issuer: String,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl_secs: u64,
    /// Minimum password length.
    pub password_min_length: usize,
    /// argon2id memory cost.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// Password hashes computed concurrently (each holds `argon2_memory_kib`).
    pub hash_concurrency: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            admin_api_key: String::new(),
            jwt_secret: String::new(),
            jwt_key_id: "k1".into(),
            jwt_previous_secret: String::new(),
            jwt_previous_key_id: String::new(),
            issuer: "storefront".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            password_min_length: 10,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 2,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "<unset>" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("admin_api_key", &redact(&self.admin_api_key))
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field("jwt_key_id", &self.jwt_key_id)
            .field("jwt_previous_secret", &redact(&self.jwt_previous_secret))
            .field("issuer", &self.issuer)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per second per client IP and per signed-in user; 0 disables the general limit.
    pub api_per_second: u32,
    /// Burst allowance of the general limit.
    pub api_burst: u32,
    /// Login and registration attempts per minute per client IP.
    pub auth_per_minute_per_ip: u32,
    /// Login attempts per minute per account (email).
    pub login_per_minute_per_account: u32,
    /// Peers (CDN, load balancer) whose `X-Forwarded-For` is trusted for the client IP:
    /// addresses or CIDR ranges (`10.0.0.5`, `10.0.0.0/8`, `2001:db8::/32`).
    pub trusted_proxies: Vec<String>,
    /// The limit per signed-in user, as `N/window` (`100/min`, `20/s`, `5000/h`, `300/5m`);
    /// empty: the general per-second limit.
    pub user_limit: String,
    /// Client addresses with their own limit instead of the general one: CDN edges or
    /// partners that reach us without a trusted `X-Forwarded-For` (addresses or CIDR ranges).
    pub cdn_ranges: Vec<String>,
    /// The limit per address in `cdn_ranges`, as `N/window`; empty: not limited.
    pub cdn_limit: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            api_per_second: 200,
            api_burst: 400,
            auth_per_minute_per_ip: 20,
            login_per_minute_per_account: 5,
            trusted_proxies: Vec::new(),
            user_limit: String::new(),
            cdn_ranges: Vec::new(),
            cdn_limit: String::new(),
        }
    }
}

/// `[catalog]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Currency of the store (ISO 4217); every price must use it.
    pub currency: String,
    /// Listing index entries examined per page before returning a partial page with a cursor
    /// (bounds the cost of sparse secondary filters).
    pub listing_max_scan: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            currency: "USD".into(),
            listing_max_scan: 5_000,
        }
    }
}

/// `[cart]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartConfig {
    /// Guest carts expire after this long without a write.
    pub guest_ttl_secs: u64,
    /// User carts expire after this long without a write.
    pub user_ttl_secs: u64,
    /// Largest quantity of one line.
    pub max_line_quantity: i64,
    /// Most lines in one cart.
    pub max_lines: usize,
    /// Largest total quantity in one cart.
    pub max_total_quantity: i64,
    /// Guest-to-user merge at login.
    pub merge: MergeStrategy,
    /// How often the sweeper looks for expired carts and holds.
    pub sweep_interval_ms: u64,
    /// Carts handled per sweeper batch.
    pub sweep_batch: usize,
    /// Carts kept in the in-memory cache.
    pub cache_entries: u64,
    /// Bytes of rendered cart reads kept while still current (0: reprice every read).
    pub page_cache_bytes: u64,
}

impl Default for CartConfig {
    fn default() -> Self {
        CartConfig {
            guest_ttl_secs: 7 * 24 * 3600,
            user_ttl_secs: 30 * 24 * 3600,
            max_line_quantity: 99,
            max_lines: 100,
            max_total_quantity: 500,
            merge: MergeStrategy::Sum,
            sweep_interval_ms: 30_000,
            sweep_batch: 500,
            cache_entries: 100_000,
            page_cache_bytes: 8 << 20,
        }
    }
}

/// `[inventory]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// When stock is held.
    pub reserve_on: ReserveOn,
    /// Lifetime of a cart's holds after its last write (with `reserve_on = "cart"`).
    pub hold_ttl_secs: u64,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            reserve_on: ReserveOn::Cart,
            hold_ttl_secs: 15 * 60,
        }
    }
}

/// `[pricing]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// The `standard` method of a store without shipping zones: its charge per parcel, minor
    /// units.
    pub shipping_flat_cents: i64,
    /// ...free for parcels at or above this after discounts; 0 = never free.
    pub free_shipping_over_cents: i64,
    /// ...and its delivery estimate, in days.
    pub shipping_min_days: u16,
    /// ...at the latest.
    pub shipping_max_days: u16,
    /// Whether tax applies to shipping.
    pub shipping_taxable: bool,
    /// Tax rate when no country/region rate matches, basis points.
    pub default_tax_bps: u32,
    /// Tax rates by `COUNTRY` or `COUNTRY-REGION`, basis points.
    pub tax_bps: std::collections::BTreeMap<String, u32>,
    /// How automatic promotions and a coupon combine: `combine` (each line's best promotion,
    /// then the coupon on what is left) or `exclusive` (a coupon that applies replaces them).
    pub promotion_stacking: crate::domain::promotion::Stacking,
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            shipping_flat_cents: 599,
            free_shipping_over_cents: 5_000,
            shipping_min_days: 2,
            shipping_max_days: 5,
            shipping_taxable: false,
            default_tax_bps: 0,
            tax_bps: std::collections::BTreeMap::new(),
            promotion_stacking: crate::domain::promotion::Stacking::Combine,
        }
    }
}

/// `[checkout]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutConfig {
    /// When payments are captured: `immediate` or `on_shipment`.
    pub capture: CaptureMode,
    /// How long an order may wait for its payment before recovery asks the provider.
    pub recovery_after_secs: u64,
    /// How often recovery looks for such orders.
    pub recovery_interval_ms: u64,
    /// How long idempotency keys are kept.
    pub idempotency_ttl_secs: u64,
    /// The store's name, printed on invoices (as the seller of lines without a seller).
    pub store_name: String,
    /// How often confirmed orders get their invoice numbers (an invoice asked for earlier
    /// gets its number at once).
    pub invoice_interval_ms: u64,
    /// How long after delivery a customer may ask for a return, in days.
    pub return_window_days: u32,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        CheckoutConfig {
            capture: CaptureMode::Immediate,
            recovery_after_secs: 300,
            recovery_interval_ms: 10_000,
            idempotency_ttl_secs: 24 * 3600,
            store_name: "Storefront".into(),
            invoice_interval_ms: 200,
            return_window_days: 30,
        }
    }
}

/// `[payments]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Offer the `test` provider (test cards; never in a real shop).
    pub test_enabled: bool,
    /// Delay of every call of the test provider.
    pub test_latency_ms: u64,
    /// Share of test-provider calls (0–1) that fail with a processor error.
    pub test_failure_rate: f64,
    /// Offer the `manual` provider (cash on delivery, bank transfer).
    pub manual_enabled: bool,
    /// Stripe secret key; empty turns the `stripe` provider off.
    pub stripe_secret_key: String,
    /// Stripe webhook signing secret.
    pub stripe_webhook_secret: String,
    /// Stripe API base.
    pub stripe_api_base: String,
    /// Timeout of one Stripe call.
    pub stripe_timeout_ms: u64,
    /// Accepted age of a Stripe webhook signature.
    pub stripe_webhook_tolerance_secs: u64,
    /// Consecutive provider failures that open its circuit breaker.
    pub breaker_consecutive_failures: u32,
    /// Success rate (0–1) under which, over the window, the breaker opens.
    pub breaker_min_success_rate: f64,
    /// Calls in the window before the rate counts.
    pub breaker_min_calls: u32,
    /// The window of the rate.
    pub breaker_window_secs: u64,
    /// How long an open breaker refuses calls before a trial.
    pub breaker_cooldown_ms: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            test_enabled: true,
            test_latency_ms: 0,
            test_failure_rate: 0.0,
            manual_enabled: true,
            stripe_secret_key: String::new(),
            stripe_webhook_secret: String::new(),
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_timeout_ms: 10_000,
            stripe_webhook_tolerance_secs: 300,
            breaker_consecutive_failures: 5,
            breaker_min_success_rate: 0.5,
            breaker_min_calls: 20,
            breaker_window_secs: 30,
            breaker_cooldown_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsConfig")
            .field("test_enabled", &self.test_enabled)
            .field("manual_enabled", &self.manual_enabled)
            .field("stripe", &!self.stripe_secret_key.is_empty())
            .finish_non_exhaustive()
    }
}

/// `[search]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Index directory; relative paths are inside the data directory.
    pub index_dir: std::path::PathBuf,
    /// Memory of the index writer.
    pub writer_memory_bytes: usize,
    /// How often the indexer polls the changelog when idle (changes are searchable within about this).
    pub poll_interval_ms: u64,
    /// Searches running or queued at once; beyond this a search gets 503 with Retry-After.
    pub max_pending: usize,
    /// Searches running at once (the rest of `max_pending` wait their turn); 0 means one per core.
    pub threads: usize,
    /// Index size (documents) from which one search runs over its segments on `threads`
    /// threads at once.
    pub spread_from_documents: u64,
    /// Memory for cached search and autocomplete responses.
    pub cache_bytes: u64,
    /// Attributes counted as facets and filterable with `attr.<name>=<value>`.
    pub facet_attributes: Vec<String>,
    /// Autocomplete suggestions returned.
    pub suggest_limit: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index_dir: "search-index".into(),
            writer_memory_bytes: 32 << 20,
            poll_interval_ms: 100,
            max_pending: 64,
            threads: 0,
            spread_from_documents: 200_000,
            cache_bytes: 32 << 20,
            facet_attributes: [
                "colour",
                "product_colour",
                "printing_colours",
                "form_factor",
                "storage_media",
                "processor_family",
                "connectivity_technology",
                "operating_system_installed",
            ]
            .map(String::from)
            .to_vec(),
            suggest_limit: 8,
        }
    }
}

/// `[cdn]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdnConfig {
    /// URL that receives purge requests with an `xkey-purge` header; empty disables it.
    pub purge_url: String,
    /// `POST` or `PURGE`: the method the CDN's purge handler expects.
    pub purge_method: String,
    /// Longest `xkey-purge` header one request carries; more tags go in more requests. Keep
    /// it under the CDN's header-line limit (Varnish: `http_req_hdr_len`, 8 KiB by default).
    pub purge_max_header_bytes: usize,
    /// Timeout of one purge request.
    pub purge_timeout_ms: u64,
    /// How often the purger polls the changelog when idle.
    pub poll_interval_ms: u64,
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            purge_url: String::new(),
            purge_method: "POST".into(),
            purge_max_header_bytes: 4_000,
            purge_timeout_ms: 2_000,
            poll_interval_ms: 200,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A level for our crates (`info`; other crates log at warn), or `tracing` filter
    /// directives (`info,tantivy=info`). `RUST_LOG` wins if set. Invalid: a start-up error.
    pub level: String,
    /// `auto` (readable on a terminal, JSON otherwise), `json` or `pretty`.
    pub format: String,
    /// One `info` line per request (target `storefront::access`): method, path, status,
    /// duration, client.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "auto".into(),
            access: false,
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (when given; a missing `config.toml` in the working directory
    /// is fine), then `STOREFRONT__SECTION__KEY` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(Box::new(figment::Error::from(format!(
                        "config file {} not found",
                        path.display()
                    ))));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("config.toml")),
        }
        figment
            .merge(Env::prefixed("STOREFRONT__").split("__"))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature is fixed.
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_toml_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let parsed: Config = toml_from_str(&text);
        assert_eq!(parsed, Config::default());
    }

    fn toml_from_str(text: &str) -> Config {
        Figment::from(Toml::string(text)).extract().unwrap()
    }

    #[test]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[server]\nlisten = \"127.0.0.1:9000\"\n")?;
            jail.set_env("STOREFRONT__STORAGE__SYNC_WRITES", "false");
            jail.set_env("STOREFRONT__AUTH__ADMIN_API_KEY", "k3y-value-xyz");
            let config = Config::load(None).unwrap();
            assert_eq!(config.server.listen, "127.0.0.1:9000");
            assert!(!config.storage.sync_writes);
            assert_eq!(config.auth.admin_api_key, "k3y-value-xyz");
            assert!(!format!("{config:?}").contains("k3y-value-xyz"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[server]\nlisten_addr = \"x\"\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
