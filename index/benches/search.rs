//! Search latency on a real catalog: the Chorus/Icecat products (19,406) and its real shopping
//! queries (1–3 words), each search counting every facet the results page shows. Set
//! `STOREFRONT_BENCH_REPLICAS=52` to replicate the catalog (ids suffixed per copy) to about
//! 1M documents.
//!
//! Before the criterion groups run, the bench prints the index size and build time and an HDR
//! latency profile (p50/p99/max) over every query, because criterion reports means and
//! confidence intervals, not tails.
//!
//! `cargo bench -p storefront-index --bench search`
//! `STOREFRONT_BENCH_REPLICAS=52 cargo bench -p storefront-index --bench search`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use storefront_index::{ProductDoc, ProductIndex, SearchRequest, SortOrder};

/// Attributes counted as facets, as the server's default config names them.
const FACET_ATTRIBUTES: &[&str] = &["colour", "product_colour", "printing_colours", "form_factor"];

fn chorus_dir() -> PathBuf {
    std::env::var_os("STOREFRONT_CHORUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chorus-icecat"))
}

/// Reads the Chorus export into index documents (brand = supplier, category = the sparse
/// Icecat product type under its first word, attributes = `attr_*`).
fn load_products(path: &Path, max: usize) -> Vec<ProductDoc> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut docs = Vec::new();
    for line in reader.lines().take(max) {
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line.unwrap()).unwrap();
        let text = |key: &str| row.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let id = text("id");
        let mut attributes = Vec::new();
        let mut product_type = String::new();
        for (key, value) in &row {
            let Some(name) = key.strip_prefix("attr_t_").or_else(|| key.strip_prefix("attr_n_")) else {
                continue;
            };
            let value = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
            if name == "product_type" {
                product_type = value.clone();
            }
            attributes.push((name.to_owned(), value, FACET_ATTRIBUTES.contains(&name)));
        }
        let category_path = if product_type.is_empty() {
            vec![("other".to_owned(), "Other".to_owned())]
        } else {
            let head = product_type.split_whitespace().next().unwrap_or("other").to_lowercase();
            vec![
                (head.clone(), head),
                (product_type.to_lowercase().replace(' ', "-"), product_type),
            ]
        };
        // Deterministic spread of ratings and stock so their facets and filters have work.
        let spread = id.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        docs.push(ProductDoc {
            title: text("title"),
            brand: Some(text("supplier")).filter(|b| !b.is_empty()),
            category_path,
            description: text("short_description"),
            product_type: Some(text("attr_t_product_type")).filter(|t| t.chars().any(char::is_alphabetic)),
            attributes,
            price_cents: text("price").parse().unwrap_or(0),
            rating_x100: 100 + spread % 401,
            in_stock: spread % 10 != 0,
            created_at_ms: (spread % 1_000_000) as i64,
            seller: None,
            id,
        });
    }
    docs
}

/// The real shopping queries of the Chorus set.
fn load_queries(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
        .collect()
}

fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: query.to_owned(),
        facet_attributes: FACET_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
        limit: 24,
        ..SearchRequest::default()
    }
}

