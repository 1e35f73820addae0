//! Discovers product slugs and category slugs from the running server, so scenarios exercise
//! the real catalog rather than hard-coded ids.

use std::collections::HashMap;

use hyper::header::HeaderValue;
use serde_json::Value;

use crate::client::{Connection, Target};
use crate::scenario::Scenario;

/// What the scenario's placeholders draw from.
#[derive(Debug, Default, Clone)]
pub struct CatalogSample {
    /// Product slugs.
    pub products: Vec<String>,
    /// Category slugs.
    pub categories: Vec<String>,
    /// ETags of URLs used by conditional steps.
    pub etags: HashMap<String, HeaderValue>,
    /// Words from product titles, for `{word}` (search) and `{prefix}` (autocomplete).
    pub words: Vec<String>,
    /// In-stock SKUs, for `{sku}` (cart writes).
    pub skus: Vec<String>,
}

/// Samples up to `max_products` products (newest first) and every category.
pub async fn discover(target: &Target, scenario: &Scenario, max_products: usize) -> anyhow::Result<CatalogSample> {
    let mut conn = Connection::open(target).await?;
    let mut sample = CatalogSample::default();
    let wants_products = ["{product}", "{word}", "{prefix}", "{sku}"]
        .iter()
        .any(|p| scenario.uses(p));
    if wants_products {
        let mut cursor: Option<String> = None;
        while sample.products.len() < max_products {
            let path = match &cursor {
                Some(c) => format!("/api/v1/products?limit=100&cursor={c}"),
                None => "/api/v1/products?limit=100".to_owned(),
            };
            let reply = conn.get(&path, None).await?;
            anyhow::ensure!(reply.status.is_success(), "GET {path} answered {}", reply.status);
            let page: Value = serde_json::from_slice(&reply.body)?;
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some(slug) = item["slug"].as_str() {
                    sample.products.push(slug.to_owned());
                }
                for word in item["title"].as_str().unwrap_or("").split_whitespace() {
                    let word: String = word
                        .chars()
                        .filter(|c| c.is_alphanumeric())
                        .collect::<String>()
                        .to_lowercase();
                    if word.len() >= 4 && word.chars().all(|c| c.is_ascii_alphabetic()) {
                        sample.words.push(word);
                    }
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        sample.products.truncate(max_products);
        anyhow::ensure!(
            !sample.products.is_empty(),
            "the server has no products to load-test (load the demo or import a catalog)"
        );
    }
    if scenario.uses("{sku}") {
        for slug in &sample.products {
            let reply = conn.get(&format!("/api/v1/products/{slug}"), None).await?;
            let product: Value = serde_json::from_slice(&reply.body)?;
            for v in product["variants"].as_array().into_iter().flatten() {
                if v["available"].as_i64().unwrap_or(0) > 0 {
                    if let Some(sku) = v["sku"].as_str() {
                        sample.skus.push(sku.to_owned());
                    }
                }
            }
        }
        anyhow::ensure!(!sample.skus.is_empty(), "no in-stock SKU to put in carts");
    }
    if scenario.uses("{category}") {
        let reply = conn.get("/api/v1/categories", None).await?;
        let tree: Value = serde_json::from_slice(&reply.body)?;
        fn walk(node: &Value, out: &mut Vec<String>) {
            for child in node.as_array().into_iter().flatten() {
                if let Some(slug) = child["slug"].as_str() {
                    out.push(slug.to_owned());
                }
                walk(&child["children"], out);
            }
        }
        walk(&tree["items"], &mut sample.categories);
        anyhow::ensure!(!sample.categories.is_empty(), "the server has no categories");
    }
    // Prime ETags for conditional steps (this also warms the server's caches).
    for step in scenario.steps.iter().filter(|s| s.conditional) {
        for url in expand_all(&step.path, &sample) {
            let reply = conn.get(&url, None).await?;
            if let Some(etag) = reply.etag {
                sample.etags.insert(url, etag);
            }
        }
    }
    Ok(sample)
}

/// Every concrete URL a step can produce (for priming).
fn expand_all(path: &str, sample: &CatalogSample) -> Vec<String> {
    if path.contains("{product}") {
        sample.products.iter().map(|p| path.replace("{product}", p)).collect()
    } else if path.contains("{category}") {
        sample
            .categories
            .iter()
            .map(|c| path.replace("{category}", c))
            .collect()
    } else {
        vec![path.to_owned()]
    }
}
