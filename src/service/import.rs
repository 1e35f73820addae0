//! Bulk catalog import: JSON Lines in our own product schema, the Chorus/Icecat catalog, and
//! Best Buy product records (with their category tree).
//!
//! Imports are idempotent: every product is keyed by `(feed, external_id)`, so re-running an
//! import updates the same products (or leaves them untouched) instead of duplicating them.
//! Bad rows are reported with their line number and skipped. Rows are committed in atomic
//! batches of [`BATCH_SIZE`].
//!
//! ## Chorus categories
//! Icecat rows carry no category tree, so one is derived from the row's declared product type
//! or its title by [`category_rules::category_for`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::catalog::{Catalog, ResolvedProduct, Source, UpsertOutcome};
use super::error::ServiceError;
use crate::domain::catalog::{check_product, Image, ProductInput, VariantInput};
use crate::domain::category_rules;
use crate::domain::{FieldErrors, Money};

/// Rows committed per atomic batch.
pub const BATCH_SIZE: usize = 500;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One `POST /products` body per line (plus optional `category_path`).
    Jsonl,
    /// The Chorus/Icecat product export (`products.jsonl.gz`).
    Chorus,
    /// Best Buy products as one JSON array (the Algolia demo data: `name`, `description`,
    /// `brand`, `categories` root first, `price` in dollars, `image`, `popularity`).
    Bestbuy,
    /// A purchase history: the UCI "Online Retail" invoice lines (CSV). Stock codes become
    /// products, customers accounts, invoices delivered orders (see [`super::history`]).
    OnlineRetail,
}

impl ImportFormat {
    fn feed(self) -> &'static str {
        match self {
            ImportFormat::Jsonl => "jsonl",
            ImportFormat::Chorus => "chorus",
            ImportFormat::Bestbuy => "bestbuy",
            ImportFormat::OnlineRetail => "online-retail",
        }
    }
}

/// Outcome of an import run.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    /// Products created.
    pub created: usize,
    /// Products changed.
    pub updated: usize,
    /// Products already up to date.
    pub unchanged: usize,
    /// Rows skipped, with line number and reason.
    pub skipped: Vec<(usize, String)>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Import options.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Format of the input.
    pub format: ImportFormat,
    /// On-hand stock given to SKUs that are new and have no stock in the input.
    pub initial_stock: i64,
}

/// Imports from a file; `.gz` files are decompressed.
pub fn import_file(
    catalog: &Catalog,
    path: &Path,
    options: &ImportOptions,
    on_progress: impl FnMut(u64),
) -> anyhow::Result<ImportReport> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    // Progress is in bytes of the file as stored, so a bar over the file's size fills for
    // compressed input too.
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let file = CountingFile {
        inner: file,
        read: read.clone(),
    };
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut on_progress = on_progress;
    import_reader(catalog, reader, options, |_| on_progress(read.get()))
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// A file that counts the bytes read from it.
struct CountingFile {
    inner: std::fs::File,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Read for CountingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Imports from any reader. `on_progress` receives the number of bytes consumed so far.
pub fn import_reader(
    catalog: &Catalog,
    reader: impl Read,
    options: &ImportOptions,
    mut on_progress: impl FnMut(u64),
) -> anyhow::Result<ImportReport> {
    let mut rows = Rows::new(catalog, options);
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    if options.format == ImportFormat::Bestbuy {
        // One JSON array: each element is a row, numbered from 1.
        let mut counted = CountingReader {
            inner: reader,
            bytes: 0,
        };
        let records: Vec<serde_json::Value> =
            serde_json::from_reader(&mut counted).map_err(|e| anyhow::anyhow!("not a JSON array of products: {e}"))?;
        for (i, record) in records.into_iter().enumerate() {
            let parsed = serde_json::from_value::<BestBuyRow>(record)
                .map_err(|e| format!("invalid product: {e}"))
                .and_then(BestBuyRow::into_input);
            if rows.push(i + 1, parsed)? {
                on_progress(counted.bytes);
            }
        }
        on_progress(counted.bytes);
        return rows.finish();
    }
    let mut line = String::new();
    let mut line_no = 0usize;
    let mut consumed = 0u64;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        consumed += n as u64;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match options.format {
            ImportFormat::Jsonl => {
                serde_json::from_str::<ProductInput>(&line).map_err(|e| format!("invalid JSON: {e}"))
            }
            ImportFormat::Chorus => serde_json::from_str::<ChorusRow>(&line)
                .map_err(|e| format!("invalid JSON: {e}"))
                .map(ChorusRow::into_input),
            ImportFormat::Bestbuy => unreachable!("read as one array above"),
            ImportFormat::OnlineRetail => anyhow::bail!("online-retail is a purchase history: see service::history"),
        };
        if rows.push(line_no, parsed)? {
            on_progress(consumed);
        }
    }
    on_progress(consumed);
    rows.finish()
}

