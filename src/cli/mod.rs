//! The `storefront` command: its arguments and one module per subcommand. Offline commands
//! (import, reindex, eval-search) open the services without serving; the data directory is
//! locked while a server runs, so stop it first.

mod admin;
mod backup;
mod eval;
mod eval_recs;
mod import;
mod reindex;
mod serve;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{Services, Settings};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::service::import::ImportFormat;

/// The version and the commit the binary was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("STOREFRONT_COMMIT"), ")");

/// The command line.
#[derive(Parser)]
#[command(name = "storefront", version = VERSION, about = "A single-box e-commerce backend")]
pub struct Cli {
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
        /// Create a new store when the data directory does not exist yet (an existing empty
        /// folder needs no flag); without it a mistyped --data-dir is an error, not a new shop.
        #[arg(long)]
        init: bool,
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
    /// Measures the recommendations on the store's order history (for example the
    /// `online-retail` import): holds out each listed customer's last order, trains on the
    /// rest, and prints hit-rate@10 and recall@10 beside popularity and co-occurrence
    /// baselines. With `--export`, trains on everything and writes the lists instead.
    EvalRecs {
        #[command(flatten)]
        common: Common,
        /// Customer numbers, one per line.
        #[arg(long)]
        customers: PathBuf,
        /// Write `personal.tsv` (and `fbt.tsv` for `--anchors`) to this folder instead.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Stock codes to list frequently-bought-together for, one per line (with `--export`).
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
    /// Account administration on the box (server stopped).
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Prints a shell completion script, e.g. `storefront completions bash >
    /// /etc/bash_completion.d/storefront`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints the OpenAPI document (the one `/openapi.json` serves) to stdout.
    Openapi,
    /// Takes a backup: through the running server (`POST /api/v1/admin/backups`, with the
    /// configured admin key) or, with no server, of the data directory directly. Prints the
    /// backup's folder.
    Backup {
        #[command(flatten)]
        common: Common,
        /// Copy the finished backup here (an empty or new folder, e.g. another disk) and
        /// verify the copy.
        #[arg(long)]
        to: Option<PathBuf>,
        /// The backup's name (default: the time).
        #[arg(long)]
        name: Option<String>,
        /// The server (default: http://[server] listen).
        #[arg(long, alias = "url")]
        server: Option<String>,
    },
    /// Restores a backup into an empty or new data directory (server stopped). The search
    /// index is rebuilt at the first start.
    Restore {
        /// The backup folder.
        #[arg(long)]
        from: PathBuf,
        /// The data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Checks a backup: every file against its checksum, then opens a scratch copy.
    VerifyBackup {
        /// The backup folder.
        dir: PathBuf,
    },
    /// Imports a catalog file while the server is stopped.
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

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates an admin account (the shop's first administrator), or gives an existing
    /// account admin rights. Prints a generated password unless `--password-stdin`.
    Create {
        #[command(flatten)]
        common: Common,
        /// The account's email.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve {
                common,
                listen,
                demo,
                init,
            } => serve::run(load_config(&common)?, listen, demo, demo || init),
            Command::Reindex { common } => reindex::run(load_config(&common)?),
            Command::Backup {
                common,
                to,
                name,
                server,
            } => backup::backup(load_config(&common)?, to.as_deref(), name, server),
            Command::Restore { from, data_dir } => backup::restore(&from, &data_dir),
            Command::VerifyBackup { dir } => backup::verify(&dir),
            Command::Admin {
                action:
                    AdminCommand::Create {
                        common,
                        email,
                        name,
                        password_stdin,
                    },
            } => admin::create(load_config(&common)?, email, name, password_stdin),
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "storefront", &mut std::io::stdout());
                Ok(())
            }
            Command::Openapi => {
                let mut doc = crate::http::routes().into_openapi();
                crate::http::openapi::finish(&mut doc);
                println!("{}", doc.to_pretty_json()?);
                Ok(())
            }
            Command::EvalRecs {
                common,
                customers,
                export,
                anchors,
            } => eval_recs::run(load_config(&common)?, &customers, export.as_deref(), anchors.as_deref()),
            Command::EvalSearch { common, chorus } => {
                eval::run(load_config(&common)?, common.data_dir.is_none(), &chorus)
            }
            Command::Import {
                common,
                format,
                initial_stock,
                file,
            } => import::run(load_config(&common)?, format, initial_stock, &file),
        }
    }
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref()).context("invalid configuration")?;
    if let Some(dir) = &common.data_dir {
        config.storage.data_dir = dir.clone();
    }
    Ok(config)
}

/// Opens the services for an offline command, on the system clock.
fn open_offline(config: &Config) -> anyhow::Result<(Settings, Services)> {
    crate::telemetry::init(&config.log)?;
    let settings = Settings::try_from(config)?;
    let services = Services::open(&settings, Arc::new(SystemClock))?;
    Ok((settings, services))
}
