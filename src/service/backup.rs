//! Online backups and restores.
//!
//! A backup is a RocksDB checkpoint of the running store (the consistent point: every write
//! acknowledged before it, and nothing half-applied) and a manifest with each file's size
//! and SHA-256. Checkpoint files are hard links, so a backup is near-instant and costs no
//! space until compaction replaces the live files; copy it off the box to keep it. The
//! search index is not copied: it is derived from the store, and a restored server rebuilds
//! it on its first start (answering search with 503 until it has caught up).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storefront_storage::Store;

use super::{blocking, ServiceError};
use crate::clock::SharedClock;
use crate::domain::error::DomainError;
use crate::domain::FieldErrors;
use crate::service::auth::Actor;

/// The manifest's file name in a backup folder.
pub const MANIFEST: &str = "backup.json";
/// The folder of the store's checkpoint in a backup folder.
const STORE_DIR: &str = "store";
const FORMAT: &str = "storefront-backup/1";

/// What a backup holds, as written to its `backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Manifest {
    /// `storefront-backup/1`.
    pub format: String,
    /// The backup's name (its folder's name).
    pub name: String,
    /// When the checkpoint was taken (RFC 3339).
    pub created_at: String,
    /// The store's last changelog sequence just before the checkpoint: the backup holds every
    /// change up to at least this one.
    pub changelog_seq: u64,
    /// How the search index comes back: `rebuild` (from the store, at the first start).
    pub search: String,
    /// Every file of the store's checkpoint.
    pub files: Vec<BackupFile>,
    /// Their total size.
    pub bytes: u64,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BackupFile {
    /// Path inside the backup folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// A backup in the list: its manifest, or the progress of one being written.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupStatus {
    /// The backup's name.
    pub name: String,
    /// `running` or `complete`.
    pub state: &'static str,
    /// Its folder on the server.
    pub path: String,
    /// Files checksummed so far.
    pub files_done: usize,
    /// Files in the checkpoint (0 until it is taken).
    pub files_total: usize,
    /// The manifest, once complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

/// The server's backups, in `[backup] dir`.
pub struct Backups {
    store: Store,
    dir: PathBuf,
    clock: SharedClock,
    running: Mutex<Option<BackupStatus>>,
    /// Backups written to a `to` folder outside `dir` since start-up.
    elsewhere: Mutex<Vec<PathBuf>>,
}

impl Backups {
    /// Backups of `store` written under `dir`.
    pub fn new(store: Store, dir: PathBuf, clock: SharedClock) -> Backups {
        Backups {
            store,
            dir,
            clock,
            running: Mutex::new(None),
            elsewhere: Mutex::default(),
        }
    }

    /// Takes a backup named `name` (default: the time, `20261201T223000Z`, or the last part
    /// of `to`) into `[backup] dir`/`name`, or into `to` (an absolute path that is new or an
    /// empty folder); one at a time.
    pub async fn create(
        self: &Arc<Self>,
        actor: Actor,
        name: Option<String>,
        to: Option<PathBuf>,
    ) -> Result<Manifest, ServiceError> {
        actor.require_admin()?;
        if let Some(to) = &to {
            if !to.is_absolute() {
                return Err(invalid("to", "invalid", "an absolute path on the server"));
            }
            if to.exists() && !to.read_dir().is_ok_and(|mut entries| entries.next().is_none()) {
                return Err(invalid("to", "not_empty", "a new or empty folder"));
            }
        }
        let name = match (name, to.as_ref().and_then(|to| to.file_name())) {
            (Some(name), _) => valid_name(&name)?,
            (None, Some(last)) => valid_name(&last.to_string_lossy())?,
            (None, None) => time_name(self.clock.now_ms()),
        };
        let target = to.clone().unwrap_or_else(|| self.dir.join(&name));
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.is_some() {
                return Err(DomainError::BackupRunning.into());
            }
            if to.is_none() && target.exists() || self.find(&name).is_some() {
                return Err(DomainError::BackupExists { name }.into());
            }
            *running = Some(BackupStatus {
                name: name.clone(),
                state: "running",
                path: target.display().to_string(),
                files_done: 0,
                files_total: 0,
                manifest: None,
            });
        }
        let this = self.clone();
        let written = target.clone();
        let result = blocking(move || {
            std::fs::create_dir_all(&this.dir)
                .map_err(|e| ServiceError::internal_from(format!("creating {}", this.dir.display()), e))?;
            // An empty folder given as `to` makes way for the checkpoint.
            if target.is_dir() {
                std::fs::remove_dir(&target).map_err(|e| io_error(&target, e))?;
            }
            let created_at = crate::service::view::rfc3339(this.clock.now_ms());
            write(&this.store, &target, &name, created_at, |done, total| {
                if let Some(status) = this.running.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    status.files_done = done;
                    status.files_total = total;
                }
            })
        })
        .await;
        if result.is_ok() && to.is_some() {
            self.elsewhere.lock().unwrap_or_else(|p| p.into_inner()).push(written);
        }
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        result
    }

    /// One backup by name: the one being written, or a finished one.
    pub async fn get(self: &Arc<Self>, actor: Actor, name: String) -> Result<BackupStatus, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let running = this.running.lock().unwrap_or_else(|p| p.into_inner()).clone();
            running
                .filter(|r| r.name == name)
                .or_else(|| this.find(&name))
                .ok_or(ServiceError::NotFound { kind: "backup" })
        })
        .await
    }

    /// A finished backup named `name`, in `[backup] dir` or written elsewhere by this process.
    fn find(&self, name: &str) -> Option<BackupStatus> {
        let elsewhere = self.elsewhere.lock().unwrap_or_else(|p| p.into_inner()).clone();
        std::iter::once(self.dir.join(name))
            .chain(elsewhere)
            .filter_map(|path| complete(&path))
            .find(|status| status.name == name)
    }

    /// The backups in `[backup] dir`, newest name last, and the one being written.
    pub async fn list(self: &Arc<Self>, actor: Actor) -> Result<Vec<BackupStatus>, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let running = this.running.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut out = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&this.dir) {
                out.extend(entries.flatten().filter_map(|entry| complete(&entry.path())));
            }
            let elsewhere = this.elsewhere.lock().unwrap_or_else(|p| p.into_inner()).clone();
            out.extend(elsewhere.iter().filter_map(|path| complete(path)));
            out.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(running);
            Ok(out)
        })
        .await
    }
}

