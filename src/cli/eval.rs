//! `storefront eval-search`: imports the Chorus catalog into a scratch store when the data
//! directory is empty, builds an in-memory index and prints NDCG@10, judged@10 and the
//! zero-result rate for clean queries and one-typo variants.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::service::eval::{evaluate, one_typo, Judgments};
use crate::service::import::{import_file, ImportFormat, ImportOptions};
use crate::service::search::{Search, Sources};

pub(super) fn run(mut config: Config, scratch_store: bool, chorus: &Path) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    if scratch_store {
        config.storage.data_dir = scratch.path().to_path_buf();
        config.storage.sync_writes = false;
    }
    let (settings, services) = super::open_offline(&config)?;
    if services.catalog.is_empty() {
        let options = ImportOptions {
            format: ImportFormat::Chorus,
            initial_stock: 100,
        };
        let report = import_file(&services.catalog, &chorus.join("products.jsonl.gz"), &options, |_| {})?;
        println!(
            "imported {} products in {:.2}s",
            report.created,
            report.elapsed.as_secs_f64()
        );
    }
    let index = Arc::new(storefront_index::ProductIndex::open(
        None,
        settings.search.writer_memory_bytes,
    )?);
    let sources = Sources {
        store: services.store.clone(),
        catalog: services.catalog.clone(),
        stock: services.stock.clone(),
    };
    let search = Search::with_index(sources, index, settings.search.clone());
    let started = Instant::now();
    let count = search.rebuild(|_| {})?;
    println!("indexed {count} products in {:.2}s", started.elapsed().as_secs_f64());
    let judgments = Judgments::load(chorus)?;
    let clean = evaluate(&search, &judgments, |q| q.to_owned())?;
    let typo = evaluate(&search, &judgments, one_typo)?;
    println!(
        "queries: {} ({} with a relevant judgment)",
        judgments.queries.len(),
        clean.scored
    );
    println!(
        "{:<10} {:>9} {:>11} {:>13} {:>20}",
        "variant", "NDCG@10", "judged@10", "zero-result", "judged-only NDCG@10"
    );
    for (name, r) in [("clean", &clean), ("one-typo", &typo)] {
        println!(
            "{:<10} {:>9.4} {:>10.1}% {:>12.1}% {:>20.4}",
            name,
            r.ndcg10,
            r.judged_at_10 * 100.0,
            r.zero_result_rate * 100.0,
            r.condensed_ndcg10
        );
    }
    println!(
        "one-typo keeps {:.1}% of clean NDCG@10",
        100.0 * typo.ndcg10 / clean.ndcg10.max(1e-9)
    );
    Ok(())
}