/// Imports product bodies built by another importer (numbered by their source position).
pub fn import_inputs(
    catalog: &Catalog,
    options: &ImportOptions,
    inputs: impl IntoIterator<Item = (usize, ProductInput)>,
) -> anyhow::Result<ImportReport> {
    let mut rows = Rows::new(catalog, options);
    for (position, input) in inputs {
        rows.push(position, Ok(input))?;
    }
    rows.finish()
}

/// Counts the bytes a reader hands out, for progress.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Validates parsed rows and commits them in batches, whatever the input format.
struct Rows<'a> {
    catalog: &'a Catalog,
    options: &'a ImportOptions,
    batch: Vec<(usize, ResolvedProduct)>,
    report: ImportReport,
    started: Instant,
    /// Brand spelling first seen in this import, by lower-case name.
    brands: HashMap<String, String>,
}

impl<'a> Rows<'a> {
    fn new(catalog: &'a Catalog, options: &'a ImportOptions) -> Rows<'a> {
        Rows {
            catalog,
            options,
            batch: Vec::with_capacity(BATCH_SIZE),
            report: ImportReport::default(),
            started: Instant::now(),
            brands: HashMap::new(),
        }
    }

    /// Adds row `position` (line or record number); returns whether a batch was committed.
    fn push(&mut self, position: usize, parsed: Result<ProductInput, String>) -> anyhow::Result<bool> {
        let resolved = parsed.and_then(|mut input| {
            // Feeds spell one brand several ways ("OtterBox", "Otterbox"); one spelling keeps
            // the brand one facet value and one filter.
            if let Some(brand) = input.brand.as_mut() {
                let first = self.brands.entry(brand.to_lowercase()).or_insert_with(|| brand.clone());
                brand.clone_from(first);
            }
            for v in input.variants.iter_mut().flatten() {
                v.stock.get_or_insert(self.options.initial_stock);
            }
            resolve(self.catalog, &input).map_err(describe)
        });
        match resolved {
            Ok(r) => self.batch.push((position, r)),
            Err(reason) => self.report.skipped.push((position, reason)),
        }
        if self.batch.len() < BATCH_SIZE {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    fn finish(mut self) -> anyhow::Result<ImportReport> {
        self.flush()?;
        self.report.elapsed = self.started.elapsed();
        Ok(self.report)
    }

    /// Commits the pending rows as one atomic batch and records each row's outcome.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let items: Vec<ResolvedProduct> = self.batch.iter().map(|(_, r)| r.clone()).collect();
        let outcomes = self
            .catalog
            .upsert_batch(&items, Source::Feed(self.options.format.feed()))?;
        for ((position, _), outcome) in self.batch.iter().zip(outcomes) {
            match outcome {
                Ok(UpsertOutcome::Created) => self.report.created += 1,
                Ok(UpsertOutcome::Updated) => self.report.updated += 1,
                Ok(UpsertOutcome::Unchanged) => self.report.unchanged += 1,
                Err(e) => self.report.skipped.push((*position, describe(e))),
            }
        }
        self.batch.clear();
        Ok(())
    }
}

fn describe(e: ServiceError) -> String {
    match e {
        ServiceError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Validates an import row, creating its `category_path` categories when the row is valid.
fn resolve(catalog: &Catalog, input: &ProductInput) -> Result<ResolvedProduct, ServiceError> {
    let mut errors = FieldErrors::default();
    let product = check_product(input, catalog.currency(), &mut errors);
    if product.external_id.is_none() {
        errors.add(
            "external_id",
            "required",
            "imported rows need an external_id so re-imports update them",
        );
    }
    let (mut category_id, seller_id) =
        catalog.resolve_refs(input.category.as_deref(), input.seller.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors.into_vec()));
    }
    if let Some(path) = &input.category_path {
        category_id = catalog.ensure_category_path(path)?.or(category_id);
    }
    Ok(ResolvedProduct {
        product,
        category_id,
        seller_id,
    })
}

