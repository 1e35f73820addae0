//! Collectors that count what a results page shows beside the hits: facet values one level
//! below a root, price buckets and rating thresholds, all in the pass that finds the hits.
//!
//! Why not tantivy's `FacetCollector`: it turns every counted ordinal back into a path through
//! the segment's facet dictionary on every search, decompressing dictionary blocks each time;
//! that was half the time of a faceted search. Segments are immutable, so [`FacetPaths`] reads
//! each segment's dictionary once and later searches map ordinals through the cached table.

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
/// vary only with the category filter and the configured attributes).
#[derive(Default)]
pub struct FacetPaths {
    tables: Mutex<HashMap<(SegmentId, &'static str), PathTable>>,
    buckets: Mutex<HashMap<(SegmentId, &'static str), BucketsByRoots>>,
}

impl FacetPaths {
    /// Returns the table of `field` in `segment`: entry `ord` is the path (`/a/b`) of ordinal
    /// `ord`.
    fn table(&self, segment: &SegmentReader, field: &'static str, column: &StrColumn) -> tantivy::Result<PathTable> {
        let key = (segment.segment_id(), field);
        if let Some(table) = self.tables.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(table.clone());
        }
        let mut paths = Vec::with_capacity(column.num_terms());
        let mut stream = column.dictionary().stream()?;
        while stream.advance() {
            let facet = Facet::from_encoded(stream.key().to_vec())
                .map_err(|e| tantivy::TantivyError::InvalidArgument(e.to_string()))?;
            paths.push(facet.to_string());
        }
        let table: PathTable = paths.into();
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, table.clone());
        Ok(table)
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

    /// Drops the tables of segments no longer searched (merged away or deleted).
    pub fn retain(&self, live: &[SegmentId]) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| live.contains(id));
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| live.contains(id));
    }
}

/// Counts, for each root, the documents under each of its direct children (`/audio` under `/`,
/// `/colour/Black` under `/colour`); a document counts once per child.
pub struct FacetCounter<'a> {
    field: &'static str,
    roots: Vec<String>,
    paths: &'a FacetPaths,
}

impl<'a> FacetCounter<'a> {
    /// Counts the children of each root path in the facet field `field`.
    pub fn new(field: &'static str, roots: Vec<String>, paths: &'a FacetPaths) -> FacetCounter<'a> {
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

/// Per-segment state: ordinal → (root, child) bucket, and the bucket counts.
pub struct SegmentFacetCounter {
    roots: usize,
    /// The segment's ordinals and their buckets; `None` when the segment has no such field.
    ords: Option<(Column<u64>, Arc<Buckets>)>,
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
                counts: Vec::new(),
            });
        };
        let buckets = self.paths.buckets(segment, self.field, &column, &self.roots)?;
        Ok(SegmentFacetCounter {
            roots: self.roots.len(),
            counts: vec![0; buckets.buckets.len()],
            ords: Some((column.ords().clone(), buckets)),
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
        // Ordinals come sorted, so a document's paths under one child are adjacent.
        let mut previous = NO_BUCKET;
        for ord in ords.values_for_doc(doc) {
            let bucket = buckets.bucket_of_ord[ord as usize];
            if bucket != NO_BUCKET && bucket != previous {
                self.counts[bucket as usize] += 1;
            }
            previous = bucket;
        }
    }

    fn harvest(self) -> FacetCounts {
        let mut out: FacetCounts = vec![HashMap::new(); self.roots];
        if let Some((_, buckets)) = &self.ords {
            for ((root, child), &n) in buckets.buckets.iter().zip(&self.counts) {
                if n > 0 {
                    out[*root].insert(child.clone(), n);
                }
            }
        }
        out
    }
}

/// Counts price buckets and rating thresholds from fast fields.
pub struct BucketCounter;

/// Bucket counts of one search.
#[derive(Default)]
pub struct BucketCounts {
    /// Documents per [`PRICE_BUCKETS`] bucket, plus the open last one.
    pub prices: [usize; PRICE_BUCKETS.len() + 1],
    /// Documents at or above each [`RATING_BUCKETS`] threshold.
    pub ratings: [usize; RATING_BUCKETS.len()],
}

/// Per-segment state of [`BucketCounter`].
pub struct SegmentBuckets {
    price: Column<i64>,
    rating: Column<u64>,
    counts: BucketCounts,
}

impl Collector for BucketCounter {
    type Fruit = BucketCounts;
    type Child = SegmentBuckets;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentBuckets> {
        Ok(SegmentBuckets {
            price: segment.fast_fields().i64("price_cents")?,
            rating: segment.fast_fields().u64("rating_x100")?,
            counts: BucketCounts::default(),
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
        if let Some(price) = self.price.first(doc) {
            let bucket = PRICE_BUCKETS
                .iter()
                .position(|upper| price < *upper)
                .unwrap_or(PRICE_BUCKETS.len());
            self.counts.prices[bucket] += 1;
        }
        if let Some(rating) = self.rating.first(doc) {
            for (i, threshold) in RATING_BUCKETS.iter().enumerate() {
                if rating >= *threshold {
                    self.counts.ratings[i] += 1;
                }
            }
        }
    }

    fn harvest(self) -> BucketCounts {
        self.counts
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
