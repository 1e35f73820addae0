//! The `storefront` binary: parses the command line and runs the subcommand (see
//! [`storefront::cli`]).

use clap::Parser;

// PERF: mimalloc; chosen by the loadtest allocator comparison (see README "Benchmarks").
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // With the `failpoints` feature (tests only), `FAILPOINTS=name=action;...` arms the fail
    // points of the checkout saga for the whole run.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    storefront::cli::Cli::parse().run()
}
