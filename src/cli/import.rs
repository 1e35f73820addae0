//! `storefront import`: imports a catalog file into a stopped store, with a progress bar, and
//! reports the rows it skipped.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::service::history::import_online_retail;
use crate::service::import::{import_file, ImportFormat, ImportOptions};

pub(super) fn run(config: Config, format: ImportFormat, initial_stock: i64, file: &Path) -> anyhow::Result<()> {
    let (_, services) = super::open_offline(&config)?;
    if format == ImportFormat::OnlineRetail {
        let r = import_online_retail(
            &services.catalog,
            &services.accounts,
            &services.orders,
            file,
            initial_stock,
        )?;
        println!(
            "imported {} in {:.2}s: {} lines ({} not product purchases); products {} created, {} updated, {} unchanged, {} skipped; {} customers; {} orders written, {} already present",
            file.display(),
            r.elapsed.as_secs_f64(),
            r.lines,
            r.lines_skipped,
            r.products.created,
            r.products.updated,
            r.products.unchanged,
            r.products.skipped.len(),
            r.customers,
            r.orders,
            r.orders_present
        );
        services.store.flush()?;
        return Ok(());
    }
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let options = ImportOptions { format, initial_stock };
    let report = import_file(&services.catalog, file, &options, |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    for (line, reason) in &report.skipped {
        eprintln!("line {line}: skipped: {reason}");
    }
    println!(
        "imported {} in {:.2}s: {} created, {} updated, {} unchanged, {} skipped",
        file.display(),
        report.elapsed.as_secs_f64(),
        report.created,
        report.updated,
        report.unchanged,
        report.skipped.len()
    );
    services.store.flush()?;
    if report.created + report.updated + report.unchanged == 0 && !report.skipped.is_empty() {
        anyhow::bail!(
            "every row of {} was skipped ({}): nothing imported; check --format",
            file.display(),
            report.skipped.len()
        );
    }
    Ok(())
}