/// One row of the Chorus/Icecat export.
#[derive(Debug, Deserialize)]
struct ChorusRow {
    id: String,
    title: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    short_description: Option<String>,
    #[serde(default)]
    supplier: Option<String>,
    price: i64,
    #[serde(default)]
    ean: Vec<String>,
    #[serde(default)]
    img_500x500: Option<String>,
    #[serde(default)]
    img_high: Option<String>,
    #[serde(default)]
    date_released: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl ChorusRow {
    fn into_input(self) -> ProductInput {
        let mut attributes = serde_json::Map::new();
        let mut product_type = None;
        for (key, value) in self.rest {
            let Some(name) = key
                .strip_prefix("attr_t_")
                .or_else(|| key.strip_prefix("attr_n_"))
                .or_else(|| key.strip_prefix("attr_b_"))
            else {
                continue;
            };
            let name = attribute_name(name);
            if name.is_empty() || name.len() > 100 {
                continue;
            }
            if name == "product_type" {
                product_type = value.as_str().map(str::to_owned);
            }
            attributes.insert(name, value);
        }
        if let Some(model) = self.name.filter(|n| !n.is_empty()) {
            attributes.insert("model".into(), model.into());
        }
        if !self.ean.is_empty() {
            attributes.insert("ean".into(), self.ean.join(",").into());
        }
        if let Some(date) = self.date_released {
            attributes.insert(
                "date_released".into(),
                date.get(..10).unwrap_or(&date).to_owned().into(),
            );
        }
        let images = [self.img_500x500, self.img_high]
            .into_iter()
            .flatten()
            .filter(|u| !u.is_empty())
            .map(|url| Image {
                url,
                alt: self.title.clone(),
            })
            .collect();
        let currency = crate::domain::Currency::parse("USD").expect("valid code");
        ProductInput {
            category_path: Some(
                category_rules::category_for(product_type.as_deref(), &self.title)
                    .map(|path| path.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_else(|| vec!["Other".to_string()]),
            ),
            title: Some(self.title),
            description: self.short_description,
            brand: self.supplier,
            images: Some(images),
            attributes: Some(attributes),
            variants: Some(vec![VariantInput {
                sku: Some(format!("ICECAT-{}", self.id)),
                price: Some(Money::new(self.price, currency)),
                ..VariantInput::default()
            }]),
            external_id: Some(self.id),
            ..ProductInput::default()
        }
    }
}

/// One Best Buy product record.
#[derive(Debug, Deserialize)]
struct BestBuyRow {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    price: serde_json::Number,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    popularity: Option<u64>,
}

impl BestBuyRow {
    fn into_input(self) -> Result<ProductInput, String> {
        let image = self.image.filter(|u| !u.is_empty());
        // The records carry no id; the image file is named after the Best Buy SKU
        // (`.../4984700_sb.jpg`).
        let sku = image
            .as_deref()
            .and_then(|url| url.rsplit('/').next())
            .and_then(|file| file.split(['_', '.']).next())
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .ok_or("no Best Buy SKU in the image URL")?
            .to_owned();
        let cents = dollars_to_cents(&self.price.to_string()).ok_or("price: not a dollar amount")?;
        let currency = crate::domain::Currency::parse("USD").expect("valid code");
        let text = |s: &str| decode_entities(s).trim().to_owned();
        let title = text(&self.name);
        let mut attributes = serde_json::Map::new();
        if let Some(p) = self.popularity {
            attributes.insert("popularity".into(), p.into());
        }
        Ok(ProductInput {
            category_path: Some(self.categories.iter().map(|c| text(c)).collect()),
            description: self.description.as_deref().map(text),
            brand: self.brand.as_deref().map(text),
            images: Some(
                image
                    .into_iter()
                    .map(|url| Image {
                        url,
                        alt: title.clone(),
                    })
                    .collect(),
            ),
            attributes: Some(attributes),
            variants: Some(vec![VariantInput {
                sku: Some(format!("BESTBUY-{sku}")),
                price: Some(Money::new(cents, currency)),
                ..VariantInput::default()
            }]),
            title: Some(title),
            external_id: Some(sku),
            ..ProductInput::default()
        })
    }
}

/// Decodes HTML character references the way browsers do: `&#128;`–`&#159;` name Windows-1252
/// characters (`&#153;` is ™), not the C1 control codes they would be in Unicode.
fn decode_entities(text: &str) -> String {
    /// Windows-1252 characters of bytes 0x80–0x9F (undefined bytes stay as they are).
    const C1: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    html_escape::decode_html_entities(text)
        .chars()
        .map(|c| match c as u32 {
            0x80..=0x9f => C1[c as usize - 0x80],
            _ => c,
        })
        .collect()
}

/// Parses a decimal dollar amount exactly ("49.99" → 4999, "5" → 500, "5.5" → 550); more than
/// two decimals or a negative amount is not a price.
fn dollars_to_cents(amount: &str) -> Option<i64> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents)
}

