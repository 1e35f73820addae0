//! The `storefront import` command.

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::{search_until, spawn_with};

fn import(data_dir: &std::path::Path, format: &str, file: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["import", "--format", format, "--data-dir"])
        .arg(data_dir)
        .arg(file)
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .output()
        .expect("run import");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn jsonl_import_reports_bad_rows_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, r#"{{"external_id":"a","title":"Alpha","category_path":["Tools","Hammers"],"variants":[{{"sku":"A-1","price":{{"amount":1000,"currency":"USD"}}}}]}}"#).unwrap();
    writeln!(file, "this is not json").unwrap();
    writeln!(file, r#"{{"external_id":"b","title":"","variants":[]}}"#).unwrap();
    writeln!(file, r#"{{"external_id":"c","title":"Gamma","category_path":["Tools"],"variants":[{{"sku":"C-1","price":{{"amount":500,"currency":"USD"}},"stock":0}}]}}"#).unwrap();
    writeln!(
        file,
        r#"{{"external_id":"d","title":"Delta","variants":[{{"sku":"A-1","price":{{"amount":1,"currency":"USD"}}}}]}}"#
    )
    .unwrap();

    let (ok, stdout, stderr) = import(dir.path(), "jsonl", file.path());
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 created, 0 updated, 0 unchanged, 3 skipped"),
        "{stdout}"
    );
    assert!(stderr.contains("line 2: skipped: invalid JSON"), "{stderr}");
    assert!(stderr.contains("line 3: skipped: title: must not be empty"), "{stderr}");
    assert!(
        stderr.contains("line 5: skipped: SKU A-1 belongs to another product"),
        "{stderr}"
    );

    let (ok, stdout, _) = import(dir.path(), "jsonl", file.path());
    assert!(ok);
    assert!(
        stdout.contains("0 created, 0 updated, 2 unchanged, 3 skipped"),
        "re-import duplicates nothing: {stdout}"
    );

    let app = spawn_with(Some(dir), |_| {}).await;
    let (_, page) = app.get_json("/api/v1/products?category=tools&sort=price_asc").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["external_id"], "c");
    let (_, inv) = app.get_json("/api/v1/inventory/A-1").await;
    assert_eq!(inv["on_hand"], 100, "new SKUs without stock get --initial-stock");
    let (_, inv) = app.get_json("/api/v1/inventory/C-1").await;
    assert_eq!(inv["on_hand"], 0);
}

