//! The [`Store`] handle: opening and tuning RocksDB, point reads, scans, and atomic
//! transactions that append to the changelog.
//!
//! Concurrency: reads are lock-free (RocksDB snapshots per call). Catalog writes go through
//! [`Store::transact`], which serialises writers on one mutex so that read-check-write
//! sequences (versions, slug uniqueness, counters) are race-free and changelog sequence
//! numbers are gap-free in commit order. The lock is held for the batch write only, never
//! across an await: callers run transactions on blocking threads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rkyv::api::high::{HighDeserializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::Deserialize;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::cf::{self, ALL_CFS, CF_CHANGELOG, CF_META, CF_PRODUCTS, POINT_LOOKUP_CFS};
use crate::keys;
use crate::listing::{self, EntryValue};
use crate::records::{encode, ChangeOp, ChangeRecord, EntityKind, Owned, StoredRecord};
use crate::{Error, Result};

/// Schema version written by this build (2: reservations moved out of the inventory record;
/// 3: variant weights, shipments' shipping, shipping methods and returns, see [`crate::migrate`]).
pub const SCHEMA_VERSION: u32 = 3;

/// Where a store reads the time its transactions are stamped with: the system clock unless the
/// server hands it its own clock (tests move a manual one).
#[derive(Clone)]
pub struct TimeSource(Arc<dyn Fn() -> i64 + Send + Sync>);

impl TimeSource {
    /// A source that calls `now_ms` for the current Unix time in milliseconds.
    pub fn new(now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> TimeSource {
        TimeSource(Arc::new(now_ms))
    }

    /// The system clock.
    pub fn system() -> TimeSource {
        TimeSource::new(now_ms)
    }

    fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimeSource")
    }
}

/// Tuning knobs, filled from the server config.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Shared LRU block cache size.
    pub block_cache_bytes: usize,
    /// fsync the WAL on every acknowledged write.
    pub sync_writes: bool,
    /// Memtable size per column family; all of them together hold at most twice this.
    pub write_buffer_bytes: usize,
    /// Flush and compaction threads.
    pub max_background_jobs: i32,
    /// The time transactions are stamped with.
    pub time: TimeSource,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 64 << 20,
            sync_writes: true,
            write_buffer_bytes: 32 << 20,
            max_background_jobs: 2,
            time: TimeSource::system(),
        }
    }
}

/// A cheap-to-clone handle to the database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    cache: Cache,
    block_cache_bytes: usize,
    sync_writes: bool,
    time: TimeSource,
    /// Serialises writers; holds the next changelog sequence number.
    writer: Mutex<u64>,
    /// Highest committed changelog sequence, for consumers polling without the writer lock.
    // Release on store / Acquire on load: a consumer that sees seq N also sees N's batch.
    last_seq: AtomicU64,
}

/// Storage-level statistics for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Bytes currently in the block cache.
    pub block_cache_usage_bytes: u64,
    /// Block cache capacity.
    pub block_cache_capacity_bytes: u64,
    /// Estimated number of keys per column family.
    pub estimated_keys: Vec<(&'static str, u64)>,
    /// Total size of live SST files.
    pub live_sst_bytes: u64,
    /// Memtable bytes across column families.
    pub memtable_bytes: u64,
    /// Last committed changelog sequence.
    pub last_changelog_seq: u64,
    /// Highest changelog sequence deleted by retention.
    pub changelog_truncated_through: u64,
}

/// What a data directory holds, before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// It does not exist.
    Missing,
    /// It exists and is empty.
    Empty,
    /// A storefront store.
    Store,
    /// A RocksDB database of another program (none of our column families).
    ForeignRocksDb,
    /// Files that are not a RocksDB database.
    Foreign,
}

/// Looks at `path` without changing it.
pub fn inspect(path: &Path) -> DirState {
    let Ok(mut entries) = std::fs::read_dir(path) else {
        return DirState::Missing;
    };
    if entries.next().is_none() {
        return DirState::Empty;
    }
    if !path.join("CURRENT").is_file() {
        return DirState::Foreign;
    }
    match DB::list_cf(&Options::default(), path) {
        Ok(families) if families.iter().any(|f| f == CF_META) && families.iter().any(|f| f == CF_PRODUCTS) => {
            DirState::Store
        }
        Ok(_) => DirState::ForeignRocksDb,
        // Unreadable metadata: let the open report the real error.
        Err(_) => DirState::Store,
    }
}

