//! The built-in demo catalog, loaded by `serve --demo` into an empty data directory so a
//! newcomer sees products at once. The data is small and written for this project.
//!
//! The load is resumable: a marker is written before it starts and another when it is done,
//! so a start killed half-way (kill -9) finishes the catalog at the next `--demo` start
//! instead of leaving a half-filled shop that looks seeded.

use std::sync::Arc;

use crate::app::{App, Services, Settings};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::service::import::{import_reader, ImportFormat, ImportOptions, ImportReport};
use crate::service::Catalog;

/// The demo catalog in the JSON Lines import format.
pub const CATALOG: &str = include_str!("../demo/catalog.jsonl");

/// Marks in `[storage]`'s meta column family: the seed began, and it finished.
const SEED_STARTED: &[u8] = b"demo/seed_started";
const SEED_DONE: &[u8] = b"demo/seed_done";

/// Loads the demo catalog (idempotent: products are keyed by their external ids).
pub fn load(catalog: &Catalog) -> anyhow::Result<ImportReport> {
    let options = ImportOptions {
        format: ImportFormat::Jsonl,
        initial_stock: 25,
    };
    // In two halves, so the crash test can stop it in the middle.
    let lines: Vec<&str> = CATALOG.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let mut report = import_reader(catalog, first.join("\n").as_bytes(), &options, |_| {})?;
    fail::fail_point!("demo-seed-half", |_| std::process::abort());
    let rest = import_reader(catalog, second.join("\n").as_bytes(), &options, |_| {})?;
    report.created += rest.created;
    report.updated += rest.updated;
    report.unchanged += rest.unchanged;
    report
        .skipped
        .extend(rest.skipped.into_iter().map(|(line, why)| (line + first.len(), why)));
    if let Some((line, reason)) = report.skipped.first() {
        anyhow::bail!("demo catalog line {line} is invalid: {reason}");
    }
    Ok(report)
}

/// Seeds an empty store, or finishes a seed a crash interrupted; leaves any other store alone.
fn seed(services: &Services) -> anyhow::Result<()> {
    let store = &services.store;
    let meta = storefront_storage::cf::CF_META;
    if store.get_raw(meta, SEED_DONE)?.is_some() {
        return Ok(());
    }
    let resuming = store.get_raw(meta, SEED_STARTED)?.is_some();
    if !resuming && !services.catalog.is_empty() {
        // A shop of its own: --demo never adds to it.
        return Ok(());
    }
    let mark = |key: &[u8]| -> anyhow::Result<()> {
        let mut batch = store.batch();
        batch.put_raw(meta, key, b"1");
        Ok(batch.commit()?)
    };
    mark(SEED_STARTED)?;
    let report = load(&services.catalog)?;
    mark(SEED_DONE)?;
    tracing::info!(created = report.created, resumed = resuming, "loaded the demo catalog");
    Ok(())
}

/// Opens the services, loads the demo catalog when the store is empty, and binds the server.
pub async fn app(config: Config) -> anyhow::Result<App> {
    let settings = Settings::try_from(&config)?;
    let services = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Services> {
            let services = Services::open(&settings, Arc::new(SystemClock))?;
            seed(&services)?;
            Ok(services)
        })
        .await??
    };
    App::serve(services, &settings).await
}
