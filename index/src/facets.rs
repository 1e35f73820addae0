//! Collectors that count what a results page shows beside the hits: facet values one level
//! below a root, price buckets and rating thresholds, all in the pass that finds the hits.
//!
//! Why not tantivy's `FacetCollector`: it turns every counted ordinal back into a path through
//! the segment's facet dictionary on every search, decompressing dictionary blocks each time;
//! that was half the time of a faceted search. Segments are immutable, so [`SegmentTables`] reads
//! each segment's dictionary, its documents' ordinals and their price, rating and accessory
//! traits once, and later searches count through the cached tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::schema::Facet;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Upper bounds (exclusive, minor units) of the price facet buckets; the last bucket is open.
pub const PRICE_BUCKETS: [i64; 4] = [1_000, 5_000, 20_000, 100_000];

/// Rating facet thresholds (× 100): "4 and up", "3 and up", ...
pub const RATING_BUCKETS: [u64; 4] = [400, 300, 200, 100];

/// Ordinal → path (`/a/b`) of one facet field in one segment.
type PathTable = Arc<[String]>;

/// Which bucket (root, direct child) each ordinal of one segment counts toward, for one list of
/// roots.
struct Buckets {
    bucket_of_ord: Vec<u32>,
    buckets: Vec<(usize, String)>,
}

/// Bucket maps of one segment and field, by their list of roots.
type BucketsByRoots = HashMap<Vec<String>, Arc<Buckets>>;

/// Per-segment ordinal → facet path tables, built once per segment and facet field, and the
/// ordinal → bucket maps built from them, once per segment, field and list of roots (the roots
/// vary only with the category filter and the configured attributes); each document's
/// ordinals and traits, once per segment.
#[derive(Default)]
pub struct SegmentTables {
    tables: Mutex<HashMap<(SegmentId, &'static str), PathTable>>,
    buckets: Mutex<HashMap<(SegmentId, &'static str), BucketsByRoots>>,
    docs: Mutex<HashMap<(SegmentId, &'static str), Arc<DocOrds>>>,
    traits: Mutex<HashMap<SegmentId, Arc<DocTraits>>>,
}

/// One byte per document of a segment: its price bucket (bits 0–2), how many rating
/// thresholds it reaches (bits 3–5) and whether it is an accessory (bit 6). Reading the price,
/// rating and accessory columns for every match cost a fifth of a broad search at 1M products;
/// this costs 1 byte per document.
pub struct DocTraits(Box<[u8]>);

/// The price bucket or rating level of a document without a price or rating.
const NO_LEVEL: u8 = 7;
const ACCESSORY_BIT: u8 = 1 << 6;

impl DocTraits {
    fn read(segment: &SegmentReader) -> tantivy::Result<DocTraits> {
        let fast = segment.fast_fields();
        let (price, rating, accessory) = (
            fast.i64("price_cents")?,
            fast.u64("rating_x100")?,
            fast.u64("accessory")?,
        );
        let traits = (0..segment.max_doc())
            .map(|doc| {
                let price = price.first(doc).map_or(NO_LEVEL, |price| {
                    PRICE_BUCKETS
                        .iter()
                        .position(|upper| price < *upper)
                        .unwrap_or(PRICE_BUCKETS.len()) as u8
                });
                let rating = rating.first(doc).map_or(NO_LEVEL, |rating| {
                    RATING_BUCKETS.iter().filter(|threshold| rating >= **threshold).count() as u8
                });
                let accessory = if accessory.first(doc) == Some(1) {
                    ACCESSORY_BIT
                } else {
                    0
                };
                price | rating << 3 | accessory
            })
            .collect();
        Ok(DocTraits(traits))
    }

    /// Whether the title of `doc` names an accessory.
    pub fn is_accessory(&self, doc: DocId) -> bool {
        self.0[doc as usize] & ACCESSORY_BIT != 0
    }
}

/// Every document's ordinals of one facet field in one segment, in flat arrays. Reading them
/// from the column (through its multi-value index) for each match cost more than the counting
/// itself: at 1M products a broad query counts hundreds of thousands of documents, and then
/// the cost is cache misses, so a field where no document has two values (brand, category)
/// keeps one 2-byte ordinal per document. Otherwise it costs 4 bytes per document and per value.
enum DocOrds {
    /// At most one ordinal per document, [`NO_ORD`] for none.
    Single(Box<[u16]>),
    /// Document `d`'s ordinals are `ords[starts[d]..starts[d + 1]]`.
    Multi { starts: Box<[u32]>, ords: Box<[u32]> },
}

const NO_ORD: u16 = u16::MAX;

impl DocOrds {
    fn read(column: &Column<u64>, max_doc: DocId) -> DocOrds {
        let mut starts = Vec::with_capacity(max_doc as usize + 1);
        let mut ords = Vec::with_capacity(max_doc as usize);
        starts.push(0);
        let mut single = true;
        for doc in 0..max_doc {
            let before = ords.len();
            ords.extend(column.values_for_doc(doc).map(|ord| ord as u32));
            single &= ords.len() - before <= 1;
            starts.push(ords.len() as u32);
        }
        if single && ords.iter().all(|&ord| ord < u32::from(NO_ORD)) {
            let ords = starts
                .windows(2)
                .map(|w| {
                    if w[0] == w[1] {
                        NO_ORD
                    } else {
                        ords[w[0] as usize] as u16
                    }
                })
                .collect();
            return DocOrds::Single(ords);
        }
        DocOrds::Multi {
            starts: starts.into(),
            ords: ords.into(),
        }
    }
}

/// The value of `key` in `map`, built (outside the lock) and kept when missing.
fn cached<K: Eq + std::hash::Hash, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: K,
    build: impl FnOnce() -> tantivy::Result<V>,
) -> tantivy::Result<V> {
    if let Some(found) = map.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let built = build()?;
    map.lock().unwrap_or_else(|p| p.into_inner()).insert(key, built.clone());
    Ok(built)
}

/// Keeps the entries of `map` whose key `keep` accepts.
fn retain_live<K, V>(map: &Mutex<HashMap<K, V>>, keep: impl Fn(&K) -> bool) {
    map.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| keep(k));
}

impl SegmentTables {
    /// Returns the traits of the documents of `segment`.
    pub fn traits(&self, segment: &SegmentReader) -> tantivy::Result<Arc<DocTraits>> {
        cached(&self.traits, segment.segment_id(), || {
            DocTraits::read(segment).map(Arc::new)
        })
    }