/// Normalises an Icecat attribute key: `contrast_ratio__typical_` → `contrast_ratio_typical`.
fn attribute_name(raw: &str) -> String {
    raw.split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_amounts_convert_to_cents_exactly() {
        assert_eq!(dollars_to_cents("49.99"), Some(4999));
        assert_eq!(dollars_to_cents("5"), Some(500));
        assert_eq!(dollars_to_cents("5.5"), Some(550));
        assert_eq!(dollars_to_cents("0.07"), Some(7));
        assert_eq!(dollars_to_cents("899.99"), Some(89_999));
        for bad in ["-1.00", "1.999", "", ".5", "1e3", "12.a"] {
            assert_eq!(dollars_to_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn best_buy_records_map_to_products() {
        let row: BestBuyRow = serde_json::from_str(
            r#"{"name":"Insignia&#153; - Case for Apple&#174; iPhone","description":"Slim &amp; light.",
                "brand":"Insignia™","categories":["Cell Phones","Cell Phone Accessories","Cases"],
                "price":24.99,"image":"https://cdn-demo.algolia.com/bestbuy-0118/5619002_sb.jpg","popularity":17}"#,
        )
        .unwrap();
        let input = row.into_input().unwrap();
        assert_eq!(input.external_id.as_deref(), Some("5619002"));
        assert_eq!(input.title.as_deref(), Some("Insignia™ - Case for Apple® iPhone"));
        assert_eq!(input.description.as_deref(), Some("Slim & light."));
        assert_eq!(
            input.category_path.unwrap(),
            ["Cell Phones", "Cell Phone Accessories", "Cases"]
        );
        let variant = &input.variants.unwrap()[0];
        assert_eq!(variant.sku.as_deref(), Some("BESTBUY-5619002"));
        assert_eq!(variant.price.as_ref().unwrap().amount, 2499);

        let no_sku: BestBuyRow =
            serde_json::from_str(r#"{"name":"x","price":1,"image":"https://example.com/photo.jpg"}"#).unwrap();
        assert!(no_sku.into_input().is_err());
    }

    #[test]
    fn attribute_keys_are_normalised() {
        assert_eq!(attribute_name("contrast_ratio__typical_"), "contrast_ratio_typical");
    }

    #[test]
    fn chorus_rows_become_product_inputs() {
        let row: ChorusRow = serde_json::from_str(
            r#"{"id":"42","name":"X1","title":"Acme X1 toner cartridge","supplier":"Acme","price":4995,"ean":["1","2"],
                "img_500x500":"http://img/1.jpg","attr_t_printing_colours":"Black","attr_n_page_yield":23000.0,"attr_b_recycled":false}"#,
        )
        .unwrap();
        let input = row.into_input();
        assert_eq!(input.external_id.as_deref(), Some("42"));
        let attrs = input.attributes.unwrap();
        assert_eq!(attrs["printing_colours"], "Black");
        assert_eq!(attrs["page_yield"], 23000.0);
        assert_eq!(attrs["recycled"], false);
        assert_eq!(input.variants.unwrap()[0].price.unwrap().amount, 4995);
        assert_eq!(input.category_path.unwrap(), vec!["Printing", "Toner"]);
    }

    proptest::proptest! {
        /// Any text: a price either is refused or is exactly the decimal it spells.
        #[test]
        fn dollar_amounts_are_exact_or_refused(raw in "\\PC{0,12}|[0-9]{1,9}(\\.[0-9]{0,3})?", dollars in 0i64..10_000_000, cents in 0i64..100) {
            proptest::prop_assert_eq!(dollars_to_cents(&format!("{dollars}.{cents:02}")), Some(dollars * 100 + cents));
            if let Some(c) = dollars_to_cents(&raw) {
                proptest::prop_assert!(c >= 0);
                let (whole, fraction) = raw.split_once('.').unwrap_or((&raw, ""));
                proptest::prop_assert_eq!(c / 100, whole.parse::<i64>().unwrap());
                proptest::prop_assert_eq!(c % 100, format!("{fraction:0<2}").parse::<i64>().unwrap());
            }
        }

        /// Any JSON value as an import row: a row is mapped or refused with a reason, never a panic.
        #[test]
        fn any_best_buy_row_maps_or_is_refused(name in "\\PC{0,20}", price in proptest::num::f64::ANY, image in "\\PC{0,30}|https://x/[0-9]{1,8}_sb\\.jpg") {
            let row = serde_json::json!({"name": name, "price": price, "image": image, "categories": [name]});
            if let Ok(row) = serde_json::from_value::<BestBuyRow>(row) {
                if let Ok(input) = row.into_input() {
                    let variants = input.variants.unwrap();
                    proptest::prop_assert!(variants[0].price.as_ref().unwrap().amount >= 0);
                }
            }
        }
    }
}
