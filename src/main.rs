//! The `storefront` command: `serve` and `import`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use storefront::config::Config;
use storefront::service::import::{import_file, ImportFormat, ImportOptions};
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
