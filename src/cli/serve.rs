//! `storefront serve`: serves until SIGTERM or SIGINT, over the demo catalog when asked.

use crate::app::App;
use crate::config::Config;

/// `create`: a missing data directory may become a new store (`--init`, or `--demo`).
pub(super) fn run(mut config: Config, listen: Option<String>, demo: bool, create: bool) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let arenas_limited = limit_malloc_arenas(config.server.malloc_arenas);
    crate::telemetry::init(&config.log)?;
    if !arenas_limited {
        tracing::warn!(
            arenas = config.server.malloc_arenas,
            "could not limit glibc malloc arenas"
        );
    }
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
    if config.server.blocking_threads > 0 {
        runtime.max_blocking_threads(config.server.blocking_threads);
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

/// MEM: caps glibc's malloc arenas before the logger, the runtime and RocksDB start their
/// threads (arenas are made per thread on demand, so the cap must come first).
/// `MALLOC_ARENA_MAX` in the environment still wins. Returns `false` if glibc refused.
fn limit_malloc_arenas(arenas: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if arenas > 0 && std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let arenas = i32::try_from(arenas).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter.
        return unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } == 1;
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
    true
}
