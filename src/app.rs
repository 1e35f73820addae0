//! Assembly: configuration becomes [`Settings`] here and nowhere else, [`Services`] owns the
//! store, the clock, the live stock counters, every service and every background worker, and
//! [`App`] binds the listener and serves until stopped.
//!
//! `App::build(config)` is what the server and the tests run; the CLI opens [`Services`]
//! alone for offline commands (import, reindex, evaluation).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use storefront_storage::{Store, StoreOptions, TimeSource};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::cart::CartLimits;
use crate::domain::pricing::PricingRules;
use crate::domain::promotion::Stacking;
use crate::domain::shipping::{Method, Rate};
use crate::domain::Currency;
use crate::http::{self, AppState, HttpSettings};
use crate::service::auth::{persisted_jwt_secret, Accounts, AuthSettings};
use crate::service::cart::sweeper::CartSweeper;
use crate::service::cart::{CartSettings, Carts, PriceSources};
use crate::service::catalog::{Catalog, CatalogSettings};
use crate::service::checkout::recovery::Recovery;
use crate::service::checkout::Checkout;
use crate::service::coupon::Coupons;
use crate::service::events::outbox::Outbox;
use crate::service::events::purge::PurgeMetrics;
use crate::service::events::purge::{self, PurgeSettings, Purger};
use crate::service::events::retention::{Retention, RetentionSettings};
use crate::service::events::{Consumers, PersistedCursor, ReadModels};
use crate::service::generation::Generation;
use crate::service::health::Health;
use crate::service::idempotency::{Idempotency, IdempotencySweeper};
use crate::service::inventory::{Inventory, StockLedger, StockSignals};
use crate::service::notify::dispatch::{Courier, Dispatcher, Retention as NotificationRetention};
use crate::service::notify::email::{EmailSettings, Mailer, Transport as EmailTransport};
use crate::service::notify::{Notifications, NotifySettings};
use crate::service::order::invoice::InvoiceNumbering;
use crate::service::order::{OrderSettings, Orders};
use crate::service::payment::breaker::BreakerSettings;
use crate::service::payment::manual::Manual;
use crate::service::payment::stripe::{Stripe, StripeSettings};
use crate::service::payment::test::{TestGateway, TestGatewaySettings};
use crate::service::payment::Payments;
use crate::service::promotion::Promotions;
use crate::service::reco::models::ModelSettings;
use crate::service::reco::{RecoSettings, RecoUpdater, Recommendations};
use crate::service::review::{AutoApprove, ReviewSettings, Reviews, VerifiedWhen};
use crate::service::search::{self, Indexer, Search, SearchSettings};
use crate::service::shipping::{Shipping, STANDARD_SHIPPING};
use crate::service::wishlist::{self, WishlistAlerts, Wishlists};
use crate::worker::{Schedule, Wake, Workers};

/// Every setting the services and the HTTP layer run with, derived from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// RocksDB tuning.
    pub store: StoreOptions,
    /// Search index directory.
    pub index_dir: PathBuf,
    /// Where backups are written.
    pub backup_dir: PathBuf,
    /// Catalog.
    pub catalog: CatalogSettings,
    /// Accounts (the signing secret is empty when it is to be read from the store).
    pub auth: AuthSettings,
    /// Carts.
    pub carts: CartSettings,
    /// Tax.
    pub pricing: PricingRules,
    /// The shipping method of a store without zones.
    pub standard_shipping: Method,
    /// How automatic promotions and a coupon combine.
    pub promotion_stacking: Stacking,
    /// Search.
    pub search: SearchSettings,
    /// The CDN purger, when a purge URL is set.
    pub purge: Option<PurgeSettings>,
    /// Changelog retention, unless turned off.
    pub retention: Option<RetentionSettings>,
    /// Orders and checkout.
    pub orders: OrderSettings,
    /// Payment providers.
    pub payments: PaymentSettings,
    /// How often checkout recovery runs.
    pub recovery_interval: Duration,
    /// How often confirmed orders get invoice numbers.
    pub invoice_interval: Duration,
    /// Delivery of outbox events.
    pub notify: NotifySettings,
    /// How often the notification workers look for work when idle.
    pub notify_interval: Duration,
    /// Email.
    pub email: EmailSettings,
    /// Reviews.
    pub reviews: ReviewSettings,
    /// Recommendations.
    pub recommendations: RecoSettings,
    /// The HTTP layer.
    pub http: HttpSettings,
}

