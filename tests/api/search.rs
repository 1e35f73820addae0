//! Search through the real server: live updates from the changelog, filters, facets, typos,
//! autocomplete, and recovery after kill -9.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_fields, product, search_until, spawn_app, spawn_with, TestApp};

fn titles(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn seed(app: &TestApp) {
    app.create_category("Audio", None).await;
    app.create_category("Headphones", Some("audio")).await;
    app.create_category("Printing", None).await;
    let items = [
        (
            "Sennheiser HD 25 headphones",
            "SEN-1",
            12_000,
            "Sennheiser",
            "headphones",
            "Black",
            5,
        ),
        (
            "Sony WH-1000 wireless headphones",
            "SONY-1",
            30_000,
            "Sony",
            "headphones",
            "Silver",
            0,
        ),
        (
            "Sennheiser headphone cable",
            "SEN-2",
            900,
            "Sennheiser",
            "audio",
            "Black",
            5,
        ),
        (
            "Brother TN-2110 toner cartridge",
            "BRO-1",
            3_999,
            "Brother",
            "printing",
            "Black",
            5,
        ),
    ];
    for (title, sku, price, brand, category, colour, stock) in items {
        let mut body = product(title, sku, price);
        body["brand"] = json!(brand);
        body["category"] = json!(category);
        body["attributes"] = json!({ "colour": colour });
        body["variants"][0]["stock"] = json!(stock);
        app.create_product(body).await;
    }
}

#[tokio::test]
async fn search_ranks_filters_facets_and_tolerates_typos() {
    let app = spawn_app().await;
    seed(&app).await;
    // The whole catalog first: the filter and paging checks below read all four products.
    search_until(&app, "/api/v1/search?sort=newest", |b| b["total"] == 4).await;
    let (body, _) = search_until(&app, "/api/v1/search?q=headphones", |b| b["total"] == 3).await;
    assert!(titles(&body)[0].contains("headphones"), "{body}");
    assert!(body["took_ms"].is_number());
    let item = &body["items"][0];
    for field in ["id", "slug", "title", "price", "image", "rating", "in_stock", "brand"] {
        assert!(item.get(field).is_some(), "{field} missing in {item}");
    }
    let brands: Vec<(String, u64)> = body["facets"]["brand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["value"].as_str().unwrap().to_owned(), b["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(brands, vec![("Sennheiser".to_string(), 2), ("Sony".to_string(), 1)]);
    assert_eq!(body["facets"]["category"][0]["value"], "audio");
    assert_eq!(
        body["facets"]["attributes"]["colour"][0],
        json!({ "value": "Black", "count": 2 })
    );

    let (typo, _) = search_until(&app, "/api/v1/search?q=haedphones", |b| b["total"].as_u64() >= Some(2)).await;
    let set = |v: Vec<String>| v.into_iter().take(2).collect::<std::collections::HashSet<_>>();
    assert_eq!(set(titles(&typo)), set(titles(&body)));

    let (_, filtered) = app
        .get_json("/api/v1/search?q=headphones&category=headphones&in_stock=true")
        .await;
    assert_eq!(titles(&filtered), vec!["Sennheiser HD 25 headphones"]);
    let (_, filtered) = app
        .get_json("/api/v1/search?category=audio&sort=price_asc&attr.colour=Black")
        .await;
    assert_eq!(
        titles(&filtered),
        vec!["Sennheiser headphone cable", "Sennheiser HD 25 headphones"]
    );
    let (_, filtered) = app
        .get_json("/api/v1/search?brand=Sony&max_price=50000&min_price=20000")
        .await;
    assert_eq!(titles(&filtered), vec!["Sony WH-1000 wireless headphones"]);
    let (_, paged) = app.get_json("/api/v1/search?sort=price_desc&limit=2&page=2").await;
    assert_eq!(
        titles(&paged),
        vec!["Brother TN-2110 toner cartridge", "Sennheiser headphone cable"]
    );
    assert_eq!(paged["next_page"], Value::Null);

    let (status, body) = app
        .get_json("/api/v1/search?q=x&limit=0&sort=cheap&category=nowhere")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&body);
    assert_eq!(fields, vec!["limit", "sort", "category"]);
}

#[tokio::test]
async fn catalog_changes_reach_search_quickly() {
    let app = spawn_app().await;
    seed(&app).await;
    let (body, _) = search_until(&app, "/api/v1/search?q=toner", |b| b["total"] == 1).await;
    assert_eq!(body["items"][0]["price"]["amount"], 3999);

    let (status, _) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/BRO-1",
            json!({ "price": { "amount": 2500, "currency": "USD" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, took) = search_until(&app, "/api/v1/search?q=toner", |b| {
        b["items"][0]["price"]["amount"] == 2500
    })
    .await;
    eprintln!("price change searchable after {took:?}");

    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/SONY-1", json!({ "on_hand": 3 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    search_until(&app, "/api/v1/search?q=sony&in_stock=true", |b| b["total"] == 1).await;

    let (_, doc) = app.get_json("/api/v1/products/brother-tn-2110-toner-cartridge").await;
    let res = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/products/{}", doc["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    search_until(&app, "/api/v1/search?q=toner", |b| b["total"] == 0).await;

    // Renaming a category re-indexes its products' category text.
    let (status, _) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/categories/printing",
            json!({ "name": "Office" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/categories/headphones",
            json!({ "name": "Cans" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    search_until(&app, "/api/v1/search?q=cans", |b| b["total"] == 2).await;
}

#[tokio::test]
async fn a_query_naming_a_category_ranks_its_products_first() {
    let app = spawn_app().await;
    app.create_category("Computers", None).await;
    app.create_category("Notebooks", Some("computers")).await;
    app.create_category("Components", None).await;
    app.create_category("Cooling", Some("components")).await;
    let mut cooler = product("Acme laptop cooler", "COOL-1", 5_000);
    cooler["category"] = json!("cooling");
    app.create_product(cooler).await;
    let notebook = app.create_product(product("Acme X200 notebook", "NB-1", 5_000)).await;
    // The word itself outscores its synonym while the notebook sits in no category...
    let (body, _) = search_until(&app, "/api/v1/search?q=laptop", |b| b["total"] == 2).await;
    assert_eq!(titles(&body)[0], "Acme laptop cooler");

    // ...but "laptop" names the Notebooks category, so once the notebook is filed there it
    // ranks first. Plurals name the category too.
    let path = format!("/api/v1/products/{}", notebook["id"].as_str().unwrap());
    let (status, doc) = app
        .admin_json(Method::PATCH, &path, json!({ "category": "notebooks" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    // A misspelled query names the category its correction names.
    for q in ["laptop", "laptops", "latpop"] {
        let (body, _) = search_until(&app, &format!("/api/v1/search?q={q}"), |b| {
            b["items"][0]["title"] == "Acme X200 notebook"
        })
        .await;
        assert_eq!(titles(&body), vec!["Acme X200 notebook", "Acme laptop cooler"], "{q}");
    }
}

#[tokio::test]
async fn a_query_that_is_a_category_name_ranks_its_products_first() {
    let app = spawn_app().await;
    // No phrase rule knows lamps: the category's own name is what the query names.
    app.create_category("Lighting", None).await;
    app.create_category("Lamps", Some("lighting")).await;
    app.create_category("Shades", Some("lighting")).await;
    // By text alone the shade wins: its brand and description say "lamp" too.
    for (title, sku, category, brand, description) in [
        (
            "Acme lamp shade",
            "SHADE-1",
            "shades",
            "Lamp & Co",
            "A shade for any lamp",
        ),
        (
            "Acme reading light lamp with long arm",
            "LAMP-1",
            "lamps",
            "Acme",
            "A test product",
        ),
    ] {
        let mut body = product(title, sku, 2_000);
        body["category"] = json!(category);
        body["brand"] = json!(brand);
        body["description"] = json!(description);
        app.create_product(body).await;
    }
    for q in ["lamps", "Lamp"] {
        let (body, _) = search_until(&app, &format!("/api/v1/search?q={q}"), |b| b["total"] == 2).await;
        assert_eq!(
            titles(&body),
            vec!["Acme reading light lamp with long arm", "Acme lamp shade"],
            "{q}"
        );
    }
    // With a second category of the same name the query names neither: text alone ranks.
    app.create_category("Garden", None).await;
    app.create_category("Lamps", Some("garden")).await;
    let (body, _) = search_until(&app, "/api/v1/search?q=lamps&limit=5", |b| b["total"] == 2).await;
    assert_eq!(titles(&body)[0], "Acme lamp shade");
}

#[tokio::test]
async fn autocomplete_suggests_brands_categories_and_titles() {
    let app = spawn_app().await;
    seed(&app).await;
    let started = Instant::now();
    let body = loop {
        let (_, body) = app.get_json("/api/v1/search/suggest?q=senn").await;
        if !body["items"].as_array().unwrap().is_empty() {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no suggestions: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        body["items"][0],
        json!({ "text": "Sennheiser", "kind": "brand", "slug": null })
    );
    assert!(body["items"].as_array().unwrap().iter().any(|i| i["kind"] == "product"));
    let (_, body) = app.get_json("/api/v1/search/suggest?q=head").await;
    assert_eq!(body["items"][0]["kind"], "category", "{body}");
    let (_, body) = app.get_json("/api/v1/search/suggest?q=").await;
    assert_eq!(body["items"], json!([]));
}

/// The value of an unlabelled gauge on `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn applied_changes_leave_the_changelog_and_a_lost_index_is_rebuilt() {
    let retain_one = |c: &mut storefront::config::Config| {
        c.storage.changelog_retain_entries = 1;
        c.storage.changelog_retention_interval_ms = 20;
    };
    let app = spawn_with(None, retain_one).await;
    for i in 0..5 {
        app.create_product(product(&format!("Retained widget {i}"), &format!("RW-{i}"), 1_000))
            .await;
    }
    search_until(&app, "/api/v1/search?q=widget", |b| b["total"] == 5).await;
    let started = Instant::now();
    loop {
        let (last, truncated) = (
            gauge(&app, "storefront_changelog_last_seq").await,
            gauge(&app, "storefront_changelog_truncated_through").await,
        );
        assert!(truncated < last, "the newest entry stays");
        if truncated + 1 == last {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never truncated: {truncated} of {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without its index directory the server cannot replay the deleted changes: it rebuilds.
    let dir = app.stop().await;
    std::fs::remove_dir_all(dir.path().join("search-index")).unwrap();
    let app = spawn_with(Some(dir), retain_one).await;
    search_until(&app, "/api/v1/search?q=widget", |b| b["total"] == 5).await;
}

#[tokio::test]
async fn brand_spellings_are_one_facet_filter_and_suggestion() {
    let app = spawn_app().await;
    for (title, sku, brand) in [
        ("Defender phone case", "OB-1", "Otterbox "),
        ("Symmetry phone case", "OB-2", "OtterBox"),
        ("Commuter phone case", "OB-3", "OtterBox"),
        ("Slim phone case", "SP-1", "Spigen"),
    ] {
        let mut body = product(title, sku, 2_500);
        body["brand"] = json!(brand);
        app.create_product(body).await;
    }
    search_until(&app, "/api/v1/search?q=case", |b| b["total"] == 4).await;
    // One suggestion per brand, spelled the most common way, once the autocomplete scan ran.
    let started = Instant::now();
    let brands = loop {
        let (_, body) = app.get_json("/api/v1/search/suggest?q=otter").await;
        let brands: Vec<Value> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "brand")
            .map(|i| i["text"].clone())
            .collect();
        if !brands.is_empty() {
            break brands;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no suggestions: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(brands, vec![json!("OtterBox")]);
    // The same page as before the scan (cached then with the first spelling) shows it too.
    let (_, page) = app.get_json("/api/v1/search?q=case").await;
    assert_eq!(page["facets"]["brand"][0]["value"], "OtterBox", "{page}");
    let (_, page) = app.get_json("/api/v1/search?q=phone+case").await;
    assert_eq!(
        page["facets"]["brand"],
        json!([{ "value": "OtterBox", "count": 3 }, { "value": "Spigen", "count": 1 }]),
        "{page}"
    );
    for spelling in ["OtterBox", "otterbox", "OTTERBOX"] {
        let (_, page) = app.get_json(&format!("/api/v1/search?q=case&brand={spelling}")).await;
        assert_eq!(page["total"], 3, "{spelling}: {page}");
    }
}

/// Right after a start on a store the index has not caught up with (an offline import),
/// search and `/readyz` answer 503 `not_ready` with `Retry-After`, never a short (cacheable)
/// result, until the whole catalog is searchable.
#[tokio::test]
async fn search_answers_not_ready_until_the_index_has_caught_up_after_a_start() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for i in 0..3000 {
        writeln!(file, r#"{{"external_id":"w{i}","title":"Warmup widget {i}","variants":[{{"sku":"W-{i}","price":{{"amount":100,"currency":"USD"}}}}]}}"#).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["import", "--format", "jsonl", "--data-dir"])
        .arg(dir.path())
        .arg(file.path())
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app = crate::helpers::spawn_with(Some(dir), |_| {}).await;
    let (mut starting, mut ready) = (0, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready {
        assert!(std::time::Instant::now() < deadline, "search never became ready");
        let r = app.get("/api/v1/search?q=widget").await;
        let status = r.status();
        let headers = r.headers().clone();
        let body: Value = r.json().await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["error"]["code"], "not_ready", "{body}");
            assert_eq!(headers["retry-after"], "1");
            assert!(headers["cache-control"].to_str().unwrap().contains("no-store"));
            let (readyz, _) = app.get_json("/readyz").await;
            assert!(readyz == StatusCode::SERVICE_UNAVAILABLE || readyz == StatusCode::OK);
            starting += 1;
        } else {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["total"], 3000, "a ready search sees the whole catalog: {body}");
            ready = true;
        }
    }
    let (status, readyz) = app.get_json("/readyz").await;
    assert_eq!(
        (status, readyz["index"]["caught_up"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{readyz}"
    );
    eprintln!("search answered not_ready {starting} times before it was ready");
}
