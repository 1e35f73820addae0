//! `storefront reindex`: rebuilds the search index from storage, with a progress spinner.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

pub(super) fn run(config: Config) -> anyhow::Result<()> {
    let (_, services) = super::open_offline(&config)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} products {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let count = services.search.rebuild(|n| bar.set_position(n))?;
    bar.finish_and_clear();
    println!(
        "indexed {count} products in {:.2}s ({} searchable)",
        started.elapsed().as_secs_f64(),
        services.search.index().num_docs()
    );
    Ok(())
}