/// Which payment providers are offered, and how.
#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// The test gateway, when offered.
    pub test: Option<TestGatewaySettings>,
    /// Whether manual payments are offered.
    pub manual: bool,
    /// Stripe, when configured.
    pub stripe: Option<StripeSettings>,
    /// The circuit breaker of each provider.
    pub breaker: BreakerSettings,
}

impl TryFrom<&Config> for Settings {
    type Error = anyhow::Error;

    fn try_from(config: &Config) -> anyhow::Result<Settings> {
        let currency = Currency::parse(&config.catalog.currency).with_context(|| {
            format!(
                "[catalog] currency {:?} is not an ISO 4217 code",
                config.catalog.currency
            )
        })?;
        let auth = &config.auth;
        anyhow::ensure!(
            auth.jwt_secret.is_empty() || auth.jwt_secret.len() >= 32,
            "[auth] jwt_secret must be at least 32 bytes"
        );
        let mut verify_keys = Vec::new();
        if !auth.jwt_previous_secret.is_empty() {
            verify_keys.push((
                auth.jwt_previous_key_id.clone(),
                auth.jwt_previous_secret.as_bytes().to_vec(),
            ));
        }
        let secs = |s: u64| Duration::from_secs(s.max(1));
        let data_dir = config.storage.data_dir.clone();
        Ok(Settings {
            index_dir: data_dir.join(&config.search.index_dir),
            backup_dir: data_dir.join(&config.backup.dir),
            store: StoreOptions {
                block_cache_bytes: config.storage.block_cache_bytes,
                sync_writes: config.storage.sync_writes,
                write_buffer_bytes: config.storage.write_buffer_bytes,
                ..StoreOptions::default()
            },
            data_dir,
            catalog: CatalogSettings {
                currency,
                listing_max_scan: config.catalog.listing_max_scan.max(1),
                product_bytes: config.cache.product_bytes,
                listing_bytes: config.cache.listing_bytes,
            },
            auth: AuthSettings {
                issuer: auth.issuer.clone(),
                access_ttl: secs(auth.access_token_ttl_secs),
                refresh_ttl: secs(auth.refresh_token_ttl_secs),
                signing_key: (auth.jwt_key_id.clone(), auth.jwt_secret.as_bytes().to_vec()),
                verify_keys,
                password_min_len: auth.password_min_length,
                argon2_memory_kib: auth.argon2_memory_kib,
                argon2_iterations: auth.argon2_iterations,
                argon2_parallelism: auth.argon2_parallelism,
                hash_concurrency: auth.hash_concurrency,
            },
            carts: CartSettings {
                guest_ttl: secs(config.cart.guest_ttl_secs),
                user_ttl: secs(config.cart.user_ttl_secs),
                hold_ttl: secs(config.inventory.hold_ttl_secs),
                reserve_on: config.inventory.reserve_on,
                limits: CartLimits {
                    max_line_quantity: config.cart.max_line_quantity.max(1),
                    max_lines: config.cart.max_lines.max(1),
                    max_total_quantity: config.cart.max_total_quantity.max(1),
                },
                merge: config.cart.merge,
                sweep_batch: config.cart.sweep_batch.max(1),
                sweep_interval: Duration::from_millis(config.cart.sweep_interval_ms.max(10)),
                cache_entries: config.cart.cache_entries,
                page_cache_bytes: config.cart.page_cache_bytes,
                abandon_after: (config.notifications.abandoned_cart_after_secs > 0)
                    .then(|| Duration::from_secs(config.notifications.abandoned_cart_after_secs)),
                currency,
            },
            promotion_stacking: config.pricing.promotion_stacking,
            standard_shipping: {
                let p = &config.pricing;
                anyhow::ensure!(
                    p.shipping_flat_cents >= 0 && p.free_shipping_over_cents >= 0,
                    "[pricing] shipping amounts must not be negative"
                );
                Method {
                    code: STANDARD_SHIPPING.to_owned(),
                    name: "Standard".to_owned(),
                    rate: if p.free_shipping_over_cents > 0 {
                        Rate::FreeOver {
                            threshold: p.free_shipping_over_cents,
                            amount: p.shipping_flat_cents,
                        }
                    } else {
                        Rate::Flat(p.shipping_flat_cents)
                    },
                    min_days: p.shipping_min_days,
                    max_days: p.shipping_max_days.max(p.shipping_min_days),
                }
            },
            pricing: PricingRules {
                shipping_taxable: config.pricing.shipping_taxable,
                default_tax_bps: config.pricing.default_tax_bps,
                tax_bps: config
                    .pricing
                    .tax_bps
                    .iter()
                    .map(|(k, v)| (k.to_ascii_uppercase(), *v))
                    .collect(),
            },
            search: SearchSettings {
                writer_memory_bytes: config.search.writer_memory_bytes,
                poll_interval: Duration::from_millis(config.search.poll_interval_ms.max(10)),
                max_pending: config.search.max_pending,
                threads: match config.search.threads {
                    0 => std::thread::available_parallelism().map_or(2, usize::from),
                    n => n,
                },
                spread_from_documents: config.search.spread_from_documents,
                cache_bytes: config.search.cache_bytes,
                facet_attributes: config.search.facet_attributes.clone(),
                suggest_limit: config.search.suggest_limit,
            },
            purge: match config.cdn.purge_url.as_str() {
                "" => None,
                url => Some(PurgeSettings {
                    url: url.to_owned(),
                    method: match config.cdn.purge_method.to_ascii_uppercase().as_str() {
                        "POST" => ::http::Method::POST,
                        "PURGE" => ::http::Method::from_bytes(b"PURGE").expect("a valid method"),
                        other => anyhow::bail!("[cdn] purge_method must be POST or PURGE, not {other:?}"),
                    },
                    max_header_bytes: {
                        anyhow::ensure!(
                            (256..=65_536).contains(&config.cdn.purge_max_header_bytes),
                            "[cdn] purge_max_header_bytes must be from 256 to 65536"
                        );
                        config.cdn.purge_max_header_bytes
                    },
                    timeout: Duration::from_millis(config.cdn.purge_timeout_ms.max(1)),
                    poll_interval: Duration::from_millis(config.cdn.poll_interval_ms.max(10)),
                }),
            },
            retention: (config.storage.changelog_retention_interval_ms > 0).then(|| RetentionSettings {
                retain_entries: config.storage.changelog_retain_entries,
                interval: Duration::from_millis(config.storage.changelog_retention_interval_ms),
            }),
            orders: OrderSettings {
                currency,
                capture: config.checkout.capture,
                recovery_after: Duration::from_secs(config.checkout.recovery_after_secs),
                idempotency_ttl: secs(config.checkout.idempotency_ttl_secs),
                store_name: config.checkout.store_name.clone(),
                return_window: Duration::from_secs(u64::from(config.checkout.return_window_days) * 86_400),
                require_verified_email: config.email.require_verified_for_checkout,
            },
            invoice_interval: Duration::from_millis(config.checkout.invoice_interval_ms.max(10)),
            recovery_interval: Duration::from_millis(config.checkout.recovery_interval_ms.max(10)),
            payments: {
                let p = &config.payments;
                anyhow::ensure!(
                    (0.0..=1.0).contains(&p.test_failure_rate),
                    "[payments] test_failure_rate must be between 0 and 1"
                );
                PaymentSettings {
                    test: p.test_enabled.then(|| TestGatewaySettings {
                        latency: Duration::from_millis(p.test_latency_ms),
                        failure_rate: p.test_failure_rate,
                    }),
                    manual: p.manual_enabled,
                    stripe: (!p.stripe_secret_key.is_empty()).then(|| StripeSettings {
                        api_base: p.stripe_api_base.clone(),
                        secret_key: p.stripe_secret_key.clone(),
                        webhook_secret: p.stripe_webhook_secret.clone(),
                        timeout: Duration::from_millis(p.stripe_timeout_ms.max(1)),
                        webhook_tolerance: Duration::from_secs(p.stripe_webhook_tolerance_secs),
                    }),
                    breaker: BreakerSettings {
                        consecutive_failures: p.breaker_consecutive_failures,
                        min_success_rate: p.breaker_min_success_rate,
                        min_calls: p.breaker_min_calls,
                        window: Duration::from_secs(p.breaker_window_secs),
                        cooldown: Duration::from_millis(p.breaker_cooldown_ms),
                    },
                }
            },
            notify: NotifySettings {
                max_attempts: config.notifications.max_attempts.max(1),
                backoff_initial: Duration::from_millis(config.notifications.backoff_initial_ms.max(1)),
                backoff_max: Duration::from_millis(
                    config
                        .notifications
                        .backoff_max_ms
                        .max(config.notifications.backoff_initial_ms),
                ),
                retention: Duration::from_secs(config.notifications.retention_secs),
                concurrency_per_sink: config.notifications.concurrency_per_sink.max(1),
                allow_private_targets: config.webhooks.allow_private_targets,
                webhook_timeout: Duration::from_millis(config.webhooks.timeout_ms.max(1)),
            },
            notify_interval: Duration::from_millis(config.notifications.interval_ms.max(10)),
            email: {
                let e = &config.email;
                EmailSettings {
                    transport: match e.transport.as_str() {
                        "log" => EmailTransport::Log,
                        "smtp" => EmailTransport::Smtp {
                            host: e.smtp_host.clone(),
                            port: e.smtp_port,
                            security: e.smtp_security.clone(),
                            credentials: (!e.smtp_username.is_empty())
                                .then(|| (e.smtp_username.clone(), e.smtp_password.clone())),
                        },
                        other => anyhow::bail!("[email] transport must be log or smtp, not {other:?}"),
                    },
                    from: e.from.clone(),
                    operations_to: e.operations_to.clone(),
                    templates_dir: PathBuf::from(&e.templates_dir),
                    base_url: e.base_url.trim_end_matches('/').to_owned(),
                    shop_name: config.checkout.store_name.clone(),
                    currency,
                }
            },
            recommendations: {
                let r = &config.recommendations;
                let days = |d: f64| d.max(0.0) * 86_400_000.0;
                anyhow::ensure!(
                    r.popular_half_life_days > 0.0 && r.history_half_life_days > 0.0,
                    "[recommendations] half-lives must be positive"
                );
                anyhow::ensure!(
                    (0.0..=1.0).contains(&r.popularity_damping),
                    "[recommendations] popularity_damping must be between 0 and 1"
                );
                RecoSettings {
                    model: ModelSettings {
                        popular_half_life_ms: days(r.popular_half_life_days),
                        history_half_life_ms: days(r.history_half_life_days),
                        exclude_bought_within_ms: days(r.exclude_bought_within_days) as i64,
                        min_support: r.min_support.max(1),
                        damping: r.popularity_damping,
                        repeat_weight: r.repeat_weight.max(0.0),
                        popularity_prior: r.popularity_prior.max(0.0),
                    },
                    record_behaviour: r.record_behaviour,
                    behaviour_retention: Duration::from_secs(r.behaviour_retention_days * 86_400),
                    queue_capacity: r.queue_capacity.max(1),
                    interval: Duration::from_millis(r.interval_ms.max(10)),
                }
            },
            reviews: ReviewSettings {
                auto_approve: match config.reviews.auto_approve.as_str() {
                    "none" => AutoApprove::None,
                    "verified" => AutoApprove::Verified,
                    "all" => AutoApprove::All,
                    other => anyhow::bail!("[reviews] auto_approve must be none, verified or all, not {other:?}"),
                },
                verified_when: match config.reviews.verified_purchase.as_str() {
                    "delivered" => VerifiedWhen::Delivered,
                    "placed" => VerifiedWhen::Placed,
                    other => anyhow::bail!("[reviews] verified_purchase must be delivered or placed, not {other:?}"),
                },
            },
            http: HttpSettings::try_from(config)?,
        })
    }
}

