//! `storefront serve`: serves until SIGTERM or SIGINT, over the demo catalog when asked.

use crate::app::App;
use crate::config::Config;

/// `create`: a missing data directory may become a new store (`--init`, or `--demo`).
pub(super) fn run(mut config: Config, listen: Option<String>, demo: bool, create: bool) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    crate::telemetry::init(&config.log)?;
    let dir = &config.storage.data_dir;
    if !create && storefront_storage::inspect(dir) == storefront_storage::DirState::Missing {
        anyhow::bail!(
            "the data directory {} does not exist: pass --init to create a new store there (or --demo for the demo catalog), or point --data-dir at your store",
            dir.display()
        );
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    runtime.enable_all().build()?.block_on(async move {
        let app = if demo {
            crate::demo::app(config).await?
        } else {
            App::build(config).await?
        };
        app.run_until_stopped().await
    })
}
