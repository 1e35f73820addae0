//! `storefront backup`, `restore` and `verify-backup`: the operator's side of
//! [`crate::service::backup`].
//!
//! `backup` asks the running server (`POST /api/v1/admin/backups`, with the configured admin
//! key), because the server holds the store's lock; with no server it opens the store itself.
//! `--to` then copies the finished backup off the data directory's disk and verifies the copy.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;
use crate::service::backup::{self, Manifest, MANIFEST};

/// Takes a backup; prints where it is.
pub fn backup(config: Config, to: Option<&Path>, name: Option<String>, url: Option<String>) -> anyhow::Result<()> {
    let data_dir = config.storage.data_dir.clone();
    let backup_dir = data_dir.join(&config.backup.dir);
    let url = url.unwrap_or_else(|| format!("http://{}", config.server.listen.replace("0.0.0.0", "127.0.0.1")));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let online = runtime.block_on(ask_server(&url, &config.auth.admin_api_key, name.as_deref()))?;
    let (manifest, written) = match online {
        Some(manifest) => {
            let written = backup_dir.join(&manifest.name);
            eprintln!(
                "the server at {url} wrote backup {} to {}",
                manifest.name,
                written.display()
            );
            (manifest, written)
        }
        None => {
            eprintln!("no server answers at {url}: backing up {} directly", data_dir.display());
            let store = storefront_storage::Store::open(&data_dir, &Default::default())
                .with_context(|| format!("opening {} (is a server running elsewhere?)", data_dir.display()))?;
            let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
            let name = name.unwrap_or_else(|| format!("offline-{now}"));
            let target = to.map(Path::to_path_buf).unwrap_or_else(|| backup_dir.join(&name));
            let manifest = backup::write(&store, &target, &name, crate::service::view::rfc3339(now), |_, _| {})?;
            println!("{}", target.display());
            return report(&manifest);
        }
    };
    let final_dir = match to {
        Some(to) => {
            copy_backup(&written, &manifest, to)?;
            backup::verify(to).with_context(|| format!("verifying the copy in {}", to.display()))?;
            to.to_path_buf()
        }
        None => written,
    };
    println!("{}", final_dir.display());
    report(&manifest)
}

/// Restores a backup into an empty data directory.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let manifest = backup::restore(from, data_dir).with_context(|| format!("restoring {}", from.display()))?;
    eprintln!(
        "restored backup {} ({} files, {} bytes, changes up to {}) into {}; the search index is rebuilt at the first start",
        manifest.name,
        manifest.files.len(),
        manifest.bytes,
        manifest.changelog_seq,
        data_dir.display()
    );
    Ok(())
}

/// Checks a backup's checksums and opens a scratch copy of its store.
pub fn verify(dir: &Path) -> anyhow::Result<()> {
    let manifest = backup::verify(dir)?;
    println!("ok: {}", dir.display());
    report(&manifest)
}

fn report(manifest: &Manifest) -> anyhow::Result<()> {
    eprintln!(
        "backup {}: {} files, {} bytes, taken {}, changes up to {}",
        manifest.name,
        manifest.files.len(),
        manifest.bytes,
        manifest.created_at,
        manifest.changelog_seq
    );
    Ok(())
}

/// `Some(manifest)` when the server took the backup, `None` when no server answers.
async fn ask_server(url: &str, admin_key: &str, name: Option<&str>) -> anyhow::Result<Option<Manifest>> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()?;
    let request = client
        .post(format!("{}/api/v1/admin/backups", url.trim_end_matches('/')))
        .bearer_auth(admin_key)
        .json(&serde_json::json!({ "name": name }));
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_connect() => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("asking {url} for a backup")),
    };
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(
        status.is_success(),
        "{url} refused the backup ({status}): {text}{}",
        if admin_key.is_empty() {
            " (set [auth] admin_api_key or STOREFRONT__AUTH__ADMIN_API_KEY)"
        } else {
            ""
        }
    );
    Ok(Some(
        serde_json::from_str(&text).context("reading the server's manifest")?,
    ))
}

fn copy_backup(from: &Path, manifest: &Manifest, to: &Path) -> anyhow::Result<()> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        anyhow::bail!("{} is not empty", to.display());
    }
    for file in manifest
        .files
        .iter()
        .map(|f| PathBuf::from(&f.path))
        .chain([PathBuf::from(MANIFEST)])
    {
        let target = to.join(&file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&file), &target).with_context(|| format!("copying {}", file.display()))?;
    }
    Ok(())
}