/// The store, the clock and every service, wired together, with the workers they need.
pub struct Services {
    /// The time every service reads.
    pub clock: SharedClock,
    /// The store.
    pub store: Store,
    /// Live stock counters.
    pub stock: Arc<StockLedger>,
    /// Catalog.
    pub catalog: Arc<Catalog>,
    /// Inventory.
    pub inventory: Arc<Inventory>,
    /// Carts.
    pub carts: Arc<Carts>,
    /// Accounts.
    pub accounts: Arc<Accounts>,
    /// Search.
    pub search: Arc<Search>,
    /// The outbox.
    pub outbox: Arc<Outbox>,
    /// Readiness and statistics.
    pub health: Arc<Health>,
    /// Orders.
    pub orders: Arc<Orders>,
    /// Checkout.
    pub checkout: Arc<Checkout>,
    /// Coupons.
    pub coupons: Arc<Coupons>,
    /// Automatic promotions.
    pub promotions: Arc<Promotions>,
    /// Webhooks, email and deliveries.
    pub notifications: Arc<Notifications>,
    /// Shipping zones.
    pub shipping: Arc<Shipping>,
    /// Product reviews.
    pub reviews: Arc<Reviews>,
    /// Wishlists.
    pub wishlists: Arc<Wishlists>,
    /// Online backups.
    pub backups: Arc<crate::service::backup::Backups>,
    /// The audit log.
    pub audit: Arc<crate::service::audit::Audit>,
    /// Recommendations.
    pub recommendations: Arc<Recommendations>,
    /// What the CDN purger did, when it runs.
    pub purge_metrics: Option<Arc<PurgeMetrics>>,
    /// Payment providers.
    pub payments: Arc<Payments>,
    /// Idempotency keys.
    pub idempotency: Arc<Idempotency>,
    /// Changelog consumers that retention waits for.
    pub consumers: Arc<Consumers>,
    /// Background workers (started by [`App`]).
    pub workers: Workers,
}