impl Store {
    /// Opens the database in `path`, creating it when the directory is missing or empty; a
    /// directory holding anything else (another program's RocksDB, other files) is refused.
    pub fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let refuse = |reason: &str| Error::NotOurs {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        match inspect(&path) {
            DirState::ForeignRocksDb => return Err(refuse("it holds a RocksDB database of another program")),
            DirState::Foreign => return Err(refuse("it is not empty and holds no store")),
            DirState::Missing | DirState::Empty => {
                tracing::info!(path = %path.display(), "creating a new store");
            }
            DirState::Store => {}
        }
        std::fs::create_dir_all(&path).map_err(|e| Error::InvalidPath(format!("{}: {e}", path.display())))?;
        let cache = Cache::new_lru_cache(options.block_cache_bytes)?;

        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(options.max_background_jobs);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_keep_log_file_num(4);
        // MEM: each family may fill its own memtable (and keep one being flushed); without a
        // total a write burst spread over several families held their sum. The largest is
        // flushed once the memtables together reach this.
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes.saturating_mul(2));
        // Writers waiting for a group commit spin and yield before they sleep. On a box with a
        // core or two that spinning takes the CPU the group's leader needs to finish the fsync.
        db_opts.set_enable_write_thread_adaptive_yield(false);

        let descriptors = ALL_CFS.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            table.set_format_version(5);
            if POINT_LOOKUP_CFS.contains(name) {
                table.set_bloom_filter(10.0, false);
            }
            let mut cf_opts = Options::default();
            cf_opts.set_block_based_table_factory(&table);
            cf_opts.set_write_buffer_size(options.write_buffer_bytes);
            cf_opts.set_compression_type(DBCompressionType::Lz4);
            cf_opts.set_bottommost_compression_type(DBCompressionType::Zstd);
            // MEM: no memtable bloom filters. Each memtable of each point-lookup family
            // allocated one up front (a tenth of `write_buffer_bytes`, 3.2 MiB at the default,
            // for every family even when empty): 78 MB of a 350 MB peak in a heaptrack profile
            // of a Chorus run. A memtable miss is a short skiplist walk; the SST blooms stay.
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });

        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| {
            if e.to_string().contains("lock") {
                Error::Locked {
                    path: path.display().to_string(),
                    source: e,
                }
            } else {
                Error::Rocks(e)
            }
        })?;

        let store = Store {
            inner: Arc::new(Inner {
                db,
                path,
                cache,
                block_cache_bytes: options.block_cache_bytes,
                sync_writes: options.sync_writes,
                time: options.time.clone(),
                writer: Mutex::new(1),
                last_seq: AtomicU64::new(0),
            }),
        };
        store.check_schema()?;
        let last = store.read_last_seq()?;
        *store.lock_writer() = last + 1;
        store.inner.last_seq.store(last, Ordering::Release);
        Ok(store)
    }

    fn check_schema(&self) -> Result<()> {
        match self.get_raw(CF_META, keys::META_SCHEMA_VERSION)? {
            Some(bytes) => {
                let found = bytes
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::corrupt(CF_META, keys::META_SCHEMA_VERSION, "bad length"))?;
                if found == 2 {
                    return crate::migrate::v2_to_v3(self);
                }
                if found != SCHEMA_VERSION {
                    return Err(Error::SchemaVersion {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                let mut batch = WriteBatch::default();
                batch.put_cf(
                    self.cf(CF_META),
                    keys::META_SCHEMA_VERSION,
                    SCHEMA_VERSION.to_be_bytes(),
                );
                self.write(batch)?;
            }
        }
        Ok(())
    }

    fn read_last_seq(&self) -> Result<u64> {
        let mut iter = self.inner.db.iterator_cf(self.cf(CF_CHANGELOG), IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (key, _) = item?;
                keys::changelog_seq(&key).ok_or_else(|| Error::corrupt(CF_CHANGELOG, &key, "bad key"))
            }
            None => Ok(0),
        }
    }

    /// Returns the data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.inner
            .db
            .cf_handle(name)
            .expect("every column family in ALL_CFS is created on open")
    }

    fn write_options(&self) -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.inner.sync_writes);
        opts
    }

    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.db.write_opt(batch, &self.write_options())?;
        Ok(())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, u64> {
        // A panic inside a transaction closure poisons the lock, but the sequence counter is
        // only advanced after a successful write, so the state is still consistent.
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads and validates a record. The value is read through a pinned slice (no copy inside
    /// RocksDB) and copied once into an aligned buffer.
    pub fn get<R>(&self, key: &[u8]) -> Result<Option<Owned<R>>>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        match self.inner.db.get_pinned_cf(self.cf(R::CF), key)? {
            Some(pinned) => Owned::from_slice(key, &pinned).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a record and passes its validated archive to `f` without keeping it.
    ///
    /// With the `unaligned` feature this reads the pinned slice in place (zero copies);
    /// otherwise it goes through [`Store::get`]'s aligned copy.
    pub fn with<R, T>(&self, key: &[u8], f: impl FnOnce(&R::Archived) -> T) -> Result<Option<T>>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        #[cfg(feature = "unaligned")]
        {
            match self.inner.db.get_pinned_cf(self.cf(R::CF), key)? {
                Some(pinned) => Ok(Some(f(crate::records::access::<R>(R::CF, key, &pinned)?))),
                None => Ok(None),
            }
        }
        #[cfg(not(feature = "unaligned"))]
        {
            Ok(self.get::<R>(key)?.map(|owned| f(owned.archived())))
        }
    }

    /// Reads raw bytes.
    pub fn get_raw(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.db.get_pinned_cf(self.cf(cf), key)?.map(|p| p.to_vec()))
    }

    /// Reads several records of one kind with a single batched lookup.
    pub fn multi_get<R, K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Owned<R>>>>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        let cf = self.cf(R::CF);
        self.inner
            .db
            .batched_multi_get_cf(cf, keys.iter().map(|k| k.as_ref()), false)
            .into_iter()
            .zip(keys)
            .map(|(res, key)| match res? {
                Some(pinned) => Owned::from_slice(key.as_ref(), &pinned).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Returns every record of a kind, in key order. Meant for small kinds (categories,
    /// sellers) and for rebuilds, not for request paths over large kinds.
    pub fn scan_all<R>(&self) -> Result<Vec<Owned<R>>>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        self.inner
            .db
            .iterator_cf(self.cf(R::CF), IteratorMode::Start)
            .map(|item| {
                let (key, value) = item?;
                Owned::from_slice(&key, &value)
            })
            .collect()
    }

    /// Visits records of a kind in key order starting at `from` (inclusive), until `f` returns
    /// `false`. Used by rebuilds (reindex, stock reconciliation) that stream a large kind.
    pub fn for_each<R>(&self, from: &[u8], mut f: impl FnMut(&[u8], &R::Archived) -> bool) -> Result<()>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        // MEM: a walk over a whole kind reads each block once; through the block cache it
        // would evict the hot set and, at the first start, fill the cache to its limit
        // before any shopper arrives.
        let mut opts = ReadOptions::default();
        opts.fill_cache(false);
        opts.set_readahead_size(1 << 20);
        let mut iter = self.inner.db.raw_iterator_cf_opt(self.cf(R::CF), opts);
        iter.seek(from);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let owned = Owned::<R>::from_slice(key, value)?;
            if !f(key, owned.archived()) {
                break;
            }
            iter.next();
        }
        iter.status()?;
        Ok(())
    }

    /// Returns up to `limit` changelog entries with a sequence greater than `after`.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        let start = keys::changelog(after.saturating_add(1));
        self.inner
            .db
            .iterator_cf(self.cf(CF_CHANGELOG), IteratorMode::From(&start, Direction::Forward))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok(Owned::<ChangeRecord>::from_slice(&key, &value)?.to_native())
            })
            .collect()
    }

    /// Returns the highest committed changelog sequence number (0 when empty).
    pub fn last_changelog_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    /// Returns a consumer's persisted changelog cursor (0 when it never ran).
    pub fn consumer_cursor(&self, consumer: &str) -> Result<u64> {
        self.meta_u64(&keys::meta_cursor(consumer))
    }

    /// Persists a consumer's changelog cursor.
    pub fn set_consumer_cursor(&self, consumer: &str, seq: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), keys::meta_cursor(consumer), seq.to_be_bytes());
        self.write(batch)
    }

    /// Returns the highest changelog sequence that retention has deleted (0 when none). A
    /// consumer whose cursor is below it has missed changes and must resynchronise from the
    /// records themselves.
    pub fn changelog_truncated_through(&self) -> Result<u64> {
        self.meta_u64(keys::META_CHANGELOG_TRUNCATED)
    }

    /// Deletes changelog entries up to and including `through`, always keeping the newest
    /// entry (it carries the sequence across restarts), and returns the sequence now truncated
    /// through. The deleted range is compacted away so the space comes back.
    pub fn truncate_changelog(&self, through: u64) -> Result<u64> {
        let done = self.changelog_truncated_through()?;
        let through = through.min(self.last_changelog_seq().saturating_sub(1));
        if through <= done {
            return Ok(done);
        }
        let cf = self.cf(CF_CHANGELOG);
        let (from, to) = (keys::changelog(done), keys::changelog(through + 1));
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, from, to);
        batch.put_cf(self.cf(CF_META), keys::META_CHANGELOG_TRUNCATED, through.to_be_bytes());
        self.write(batch)?;
        self.inner.db.compact_range_cf(cf, Some(from), Some(to));
        Ok(through)
    }

    /// A big-endian counter in the meta column family (0 when absent).
    fn meta_u64(&self, key: &[u8]) -> Result<u64> {
        Ok(self
            .get_raw(CF_META, key)?
            .and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Returns the number of published products in a listing scope.
    pub fn listing_count(&self, scope: &[u8]) -> Result<u64> {
        self.meta_u64(&[keys::META_COUNT_PREFIX, scope].concat())
    }

    /// Scans the listing index in `[lower, upper)`, forwards or backwards, starting strictly
    /// after `cursor` (a full key previously returned). Stops after `limit` matches or after
    /// examining `max_scanned` entries, whichever comes first.
    pub fn scan_listing(
        &self,
        scan: &ListingScan<'_>,
        mut accept: impl FnMut(&EntryValue) -> bool,
    ) -> Result<ListingPage> {
        let mut read_opts = ReadOptions::default();
        read_opts.set_iterate_lower_bound(scan.lower.to_vec());
        read_opts.set_iterate_upper_bound(scan.upper.to_vec());
        let mut iter = self
            .inner
            .db
            .raw_iterator_cf_opt(self.cf(cf::CF_PRODUCT_LISTING), read_opts);
        match (scan.reverse, scan.cursor) {
            (false, None) => iter.seek_to_first(),
            (true, None) => iter.seek_to_last(),
            (false, Some(cursor)) => {
                iter.seek(cursor);
                if iter.key() == Some(cursor) {
                    iter.next();
                }
            }
            (true, Some(cursor)) => {
                iter.seek_for_prev(cursor);
                if iter.key() == Some(cursor) {
                    iter.prev();
                }
            }
        }
        let mut page = ListingPage::default();
        let mut scanned = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if page.items.len() == scan.limit || scanned == scan.max_scanned {
                // More entries remain: hand out a cursor at the last key examined.
                page.next_cursor = last_key;
                return Ok(page);
            }
            scanned += 1;
            let entry =
                EntryValue::decode(value).ok_or_else(|| Error::corrupt(cf::CF_PRODUCT_LISTING, key, "bad entry"))?;
            if accept(&entry) {
                let id = listing::product_id_of(key)
                    .ok_or_else(|| Error::corrupt(cf::CF_PRODUCT_LISTING, key, "short key"))?;
                page.items.push((id, entry));
            }
            last_key = Some(key.to_vec());
            if scan.reverse {
                iter.prev();
            } else {
                iter.next();
            }
        }
        iter.status()?;
        Ok(page)
    }

    /// Returns the ids of every product listed in a scope (e.g. a category and its
    /// descendants), in id order. Used by rebuilds, not by request paths.
    pub fn listing_ids(&self, scope: listing::Scope<'_>) -> Result<Vec<keys::Id>> {
        let prefix = listing::prefix(scope, listing::SortKey::Newest);
        let upper = keys::prefix_successor(&prefix).expect("listing prefixes never end in 0xff");
        let mut ids = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let scan = ListingScan {
                lower: &prefix,
                upper: &upper,
                cursor: cursor.as_deref(),
                reverse: false,
                limit: 1000,
                max_scanned: 1000,
            };
            let page = self.scan_listing(&scan, |_| true)?;
            ids.extend(page.items.iter().map(|(id, _)| *id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(ids),
            }
        }
    }

    /// Runs `f` as one atomic transaction: its writes and changelog entries are committed in a
    /// single `WriteBatch` (fsynced when `sync_writes` is on), or not at all if `f` fails.
    pub fn transact<T, E: From<Error>>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut next_seq = self.lock_writer();
        let mut txn = Txn {
            store: self,
            overlay: BTreeMap::new(),
            changes: Vec::new(),
            count_deltas: HashMap::new(),
            now_ms: self.inner.time.now_ms(),
        };
        let out = f(&mut txn)?;
        let last = txn.commit(*next_seq)?;
        if let Some(last) = last {
            *next_seq = last + 1;
            self.inner.last_seq.store(last, Ordering::Release);
        }
        Ok(out)
    }

    /// Starts a [`Batch`]: an atomic write that bypasses the catalog writer lock.
    ///
    /// Carts and stock holds use it. Their callers serialise writes to the same keys
    /// themselves (per-cart locks), so they need neither the lock nor the changelog, and
    /// concurrent batches from many threads share one WAL fsync through RocksDB's group commit.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            inner: WriteBatch::default(),
        }
    }

    /// Visits raw entries of a column family in key order within `[lower, upper)`, until `f`
    /// returns `false`.
    pub fn for_each_raw(
        &self,
        cf: &'static str,
        lower: &[u8],
        upper: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut opts = ReadOptions::default();
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper.to_vec());
        }
        let mut iter = self.inner.db.raw_iterator_cf_opt(self.cf(cf), opts);
        iter.seek(lower);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !f(key, value) {
                break;
            }
            iter.next();
        }
        iter.status()?;
        Ok(())
    }

    /// Visits raw entries of a column family in reverse key order, from the last key below
    /// `upper` (exclusive; the end when `None`), until `f` returns `false`.
    pub fn for_each_raw_rev(
        &self,
        cf: &'static str,
        upper: Option<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut iter = self.inner.db.raw_iterator_cf(self.cf(cf));
        match upper {
            Some(upper) => {
                iter.seek_for_prev(upper);
                if iter.key() == Some(upper) {
                    iter.prev();
                }
            }
            None => iter.seek_to_last(),
        }
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !f(key, value) {
                break;
            }
            iter.prev();
        }
        iter.status()?;
        Ok(())
    }

    /// Flushes the WAL to disk (used at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush_wal(true)?;
        Ok(())
    }

    /// Writes a consistent online checkpoint (hard-linked SST files + WAL) into `target`,
    /// which must not exist yet.
    pub fn checkpoint(&self, target: impl AsRef<Path>) -> Result<()> {
        let target = target.as_ref();
        if target.exists() {
            return Err(Error::InvalidPath(format!("{} already exists", target.display())));
        }
        rocksdb::checkpoint::Checkpoint::new(&self.inner.db)?.create_checkpoint(target)?;
        Ok(())
    }

    /// Collects statistics for monitoring.
    pub fn stats(&self) -> StoreStats {
        let db = &self.inner.db;
        let int = |name: &str| -> u64 {
            ALL_CFS
                .iter()
                .filter_map(|cf| db.property_int_value_cf(self.cf(cf), name).ok().flatten())
                .sum()
        };
        StoreStats {
            block_cache_usage_bytes: self.inner.cache.get_usage() as u64,
            block_cache_capacity_bytes: self.inner.block_cache_bytes as u64,
            estimated_keys: ALL_CFS
                .iter()
                .map(|cf| {
                    let n = db
                        .property_int_value_cf(self.cf(cf), "rocksdb.estimate-num-keys")
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    (*cf, n)
                })
                .collect(),
            live_sst_bytes: int("rocksdb.live-sst-files-size"),
            memtable_bytes: int("rocksdb.cur-size-all-mem-tables"),
            last_changelog_seq: self.last_changelog_seq(),
            changelog_truncated_through: self.changelog_truncated_through().unwrap_or(0),
        }
    }
}