#[tokio::test]
async fn chorus_rows_import_with_derived_categories() {
    let dir = tempfile::tempdir().unwrap();
    let file = tempfile::Builder::new().suffix(".jsonl.gz").tempfile().unwrap();
    {
        let mut gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        writeln!(gz, r#"{{"id":"3920564","name":"006R90321","title":"Xerox 006R90321 toner cartridge Original Black 6 pc(s)","ean":["0095205603217"],"short_description":"Toner","img_500x500":"http://images.example/1.jpg","supplier":"Xerox","price":4995,"attr_t_printing_colours":"Black","attr_n_quantity_per_pack":6.0}}"#).unwrap();
        writeln!(gz, r#"{{"id":"2101957","name":"dv7","title":"HP Pavilion dv7-1211ea Notebook Silver","supplier":"HP","price":10995,"attr_t_product_type":"Notebook","attr_b_touchscreen":false}}"#).unwrap();
        writeln!(gz, r#"{{"id":"x","title":"No price"}}"#).unwrap();
        gz.finish().unwrap();
    }
    let (ok, stdout, stderr) = import(dir.path(), "chorus", file.path());
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 created, 0 updated, 0 unchanged, 1 skipped"),
        "{stdout} {stderr}"
    );
    let app = spawn_with(Some(dir), |_| {}).await;
    let (_, page) = app.get_json("/api/v1/products?category=toner").await;
    assert_eq!(page["items"][0]["external_id"], "3920564");
    let slug = page["items"][0]["slug"].as_str().unwrap().to_owned();
    let (status, doc) = app.get_json(&format!("/api/v1/products/{slug}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["brand"], "Xerox");
    assert_eq!(doc["price"]["amount"], 4995);
    assert_eq!(doc["attributes"]["printing_colours"], "Black");
    assert_eq!(doc["attributes"]["model"], "006R90321");
    assert_eq!(doc["category_path"][0]["name"], "Printing");
    let (_, page) = app.get_json("/api/v1/products?category=notebooks").await;
    assert_eq!(page["total"], 1);
}

#[tokio::test]
async fn import_refuses_while_the_server_holds_the_lock() {
    let app = spawn_with(None, |_| {}).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let (ok, _, stderr) = import(&app.data_path(), "jsonl", file.path());
    assert!(!ok);
    assert!(stderr.contains("locked by another storefront process"), "{stderr}");
}

#[tokio::test]
async fn reindex_rebuilds_the_search_index_from_storage() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, r#"{{"external_id":"r1","title":"Reindexed lantern","variants":[{{"sku":"R-1","price":{{"amount":1000,"currency":"USD"}}}}]}}"#).unwrap();
    writeln!(file, r#"{{"external_id":"r2","title":"Reindexed compass","variants":[{{"sku":"R-2","price":{{"amount":2000,"currency":"USD"}}}}]}}"#).unwrap();
    let (ok, _, stderr) = import(dir.path(), "jsonl", file.path());
    assert!(ok, "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["reindex", "--data-dir"])
        .arg(dir.path())
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("indexed 2 products") && stdout.contains("(2 searchable)"),
        "{stdout}"
    );
    let app = spawn_with(Some(dir), |_| {}).await;
    let (_, body) = app.get_json("/api/v1/search?q=compass").await;
    assert_eq!(body["total"], 1, "{body}");
}

/// Product count per category path prefix (names, root first) in the Best Buy sample, counted
/// straight from the file; `brand` narrows it to one brand.
fn best_buy_counts(records: &[serde_json::Value], brand: Option<&str>) -> HashMap<Vec<String>, u64> {
    let mut counts = HashMap::new();
    for r in records {
        if brand.is_some_and(|b| !r["brand"].as_str().is_some_and(|rb| rb.eq_ignore_ascii_case(b))) {
            continue;
        }
        let path: Vec<String> = r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        for depth in 1..=path.len() {
            *counts.entry(path[..depth].to_vec()).or_default() += 1;
        }
    }
    counts
}

/// Walks the category facets down the tree from the root, comparing every level's counts, and
/// each category's filtered total, with counts taken straight from the file.
async fn check_category_facets(app: &crate::helpers::TestApp, expected: &HashMap<Vec<String>, u64>, filter: &str) {
    let mut pending: Vec<(Vec<String>, Option<String>)> = vec![(Vec::new(), None)];
    let mut checked = 0;
    while let Some((path, slug)) = pending.pop() {
        let category = slug.as_ref().map(|s| format!("&category={s}")).unwrap_or_default();
        let (status, body) = app.get_json(&format!("/api/v1/search?limit=1{filter}{category}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if !path.is_empty() {
            assert_eq!(body["total"], expected[&path], "total under {path:?}");
        }
        let mut children: Vec<(String, u64)> = expected
            .iter()
            .filter(|(p, _)| p.len() == path.len() + 1 && p.starts_with(&path))
            .map(|(p, n)| (p[path.len()].clone(), *n))
            .collect();
        children.sort();
        let mut facets: Vec<(String, u64)> = body["facets"]["category"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap().to_owned(), f["count"].as_u64().unwrap()))
            .collect();
        facets.sort();
        assert_eq!(facets, children, "children of {path:?}");
        for facet in body["facets"]["category"].as_array().unwrap() {
            let mut child = path.clone();
            child.push(facet["name"].as_str().unwrap().to_owned());
            pending.push((child, Some(facet["value"].as_str().unwrap().to_owned())));
        }
        checked += 1;
    }
    assert!(checked > 1, "the walk went below the root");
}

#[tokio::test]
async fn best_buy_category_facets_count_the_whole_tree() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/bestbuy-algolia-sample/products_cellphones.json.gz");
    if !file.exists() {
        eprintln!("skipped: the Best Buy sample is not at {}", file.display());
        return;
    }
    let records: Vec<serde_json::Value> =
        serde_json::from_reader(flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = import(dir.path(), "bestbuy", &file);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("{} created, 0 updated, 0 unchanged, 0 skipped", records.len())),
        "{stdout} {stderr}"
    );
    let app = spawn_with(Some(dir), |_| {}).await;
    // The server indexes the imported catalog as it starts.
    search_until(&app, "/api/v1/search?limit=1", |body| body["total"] == records.len()).await;
    check_category_facets(&app, &best_buy_counts(&records, None), "").await;
    // The sample spells one brand two ways ("OtterBox" 103 times, "Otterbox" 12): the import
    // keeps the first spelling, so the brand is one facet value and one filter.
    let (_, body) = app.get_json("/api/v1/search?limit=1&q=otterbox").await;
    let brands: Vec<&str> = body["facets"]["brand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_str().unwrap())
        .collect();
    assert!(brands.contains(&"OtterBox"), "{brands:?}");
    assert!(!brands.contains(&"Otterbox"), "{brands:?}");
    check_category_facets(&app, &best_buy_counts(&records, Some("OtterBox")), "&brand=OtterBox").await;
}
