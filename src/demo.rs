//! The built-in demo catalog, loaded by `serve --demo` into an empty data directory so a
//! newcomer sees products at once. The data is small and written for this project.

use std::sync::Arc;

use crate::app::{App, Services, Settings};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::service::import::{import_reader, ImportFormat, ImportOptions, ImportReport};
use crate::service::Catalog;

/// The demo catalog in the JSON Lines import format.
pub const CATALOG: &str = include_str!("../demo/catalog.jsonl");

/// Loads the demo catalog (idempotent: products are keyed by their external ids).
pub fn load(catalog: &Catalog) -> anyhow::Result<ImportReport> {
    let report = import_reader(
        catalog,
        CATALOG.as_bytes(),
        &ImportOptions {
            format: ImportFormat::Jsonl,
            initial_stock: 25,
        },
        |_| {},
    )?;
    if let Some((line, reason)) = report.skipped.first() {
        anyhow::bail!("demo catalog line {line} is invalid: {reason}");
    }
    Ok(report)
}

/// Opens the services, loads the demo catalog when the store is empty, and binds the server.
pub async fn app(config: Config) -> anyhow::Result<App> {
    let settings = Settings::try_from(&config)?;
    let services = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Services> {
            let services = Services::open(&settings, Arc::new(SystemClock))?;
            if services.catalog.is_empty() {
                let report = load(&services.catalog)?;
                tracing::info!(created = report.created, "loaded the demo catalog");
            }
            Ok(services)
        })
        .await??
    };
    App::serve(services, &settings).await
}