/// Parameters of a listing index scan.
#[derive(Debug, Clone)]
pub struct ListingScan<'a> {
    /// Inclusive lower key bound.
    pub lower: &'a [u8],
    /// Exclusive upper key bound.
    pub upper: &'a [u8],
    /// Resume strictly after this key.
    pub cursor: Option<&'a [u8]>,
    /// Scan from the upper bound downwards.
    pub reverse: bool,
    /// Maximum number of accepted entries.
    pub limit: usize,
    /// Maximum number of entries examined (bounds the work of sparse filters).
    pub max_scanned: usize,
}

/// One page of product ids from the listing index.
#[derive(Debug, Default)]
pub struct ListingPage {
    /// Matching product ids with their index values, in scan order.
    pub items: Vec<(keys::Id, EntryValue)>,
    /// Key to resume after, when more entries remain.
    pub next_cursor: Option<Vec<u8>>,
}

/// An atomic set of writes built outside the writer lock; see [`Store::batch`].
pub struct Batch<'s> {
    store: &'s Store,
    inner: WriteBatch,
}

impl Batch<'_> {
    /// Stages a record write.
    pub fn put<R>(&mut self, key: &[u8], record: &R) -> Result<()>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        let bytes = encode(record)?;
        self.inner.put_cf(self.store.cf(R::CF), key, bytes);
        Ok(())
    }

    /// Stages a raw write.
    pub fn put_raw(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.inner.put_cf(self.store.cf(cf), key, value);
    }

    /// Stages a delete.
    pub fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.inner.delete_cf(self.store.cf(cf), key);
    }

    /// Writes everything atomically (fsynced when `sync_writes` is on).
    pub fn commit(self) -> Result<()> {
        if self.inner.is_empty() {
            return Ok(());
        }
        self.store.write(self.inner)
    }

    /// Writes everything atomically to the WAL without waiting for an fsync: the batch becomes
    /// durable with the next synced write (the WAL is one sequence) and may be lost with a
    /// crash before it. Only for records whose loss together with everything after them is
    /// harmless (a simulated provider's bookkeeping, settled by a synced batch that follows).
    pub fn commit_unsynced(self) -> Result<()> {
        if self.inner.is_empty() {
            return Ok(());
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.store.inner.db.write_opt(self.inner, &opts)?;
        Ok(())
    }
}