    /// Returns the table of `field` in `segment`: entry `ord` is the path (`/a/b`) of ordinal
    /// `ord`.
    fn table(&self, segment: &SegmentReader, field: &'static str, column: &StrColumn) -> tantivy::Result<PathTable> {
        cached(&self.tables, (segment.segment_id(), field), || {
            let mut paths = Vec::with_capacity(column.num_terms());
            let mut stream = column.dictionary().stream()?;
            while stream.advance() {
                let facet = Facet::from_encoded(stream.key().to_vec())
                    .map_err(|e| tantivy::TantivyError::InvalidArgument(e.to_string()))?;
                paths.push(facet.to_string());
            }
            Ok(paths.into())
        })
    }

    /// Returns the ordinal → bucket map of `field` in `segment` for `roots`.
    fn buckets(
        &self,
        segment: &SegmentReader,
        field: &'static str,
        column: &StrColumn,
        roots: &[String],
    ) -> tantivy::Result<Arc<Buckets>> {
        let key = (segment.segment_id(), field);
        if let Some(found) = self
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .and_then(|by_roots| by_roots.get(roots))
        {
            return Ok(found.clone());
        }
        let table = self.table(segment, field, column)?;
        let mut bucket_index: HashMap<(usize, &str), u32> = HashMap::new();
        let mut buckets = Vec::new();
        let bucket_of_ord = table
            .iter()
            .map(|path| {
                roots
                    .iter()
                    .enumerate()
                    .find_map(|(r, root)| child_of(root, path).map(|child| (r, child)))
                    .map_or(NO_BUCKET, |(r, child)| {
                        *bucket_index.entry((r, child)).or_insert_with(|| {
                            buckets.push((r, child.to_owned()));
                            (buckets.len() - 1) as u32
                        })
                    })
            })
            .collect();
        let built = Arc::new(Buckets { bucket_of_ord, buckets });
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .insert(roots.to_vec(), built.clone());
        Ok(built)
    }

