//! The product index: one writer, one reader, BM25 with field boosts, typo tolerance, filters,
//! sorts and facet counts.
//!
//! Concurrency: the writer sits behind a mutex and is used by one indexer task; searches go
//! through the reader, which is reloaded explicitly after each commit (`ReloadPolicy::Manual`),
//! so a search always sees a whole committed generation.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::fastfield::FastValue;
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{
    doc, DocAddress, DocId, DocSet, Executor, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, Searcher,
    SegmentReader, TantivyDocument, Term, TERMINATED,
};

use crate::facets::{BucketCounter, FacetCounter, SegmentTables};
pub use crate::facets::{PRICE_BUCKETS, RATING_BUCKETS};
pub use crate::relevance::typo_distance;
use crate::relevance::{synonyms, SegmentTerms, Vocabulary, ACCESSORY_WORDS};
use crate::schema::{product_schema, ProductDoc, ProductFields, TOKENIZER};
use crate::tier::TierQuery;
use crate::Result;

/// Result ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// BM25 relevance.
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Most expensive first.
    PriceDesc,
    /// Best rated first.
    Rating,
    /// Newest first.
    Newest,
}

/// A search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Free text; empty matches everything.
    pub query: String,
    /// Category facet path (`/root/child`), descendants included.
    pub category: Option<String>,
    /// The category the query names (its intent, as a facet path): its products rank higher.
    pub boost_category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Lowest price in minor units.
    pub min_price: Option<i64>,
    /// Highest price in minor units.
    pub max_price: Option<i64>,
    /// Minimum rating × 100.
    pub min_rating_x100: Option<u64>,
    /// Only products in stock.
    pub in_stock: bool,
    /// `attr.<name>=<value>` filters.
    pub attributes: Vec<(String, String)>,
    /// Attribute names to count values of.
    pub facet_attributes: Vec<String>,
    /// Ordering.
    pub sort: SortOrder,
    /// Results to skip.
    pub offset: usize,
    /// Results to return.
    pub limit: usize,
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Product id.
    pub id: String,
    /// Relevance score (0 for non-relevance sorts).
    pub score: f32,
    /// Whether the product was in stock when indexed.
    pub in_stock: bool,
}

/// Results with facet counts over the whole filtered result set.
#[derive(Debug, Clone, Default)]
pub struct SearchResults {
    /// Matching documents.
    pub total: usize,
    /// The requested page.
    pub hits: Vec<SearchHit>,
    /// Category facet counts: `(facet path, count)` one level below the filter (or the roots).
    pub categories: Vec<(String, u64)>,
    /// Brand counts.
    pub brands: Vec<(String, u64)>,
    /// Price buckets `(from, to exclusive or None, count)`.
    pub prices: Vec<(i64, Option<i64>, usize)>,
    /// Ratings `(at least × 100, count)`.
    pub ratings: Vec<(u64, usize)>,
    /// Attribute value counts per requested attribute.
    pub attributes: Vec<(String, Vec<(String, u64)>)>,
}

/// Score factor applied to accessories when the query names no accessory.
pub const ACCESSORY_DEMOTION: f32 = 0.6;

/// Score added to products in the category the query names. About two strong title-word
/// matches: a notebook outranks a "laptop cooler" for "laptop", but a product in the category
/// that matches the words poorly does not outrank good matches elsewhere. It stays far below
/// [`WORD_TIER`], so it never beats a product that matches more of the words.
const CATEGORY_INTENT_BOOST: f32 = 80.0;

/// Field weight of the product type the catalog declares. Few products declare one, so BM25's
/// average length for the field is far below one word and each match scores about a quarter
/// of a title match of the same word; this weight puts a declared "Notebook" about level with
/// the word in a title, so "laptop" finds the products the catalog calls notebooks, not just
/// the shortest titles that mention one.
const DECLARED_TYPE_WEIGHT: f32 = 13.0;

/// Weight of a synonym match relative to the word itself.
const SYNONYM_WEIGHT: f32 = 0.6;

/// Weight of a joined pair ("head set" → "headset") relative to the word itself: a guess at
/// what the shopper meant, so it counts like a correction, below the words as typed.
const JOINED_PAIR_WEIGHT: f32 = 0.5;

/// Weight of a spelling correction relative to the word itself.
const CORRECTION_WEIGHT: f32 = 0.8;

/// A query as [`ProductIndex::parse`] reads it.
struct ParsedQuery {
    /// Stems of the typed words.
    words: Vec<String>,
    /// Per word: the weighted terms that count as a match for it.
    alternatives: Vec<Vec<(String, f32)>>,
    /// Per word: its best correction, or the stem itself.
    corrected: Vec<String>,
}

/// Score added per matched query word under relaxed matching; above any BM25 score, so more
/// matched words always rank first.
const WORD_TIER: f32 = 10_000.0;

/// The facet fields a results page counts: category, brand and attributes.
const FACET_FIELDS: [&str; 3] = ["category", "brand_facet", "attributes"];

/// Lower-cases and splits like the index tokenizer, without stemming: spelling corrections
/// work on what the shopper typed.
const RAW_TOKENIZER: &str = "raw_lower";

/// The product index.
pub struct ProductIndex {
    index: Index,
    fields: ProductFields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    /// Terms of the corrected fields, rebuilt after each commit (readers clone the `Arc`).
    vocabulary: RwLock<Arc<Vocabulary>>,
    /// Whether `open` found an index of an older schema and started an empty one.
    recreated: bool,
    /// Facet and trait tables of the searched segments.
    segment_tables: Arc<SegmentTables>,
    /// Correction terms of the searched segments.
    segment_terms: Mutex<HashMap<SegmentId, Arc<SegmentTerms>>>,
    /// The pool that searches the segments of a large index side by side, and the size (in
    /// documents) from which it is used.
    spread: Option<(Executor, u64)>,
}

/// When one search runs over several segments at once. A large catalog has several large
/// segments, and a broad query there (tens of thousands of matches at 1M products, each
/// counted into the facets) takes about 1 / `threads` of the time on an idle machine; under
/// full load the cores are busy either way. A small index gains nothing and pays for the
/// hand-offs, so it is searched on the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Threads of the pool; 0 or 1 means no pool.
    pub threads: usize,
    /// Index size (documents) from which searches use the pool.
    pub from_documents: u64,
}

