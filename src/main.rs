//! The `storefront` binary: parses the command line and runs the subcommand (see
//! [`storefront::cli`]).

use clap::Parser;

// PERF: mimalloc; chosen by the loadtest allocator comparison (see README "Benchmarks").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    storefront::cli::Cli::parse().run()
}