/// Swaps two letters in the middle of the longest word ("laptop" → "lapotp").
fn one_typo(query: &str) -> String {
    let mut words: Vec<String> = query.split_whitespace().map(str::to_owned).collect();
    if let Some(longest) = words
        .iter_mut()
        .max_by_key(|w| w.len())
        .filter(|w| w.len() >= 4 && w.is_ascii())
    {
        let mid = longest.len() / 2;
        let mut bytes = longest.as_bytes().to_vec();
        bytes.swap(mid - 1, mid);
        *longest = String::from_utf8(bytes).expect("ascii");
    }
    words.join(" ")
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn search(c: &mut Criterion) {
    // `cargo test --all-targets` runs benches once as smoke tests: keep that run small.
    let full = std::env::args().any(|a| a == "--bench");
    let dir = chorus_dir();
    let products = dir.join("products.jsonl.gz");
    if !products.exists() {
        assert!(!full, "the Chorus catalog is missing: {}", products.display());
        eprintln!("skipping the search bench: {} is missing", products.display());
        return;
    }
    let base = load_products(&products, if full { usize::MAX } else { 2_000 });
    let replicas: usize = std::env::var("STOREFRONT_BENCH_REPLICAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|_| full)
        .unwrap_or(1);
    let queries = load_queries(&dir.join("queries.tsv"));

    let tmp = tempfile::tempdir().unwrap();
    let index = ProductIndex::open(Some(tmp.path()), 512 << 20).unwrap();
    let started = Instant::now();
    for copy in 0..replicas {
        let docs: Vec<ProductDoc> = if copy == 0 {
            base.clone()
        } else {
            base.iter()
                .map(|d| ProductDoc {
                    id: format!("{}-{copy}", d.id),
                    ..d.clone()
                })
                .collect()
        };
        index.upsert(&docs).unwrap();
    }
    index.commit(1).unwrap();
    let build = started.elapsed();
    eprintln!(
        "index: {} documents, built in {:.1} s, {:.1} MiB on disk",
        index.num_docs(),
        build.as_secs_f64(),
        dir_size(tmp.path()) as f64 / (1 << 20) as f64
    );

    // Tail latency over the whole query set: clean, one-typo and filtered variants.
    let search = |req: &SearchRequest| {
        std::hint::black_box(index.search(req).unwrap());
    };
    let profile = |label: &str, requests: &[SearchRequest], run: &dyn Fn(&SearchRequest)| {
        let mut histogram = Histogram::<u64>::new(3).unwrap();
        let mut slowest = vec![0u64; requests.len()];
        let rounds = if full { 20 } else { 1 };
        for _ in 0..rounds {
            for (i, req) in requests.iter().enumerate() {
                let t = Instant::now();
                run(req);
                let micros = t.elapsed().as_micros() as u64;
                histogram.record(micros).unwrap();
                slowest[i] = slowest[i].max(micros);
            }
        }
        let mut worst: Vec<(u64, &str)> = slowest
            .iter()
            .zip(requests)
            .map(|(t, r)| (*t, r.query.as_str()))
            .collect();
        worst.sort_unstable_by(|a, b| b.cmp(a));
        eprintln!(
            "{label:<22} n={:<6} p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
            histogram.len(),
            histogram.value_at_quantile(0.5) as f64 / 1000.0,
            histogram.value_at_quantile(0.9) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
            histogram.max() as f64 / 1000.0
        );
        let worst: Vec<String> = worst
            .iter()
            .take(3)
            .map(|(t, q)| format!("{q:?} {:.1} ms", *t as f64 / 1000.0))
            .collect();
        eprintln!("{:<22} slowest: {}", "", worst.join(", "));
    };
    let clean: Vec<SearchRequest> = queries.iter().map(|q| request(q)).collect();
    let typo: Vec<SearchRequest> = queries.iter().map(|q| request(&one_typo(q))).collect();
    let filtered: Vec<SearchRequest> = queries
        .iter()
        .map(|q| SearchRequest {
            max_price: Some(50_000),
            min_rating_x100: Some(300),
            in_stock: true,
            sort: SortOrder::PriceAsc,
            ..request(q)
        })
        .collect();
    profile("clean queries", &clean, &search);
    profile("one-typo queries", &typo, &search);
    profile("filtered, price sort", &filtered, &search);
    profile("browse (no query)", &[request("")], &search);
    // What the server adds on a cache miss to read a category from a misspelled query.
    profile("respell one-typo", &typo, &|req| {
        std::hint::black_box(index.respelled(&req.query));
    });

    // A live update: one changed product, committed and made searchable.
    let mut update = base[0].clone();
    let started = Instant::now();
    for round in 0..5 {
        update.price_cents += 1;
        index.upsert(std::slice::from_ref(&update)).unwrap();
        index.commit(2 + round).unwrap();
    }
    eprintln!(
        "live update (1 product, commit and reload): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0 / 5.0
    );

    let mut group = c.benchmark_group("search");
    if !full {
        group.sample_size(10);
    }
    let mut cycle = |name: &str, requests: &[SearchRequest]| {
        let mut next = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % requests.len();
                index.search(&requests[next]).unwrap()
            })
        });
    };
    let by_words = |n: usize| -> Vec<SearchRequest> {
        clean
            .iter()
            .filter(|r| r.query.split_whitespace().count() == n)
            .cloned()
            .collect()
    };
    cycle("one_word", &by_words(1));
    cycle("two_words", &by_words(2));
    cycle("three_words", &by_words(3));
    cycle("one_typo", &typo);
    cycle("filtered_price_sort", &filtered);
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