impl Default for Spread {
    fn default() -> Spread {
        Spread {
            threads: 1,
            from_documents: u64::MAX,
        }
    }
}

/// Words that are units, colours or glue rather than a product type.
const NOT_A_TYPE: &[&str] = &[
    "for", "with", "and", "in", "of", "to", "the", "a", "an", "on", "or", "by", "from", "x", "cm", "mm", "m", "pixels",
    "pages", "dpi", "ppm", "gb", "mb", "tb", "pc", "pcs", "inch", "w", "ft", "gen", "ml", "kg", "g", "black", "white",
    "grey", "gray", "silver", "blue", "red", "green", "yellow", "magenta", "cyan", "pink", "over", "sheets", "born",
    "v", "mah", "wh", "hz", "ghz", "mhz", "lbs", "lb", "oz",
];

/// The product type a title names: its first run of lower-case words after the brand
/// ("Lenovo 06P4069 mouse USB" → "mouse"), or `None`. Icecat-style titles put the type there,
/// after brand and model and before the specifications; titles without one simply get no
/// type match.
fn product_type(title: &str) -> Option<String> {
    let mut run: Vec<&str> = Vec::new();
    for (k, token) in title.split_whitespace().enumerate() {
        let w = token.trim_matches(|c: char| ",.;:()[]\"'".contains(c));
        let lower_word = w.len() >= 2
            && w.chars().all(|c| c.is_ascii_lowercase() || c == '/' || c == '-')
            && w.starts_with(|c: char| c.is_ascii_lowercase())
            && !NOT_A_TYPE.contains(&w);
        if k > 0 && lower_word {
            run.push(w);
        } else if !run.is_empty() {
            break;
        }
    }
    (!run.is_empty()).then(|| run.join(" "))
}

fn facet_segment(s: &str) -> String {
    // Facet path segments cannot contain '/'.
    s.replace('/', "-")
}

impl ProductIndex {
    /// Opens the index in `dir` (created if needed), or an in-memory index when `None`; each
    /// search runs on the calling thread.
    pub fn open(dir: Option<&Path>, writer_memory_bytes: usize) -> Result<ProductIndex> {
        ProductIndex::open_with(dir, writer_memory_bytes, Spread::default())
    }

    /// Like [`ProductIndex::open`], with large searches spread over the segments as `spread`
    /// says.
    pub fn open_with(dir: Option<&Path>, writer_memory_bytes: usize, spread: Spread) -> Result<ProductIndex> {
        let (schema, fields) = product_schema();
        let mut recreated = false;
        let index = match dir {
            Some(path) => {
                std::fs::create_dir_all(path)?;
                match Index::open_or_create(MmapDirectory::open(path)?, schema.clone()) {
                    Ok(index) => index,
                    // An index written with an older schema is derived data: start it afresh
                    // and let the owner rebuild it from storage.
                    Err(tantivy::TantivyError::SchemaError(_)) => {
                        std::fs::remove_dir_all(path)?;
                        std::fs::create_dir_all(path)?;
                        recreated = true;
                        Index::create_in_dir(path, schema)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => Index::create_in_ram(schema),
        };
        index.tokenizers().register(
            RAW_TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .build(),
        );
        let writer = index.writer(writer_memory_bytes.max(15_000_000))?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let this = ProductIndex {
            index,
            fields,
            writer: Mutex::new(writer),
            reader,
            vocabulary: RwLock::new(Arc::new(Vocabulary::default())),
            recreated,
            segment_tables: Arc::default(),
            segment_terms: Mutex::new(HashMap::new()),
            spread: match spread.threads {
                0 | 1 => None,
                n => Some((Executor::multi_thread(n, "search-segments-")?, spread.from_documents)),
            },
        };
        this.refresh_segment_caches()?;
        Ok(this)
    }

    /// Returns whether `open` replaced an index written with an older schema by an empty one
    /// (the caller should rebuild it).
    pub fn recreated(&self) -> bool {
        self.recreated
    }

    /// Returns the changelog sequence recorded by the last commit (0 for a new index).
    pub fn applied_seq(&self) -> Result<u64> {
        Ok(self
            .index
            .load_metas()?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0))
    }

    fn to_document(&self, p: &ProductDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut d = doc!(
            f.id => p.id.clone(),
            f.title => p.title.clone(),
            f.product_type => p.product_type.clone().or_else(|| product_type(&p.title)).unwrap_or_default(),
            f.description => p.description.clone(),
            f.price_cents => p.price_cents,
            f.rating_x100 => p.rating_x100,
            f.in_stock => p.in_stock as u64,
            f.created_at_ms => p.created_at_ms,
            f.seller => p.seller.clone().unwrap_or_default(),
        );
        if let Some(t) = &p.product_type {
            d.add_text(f.declared_type, t);
        }
        if let Some(brand) = &p.brand {
            d.add_text(f.brand, brand);
            d.add_facet(f.brand_facet, Facet::from_path([facet_segment(brand)]));
        }
        if !p.category_path.is_empty() {
            d.add_facet(
                f.category,
                Facet::from_path(p.category_path.iter().map(|(slug, _)| facet_segment(slug))),
            );
            let names: Vec<&str> = p.category_path.iter().map(|(_, name)| name.as_str()).collect();
            d.add_text(f.category_text, names.join(" "));
        }
        let mut attribute_text = String::new();
        for (name, value, facetable) in &p.attributes {
            attribute_text.push_str(value);
            attribute_text.push(' ');
            if *facetable {
                d.add_facet(
                    f.attributes,
                    Facet::from_path([facet_segment(name), facet_segment(value)]),
                );
            }
        }
        d.add_text(f.attributes_text, attribute_text);
        // "Sleeve for laptop", "Cooler for notebooks": a title that says what it is *for* names
        // an accessory, whatever the accessory is called.
        let lower = p.title.to_lowercase();
        let for_something = lower.contains(" for ") || lower.contains(" voor ");
        let accessory = for_something
            || self
                .analyze(&p.title)
                .iter()
                .any(|w| ACCESSORY_WORDS.contains(&w.as_str()));
        d.add_u64(f.accessory, accessory as u64);
        d
    }

    /// Adds or replaces documents (not visible until [`ProductIndex::commit`]).
    pub fn upsert(&self, docs: &[ProductDoc]) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for p in docs {
            writer.delete_term(Term::from_field_text(self.fields.id, &p.id));
            writer.add_document(self.to_document(p))?;
        }
        Ok(())
    }

    /// Adds documents that are not in the index, as after [`ProductIndex::clear`] (not
    /// visible until [`ProductIndex::commit`]). Unlike [`ProductIndex::upsert`] it queues no
    /// delete per document: in a rebuild of 19k products those queued deletes held 22 MB.
    pub fn add(&self, docs: &[ProductDoc]) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for p in docs {
            writer.add_document(self.to_document(p))?;
        }
        Ok(())
    }