/// A write transaction. Reads see the committed database plus this transaction's own writes.
pub struct Txn<'s> {
    store: &'s Store,
    /// Pending writes; `None` is a delete. A map so later writes to a key replace earlier ones.
    overlay: BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
    changes: Vec<(EntityKind, ChangeOp, Vec<u8>, Vec<String>)>,
    count_deltas: HashMap<Vec<u8>, i64>,
    now_ms: i64,
}

impl Txn<'_> {
    /// Returns the transaction's timestamp (Unix milliseconds).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Reads raw bytes, seeing this transaction's pending writes.
    pub fn get_raw(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.overlay.get(&(cf, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.store.get_raw(cf, key),
        }
    }

    /// Reads a record, seeing this transaction's pending writes.
    pub fn get<R>(&self, key: &[u8]) -> Result<Option<Owned<R>>>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        match self.overlay.get(&(R::CF, key.to_vec())) {
            Some(Some(bytes)) => Owned::from_slice(key, bytes).map(Some),
            Some(None) => Ok(None),
            None => self.store.get::<R>(key),
        }
    }

    /// Stages a record write.
    pub fn put<R>(&mut self, key: &[u8], record: &R) -> Result<()>
    where
        R: StoredRecord,
        R::Archived:
            for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
    {
        let bytes = encode(record)?;
        self.overlay.insert((R::CF, key.to_vec()), Some(bytes.to_vec()));
        Ok(())
    }

    /// Stages a raw write.
    pub fn put_raw(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.overlay.insert((cf, key.to_vec()), Some(value.to_vec()));
    }

    /// Stages a delete.
    pub fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.overlay.insert((cf, key.to_vec()), None);
    }

    /// Stages a changelog entry; its sequence number is assigned at commit.
    pub fn record_change(&mut self, entity: EntityKind, op: ChangeOp, key: &[u8], tags: Vec<String>) {
        self.changes.push((entity, op, key.to_vec(), tags));
    }

    /// Replaces a product's listing entries: removes `old`'s and writes `new`'s, adjusting the
    /// per-scope counters.
    pub fn update_listing(&mut self, old: Option<&listing::ListingFacts>, new: Option<&listing::ListingFacts>) {
        if let Some(old) = old {
            for (key, _) in listing::entries(old) {
                self.delete(cf::CF_PRODUCT_LISTING, &key);
            }
            for scope in listing::scopes_of(old) {
                *self.count_deltas.entry(scope).or_default() -= 1;
            }
        }
        if let Some(new) = new {
            for (key, value) in listing::entries(new) {
                self.put_raw(cf::CF_PRODUCT_LISTING, &key, &value);
            }
            for scope in listing::scopes_of(new) {
                *self.count_deltas.entry(scope).or_default() += 1;
            }
        }
    }

    fn commit(mut self, first_seq: u64) -> Result<Option<u64>> {
        let store = self.store;
        let mut batch = WriteBatch::default();
        for (scope, delta) in std::mem::take(&mut self.count_deltas) {
            if delta == 0 {
                continue;
            }
            let key = [keys::META_COUNT_PREFIX, &scope].concat();
            let current = store.meta_u64(&key)?;
            let next = (current as i64 + delta).max(0) as u64;
            batch.put_cf(store.cf(CF_META), key, next.to_be_bytes());
        }
        for ((cf, key), value) in &self.overlay {
            match value {
                Some(v) => batch.put_cf(store.cf(cf), key, v),
                None => batch.delete_cf(store.cf(cf), key),
            }
        }
        let mut last = None;
        for (i, (entity, op, key, tags)) in self.changes.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            let record = ChangeRecord {
                seq,
                at_ms: self.now_ms,
                entity,
                op,
                key,
                tags,
            };
            batch.put_cf(store.cf(CF_CHANGELOG), keys::changelog(seq), encode(&record)?);
            last = Some(seq);
        }
        if !batch.is_empty() {
            store.write(batch)?;
        }
        Ok(last)
    }
}