impl Services {
    /// Opens the store and builds every service (blocking: run it off the async workers).
    pub fn open(settings: &Settings, clock: SharedClock) -> anyhow::Result<Services> {
        let time = {
            let clock = clock.clone();
            TimeSource::new(move || clock.now_ms())
        };
        let store = Store::open(
            &settings.data_dir,
            &StoreOptions {
                time,
                ..settings.store.clone()
            },
        )?;
        guard_currency(&store, settings.catalog.currency.as_str())?;
        let stock = Arc::new(StockLedger::load(&store)?);
        let catalog = Arc::new(Catalog::new(store.clone(), stock.clone(), settings.catalog.clone())?);
        let stock_signals = Wake::default();
        let inventory = Arc::new(Inventory::new(
            store.clone(),
            catalog.clone(),
            stock.clone(),
            stock_signals.clone(),
        ));
        let pricing_generation = Arc::new(Generation::default());
        let users_generation = Arc::new(Generation::default());
        let promotions = Arc::new(Promotions::new(
            store.clone(),
            clock.clone(),
            catalog.clone(),
            pricing_generation.clone(),
        )?);
        let coupons = Arc::new(Coupons::new(
            store.clone(),
            clock.clone(),
            catalog.clone(),
            promotions.clone(),
            settings.promotion_stacking,
        ));
        let shipping = Arc::new(Shipping::new(
            store.clone(),
            clock.clone(),
            settings.standard_shipping.clone(),
            pricing_generation.clone(),
        )?);
        let carts = Arc::new(Carts::new(
            store.clone(),
            inventory.clone(),
            clock.clone(),
            settings.carts.clone(),
            PriceSources {
                catalog: catalog.clone(),
                coupons: coupons.clone(),
                shipping: shipping.clone(),
                rules: settings.pricing.clone(),
                pricing_generation,
                users_generation: users_generation.clone(),
            },
        ));
        let mut auth = settings.auth.clone();
        if auth.signing_key.1.is_empty() {
            auth.signing_key.1 = persisted_jwt_secret(&store)?;
        }
        let accounts = Arc::new(Accounts::new(store.clone(), clock.clone(), auth, users_generation)?);
        let search = Arc::new(Search::open(
            search::Sources {
                store: store.clone(),
                catalog: catalog.clone(),
                stock: stock.clone(),
            },
            &settings.index_dir,
            settings.search.clone(),
        )?);

        // An index already in step with storage serves at once (autocomplete is built now);
        // one behind answers 503 `not_ready` until the indexer has caught up.
        if search.applied_seq() >= store.last_changelog_seq() {
            search.rebuild_suggestions()?;
            search.mark_caught_up();
        }
        let (payments, stripe) = open_payments(&store, &settings.payments);
        let idempotency = Arc::new(Idempotency::new(
            store.clone(),
            clock.clone(),
            settings.orders.idempotency_ttl,
        ));
        let orders = Arc::new(Orders::new(
            store.clone(),
            clock.clone(),
            inventory.clone(),
            carts.clone(),
            coupons.clone(),
            payments.clone(),
            idempotency.clone(),
            settings.orders.clone(),
        )?);
        let checkout = Arc::new(Checkout::new(orders.clone(), stock.clone(), stripe));

        let consumers = Arc::new(Consumers::new());
        let read_models = Arc::new(ReadModels::new());
        let mut workers = Workers::new();
        consumers.register(search.clone());
        read_models.register(search.clone());
        let every = |name, interval| Schedule { name, interval };
        workers.add(
            every("search_indexer", settings.search.poll_interval),
            Arc::new(Indexer::new(search.clone())),
            Wake::default(),
        );
        // Stock signals are found at once through the wake-up; the interval only bounds how
        // long a marker whose wake-up was lost waits.
        workers.add(
            every("stock_signals", Duration::from_secs(10)),
            Arc::new(StockSignals::new(inventory.clone())),
            stock_signals,
        );
        workers.add(
            every("cart_sweeper", settings.carts.sweep_interval),
            Arc::new(CartSweeper::new(carts.clone())),
            Wake::default(),
        );
        workers.add(
            every("order_recovery", settings.recovery_interval),
            Arc::new(Recovery::new(orders.clone())),
            Wake::default(),
        );
        workers.add(
            every("invoice_numbering", settings.invoice_interval),
            Arc::new(InvoiceNumbering::new(orders.clone())),
            Wake::default(),
        );
        workers.add(
            every("idempotency_sweeper", Duration::from_secs(600)),
            Arc::new(IdempotencySweeper::new(idempotency.clone())),
            Wake::default(),
        );
        let purge_metrics = settings.purge.as_ref().map(|_| Arc::new(PurgeMetrics::default()));
        if let (Some(purge), Some(metrics)) = (&settings.purge, &purge_metrics) {
            let cursor = Arc::new(PersistedCursor::new(store.clone(), purge::CONSUMER));
            consumers.register(cursor.clone());
            workers.add(
                every("cdn_purger", purge.poll_interval),
                Arc::new(Purger::new(
                    store.clone(),
                    cursor,
                    read_models.clone(),
                    purge.clone(),
                    metrics.clone(),
                    clock.clone(),
                )),
                Wake::default(),
            );
            tracing::info!(url = %purge.url, "CDN purge hook enabled");
        }
        let courier = Wake::default();
        let mailer = Arc::new(Mailer::new(settings.email.clone())?);
        let notifications = Arc::new(Notifications::new(
            store.clone(),
            clock.clone(),
            settings.notify.clone(),
            mailer,
            courier.clone(),
        )?);
        workers.add(
            every("notification_dispatch", settings.notify_interval),
            Arc::new(Dispatcher::new(notifications.clone())),
            Wake::default(),
        );
        workers.add(
            every("notification_courier", settings.notify_interval),
            Arc::new(Courier::new(notifications.clone())),
            courier,
        );
        workers.add(
            every("notification_retention", Duration::from_secs(60)),
            Arc::new(NotificationRetention::new(notifications.clone())),
            Wake::default(),
        );
        if let Some(retention) = settings.retention {
            workers.add(
                every("changelog_retention", retention.interval),
                Arc::new(Retention::new(store.clone(), consumers.clone(), retention)),
                Wake::default(),
            );
        }
        let reviews = Arc::new(Reviews::new(store.clone(), catalog.clone(), settings.reviews));
        let wishlists = Arc::new(Wishlists::new(
            store.clone(),
            clock.clone(),
            catalog.clone(),
            stock.clone(),
        ));
        {
            let cursor = Arc::new(PersistedCursor::new(store.clone(), wishlist::CONSUMER));
            consumers.register(cursor.clone());
            workers.add(
                every("wishlist_alerts", Duration::from_secs(1)),
                Arc::new(WishlistAlerts::new(wishlists.clone(), cursor)),
                Wake::default(),
            );
        }
        let recommendations = Arc::new(Recommendations::new(
            store.clone(),
            clock.clone(),
            catalog.clone(),
            stock.clone(),
            search.clone(),
            settings.recommendations,
        ));
        {
            let reco = recommendations.clone();
            orders.on_placed(Box::new(move |order| {
                if let Some(o) = crate::service::reco::PastOrder::of(order) {
                    reco.record_order(o);
                }
            }));
        }
        workers.add(
            every("recommendations", settings.recommendations.interval),
            Arc::new(RecoUpdater(recommendations.clone())),
            Wake::default(),
        );
        Ok(Services {
            audit: Arc::new(crate::service::audit::Audit::new(store.clone(), clock.clone())),
            backups: Arc::new(crate::service::backup::Backups::new(
                store.clone(),
                settings.backup_dir.clone(),
                clock.clone(),
            )),
            purge_metrics,
            recommendations,
            reviews,
            wishlists,
            outbox: Arc::new(Outbox::new(store.clone())),
            health: Arc::new(Health::new(
                store.clone(),
                catalog.clone(),
                carts.clone(),
                search.clone(),
            )),
            clock,
            store,
            stock,
            catalog,
            inventory,
            carts,
            accounts,
            search,
            orders,
            checkout,
            coupons,
            promotions,
            shipping,
            notifications,
            payments,
            idempotency,
            consumers,
            workers,
        })
    }
}

