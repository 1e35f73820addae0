//! `storefront serve`: serves until SIGTERM or SIGINT, over the demo catalog when asked.

use crate::app::App;
use crate::config::Config;

/// `create`: a missing data directory may become a new store (`--init`, or `--demo`).
pub(super) fn run(mut config: Config, listen: Option<String>, demo: bool, create: bool) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let arenas_limited = limit_malloc_arenas(config.server.malloc_arenas);
    let huge_pages_refused = !config.server.transparent_huge_pages && !disable_transparent_huge_pages();
    crate::telemetry::init(&config.log)?;
    if huge_pages_refused {
        tracing::warn!("could not disable transparent huge pages for this process");
    }
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

/// MEM: turns transparent huge pages off for this process before the runtime and RocksDB
/// start. mimalloc advises huge pages on its arenas, and a huge page stays resident while any
/// byte of it is in use, which held the RSS of a browse run at 288 MB instead of 181 MB. The
/// kernel checks the flag at each fault, so memory mapped earlier is covered too. Returns
/// `false` if the kernel refused.
fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    true
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_turned_off_for_the_process() {
        assert!(super::disable_transparent_huge_pages());
        // SAFETY: PR_GET_THP_DISABLE only reads a flag of this process.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
