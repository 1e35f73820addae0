//! `storefront-loadtest`: run scenarios, compare results, or serve the hello ceiling.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use storefront_loadtest::client::Target;
use storefront_loadtest::scenario::Scenario;
use storefront_loadtest::{catalog, compare, hello, plot, report, run, Mode, RunSettings};

#[derive(Parser)]
#[command(
    name = "storefront-loadtest",
    version,
    about = "Open-loop HTTP load generator with HDR histograms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario against a server.
    Run(RunArgs),
    /// Compares two result files (ratios B/A).
    Compare {
        /// Baseline results.
        a: PathBuf,
        /// Results to compare.
        b: PathBuf,
    },
    /// Serves a fixed JSON body: the ceiling reference.
    Hello {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Worker threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Body size in bytes (match the responses being compared).
        #[arg(long, default_value_t = 1500)]
        body_bytes: usize,
    },
    /// Counts webhook deliveries (answers POST with 204; GET shows the count).
    Sink {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: String,
        /// Stop after this long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    target: String,
    /// Scenario file (see loadtest/scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Open-loop request rate per second. Without it the run is closed-loop (max throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Generator threads (like wrk's -t), each a single-threaded event loop driving its
    /// share of the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Measured duration, e.g. 30s or 10m.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (not recorded).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Stop after this many measured requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Products sampled from the catalog for {product}.
    #[arg(long, default_value_t = 2000)]
    sample_products: usize,
    /// Sample this process's RSS every second (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Directory for the JSON and SVG results.
    #[arg(long, default_value = "loadtest/results")]
    out: PathBuf,
    /// Label stored in the results and file names.
    #[arg(long, default_value = "run")]
    label: String,
    /// Seed for step and URL selection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Allow a non-loopback target.
    #[arg(long)]
    allow_remote: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            // The generator threads bring their own runtimes; this one only discovers the
            // catalog and samples RSS.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run_command(args))
        }
        Command::Compare { a, b } => {
            let read = |p: &PathBuf| -> anyhow::Result<report::Report> {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
            };
            print!("{}", compare::compare(&read(&a)?, &read(&b)?));
            Ok(())
        }
        Command::Hello {
            listen,
            threads,
            body_bytes,
        } => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 0 {
                builder.worker_threads(threads);
            }
            builder.enable_all().build()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                eprintln!("hello ceiling listening on http://{}", listener.local_addr()?);
                hello::serve(listener, hello::body(body_bytes)).await
            })
        }
        Command::Sink { listen, duration } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                eprintln!("webhook sink listening on http://{}", listener.local_addr()?);
                match tokio::time::timeout(duration, hello::serve_sink(listener)).await {
                    Ok(r) => r,
                    Err(_) => Ok(()),
                }
            }),
    }
}

async fn run_command(args: RunArgs) -> anyhow::Result<()> {
    let scenario = Scenario::load(&args.scenario)?;
    let target = Target::resolve(&args.target, args.allow_remote).await?;
    let sample = catalog::discover(&target, &scenario, args.sample_products).await?;
    let settings = RunSettings {
        mode: match args.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        },
        connections: args.connections,
        threads: args.threads,
        duration: args.duration,
        warmup: args.warmup,
        max_requests: args.max_requests,
        seed: args.seed,
    };
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rss = args
        .server_pid
        .map(|pid| tokio::spawn(report::sample_rss(pid, stop_rx)));
    let outcome = run(&target, &scenario, &sample, &settings).await?;
    let _ = stop_tx.send(true);
    let rss = match rss {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    let report = report::build(
        &args.label,
        &args.target,
        &scenario,
        &settings,
        &outcome,
        sample.products.len(),
        rss,
        started,
    );
    print!("{}", report::summary(&report));
    std::fs::create_dir_all(&args.out)?;
    let stem = args.out.join(format!("{started}-{}-{}", scenario.name, args.label));
    let json_path = stem.with_extension("json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let svg_path = stem.with_extension("svg");
    plot::write_svg(&report, &svg_path)?;
    println!("results: {} and {}", json_path.display(), svg_path.display());
    Ok(())
}