/// The offered payment providers, each behind its breaker, and Stripe for its webhooks.
fn open_payments(store: &Store, settings: &PaymentSettings) -> (Arc<Payments>, Option<Arc<Stripe>>) {
    let mut payments = Payments::new();
    if let Some(test) = settings.test {
        tracing::warn!("[payments] test_enabled: the test provider accepts test cards; turn it off in a shop that takes real money");
        payments.add(
            "test",
            Arc::new(TestGateway::new(store.clone(), test)),
            settings.breaker,
        );
    }
    if settings.manual {
        payments.add("manual", Arc::new(Manual), settings.breaker);
    }
    let stripe = settings.stripe.clone().map(|s| Arc::new(Stripe::new(s)));
    if let Some(stripe) = &stripe {
        payments.add("stripe", stripe.clone(), settings.breaker);
    }
    (Arc::new(payments), stripe)
}

/// Refuses to serve a store whose prices are in another currency than `[catalog] currency`:
/// amounts are minor units of their currency, and nothing converts them.
fn guard_currency(store: &Store, configured: &str) -> anyhow::Result<()> {
    let mut stored = None;
    store.for_each::<storefront_storage::records::ProductRecord>(&[], |_, p| {
        stored = Some(p.currency.to_string());
        false
    })?;
    match stored {
        Some(stored) if stored != configured => anyhow::bail!(
            "this store's prices are in {stored}, but [catalog] currency is {configured}. Prices are \
             amounts in minor units of their currency and are never converted. Set [catalog] currency \
             back to {stored}, or move to {configured} by importing the catalog with its new prices \
             into a new data directory (storefront import --data-dir NEW ...)"
        ),
        _ => Ok(()),
    }
}