    /// Removes a document (not visible until [`ProductIndex::commit`]).
    pub fn delete(&self, id: &str) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        writer.delete_term(Term::from_field_text(self.fields.id, id));
    }

    /// Removes every document (for a rebuild).
    pub fn clear(&self) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        writer.delete_all_documents()?;
        Ok(())
    }

    /// Commits pending changes, recording `applied_seq`, and makes them searchable.
    pub fn commit(&self, applied_seq: u64) -> Result<()> {
        {
            let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&applied_seq.to_string());
            prepared.commit()?;
        }
        self.reader.reload()?;
        self.refresh_segment_caches()
    }

    /// Publishes the correction vocabulary of the searched segments, reading the terms of
    /// segments not seen before (a commit usually adds one small segment), and forgets the
    /// terms and facet tables of segments no longer searched.
    fn refresh_segment_caches(&self) -> Result<()> {
        let searcher = self.reader.searcher();
        let mut known = self.segment_terms.lock().unwrap_or_else(|p| p.into_inner());
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            let terms = match known.get(&segment.segment_id()) {
                Some(terms) => terms.clone(),
                None => {
                    self.segment_tables.prepare(segment, &FACET_FIELDS)?;
                    let terms = Arc::new(self.segment_terms(segment)?);
                    known.insert(segment.segment_id(), terms.clone());
                    terms
                }
            };
            segments.push(terms);
        }
        let live: Vec<SegmentId> = searcher.segment_readers().iter().map(|s| s.segment_id()).collect();
        known.retain(|id, _| live.contains(id));
        self.segment_tables.retain(&live);
        *self.vocabulary.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Vocabulary::from_segments(segments));
        Ok(())
    }

    fn segment_terms(&self, segment: &SegmentReader) -> Result<SegmentTerms> {
        let f = &self.fields;
        let terms_of = |fields: &[Field]| -> Result<HashMap<String, u64>> {
            let mut terms: HashMap<String, u64> = HashMap::new();
            for field in fields {
                let inverted = segment.inverted_index(*field)?;
                let mut stream = inverted.terms().stream()?;
                while stream.advance() {
                    if let Ok(term) = std::str::from_utf8(stream.key()) {
                        *terms.entry(term.to_owned()).or_default() += stream.value().doc_freq as u64;
                    }
                }
            }
            Ok(terms)
        };
        Ok(SegmentTerms::new(
            terms_of(&[f.title, f.brand, f.category_text])?,
            terms_of(&[f.attributes_text])?,
        ))
    }

    /// Returns the number of searchable documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn analyze(&self, text: &str) -> Vec<String> {
        self.tokens(TOKENIZER, text)
    }

    fn tokens(&self, tokenizer: &str, text: &str) -> Vec<String> {
        let mut tokenizer = self.index.tokenizers().get(tokenizer).expect("registered at open");
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// Reads the shopper's words once per search: each word's stem, and the terms it may match
    /// as (itself, synonyms, spelling corrections, a joined pair with its neighbour), weighted.
    fn parse(&self, text: &str) -> ParsedQuery {
        let vocabulary = self.vocabulary.read().unwrap_or_else(|p| p.into_inner()).clone();
        let typed = self.tokens(RAW_TOKENIZER, text);
        let words: Vec<String> = typed.iter().map(|w| vocabulary.stem(w).into_owned()).collect();
        // "head set" also matches "headset": the joined pair, when the index knows it, counts
        // as a match for both of its words (so requiring every word still finds it).
        let joined: Vec<String> = typed
            .windows(2)
            .map(|pair| vocabulary.stem(&format!("{}{}", pair[0], pair[1])).into_owned())
            .collect();
        let mut alternatives = Vec::with_capacity(words.len());
        let mut corrected = Vec::with_capacity(words.len());
        for (i, (word, typed)) in words.iter().zip(&typed).enumerate() {
            // Each word may match as itself, as a synonym, or (if it is not a known word) as its
            // spelling corrections, each scored by BM25 and weighted below exact.
            let corrections = vocabulary.corrections(typed, 3);
            corrected.push(corrections.first().map_or(word, |c| &c.stem).clone());
            let mut terms = vec![(word.clone(), 1.0)];
            terms.extend(synonyms(word).map(|s| (s.to_owned(), SYNONYM_WEIGHT)));
            for c in corrections {
                // A misspelled "latpop" finds notebooks as "laptop" would.
                terms.extend(synonyms(&c.stem).map(|s| (s.to_owned(), CORRECTION_WEIGHT * SYNONYM_WEIGHT)));
                terms.push((c.stem, CORRECTION_WEIGHT));
            }
            for j in [i.wrapping_sub(1), i] {
                if let Some(pair) = joined.get(j).filter(|p| vocabulary.contains(p)) {
                    terms.push((pair.clone(), JOINED_PAIR_WEIGHT));
                    terms.extend(synonyms(pair).map(|s| (s.to_owned(), JOINED_PAIR_WEIGHT * SYNONYM_WEIGHT)));
                }
            }
            alternatives.push(terms);
        }
        ParsedQuery {
            words,
            alternatives,
            corrected,
        }
    }

    /// The query as the shopper probably meant it: each word the index does not know replaced
    /// by its correction as spelled ("latpop stand" → "laptop stand"), or `None` when no word
    /// got one. Lets callers read meaning (such as a category) from a misspelled query, so only
    /// unambiguous corrections count: "vnas" could be "nas" or "vans" and stays as typed.
    pub fn respelled(&self, text: &str) -> Option<String> {
        let vocabulary = self.vocabulary.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut changed = false;
        let words: Vec<String> = self
            .tokens(RAW_TOKENIZER, text)
            .into_iter()
            .map(|typed| match vocabulary.corrections(&typed, 2).as_mut_slice() {
                [c] => {
                    changed = true;
                    std::mem::take(&mut c.spelled)
                }
                _ => typed,
            })
            .collect();
        changed.then(|| words.join(" "))
    }

    /// Builds the relevance part: per word, exact matches in each field (boosted by field) or
    /// its alternatives (scored lower); plus a boost when the words appear together in the
    /// title. `every_word` requires each word; otherwise products rank by matched words first.
    fn text_query(&self, parsed: &ParsedQuery, every_word: bool) -> Box<dyn Query> {
        let f = &self.fields;
        if parsed.words.is_empty() {
            return Box::new(AllQuery);
        }
        let weighted = [
            (f.title, 5.0f32),
            (f.declared_type, DECLARED_TYPE_WEIGHT),
            (f.brand, 2.0),
            (f.category_text, 1.5),
            (f.product_type, 1.0),
            (f.attributes_text, 0.6),
            (f.description, 0.5),
        ];
        let word_query = |terms: &[(String, f32)]| -> Box<dyn Query> {
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (term, weight) in terms {
                for (field, boost) in weighted {
                    let t = Term::from_field_text(field, term);
                    alternatives.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)),
                            boost * weight,
                        )),
                    ));
                }
            }
            Box::new(BooleanQuery::new(alternatives))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for terms in &parsed.alternatives {
            if every_word {
                clauses.push((Occur::Must, word_query(terms)));
            } else {
                // Relaxed matching ranks by how many query words a product matches first
                // (each matched word adds a tier), then by BM25 within a tier.
                clauses.push((Occur::Should, Box::new(TierQuery::new(word_query(terms), WORD_TIER))));
            }
        }
        if parsed.corrected.len() > 1 {
            // Products whose title holds the words together rank first.
            let terms: Vec<Term> = parsed
                .corrected
                .iter()
                .map(|w| Term::from_field_text(f.title, w))
                .collect();
            let mut phrase = PhraseQuery::new(terms);
            phrase.set_slop(2);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(phrase), 4.0))));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    fn filters(&self, req: &SearchRequest, skip_category: bool) -> Vec<(Occur, Box<dyn Query>)> {
        let f = &self.fields;
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let filter =
            |q: Box<dyn Query>| -> (Occur, Box<dyn Query>) { (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0))) };
        if let (Some(c), false) = (&req.category, skip_category) {
            if let Ok(facet) = Facet::from_text(c) {
                out.push(filter(Box::new(TermQuery::new(
                    Term::from_facet(f.category, &facet),
                    IndexRecordOption::Basic,
                ))));
            }
        }
        if let Some(b) = &req.brand {
            let facet = Facet::from_path([facet_segment(b)]);
            out.push(filter(Box::new(TermQuery::new(
                Term::from_facet(f.brand_facet, &facet),
                IndexRecordOption::Basic,
            ))));
        }
        if req.min_price.is_some() || req.max_price.is_some() {
            let lo = req
                .min_price
                .map(|v| Bound::Included(Term::from_field_i64(f.price_cents, v)))
                .unwrap_or(Bound::Unbounded);
            let hi = req
                .max_price
                .map(|v| Bound::Included(Term::from_field_i64(f.price_cents, v)))
                .unwrap_or(Bound::Unbounded);
            out.push(filter(Box::new(RangeQuery::new(lo, hi))));
        }
        if let Some(r) = req.min_rating_x100 {
            out.push(filter(Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_u64(f.rating_x100, r)),
                Bound::Unbounded,
            ))));
        }
        if req.in_stock {
            out.push(filter(Box::new(TermQuery::new(
                Term::from_field_u64(f.in_stock, 1),
                IndexRecordOption::Basic,
            ))));
        }
        for (name, value) in &req.attributes {
            let facet = Facet::from_path([facet_segment(name), facet_segment(value)]);
            out.push(filter(Box::new(TermQuery::new(
                Term::from_facet(f.attributes, &facet),
                IndexRecordOption::Basic,
            ))));
        }
        out
    }

    fn combined(
        &self,
        req: &SearchRequest,
        parsed: &ParsedQuery,
        every_word: bool,
        extra: Vec<(Occur, Box<dyn Query>)>,
    ) -> BooleanQuery {
        let mut clauses = vec![(Occur::Must, self.text_query(parsed, every_word))];
        if let Some(facet) = req.boost_category.as_deref().and_then(|c| Facet::from_text(c).ok()) {
            let in_category = TermQuery::new(Term::from_facet(self.fields.category, &facet), IndexRecordOption::Basic);
            clauses.push((
                Occur::Should,
                Box::new(ConstScoreQuery::new(Box::new(in_category), CATEGORY_INTENT_BOOST)),
            ));
        }
        clauses.extend(self.filters(req, false));
        clauses.extend(extra);
        BooleanQuery::new(clauses)
    }

    /// Runs a search.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        let searcher = self.reader.searcher();
        // Every query word must match (as itself, a synonym or a correction) when that fills a
        // page (the page size, not the offset, decides, so every page of one listing agrees on
        // the result set); otherwise matching relaxes to any word, ranked by how many words match
        // first, so a query never comes back empty (or one result short of a page) just because
        // one word is rare or unknown.
        let parsed = self.parse(&req.query);
        let mut query = self.combined(req, &parsed, true, Vec::new());
        if !matches_at_least(&searcher, &query, req.limit.max(1))? {
            query = self.combined(req, &parsed, false, Vec::new());
        }
        let limit = req.limit.max(1);
        // Accessories sink unless the shopper asked for one, even misspelled ("laptop caes").
        let words = &parsed.words;
        let demote_accessories = !words.is_empty()
            && !words
                .iter()
                .chain(&parsed.corrected)
                .any(|w| ACCESSORY_WORDS.contains(&w.as_str()));
        let category_root = req.category.clone().unwrap_or_else(|| "/".to_string());
        let attribute_roots: Vec<String> = req
            .facet_attributes
            .iter()
            .map(|name| format!("/{}", facet_segment(name)))
            .collect();
        let [category, brand, attribute] = FACET_FIELDS;
        let category_facets = FacetCounter::new(category, vec![category_root], &self.segment_tables);
        let brand_facets = FacetCounter::new(brand, vec!["/".to_owned()], &self.segment_tables);
        let attribute_facets = FacetCounter::new(attribute, attribute_roots, &self.segment_tables);
        // PERF: the pass that finds the page also counts the total, price and rating buckets
        // (fast fields) and facets.
        let summary = (
            (Count, BucketCounter(&self.segment_tables)),
            category_facets,
            brand_facets,
            attribute_facets,
        );
        let (hits, ((total, buckets), categories, brands, attributes)) = self.top(
            &searcher,
            &query,
            req.sort,
            (req.offset, limit),
            demote_accessories,
            summary,
        )?;
        let sorted = |counts: HashMap<String, u64>| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = counts.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        let prices = PRICE_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, upper)| {
                (
                    if i == 0 { 0 } else { PRICE_BUCKETS[i - 1] },
                    Some(*upper),
                    buckets.prices[i],
                )
            })
            .chain([(
                PRICE_BUCKETS[PRICE_BUCKETS.len() - 1],
                None,
                buckets.prices[PRICE_BUCKETS.len()],
            )])
            .collect();
        let ratings = RATING_BUCKETS
            .iter()
            .zip(buckets.ratings)
            .map(|(r, n)| (*r, n))
            .collect();
        Ok(SearchResults {
            total,
            hits,
            categories: categories.into_iter().next().map(sorted).unwrap_or_default(),
            brands: brands.into_iter().next().map(sorted).unwrap_or_default(),
            prices,
            ratings,
            attributes: req
                .facet_attributes
                .iter()
                .zip(attributes)
                .map(|(name, counts)| {
                    let values = sorted(counts)
                        .into_iter()
                        .map(|(path, n)| (path.rsplit('/').next().unwrap_or("").to_owned(), n))
                        .collect();
                    (name.clone(), values)
                })
                .collect(),
        })
    }

    /// Runs `collector` over `query`, on the segment pool when the index is large enough.
    fn collect<C: Collector>(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        match &self.spread {
            Some((pool, from)) if searcher.num_docs() >= *from => {
                let scoring = if collector.requires_scoring() {
                    EnableScoring::enabled_from_searcher(searcher)
                } else {
                    EnableScoring::disabled_from_searcher(searcher)
                };
                searcher.search_with_executor(query, collector, pool, scoring)
            }
            _ => searcher.search(query, collector),
        }
    }

    /// Finds the requested page in `sort` order and, in the same pass, runs `summary` over
    /// every match.
    fn top<S: Collector>(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        sort: SortOrder,
        (offset, limit): (usize, usize),
        demote_accessories: bool,
        summary: S,
    ) -> Result<(Vec<SearchHit>, S::Fruit)> {
        let collector = TopDocs::with_limit(limit).and_offset(offset);
        let (addresses, fruit): (ScoredPage, S::Fruit) = match sort {
            SortOrder::Relevance if demote_accessories => {
                let tables = self.segment_tables.clone();
                self.collect(
                    searcher,
                    query,
                    &(
                        collector.tweak_score(move |segment: &SegmentReader| {
                            let traits = tables.traits(segment).ok();
                            move |doc: DocId, score: Score| match &traits {
                                Some(traits) if traits.is_accessory(doc) => {
                                    let tiers = (score / WORD_TIER).floor() * WORD_TIER;
                                    tiers + (score - tiers) * ACCESSORY_DEMOTION
                                }
                                _ => score,
                            }
                        }),
                        summary,
                    ),
                )?
            }
            SortOrder::Relevance => self.collect(searcher, query, &(collector, summary))?,
            SortOrder::PriceAsc => {
                by_fast_field::<i64, S>(self, searcher, query, collector, "price_cents", Order::Asc, summary)?
            }
            SortOrder::PriceDesc => {
                by_fast_field::<i64, S>(self, searcher, query, collector, "price_cents", Order::Desc, summary)?
            }
            SortOrder::Rating => {
                by_fast_field::<u64, S>(self, searcher, query, collector, "rating_x100", Order::Desc, summary)?
            }
            SortOrder::Newest => {
                by_fast_field::<i64, S>(self, searcher, query, collector, "created_at_ms", Order::Desc, summary)?
            }
        };
        let hits = addresses
            .into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let id = doc
                    .get_first(self.fields.id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let in_stock = doc.get_first(self.fields.in_stock).and_then(|v| v.as_u64()) == Some(1);
                Ok(SearchHit { id, score, in_stock })
            })
            .collect::<Result<_>>()?;
        Ok((hits, fruit))
    }
}