/// Returns the current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SellerRecord;

    fn seller(id: u8, version: u64) -> SellerRecord {
        SellerRecord {
            id: [id; 16],
            version,
            slug: format!("s{id}"),
            name: "Seller".into(),
            created_at_ms: 1,
            updated_at_ms: 1,
        }
    }

    #[test]
    fn only_missing_empty_or_own_directories_are_opened() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("new");
        assert_eq!(inspect(&missing), DirState::Missing);
        drop(Store::open(&missing, &StoreOptions::default()).unwrap());
        assert_eq!(inspect(&missing), DirState::Store);
        drop(Store::open(&missing, &StoreOptions::default()).unwrap());

        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(inspect(&empty), DirState::Empty);

        let files = root.path().join("files");
        std::fs::create_dir(&files).unwrap();
        std::fs::write(files.join("notes.txt"), "mine").unwrap();
        assert_eq!(inspect(&files), DirState::Foreign);
        let err = Store::open(&files, &StoreOptions::default()).err().unwrap();
        assert!(matches!(err, Error::NotOurs { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&files).unwrap().count(), 1, "nothing was written");

        let other = root.path().join("other-rocksdb");
        {
            let mut opts = Options::default();
            opts.create_if_missing(true);
            let db = DB::open(&opts, &other).unwrap();
            db.put(b"k", b"v").unwrap();
        }
        assert_eq!(inspect(&other), DirState::ForeignRocksDb);
        let err = Store::open(&other, &StoreOptions::default()).err().unwrap();
        assert!(err.to_string().contains("RocksDB database of another program"), "{err}");
        assert_eq!(
            DB::list_cf(&Options::default(), &other).unwrap(),
            ["default"],
            "no families added"
        );
    }

    #[test]
    fn committed_records_and_changelog_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            store
                .transact::<_, Error>(|txn| {
                    txn.put(&[1; 16], &seller(1, 1))?;
                    txn.record_change(EntityKind::Seller, ChangeOp::Upsert, &[1; 16], vec!["seller-1".into()]);
                    Ok(())
                })
                .unwrap();
            assert_eq!(store.last_changelog_seq(), 1);
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let got = store.get::<SellerRecord>(&[1; 16]).unwrap().unwrap();
        assert_eq!(got.to_native(), seller(1, 1));
        assert_eq!(store.last_changelog_seq(), 1);
        let changes = store.changes_after(0, 10).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].tags, vec!["seller-1".to_string()]);
    }

    #[test]
    fn truncation_deletes_old_changes_but_keeps_the_newest_and_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            for i in 1..=5u8 {
                store
                    .transact::<_, Error>(|txn| {
                        txn.put(&[i; 16], &seller(i, 1))?;
                        txn.record_change(EntityKind::Seller, ChangeOp::Upsert, &[i; 16], vec![]);
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(store.truncate_changelog(3).unwrap(), 3);
            let seqs =
                |store: &Store| -> Vec<u64> { store.changes_after(0, 10).unwrap().iter().map(|c| c.seq).collect() };
            assert_eq!(seqs(&store), vec![4, 5]);
            assert_eq!(store.truncate_changelog(2).unwrap(), 3, "truncation never goes back");
            // Asking for everything keeps the newest entry.
            assert_eq!(store.truncate_changelog(u64::MAX).unwrap(), 4);
            assert_eq!(seqs(&store), vec![5]);
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.last_changelog_seq(), 5, "the sequence survives a reopen");
        assert_eq!(store.changelog_truncated_through().unwrap(), 4);
        assert_eq!(
            store.get::<SellerRecord>(&[1; 16]).unwrap().unwrap().to_native(),
            seller(1, 1)
        );
    }

    #[test]
    fn a_failed_transaction_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let res: Result<(), Error> = store.transact(|txn| {
            txn.put(&[2; 16], &seller(2, 1))?;
            txn.record_change(EntityKind::Seller, ChangeOp::Upsert, &[2; 16], vec![]);
            Err(Error::InvalidPath("abort".into()))
        });
        assert!(res.is_err());
        assert!(store.get::<SellerRecord>(&[2; 16]).unwrap().is_none());
        assert_eq!(store.last_changelog_seq(), 0);
    }

    #[test]
    fn transactions_read_their_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        store
            .transact::<_, Error>(|txn| {
                txn.put_raw(cf::CF_SLUGS, b"pslug", b"id");
                assert_eq!(txn.get_raw(cf::CF_SLUGS, b"pslug")?, Some(b"id".to_vec()));
                txn.delete(cf::CF_SLUGS, b"pslug");
                assert_eq!(txn.get_raw(cf::CF_SLUGS, b"pslug")?, None);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_second_open_of_the_same_directory_reports_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let err = Store::open(dir.path(), &StoreOptions::default()).err().unwrap();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
    }

    #[test]
    fn listing_scans_page_with_cursors_in_both_directions() {
        use crate::listing::{prefix, ListingFacts, Scope, SortKey};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        store
            .transact::<_, Error>(|txn| {
                for i in 1..=5u8 {
                    let facts = ListingFacts {
                        id: [i; 16],
                        min_price_cents: 100 * (6 - i as i64),
                        rating_x100: 0,
                        seller_id: None,
                        brand: None,
                        category_path: vec![],
                        in_stock: i % 2 == 1,
                    };
                    txn.update_listing(None, Some(&facts));
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(store.listing_count(&Scope::All.encode()).unwrap(), 5);
        let lower = prefix(Scope::All, SortKey::Price);
        let upper = keys::prefix_successor(&lower).unwrap();
        let mut scan = ListingScan {
            lower: &lower,
            upper: &upper,
            cursor: None,
            reverse: false,
            limit: 2,
            max_scanned: 100,
        };
        let ids = |page: &ListingPage| page.items.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let first = store.scan_listing(&scan, |_| true).unwrap();
        assert_eq!(ids(&first), vec![[5; 16], [4; 16]]);
        let cursor = first.next_cursor.unwrap();
        scan.cursor = Some(&cursor);
        let second = store.scan_listing(&scan, |_| true).unwrap();
        assert_eq!(ids(&second), vec![[3; 16], [2; 16]]);
        scan.cursor = None;
        scan.reverse = true;
        let in_stock_desc = store.scan_listing(&scan, |e| e.in_stock).unwrap();
        assert_eq!(ids(&in_stock_desc), vec![[1; 16], [3; 16]]);
    }
}
