//! The built-in demo catalog, loaded by `serve --demo` into an empty data directory so a
//! newcomer sees products at once. The data is small and written for this project.

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
