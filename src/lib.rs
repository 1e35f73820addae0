//! storefront: an e-commerce backend that runs a whole shop on one box.
//!
//! Layout (dependencies point inward: `http → service → domain`, `service → storage, index`):
//! - [`config`]: `config.toml` plus `STOREFRONT__SECTION__KEY` overrides.
//! - [`domain`]: ids, money, slugs and catalog validation; no I/O.
//! - [`service`]: use cases (catalog reads and writes, import, CDN purge) over
//!   `storefront-storage`.
//! - [`http`]: axum router, middleware, error mapping; handlers are thin.
//! - [`App`]: wires it all together: `build` binds the listener, `run_until_stopped` serves
//!   until SIGTERM/SIGINT, then drains requests, stops background tasks and flushes storage.

pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod service;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderValue;
use storefront_storage::{Store, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::pricing::PricingRules;
use crate::domain::Currency;
use crate::http::metrics::Metrics;
use crate::http::AppState;
use crate::service::auth::{Accounts, AuthSettings};
use crate::service::cart::{CartSettings, Carts};
use crate::service::catalog::CatalogSettings;
use crate::service::search::Search;
use crate::service::Catalog;

/// A built, bound, not yet running server.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    catalog: Arc<Catalog>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    shutdown_grace: Duration,
}

/// Opens the store and the catalog service described by `config` (blocking).
pub fn open_catalog(config: &Config) -> anyhow::Result<Catalog> {
    let store = Store::open(
        &config.storage.data_dir,
        &StoreOptions {
            block_cache_bytes: config.storage.block_cache_bytes,
            sync_writes: config.storage.sync_writes,
            write_buffer_bytes: config.storage.write_buffer_bytes,
            ..StoreOptions::default()
        },
    )?;
    let currency = Currency::parse(&config.catalog.currency).with_context(|| {
        format!(
            "[catalog] currency {:?} is not an ISO 4217 code",
            config.catalog.currency
        )
    })?;
    Ok(Catalog::new(
        store,
        CatalogSettings {
            currency,
            listing_max_scan: config.catalog.listing_max_scan.max(1),
            product_entries: config.cache.product_entries,
            listing_entries: config.cache.listing_entries,
        },
    )?)
}

/// Builds the account service from `[auth]`; without a configured JWT secret a random one is
/// generated once and persisted in the store.
pub fn open_accounts(store: Store, auth: &crate::config::AuthConfig) -> anyhow::Result<Accounts> {
    let secret = if auth.jwt_secret.is_empty() {
        service::auth::persisted_jwt_secret(&store)?
    } else {
        anyhow::ensure!(
            auth.jwt_secret.len() >= 32,
            "[auth] jwt_secret must be at least 32 bytes"
        );
        auth.jwt_secret.as_bytes().to_vec()
    };
    let mut verify_keys = Vec::new();
    if !auth.jwt_previous_secret.is_empty() {
        verify_keys.push((
            auth.jwt_previous_key_id.clone(),
            auth.jwt_previous_secret.as_bytes().to_vec(),
        ));
    }
    Ok(Accounts::new(
        store,
        AuthSettings {
            issuer: auth.issuer.clone(),
            access_ttl: Duration::from_secs(auth.access_token_ttl_secs.max(1)),
            refresh_ttl: Duration::from_secs(auth.refresh_token_ttl_secs.max(1)),
            signing_key: (auth.jwt_key_id.clone(), secret),
            verify_keys,
            password_min_len: auth.password_min_length,
            argon2_memory_kib: auth.argon2_memory_kib,
            argon2_iterations: auth.argon2_iterations,
            argon2_parallelism: auth.argon2_parallelism,
            hash_concurrency: auth.hash_concurrency,
        },
    )?)
}

/// Cart rules from `[cart]` and `[inventory]`.
pub fn cart_settings(config: &Config, currency: Currency) -> CartSettings {
    CartSettings {
        guest_ttl: Duration::from_secs(config.cart.guest_ttl_secs.max(1)),
        user_ttl: Duration::from_secs(config.cart.user_ttl_secs.max(1)),
        hold_ttl: Duration::from_secs(config.inventory.hold_ttl_secs.max(1)),
        reserve_on: config.inventory.reserve_on,
        max_line_quantity: config.cart.max_line_quantity.max(1),
        max_lines: config.cart.max_lines.max(1),
        max_total_quantity: config.cart.max_total_quantity.max(1),
        merge: config.cart.merge,
        sweep_batch: config.cart.sweep_batch.max(1),
        cache_entries: config.cart.cache_entries,
        currency,
    }
}