    /// Returns the ordinals of each document of `segment` in `field`.
    fn docs(&self, segment: &SegmentReader, field: &'static str, column: &StrColumn) -> tantivy::Result<Arc<DocOrds>> {
        cached(&self.docs, (segment.segment_id(), field), || {
            Ok(Arc::new(DocOrds::read(column.ords(), segment.max_doc())))
        })
    }

    /// Builds the tables of a segment's facet `fields` and traits now, so the first search over
    /// a new segment (after a merge, a whole segment of 1M products) does not pay for them.
    pub fn prepare(&self, segment: &SegmentReader, fields: &[&'static str]) -> tantivy::Result<()> {
        self.traits(segment)?;
        for &field in fields {
            if let Some(column) = segment.fast_fields().str(field)? {
                self.table(segment, field, &column)?;
                self.docs(segment, field, &column)?;
            }
        }
        Ok(())
    }

    /// Drops the tables of segments no longer searched (merged away or deleted).
    pub fn retain(&self, live: &[SegmentId]) {
        retain_live(&self.tables, |(id, _)| live.contains(id));
        retain_live(&self.buckets, |(id, _)| live.contains(id));
        retain_live(&self.docs, |(id, _)| live.contains(id));
        retain_live(&self.traits, |id| live.contains(id));
    }
}

/// Counts, for each root, the documents under each of its direct children (`/audio` under `/`,
/// `/colour/Black` under `/colour`); a document counts once per child.
pub struct FacetCounter<'a> {
    field: &'static str,
    roots: Vec<String>,
    paths: &'a SegmentTables,
}

impl<'a> FacetCounter<'a> {
    /// Counts the children of each root path in the facet field `field`.
    pub fn new(field: &'static str, roots: Vec<String>, paths: &'a SegmentTables) -> FacetCounter<'a> {
        FacetCounter { field, roots, paths }
    }
}

/// Child facet path → count, one map per root (in the order the roots were given).
pub type FacetCounts = Vec<HashMap<String, u64>>;

/// The child of `root` that `path` lies under, if any (`/audio/headphones` under `/` is
/// `/audio`; `/audio` itself is under `/` but not under `/audio`).
fn child_of<'p>(root: &str, path: &'p str) -> Option<&'p str> {
    let rest = if root == "/" {
        path.strip_prefix('/')?
    } else {
        path.strip_prefix(root)?.strip_prefix('/')?
    };
    if rest.is_empty() {
        return None;
    }
    let end = rest.find('/').map_or(path.len(), |i| path.len() - rest.len() + i);
    Some(&path[..end])
}

/// Per-segment state: ordinal → (root, child) bucket, and the counts.
pub struct SegmentFacetCounter {
    roots: usize,
    /// The segment's ordinals and their buckets; `None` when the segment has no such field.
    ords: Option<(Arc<DocOrds>, Arc<Buckets>)>,
    /// Documents with exactly one ordinal (every document, for brand and category), by
    /// ordinal: they need no bucket lookup and no de-duplication while counting.
    by_ord: Vec<u32>,
    /// Documents with several ordinals, by bucket.
    counts: Vec<u64>,
}

const NO_BUCKET: u32 = u32::MAX;

