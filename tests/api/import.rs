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

/// A small purchase history in the UCI Online Retail layout: customers 1 and 2 buy the
/// heart and the lantern together again and again; customer 3's last order is the pair too.
fn retail_history() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::with_suffix(".csv").unwrap();
    writeln!(
        file,
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    )
    .unwrap();
    let mut n = 536_000;
    for (customer, day) in [(1, 1), (2, 2), (1, 3), (2, 4), (3, 5), (1, 6)] {
        n += 1;
        writeln!(
            file,
            "{n},85123A,WHITE HANGING HEART,6,2010-12-0{day} 08:26:00,2.55,{customer},United Kingdom"
        )
        .unwrap();
        writeln!(
            file,
            "{n},71053,WHITE METAL LANTERN,6,2010-12-0{day} 08:26:00,3.39,{customer},United Kingdom"
        )
        .unwrap();
        writeln!(
            file,
            "{n},POST,POSTAGE,1,2010-12-0{day} 08:26:00,18.0,{customer},United Kingdom"
        )
        .unwrap();
    }
    writeln!(
        file,
        "536100,22423,\"REGENCY CAKESTAND, 3 TIER\",1,2010-12-07 09:00:00,12.75,3,France"
    )
    .unwrap();
    writeln!(
        file,
        "536100,85123A,WHITE HANGING HEART,1,2010-12-07 09:00:00,2.55,3,France"
    )
    .unwrap();
    writeln!(
        file,
        "536100,71053,WHITE METAL LANTERN,1,2010-12-07 09:00:00,3.39,3,France"
    )
    .unwrap();
    writeln!(
        file,
        "C536101,85123A,WHITE HANGING HEART,-1,2010-12-08 09:00:00,2.55,3,France"
    )
    .unwrap();
    writeln!(
        file,
        "536102,22423,REGENCY CAKESTAND 3 TIER,2,2010-12-08 10:00:00,12.75,,United Kingdom"
    )
    .unwrap();
    file.flush().unwrap();
    file
}

#[tokio::test]
async fn a_purchase_history_imports_as_products_accounts_and_delivered_orders_and_feeds_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let history = retail_history();
    let (ok, stdout, stderr) = import(dir.path(), "online-retail", history.path());
    assert!(ok, "{stderr}");
    assert!(stdout.contains("23 lines (7 not product purchases)"), "{stdout}");
    assert!(stdout.contains("products 3 created"), "{stdout}");
    assert!(
        stdout.contains("3 customers; 8 orders written, 0 already present"),
        "{stdout}"
    );
    let (ok, stdout, _) = import(dir.path(), "online-retail", history.path());
    assert!(ok);
    assert!(
        stdout.contains("0 orders written, 8 already present"),
        "a re-import changes nothing: {stdout}"
    );

    // The held-out evaluation: customer 3's last order (cakestand, heart, lantern) is scored.
    let customers = dir.path().join("customers.txt");
    std::fs::write(&customers, "3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["eval-recs", "--data-dir"])
        .arg(dir.path())
        .arg("--customers")
        .arg(&customers)
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("held out the last order of 1 customers"), "{report}");
    let fbt = report
        .lines()
        .find(|l| l.starts_with("frequently-bought-together"))
        .unwrap();
    assert!(
        fbt.contains(" 3 ") && fbt.contains("0.6667"),
        "the heart and the lantern find each other; the cakestand was never bought with anything: {report}"
    );

    let export = dir.path().join("export");
    let anchors = dir.path().join("anchors.txt");
    std::fs::write(&anchors, "85123A\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["eval-recs", "--data-dir"])
        .arg(dir.path())
        .arg("--customers")
        .arg(&customers)
        .arg("--export")
        .arg(&export)
        .arg("--anchors")
        .arg(&anchors)
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fbt = std::fs::read_to_string(export.join("fbt.tsv")).unwrap();
    assert_eq!(fbt.lines().next(), Some("85123A\t1\t71053"), "{fbt}");
    let personal = std::fs::read_to_string(export.join("personal.tsv")).unwrap();
    assert!(
        personal.lines().all(|l| l.starts_with("3\t")) && personal.lines().count() == 3,
        "{personal}"
    );

    // Through the server: the products exist, and the models learnt from the orders.
    let app = spawn_with(Some(dir), |_| {}).await;
    let (status, page) = app.get_json("/api/v1/products?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    let heart = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["external_id"] == "85123A")
        .unwrap()
        .clone();
    assert_eq!(heart["price"]["amount"], 255);
    app.run_worker("recommendations").await;
    let (_, fbt) = app
        .get_json(&format!(
            "/api/v1/products/{}/frequently-bought-together",
            heart["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fbt["items"][0]["external_id"], "71053", "{fbt}");
}

/// An import in which every row fails exits non-zero; a broken gzip file is named in the
/// error.
#[tokio::test]
async fn an_import_of_nothing_fails_and_names_a_broken_gzip_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = tempfile::NamedTempFile::new().unwrap();
    writeln!(bad, "not json").unwrap();
    writeln!(bad, r#"{{"title":"no variants"}}"#).unwrap();
    let (ok, _, stderr) = import(dir.path(), "jsonl", bad.path());
    assert!(!ok, "every row was skipped, yet it succeeded: {stderr}");
    assert!(stderr.contains("every row") && stderr.contains("(2)"), "{stderr}");

    let gz = tempfile::Builder::new().suffix(".jsonl.gz").tempfile().unwrap();
    std::fs::write(gz.path(), b"\x1f\x8b\x08\x00 this is not deflate at all").unwrap();
    let (ok, _, stderr) = import(dir.path(), "jsonl", gz.path());
    assert!(!ok);
    assert!(stderr.contains(gz.path().to_str().unwrap()), "{stderr}");
}
