//! Record decoding and key encoding costs.
//!
//! `cargo bench -p storefront-storage --bench records` measures the default (aligned copy)
//! read path; add `--features unaligned` to measure reading pinned slices in place.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use storefront_storage::listing::{self, ListingFacts, Scope, SortKey};
use storefront_storage::records::{
    encode, AttributeRecord, AttributeValue, ImageRecord, ProductRecord, ProductStatus, VariantRecord,
};
use storefront_storage::{keys, Owned, Store, StoreOptions};

fn product(i: u32) -> ProductRecord {
    let mut id = [0u8; 16];
    id[12..].copy_from_slice(&i.to_be_bytes());
    ProductRecord {
        id,
        version: 3,
        external_id: Some(format!("{i}")),
        slug: format!("hp-pavilion-dv7-notebook-silver-{i}"),
        title: "HP Pavilion dv7-1211ea Notebook Silver 43.2 cm (17\") 1440 x 900 pixels Intel Core2 Duo 4 GB".into(),
        description: "Intel Core 2 Duo Processor P7450, 4GB DDR2, 250GB SATA HDD, 17\" WXGA+ HD BrightView".into(),
        brand: Some("HP".into()),
        category_id: Some([7; 16]),
        seller_id: None,
        status: ProductStatus::Published,
        currency: "USD".into(),
        images: vec![ImageRecord {
            url: "http://images.icecat.biz/img/gallery/2101957_8011415648.jpg".into(),
            alt: String::new(),
        }],
        attributes: (0..12)
            .map(|a| AttributeRecord {
                name: format!("attribute_{a}"),
                value: if a % 2 == 0 {
                    AttributeValue::Text("Silver".into())
                } else {
                    AttributeValue::Number(a as f64)
                },
            })
            .collect(),
        variants: vec![VariantRecord {
            sku: format!("ICECAT-{i}"),
            title: String::new(),
            price_cents: 10995,
            compare_at_cents: None,
            attributes: vec![],
            weight_grams: 0,
        }],
        rating_sum: 0,
        rating_count: 0,
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
    }
}

/// The same fields as JSON, to compare against the conventional serde_json encoding.
#[derive(serde::Serialize, serde::Deserialize)]
struct JsonProduct {
    id: String,
    version: u64,
    slug: String,
    title: String,
    description: String,
    brand: Option<String>,
    attributes: Vec<(String, serde_json::Value)>,
    variants: Vec<(String, i64)>,
}

fn decode(c: &mut Criterion) {
    let record = product(1);
    let bytes = encode(&record).unwrap();
    let json = serde_json::to_vec(&JsonProduct {
        id: "01a1ff97-fa8a-70c1-8593-84e1ef310c53".into(),
        version: record.version,
        slug: record.slug.clone(),
        title: record.title.clone(),
        description: record.description.clone(),
        brand: record.brand.clone(),
        attributes: record
            .attributes
            .iter()
            .map(|a| (a.name.clone(), serde_json::json!(format!("{:?}", a.value))))
            .collect(),
        variants: vec![("ICECAT-1".into(), 10995)],
    })
    .unwrap();
    let mut group = c.benchmark_group("records");
    group.bench_function("rkyv_validate_and_read", |b| {
        b.iter(|| {
            let owned = Owned::<ProductRecord>::from_slice(b"k", black_box(&bytes)).unwrap();
            black_box(owned.archived().title.len() + owned.archived().variants[0].price_cents.to_native() as usize)
        })
    });
    group.bench_function("rkyv_to_native", |b| {
        let owned = Owned::<ProductRecord>::from_slice(b"k", &bytes).unwrap();
        b.iter(|| black_box(owned.to_native()))
    });
    group.bench_function("serde_json_decode", |b| {
        b.iter(|| {
            let p: JsonProduct = serde_json::from_slice(black_box(&json)).unwrap();
            black_box(p.title.len() + p.variants[0].1 as usize)
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        &StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store
        .transact::<_, storefront_storage::Error>(|txn| {
            for i in 0..10_000 {
                let p = product(i);
                txn.put(&p.id, &p)?;
            }
            Ok(())
        })
        .unwrap();
    let key = product(4242).id;
    let mode = if cfg!(feature = "unaligned") {
        "read_pinned_in_place"
    } else {
        "read_pinned_aligned_copy"
    };
    group.bench_function(mode, |b| {
        b.iter(|| {
            store
                .with::<ProductRecord, _>(black_box(&key), |p| p.title.len())
                .unwrap()
        })
    });
    group.finish();
}

fn key_encoding(c: &mut Criterion) {
    let facts = ListingFacts {
        id: [9; 16],
        min_price_cents: 10995,
        rating_x100: 420,
        seller_id: Some([3; 16]),
        brand: Some("hp".into()),
        category_path: vec![[1; 16], [2; 16]],
        in_stock: true,
    };
    let mut group = c.benchmark_group("keys");
    group.bench_function("listing_entries_of_a_product", |b| {
        b.iter(|| black_box(listing::entries(black_box(&facts))))
    });
    group.bench_function("listing_prefix", |b| {
        b.iter(|| black_box(listing::prefix(Scope::Category([1; 16]), SortKey::Price)))
    });
    group.bench_function("encode_i64", |b| b.iter(|| black_box(keys::encode_i64(black_box(-42)))));
    group.finish();
}

criterion_group!(benches, decode, key_encoding);
criterion_main!(benches);