/// Shipping and tax rules from `[pricing]`.
pub fn pricing_rules(p: &crate::config::PricingConfig) -> PricingRules {
    PricingRules {
        shipping_flat_cents: p.shipping_flat_cents,
        free_shipping_over_cents: p.free_shipping_over_cents,
        shipping_taxable: p.shipping_taxable,
        default_tax_bps: p.default_tax_bps,
        tax_bps: p.tax_bps.iter().map(|(k, v)| (k.to_ascii_uppercase(), *v)).collect(),
    }
}

impl App {
    /// Opens storage, loads the demo catalog when asked and the store is empty, starts
    /// background tasks and binds the listener.
    pub async fn build(config: Config, demo: bool) -> anyhow::Result<App> {
        let catalog = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Catalog> {
                let catalog = open_catalog(&config)?;
                if demo && catalog.is_empty() {
                    let report = demo::load(&catalog)?;
                    tracing::info!(created = report.created, "loaded the demo catalog");
                }
                Ok(catalog)
            })
            .await??
        };
        let catalog = Arc::new(catalog);

        let admin_api_key =
            (!config.auth.admin_api_key.is_empty()).then(|| Arc::<str>::from(config.auth.admin_api_key.as_str()));
        if admin_api_key.is_none() {
            tracing::warn!("[auth] admin_api_key is not set: admin automation with an API key is disabled (admin users still work)");
        }
        let accounts = {
            let (store, auth) = (catalog.store().clone(), config.auth.clone());
            Arc::new(tokio::task::spawn_blocking(move || open_accounts(store, &auth)).await??)
        };
        let search = {
            let (catalog, data_dir, settings) =
                (catalog.clone(), config.storage.data_dir.clone(), config.search.clone());
            Arc::new(tokio::task::spawn_blocking(move || Search::open(catalog, &data_dir, settings)).await??)
        };
        let currency = catalog.currency();
        let (carts, stock_signals) = Carts::new(
            catalog.clone(),
            cart_settings(&config, currency),
            pricing_rules(&config.pricing),
        );
        let carts = Arc::new(carts);
        let state = AppState {
            carts: carts.clone(),
            search: search.clone(),
            accounts,
            limits: Arc::new(http::rate_limit::RateLimits::new(&config.rate_limit)),
            catalog: catalog.clone(),
            metrics: Arc::new(Metrics::new()),
            admin_api_key,
            cache_control: HeaderValue::from_str(&config.http_cache.header_value())
                .context("invalid [http_cache] settings")?,
        };
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let (cancel, limits) = (cancel.clone(), state.limits.clone());
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = http::rate_limit::prune_forever(limits) => {}
                }
            }));
        }
        let router = http::router(state, &config);
        tasks.push(tokio::spawn(service::search::run_indexer(
            search.clone(),
            cancel.clone(),
        )));
        tasks.push(tokio::spawn(service::cart::run_stock_signals(
            catalog.clone(),
            stock_signals,
            cancel.clone(),
        )));
        tasks.push(tokio::spawn(service::cart::run_sweeper(
            carts,
            Duration::from_millis(config.cart.sweep_interval_ms.max(10)),
            cancel.clone(),
        )));
        let purger = !config.cdn.purge_url.is_empty();
        if config.storage.changelog_retention_interval_ms > 0 {
            tasks.push(tokio::spawn(service::retention::run(
                catalog.store().clone(),
                search.clone(),
                purger,
                config.storage.clone(),
                cancel.clone(),
            )));
        }
        if purger {
            tasks.push(tokio::spawn(service::purge::run(
                catalog.store().clone(),
                config.cdn.clone(),
                cancel.clone(),
            )));
            tracing::info!(url = %config.cdn.purge_url, "CDN purge hook enabled");
        }

        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(addr = %addr, data_dir = %config.storage.data_dir.display(), "storefront listening on http://{addr}");
        Ok(App {
            listener,
            router,
            catalog,
            cancel,
            tasks,
            shutdown_grace: Duration::from_millis(config.server.shutdown_grace_ms),
        })
    }

    /// Returns the bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops accepting, drains in-flight requests
    /// (up to the grace period), stops background tasks and flushes the WAL.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let App {
            listener,
            router,
            catalog,
            cancel,
            tasks,
            shutdown_grace,
        } = self;
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutdown requested: draining in-flight requests");
                let _ = signalled_tx.send(());
            });
        let grace = async move {
            if signalled_rx.await.is_ok() {
                tokio::time::sleep(shutdown_grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result.context("server failed")?,
            _ = grace => tracing::warn!("grace period elapsed; closing remaining connections"),
        }
        cancel.cancel();
        for task in tasks {
            let _ = task.await;
        }
        let store = catalog.store().clone();
        drop(catalog);
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