/// A built, bound, not yet running server.
pub struct App {
    listener: tokio::net::TcpListener,
    router: http::Edge,
    services: Arc<Services>,
    shutdown_grace: Duration,
    server: crate::config::ServerConfig,
    tls: Option<Arc<http::tls::Tls>>,
}

impl App {
    /// Opens the services on the system clock and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with(config, Arc::new(SystemClock)).await
    }

    /// Opens the services on `clock` and binds the listener.
    pub async fn build_with(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        let settings = Settings::try_from(&config)?;
        let services = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || Services::open(&settings, clock)).await??
        };
        App::serve(services, &settings).await
    }

    /// Binds the listener for already opened services.
    pub async fn serve(mut services: Services, settings: &Settings) -> anyhow::Result<App> {
        let state = AppState::new(&services, &settings.http);
        services.workers.add(
            Schedule {
                name: "rate_limit_pruner",
                interval: Duration::from_secs(60),
            },
            Arc::new(http::rate_limit::Pruner::new(state.limits.clone())),
            Wake::default(),
        );
        let router = http::router(state, &settings.http);
        let server = &settings.http.server;
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(http::tls::Tls::load(cert, key)?)),
            _ => None,
        };
        let listener = http::server::bind(&settings.http.listen, server)
            .await
            .with_context(|| format!("cannot listen on {}", settings.http.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %addr, data_dir = %settings.data_dir.display(), "storefront listening on {scheme}://{addr}");
        Ok(App {
            listener,
            router,
            services: Arc::new(services),
            shutdown_grace: settings.http.shutdown_grace,
            server: server.clone(),
            tls,
        })
    }

    /// Returns the bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Returns the services (tests run worker steps and read the clock through them).
    pub fn services(&self) -> Arc<Services> {
        self.services.clone()
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops accepting, drains in-flight requests
    /// (up to the grace period), stops the workers and flushes the WAL.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let App {
            listener,
            router,
            services,
            shutdown_grace,
            server,
            tls,
        } = self;
        let cancel = CancellationToken::new();
        let tasks: Vec<JoinHandle<()>> = services.workers.spawn(&cancel);
        let reloader = tls.clone().map(http::tls::reload_on_sighup).transpose()?;
        http::server::serve(listener, router, &server, tls, shutdown, shutdown_grace).await;
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        cancel.cancel();
        for task in tasks {
            let _ = task.await;
        }
        services.notifications.stop().await;
        let store = services.store.clone();
        {
            let reco = services.recommendations.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || reco.flush()).await? {
                tracing::warn!(error = %e, "the recommendation counts could not be written at shutdown");
            }
        }
        drop(services);
        tokio::task::spawn_blocking(move || store.flush()).await??;
        tracing::info!("storefront stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