impl Collector for FacetCounter<'_> {
    type Fruit = FacetCounts;
    type Child = SegmentFacetCounter;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentFacetCounter> {
        let Some(column) = segment.fast_fields().str(self.field)? else {
            return Ok(SegmentFacetCounter {
                roots: self.roots.len(),
                ords: None,
                by_ord: Vec::new(),
                counts: Vec::new(),
            });
        };
        let buckets = self.paths.buckets(segment, self.field, &column, &self.roots)?;
        Ok(SegmentFacetCounter {
            roots: self.roots.len(),
            counts: vec![0; buckets.buckets.len()],
            by_ord: vec![0; buckets.bucket_of_ord.len()],
            ords: Some((self.paths.docs(segment, self.field, &column)?, buckets)),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetCounts>) -> tantivy::Result<FacetCounts> {
        let mut total: FacetCounts = vec![HashMap::new(); self.roots.len()];
        for fruit in fruits {
            for (into, from) in total.iter_mut().zip(fruit) {
                for (child, n) in from {
                    *into.entry(child).or_default() += n;
                }
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for SegmentFacetCounter {
    type Fruit = FacetCounts;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some((ords, buckets)) = &self.ords else {
            return;
        };
        let (starts, ords) = match &**ords {
            DocOrds::Single(ords) => {
                let ord = ords[doc as usize];
                if ord != NO_ORD {
                    self.by_ord[ord as usize] += 1;
                }
                return;
            }
            DocOrds::Multi { starts, ords } => (starts, ords),
        };
        let ords = &ords[starts[doc as usize] as usize..starts[doc as usize + 1] as usize];
        if let [ord] = ords {
            self.by_ord[*ord as usize] += 1;
            return;
        }
        // Ordinals come sorted, so a document's paths under one child are adjacent.
        let mut previous = NO_BUCKET;
        for &ord in ords {
            let bucket = buckets.bucket_of_ord[ord as usize];
            if bucket != NO_BUCKET && bucket != previous {
                self.counts[bucket as usize] += 1;
            }
            previous = bucket;
        }
    }

    fn harvest(mut self) -> FacetCounts {
        let mut out: FacetCounts = vec![HashMap::new(); self.roots];
        if let Some((_, buckets)) = &self.ords {
            for (&bucket, &n) in buckets.bucket_of_ord.iter().zip(&self.by_ord) {
                if bucket != NO_BUCKET {
                    self.counts[bucket as usize] += u64::from(n);
                }
            }
            for ((root, child), &n) in buckets.buckets.iter().zip(&self.counts) {
                if n > 0 {
                    out[*root].insert(child.clone(), n);
                }
            }
        }
        out
    }
}

/// Counts price buckets and rating thresholds from the segments' [`DocTraits`].
pub struct BucketCounter<'a>(pub &'a SegmentTables);

/// Bucket counts of one search.
#[derive(Default)]
pub struct BucketCounts {
    /// Documents per [`PRICE_BUCKETS`] bucket, plus the open last one.
    pub prices: [usize; PRICE_BUCKETS.len() + 1],
    /// Documents at or above each [`RATING_BUCKETS`] threshold.
    pub ratings: [usize; RATING_BUCKETS.len()],
}

/// Per-segment state of [`BucketCounter`]: documents per price bucket and per rating level
/// (thresholds reached), [`NO_LEVEL`] included.
pub struct SegmentBuckets {
    traits: Arc<DocTraits>,
    prices: [usize; 8],
    levels: [usize; 8],
}

impl Collector for BucketCounter<'_> {
    type Fruit = BucketCounts;
    type Child = SegmentBuckets;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentBuckets> {
        Ok(SegmentBuckets {
            traits: self.0.traits(segment)?,
            prices: [0; 8],
            levels: [0; 8],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BucketCounts>) -> tantivy::Result<BucketCounts> {
        let mut total = BucketCounts::default();
        for f in fruits {
            for (a, b) in total.prices.iter_mut().zip(f.prices) {
                *a += b;
            }
            for (a, b) in total.ratings.iter_mut().zip(f.ratings) {
                *a += b;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for SegmentBuckets {
    type Fruit = BucketCounts;

    fn collect(&mut self, doc: DocId, _: Score) {
        let traits = self.traits.0[doc as usize];
        self.prices[(traits & 7) as usize] += 1;
        self.levels[(traits >> 3 & 7) as usize] += 1;
    }

    fn harvest(self) -> BucketCounts {
        let mut counts = BucketCounts::default();
        counts.prices.copy_from_slice(&self.prices[..PRICE_BUCKETS.len() + 1]);
        // Thresholds run from the highest down: a document reaching `level` of them counts
        // toward the last `level`.
        let n = RATING_BUCKETS.len();
        for (level, &docs) in self.levels[..=n].iter().enumerate() {
            for rating in &mut counts.ratings[n - level..] {
                *rating += docs;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::child_of;

    #[test]
    fn children_are_one_level_below_the_root() {
        assert_eq!(child_of("/", "/audio/headphones"), Some("/audio"));
        assert_eq!(child_of("/", "/audio"), Some("/audio"));
        assert_eq!(
            child_of("/audio", "/audio/headphones/wireless"),
            Some("/audio/headphones")
        );
        assert_eq!(child_of("/audio", "/audio"), None);
        assert_eq!(child_of("/audio", "/audiobooks/x"), None, "whole segments only");
        assert_eq!(child_of("/colour", "/colour/Black"), Some("/colour/Black"));
    }
}