/// The finished backup in `path`, if there is one.
fn complete(path: &Path) -> Option<BackupStatus> {
    let manifest = read_manifest(path).ok()?;
    Some(BackupStatus {
        name: manifest.name.clone(),
        state: "complete",
        path: path.display().to_string(),
        files_done: manifest.files.len(),
        files_total: manifest.files.len(),
        manifest: Some(manifest),
    })
}

/// Writes a backup of `store` into `target` (which must not exist): the checkpoint, then
/// the checksums, then the manifest last, so a folder with a manifest is a whole backup.
/// `progress(done, total)` follows the checksumming.
pub fn write(
    store: &Store,
    target: &Path,
    name: &str,
    created_at: String,
    mut progress: impl FnMut(usize, usize),
) -> Result<Manifest, ServiceError> {
    if target.exists() {
        return Err(DomainError::BackupExists { name: name.to_owned() }.into());
    }
    std::fs::create_dir_all(target).map_err(|e| io_error(target, e))?;
    let changelog_seq = store.last_changelog_seq();
    store.checkpoint(target.join(STORE_DIR))?;
    let paths = store_files(target)?;
    let mut files = Vec::with_capacity(paths.len());
    for (i, relative) in paths.iter().enumerate() {
        let (bytes, sha256) = checksum(&target.join(relative))?;
        files.push(BackupFile {
            path: relative.clone(),
            bytes,
            sha256,
        });
        progress(i + 1, paths.len());
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        name: name.to_owned(),
        created_at,
        changelog_seq,
        search: "rebuild".into(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| ServiceError::internal_from("manifest", e))?;
    let tmp = target.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, target.join(MANIFEST)).map_err(|e| io_error(target, e))?;
    Ok(manifest)
}

/// Checks a backup: the manifest, every file's size and checksum, no file missing or extra;
/// then opens a scratch copy of the store. Returns the manifest.
pub fn verify(dir: &Path) -> Result<Manifest, ServiceError> {
    let manifest = verify_files(dir)?;
    let scratch = tempfile::tempdir().map_err(|e| ServiceError::internal_from("scratch dir", e))?;
    let copy = scratch.path().join("store");
    copy_store(dir, &manifest, &copy)?;
    let store = Store::open(&copy, &Default::default())?;
    if store.last_changelog_seq() < manifest.changelog_seq {
        return Err(ServiceError::internal(format!(
            "the store in {} ends at change {}, before the manifest's {}",
            dir.display(),
            store.last_changelog_seq(),
            manifest.changelog_seq
        )));
    }
    Ok(manifest)
}

/// Restores the backup in `from` into `data_dir`, which must be empty or absent. The search
/// index is rebuilt at the first start.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, ServiceError> {
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir).map_err(|e| io_error(data_dir, e))?;
        if entries.next().is_some() {
            return Err(invalid(
                "data_dir",
                "not_empty",
                "restore into an empty or new directory; move the current one aside first",
            ));
        }
    }
    let manifest = verify_files(from)?;
    copy_store(from, &manifest, data_dir)?;
    Ok(manifest)
}

