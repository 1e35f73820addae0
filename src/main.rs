//! The `storefront` command: `serve` and `import`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use storefront::config::Config;
use storefront::service::import::{import_file, ImportFormat, ImportOptions};

use storefront::service::eval::{evaluate, one_typo, Judgments};
use storefront::service::search::Search;
use storefront::{open_catalog, telemetry, App};

// PERF: mimalloc; chosen by the loadtest allocator comparison (see README "Benchmarks").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "storefront", version, about = "A single-box e-commerce backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (overrides [storage] data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Listen address (overrides [server] listen); port 0 picks a free port.
        #[arg(long)]
        listen: Option<String>,
        /// Load the built-in demo catalog when the data directory is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Rebuilds the search index from storage (server stopped).
    Reindex {
        #[command(flatten)]
        common: Common,
    },
    /// Measures search relevance on the Chorus judgments (NDCG@10, judged@10, zero results),
    /// for clean queries and one-typo variants. Imports the catalog first when the data
    /// directory has no products.
    EvalSearch {
        #[command(flatten)]
        common: Common,
        /// Folder with products.jsonl.gz, queries.tsv, judgments.tsv and dev_queries.txt.
        #[arg(long, default_value = "../shared/data/chorus-icecat")]
        chorus: PathBuf,
    },
    /// Imports a catalog file while the server is stopped (the data directory is locked while
    /// a server runs; stop it first).
    Import {
        #[command(flatten)]
        common: Common,
        /// Input format.
        #[arg(long, value_enum)]
        format: ImportFormat,
        /// On-hand stock for newly created SKUs that carry no stock figure.
        #[arg(long, default_value_t = 100)]
        initial_stock: i64,
        /// Input file (`.gz` is decompressed).
        file: PathBuf,
    },
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref()).context("invalid configuration")?;
    if let Some(dir) = &common.data_dir {
        config.storage.data_dir = dir.clone();
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, listen, demo } => {
            let mut config = load_config(&common)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            telemetry::init(&config.log);
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if config.server.worker_threads > 0 {
                runtime.worker_threads(config.server.worker_threads);
            }
            runtime.enable_all().build()?.block_on(async move {
                let app = App::build(config, demo).await?;
                app.run_until_stopped().await
            })
        }
        Command::Reindex { common } => {
            let config = load_config(&common)?;
            telemetry::init(&config.log);
            let catalog = Arc::new(open_catalog(&config)?);
            let search = Search::open(catalog.clone(), &config.storage.data_dir, config.search.clone())?;
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} products {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let started = std::time::Instant::now();
            let count = search.rebuild(|n| bar.set_position(n))?;
            bar.finish_and_clear();
            println!(
                "indexed {count} products in {:.2}s ({} searchable)",
                started.elapsed().as_secs_f64(),
                search.index().num_docs()
            );
            Ok(())
        }
        Command::EvalSearch { common, chorus } => {
            let mut config = load_config(&common)?;
            let scratch = tempfile::tempdir()?;
            if common.data_dir.is_none() {
                config.storage.data_dir = scratch.path().to_path_buf();
                config.storage.sync_writes = false;
            }
            telemetry::init(&config.log);
            let catalog = Arc::new(open_catalog(&config)?);
            if catalog.is_empty() {
                let options = ImportOptions {
                    format: ImportFormat::Chorus,
                    initial_stock: 100,
                };
                let report = import_file(&catalog, &chorus.join("products.jsonl.gz"), &options, |_| {})?;
                println!(
                    "imported {} products in {:.2}s",
                    report.created,
                    report.elapsed.as_secs_f64()
                );
            }
            let index = Arc::new(storefront_index::ProductIndex::open(
                None,
                config.search.writer_memory_bytes,
            )?);
            let search = Search::with_index(catalog.clone(), index, config.search.clone());
            let started = std::time::Instant::now();
            let count = search.rebuild(|_| {})?;
            println!("indexed {count} products in {:.2}s", started.elapsed().as_secs_f64());
            let judgments = Judgments::load(&chorus)?;
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
        Command::Import {
            common,
            format,
            initial_stock,
            file,
        } => {
            let config = load_config(&common)?;
            telemetry::init(&config.log);
            let catalog = open_catalog(&config)?;
            let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let compressed = file.extension().is_some_and(|e| e == "gz");
            let bar = if compressed {
                ProgressBar::new_spinner()
            } else {
                ProgressBar::new(total)
            };
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let report = import_file(&catalog, &file, &ImportOptions { format, initial_stock }, |bytes| {
                bar.set_position(bytes)
            })?;
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
            catalog.store().flush()?;
            Ok(())
        }
    }
}