/// A page of hits with their scores.
type ScoredPage = Vec<(f32, DocAddress)>;

/// Whether `query` matches at least `n` live documents. It stops at the `n`-th: counting
/// every match of a broad query at 1M products cost as much as the search itself.
fn matches_at_least(searcher: &Searcher, query: &dyn Query, n: usize) -> tantivy::Result<bool> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut found = 0;
    for segment in searcher.segment_readers() {
        let mut docs = weight.scorer(segment, 1.0)?;
        let alive = segment.alive_bitset();
        let mut doc = docs.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                found += 1;
                if found >= n {
                    return Ok(true);
                }
            }
            doc = docs.advance();
        }
    }
    Ok(false)
}

/// Finds a page ordered by a fast field (scores are not computed: hits get 0) and runs
/// `summary` in the same pass.
fn by_fast_field<T: FastValue, S: Collector>(
    index: &ProductIndex,
    searcher: &Searcher,
    query: &dyn Query,
    top: TopDocs,
    field: &str,
    order: Order,
    summary: S,
) -> tantivy::Result<(ScoredPage, S::Fruit)> {
    let (page, fruit) = index.collect(searcher, query, &(top.order_by_fast_field::<T>(field, order), summary))?;
    Ok((page.into_iter().map(|(_, a)| (0.0, a)).collect(), fruit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(
        id: &str,
        title: &str,
        brand: &str,
        category: &[(&str, &str)],
        price: i64,
        in_stock: bool,
    ) -> ProductDoc {
        ProductDoc {
            id: id.into(),
            title: title.into(),
            brand: Some(brand.into()),
            category_path: category.iter().map(|(s, n)| (s.to_string(), n.to_string())).collect(),
            description: String::new(),
            product_type: None,
            attributes: vec![(
                "colour".into(),
                if price % 2 == 0 { "Black" } else { "White" }.into(),
                true,
            )],
            price_cents: price,
            rating_x100: (price % 500) as u64,
            in_stock,
            created_at_ms: price,
            seller: None,
        }
    }

    fn sample() -> ProductIndex {
        let index = ProductIndex::open(None, 15_000_000).unwrap();
        let audio = [("audio", "Audio"), ("headphones", "Headphones")];
        let printing = [("printing", "Printing"), ("toner", "Toner")];
        index
            .upsert(&[
                product(
                    "1",
                    "Sennheiser wireless headphones",
                    "Sennheiser",
                    &audio,
                    12_000,
                    true,
                ),
                product("2", "Sony noise cancelling headphones", "Sony", &audio, 25_001, false),
                product("3", "HP LaserJet toner cartridge black", "HP", &printing, 4_500, true),
                product(
                    "4",
                    "Brother TN-2110 toner cartridge",
                    "Brother",
                    &printing,
                    3_999,
                    true,
                ),
                product(
                    "5",
                    "Sennheiser headphone cable",
                    "Sennheiser",
                    &[("audio", "Audio")],
                    900,
                    true,
                ),
            ])
            .unwrap();
        index.commit(42).unwrap();
        index
    }

    /// An in-memory index holding `docs`, committed.
    fn index_of(docs: &[ProductDoc]) -> ProductIndex {
        let index = ProductIndex::open(None, 15_000_000).unwrap();
        index.upsert(docs).unwrap();
        index.commit(1).unwrap();
        index
    }

    /// A plain text search of one page.
    fn query(index: &ProductIndex, text: &str, limit: usize) -> SearchResults {
        index
            .search(&SearchRequest {
                query: text.into(),
                limit,
                ..Default::default()
            })
            .unwrap()
    }

    fn ids(results: &SearchResults) -> Vec<&str> {
        results.hits.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn words_in_the_title_rank_first_and_commits_record_the_sequence() {
        let index = sample();
        assert_eq!(index.applied_seq().unwrap(), 42);
        let r = query(&index, "toner cartridge", 10);
        assert_eq!(r.total, 2);
        assert!(ids(&r).contains(&"3") && ids(&r).contains(&"4"));
    }

    #[test]
    fn every_word_must_match_unless_that_leaves_the_page_short() {
        let index = sample();
        // One result fills a one-result page: only the product with both words.
        let both = query(&index, "sennheiser wireless", 1);
        assert_eq!(ids(&both), vec!["1"]);
        assert_eq!(both.total, 1);
        // A longer page relaxes to any word, but products with both words still come first.
        let relaxed = query(&index, "sennheiser wireless", 10);
        assert_eq!(ids(&relaxed), vec!["1", "5"]);
        // More matched words outrank a better BM25 score.
        let long = "gizmo with a frobnicator and a great many other words that dilute the title";
        let tiers = index_of(&[
            product("both", long, "Acme", &[("misc", "Misc")], 100, true),
            product(
                "one",
                "Frobnicator",
                "Frobnicator",
                &[("frob", "Frobnicator")],
                100,
                true,
            ),
        ]);
        let ranked = query(&tiers, "frobnicator gizmo", 10);
        assert_eq!(ids(&ranked), vec!["both", "one"]);
        // No product has "sony" and "toner": any-word matching takes over instead of nothing.
        let either = query(&index, "sony toner", 10);
        assert_eq!(either.total, 3, "{:?}", ids(&either));
    }

    #[test]
    fn the_product_type_is_the_first_lower_case_run_after_the_brand() {
        assert_eq!(
            product_type("Lenovo 06P4069 mouse USB Type-A").as_deref(),
            Some("mouse")
        );
        assert_eq!(
            product_type("C2G 10 ft Cat5e networking cable 3 m Blue").as_deref(),
            Some("networking cable"),
            "units are not types"
        );
        assert_eq!(
            product_type("Samsung EF-PG770 mobile phone case 17 cm").as_deref(),
            Some("mobile phone case")
        );
        assert_eq!(product_type("HP Compaq 6530b Notebook PC"), None);
    }

    #[test]
    fn an_index_of_an_older_schema_is_recreated_empty() {
        let dir = std::env::temp_dir().join(format!("sf-index-schema-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            let mut builder = tantivy::schema::Schema::builder();
            let title = builder.add_text_field("title", tantivy::schema::TEXT);
            let old = Index::create_in_dir(&dir, builder.build()).unwrap();
            let mut writer: IndexWriter = old.writer(15_000_000).unwrap();
            writer.add_document(doc!(title => "old")).unwrap();
            writer.commit().unwrap();
        }
        let index = ProductIndex::open(Some(&dir), 15_000_000).unwrap();
        assert!(index.recreated());
        assert_eq!(index.num_docs(), 0);
        drop(index);
        let reopened = ProductIndex::open(Some(&dir), 15_000_000).unwrap();
        assert!(!reopened.recreated(), "the same schema opens as it is");
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn titles_that_say_what_they_are_for_count_as_accessories() {
        // Without the demotion the shorter title would win on BM25 length normalisation.
        let index = index_of(&[
            product("1", "Cooling fan for notebook", "Acme", &[], 1_000, true),
            product(
                "2",
                "Acme Notebook 14 inch with Intel processor and 8 GB memory",
                "Acme",
                &[],
                90_000,
                true,
            ),
        ]);
        let r = query(&index, "notebook", 10);
        assert_eq!(ids(&r), vec!["2", "1"]);
    }

    #[test]
    fn one_typo_still_finds_the_product_but_model_codes_must_be_exact() {
        let index = sample();
        let clean = query(&index, "headphones", 10);
        let typo = query(&index, "haedphones", 10);
        assert_eq!(
            ids(&clean)[..2].iter().collect::<std::collections::HashSet<_>>(),
            ids(&typo)[..2].iter().collect()
        );
        assert_eq!(typo_distance("tn2110"), 0);
        assert_eq!(typo_distance("cable"), 1);
        assert_eq!(typo_distance("headphones"), 2);
    }

    #[test]
    fn a_misspelled_query_reads_as_its_corrections() {
        let index = sample();
        assert_eq!(
            index.respelled("Sennheiser haedphones cabel").as_deref(),
            Some("sennheiser headphones cable")
        );
        assert_eq!(index.respelled("wireless headphones"), None, "known words stay");
        assert_eq!(index.respelled("tn2111"), None, "model codes are not guessed");
        let index = index_of(&[
            product("1", "Acme vans", "Acme", &[], 5_000, true),
            product("2", "Acme nas", "Acme", &[], 50_000, true),
        ]);
        assert_eq!(index.respelled("vnas"), None, "two corrections: no guess");
    }

    #[test]
    fn a_misspelled_word_also_finds_the_synonyms_of_its_correction() {
        let index = index_of(&[
            product("1", "Acme X200 notebook", "Acme", &[], 50_000, true),
            product("2", "Acme laptop cooler", "Acme", &[], 2_000, true),
        ]);
        let results = query(&index, "latpop", 10);
        let mut found = ids(&results);
        found.sort_unstable();
        assert_eq!(found, vec!["1", "2"]);
    }

    #[test]
    fn filters_sorts_and_facets() {
        let index = sample();
        let r = index
            .search(&SearchRequest {
                category: Some("/audio".into()),
                sort: SortOrder::PriceAsc,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&r), vec!["5", "1", "2"], "descendant categories are included");
        assert_eq!(r.categories, vec![("/audio/headphones".to_string(), 2)]);
        let r = index
            .search(&SearchRequest {
                in_stock: true,
                min_price: Some(1_000),
                max_price: Some(20_000),
                limit: 10,
                sort: SortOrder::PriceDesc,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&r), vec!["1", "3", "4"]);
        let r = index
            .search(&SearchRequest {
                brand: Some("Sennheiser".into()),
                attributes: vec![("colour".into(), "Black".into())],
                facet_attributes: vec!["colour".into()],
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&r), vec!["1", "5"], "both Sennheiser products are black");
        assert_eq!(r.attributes[0].1, vec![("Black".to_string(), 2)]);
        let all = index
            .search(&SearchRequest {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.brands[0], ("/Sennheiser".to_string(), 2));
        assert_eq!(all.prices.iter().map(|p| p.2).collect::<Vec<_>>(), vec![1, 2, 1, 1, 0]);
        // Ratings (× 100) are 0, 1, 0, 499 and 400.
        assert_eq!(all.ratings, vec![(400, 2), (300, 2), (200, 2), (100, 2)]);
        // The same segment counted under another root (the /audio filter above) keeps its own
        // buckets.
        assert_eq!(
            all.categories,
            vec![("/audio".to_string(), 3), ("/printing".to_string(), 2)]
        );
    }

    #[test]
    fn facet_counts_follow_new_segments_and_deletes() {
        let index = sample();
        let roots = |index: &ProductIndex| query(index, "", 10).categories;
        assert_eq!(
            roots(&index),
            vec![("/audio".to_string(), 3), ("/printing".to_string(), 2)]
        );
        // A new segment with a new category path, and a delete in an old segment: the cached
        // per-segment tables must cover the new ordinals and the counts must skip the delete.
        index
            .upsert(&[product(
                "6",
                "Logitech webcam",
                "Logitech",
                &[("video", "Video")],
                5_000,
                true,
            )])
            .unwrap();
        index.delete("3");
        index.commit(43).unwrap();
        assert_eq!(
            roots(&index),
            vec![
                ("/audio".to_string(), 3),
                ("/printing".to_string(), 1),
                ("/video".to_string(), 1)
            ]
        );
    }

    #[test]
    fn deletes_and_updates_replace_documents() {
        let index = sample();
        index.delete("4");
        let mut moved = product("3", "HP toner", "HP", &[("printing", "Printing")], 100, true);
        moved.title = "HP LaserJet toner".into();
        index.upsert(&[moved]).unwrap();
        index.commit(43).unwrap();
        let r = query(&index, "toner", 10);
        assert_eq!(ids(&r), vec!["3"]);
        assert_eq!(index.num_docs(), 4);
        assert_eq!(index.applied_seq().unwrap(), 43);
    }

    #[test]
    fn the_category_a_query_names_ranks_first() {
        let cooler = product(
            "1",
            "Acme laptop cooler",
            "Acme",
            &[("cooling", "Cooling")],
            1_500,
            true,
        );
        let notebook = product(
            "2",
            "Acme X200 notebook",
            "Acme",
            &[("notebooks", "Notebooks")],
            90_000,
            true,
        );
        let index = index_of(&[cooler, notebook]);
        let search = |boost: Option<&str>| {
            index
                .search(&SearchRequest {
                    query: "laptop".into(),
                    boost_category: boost.map(str::to_owned),
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
        };
        // The word itself outscores its synonym...
        assert_eq!(ids(&search(None)), vec!["1", "2"]);
        // ...unless the query names the other product's category.
        assert_eq!(ids(&search(Some("/notebooks"))), vec!["2", "1"]);
        assert_eq!(ids(&search(Some("/nowhere"))), vec!["1", "2"]);
    }

    #[test]
    fn a_declared_product_type_is_searchable() {
        let mut declared = product("1", "HP EliteBook 840 G5 Silver", "HP", &[], 90_000, true);
        declared.product_type = Some("Notebook".into());
        let derived = product("2", "HP 255 G7 notebook Silver", "HP", &[], 40_000, true);
        let index = index_of(&[declared, derived]);
        let results = query(&index, "notebook", 10);
        let mut found = ids(&results);
        found.sort();
        assert_eq!(found, vec!["1", "2"]);
    }

    #[test]
    fn a_declared_product_type_outranks_a_short_title_that_names_it() {
        // A bare listing whose short title wins on BM25 length normalisation, and a full one
        // whose catalog record says it is a notebook.
        let bare = product("1", "HP 530 Notebook PC", "HP", &[], 45_000, true);
        let mut declared = product(
            "2",
            "HP Compaq 6530b Notebook PC 35.8 cm (14.1\") 1440 x 900 pixels Intel Core 2 Duo 2 GB 250 GB",
            "HP",
            &[],
            80_000,
            true,
        );
        declared.product_type = Some("Notebook".into());
        let index = index_of(&[bare, declared]);
        assert_eq!(ids(&query(&index, "laptop", 10)), vec!["2", "1"]);
        assert_eq!(ids(&query(&index, "notebook", 10)), vec!["2", "1"]);
    }

    #[test]
    fn wrist_rests_and_supports_are_accessories_unless_asked_for() {
        let index = index_of(&[
            product("1", "Kensington Mouse Wrist Pillow", "Kensington", &[], 1_500, true),
            product(
                "2",
                "Logitech M90 Mouse USB Optical 1000 DPI",
                "Logitech",
                &[],
                900,
                true,
            ),
            product("3", "Newstar Keyboard/Mouse Support", "Newstar", &[], 2_500, true),
        ]);
        // Without the demotion both shorter accessory titles would outrank the mouse.
        assert_eq!(ids(&query(&index, "mouse", 10))[0], "2");
        assert_eq!(ids(&query(&index, "mouse pillow", 10))[0], "1");
    }

    #[test]
    fn a_search_spread_over_segments_finds_and_counts_what_one_thread_does() {
        let spread = Spread {
            threads: 2,
            from_documents: 0,
        };
        let single = ProductIndex::open(None, 15_000_000).unwrap();
        let pooled = ProductIndex::open_with(None, 15_000_000, spread).unwrap();
        let categories = [
            [("audio", "Audio"), ("headphones", "Headphones")],
            [("printing", "Printing"), ("toner", "Toner")],
            [("computers", "Computers"), ("notebooks", "Notebooks")],
        ];
        let words = [
            "wireless headphones",
            "toner cartridge black",
            "notebook 15 inch",
            "cable",
        ];
        let brands = ["Sennheiser", "HP", "Sony", "Lenovo"];
        // Three commits make three segments, so the pool has segments to share out.
        let mut every = Vec::new();
        for batch in 0..3i64 {
            let docs: Vec<ProductDoc> = (0..40i64)
                .map(|i| {
                    let n = batch * 40 + i;
                    let (w, b, c) = (n as usize % 4, n as usize % 3 % 4, n as usize % 3);
                    let title = format!("{} {} model {n}", brands[b], words[w]);
                    let mut doc = product(
                        &n.to_string(),
                        &title,
                        brands[b],
                        &categories[c],
                        500 + n * 137,
                        n % 5 != 0,
                    );
                    // Some products come in two colours: a field with several values per
                    // document is counted another way than a field with one.
                    if n % 4 == 0 {
                        doc.attributes.push(("colour".into(), "Red".into(), true));
                    }
                    doc
                })
                .collect();
            for index in [&single, &pooled] {
                index.upsert(&docs).unwrap();
                index.commit(batch as u64 + 1).unwrap();
            }
            every.extend(docs);
        }
        let everything = pooled
            .search(&SearchRequest {
                limit: 1,
                facet_attributes: vec!["colour".into()],
                ..Default::default()
            })
            .unwrap();
        let mut colours: Vec<(String, u64)> = ["Black", "White", "Red"]
            .iter()
            .map(|colour| {
                let n = every
                    .iter()
                    .filter(|d| d.attributes.iter().any(|a| a.1 == *colour))
                    .count();
                (colour.to_string(), n as u64)
            })
            .collect();
        colours.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(everything.attributes, vec![("colour".to_string(), colours)]);
        let expected: Vec<(u64, usize)> = RATING_BUCKETS
            .iter()
            .map(|&at_least| (at_least, every.iter().filter(|d| d.rating_x100 >= at_least).count()))
            .collect();
        assert_eq!(everything.ratings, expected);
        let in_bucket = |from: i64, to: Option<i64>| {
            every
                .iter()
                .filter(|d| d.price_cents >= from && to.is_none_or(|to| d.price_cents < to))
                .count()
        };
        for (from, to, n) in &everything.prices {
            assert_eq!(*n, in_bucket(*from, *to), "{from}..{to:?}");
        }
        assert!(pooled.reader.searcher().segment_readers().len() > 1);
        // The two indexes may have merged their segments differently, so equal scores (and
        // equal ratings) can tie in another order: pages ordered by a unique key must match
        // exactly, the others as sets with the same scores.
        let sorted = |r: &SearchResults| {
            let mut hits: Vec<(String, u32)> = r.hits.iter().map(|h| (h.id.clone(), h.score.to_bits())).collect();
            hits.sort_unstable();
            hits
        };
        for sort in [
            SortOrder::Relevance,
            SortOrder::PriceAsc,
            SortOrder::Rating,
            SortOrder::Newest,
        ] {
            for text in ["headphones", "toner cartridge", "hp notebook", ""] {
                let unique_key = matches!(sort, SortOrder::PriceAsc | SortOrder::Newest);
                let req = SearchRequest {
                    query: text.into(),
                    facet_attributes: vec!["colour".into()],
                    sort,
                    offset: if unique_key { 3 } else { 0 },
                    limit: if unique_key { 7 } else { 200 },
                    ..Default::default()
                };
                let (a, b) = (single.search(&req).unwrap(), pooled.search(&req).unwrap());
                assert!(a.total > 0, "{text:?} matches");
                if unique_key {
                    assert_eq!(ids(&a), ids(&b), "{text:?} {sort:?}");
                } else {
                    assert_eq!(sorted(&a), sorted(&b), "{text:?} {sort:?}");
                }
                assert_eq!(
                    (a.total, &a.categories, &a.brands, &a.prices, &a.ratings, &a.attributes),
                    (b.total, &b.categories, &b.brands, &b.prices, &b.ratings, &b.attributes),
                    "{text:?} {sort:?}"
                );
            }
        }
    }
}