fn verify_files(dir: &Path) -> Result<Manifest, ServiceError> {
    let manifest = read_manifest(dir)?;
    if manifest.format != FORMAT {
        return Err(corrupt(dir, format!("unknown format {:?}", manifest.format)));
    }
    let listed: std::collections::BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for found in store_files(dir)? {
        if !listed.contains(found.as_str()) {
            return Err(corrupt(dir, format!("{found} is not in the manifest")));
        }
    }
    for file in &manifest.files {
        let path = dir.join(&file.path);
        if !path.is_file() {
            return Err(corrupt(dir, format!("{} is missing", file.path)));
        }
        let (bytes, sha256) = checksum(&path)?;
        if bytes != file.bytes || sha256 != file.sha256 {
            return Err(corrupt(dir, format!("{} does not match its checksum", file.path)));
        }
    }
    Ok(manifest)
}

fn read_manifest(dir: &Path) -> Result<Manifest, ServiceError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|e| corrupt(dir, format!("no readable {MANIFEST}: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| corrupt(dir, format!("{MANIFEST} is invalid: {e}")))
}

/// The checkpoint's files, relative to the backup folder, sorted.
fn store_files(dir: &Path) -> Result<Vec<String>, ServiceError> {
    let store = dir.join(STORE_DIR);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&store).map_err(|e| io_error(&store, e))? {
        let entry = entry.map_err(|e| io_error(&store, e))?;
        if entry.file_type().map_err(|e| io_error(&store, e))?.is_file() {
            out.push(format!("{STORE_DIR}/{}", entry.file_name().to_string_lossy()));
        }
    }
    out.sort();
    Ok(out)
}

fn copy_store(from: &Path, manifest: &Manifest, to: &Path) -> Result<(), ServiceError> {
    std::fs::create_dir_all(to).map_err(|e| io_error(to, e))?;
    for file in &manifest.files {
        let name = file.path.strip_prefix(&format!("{STORE_DIR}/")).unwrap_or(&file.path);
        let target = to.join(name);
        std::fs::copy(from.join(&file.path), &target).map_err(|e| io_error(&target, e))?;
        sync_file(&target)?;
    }
    Ok(())
}

fn checksum(path: &Path) -> Result<(u64, String), ServiceError> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn sync_file(path: &Path) -> Result<(), ServiceError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(path, e))
}

fn invalid(field: &str, code: &'static str, message: &str) -> ServiceError {
    let mut errors = FieldErrors::default();
    errors.add(field, code, message);
    ServiceError::Validation(errors.into_vec())
}

fn valid_name(name: &str) -> Result<String, ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            "name",
            "invalid",
            "1-64 letters, digits, '-', '_' or '.', not starting with '.'",
        ))
    }
}

fn time_name(now_ms: i64) -> String {
    crate::service::view::rfc3339(now_ms)
        .replace(['-', ':'], "")
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
        + "Z"
}

fn io_error(path: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::internal_from(format!("backup I/O on {}", path.display()), e)
}

fn corrupt(dir: &Path, why: String) -> ServiceError {
    ServiceError::internal(format!("the backup in {} is not usable: {why}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_default_to_the_time() {
        assert!(valid_name("nightly-2026-12-01").is_ok());
        for bad in ["", "../etc", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(time_name(1_796_163_000_000), "20261201T221000Z");
    }

    #[test]
    fn a_backup_verifies_restores_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("live"), &Default::default()).unwrap();
        let target = dir.path().join("b1");
        let mut seen = Vec::new();
        let manifest = write(&store, &target, "b1", "2026-12-01T00:00:00Z".into(), |d, t| {
            seen.push((d, t))
        })
        .unwrap();
        assert!(!manifest.files.is_empty());
        assert_eq!(seen.last(), Some(&(manifest.files.len(), manifest.files.len())));
        assert!(
            write(&store, &target, "b1", String::new(), |_, _| {}).is_err(),
            "never overwrites"
        );
        assert_eq!(verify(&target).unwrap(), manifest);

        let restored = dir.path().join("restored");
        restore(&target, &restored).unwrap();
        Store::open(&restored, &Default::default()).unwrap();
        assert!(restore(&target, &restored).is_err(), "a non-empty directory is refused");

        let victim = target.join(&manifest.files[0].path);
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes.push(0);
        std::fs::remove_file(&victim).unwrap(); // a hard link: do not touch the live file
        std::fs::write(&victim, bytes).unwrap();
        let error = verify(&target).unwrap_err().to_string();
        assert!(error.contains("checksum"), "{error}");
    }
}
