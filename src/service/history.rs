//! Purchase-history import: the UCI "Online Retail" invoice lines become products (one per
//! stock code, at its latest name and price), customer accounts, and delivered orders (one
//! per invoice, under its invoice number), without the checkout saga and without touching
//! stock. Recommendations then learn from those orders as from live ones.
//!
//! Only purchases are imported: cancellations (`C…` invoices), adjustments, lines without a
//! positive quantity and price, and non-product codes (postage, fees, samples, vouchers) are
//! skipped and counted. A re-import changes nothing (products by stock code, accounts by
//! email, orders by number).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::auth::Accounts;
use super::catalog::Catalog;
use super::import::{import_inputs, ImportFormat, ImportOptions, ImportReport};
use super::order::history::{HistoricalLine, HistoricalOrder};
use super::order::Orders;
use crate::domain::catalog::{ProductInput, VariantInput};
use crate::domain::{Id, Money};

/// The feed name imported products are keyed under.
pub const FEED: &str = "online-retail";
/// Orders written per batch.
const ORDER_BATCH: usize = 500;

/// The email of an imported customer (`.invalid` never delivers).
pub fn customer_email(customer: &str) -> String {
    format!("customer-{customer}@online-retail.invalid")
}

/// The customer number of an imported account's email.
pub fn customer_of_email(email: &str) -> Option<&str> {
    email.strip_prefix("customer-")?.strip_suffix("@online-retail.invalid")
}

/// Whether a stock code names a product (five digits and an optional suffix), not postage,
/// fees, samples or vouchers.
pub fn is_product_code(code: &str) -> bool {
    code.len() >= 5 && code.as_bytes()[..5].iter().all(u8::is_ascii_digit)
}

/// What the import did.
#[derive(Debug, Default)]
pub struct HistoryReport {
    /// The products.
    pub products: ImportReport,
    /// Customer accounts (created or found).
    pub customers: usize,
    /// Orders written.
    pub orders: usize,
    /// Orders already present.
    pub orders_present: usize,
    /// Lines read.
    pub lines: usize,
    /// Lines that are not purchases of products.
    pub lines_skipped: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// One invoice as read: customer number, country, time, and (stock code, units, unit price).
struct Invoice {
    customer: String,
    country: String,
    at_ms: i64,
    lines: Vec<(String, i64, i64)>,
}

#[derive(Debug, serde::Deserialize)]
struct Row {
    #[serde(rename = "InvoiceNo")]
    invoice: String,
    #[serde(rename = "StockCode")]
    code: String,
    #[serde(rename = "Description")]
    description: String,
    #[serde(rename = "Quantity")]
    quantity: i64,
    #[serde(rename = "InvoiceDate")]
    date: String,
    #[serde(rename = "UnitPrice")]
    price: String,
    #[serde(rename = "CustomerID")]
    customer: String,
    #[serde(rename = "Country")]
    country: String,
}

/// Pounds and pence (`2.55`, `18.0`, `0.001`) as pence, rounded, at least 1.
fn pence(raw: &str) -> Option<i64> {
    let (whole, frac) = raw.trim().split_once('.').unwrap_or((raw.trim(), ""));
    let whole: i64 = whole.parse().ok()?;
    let mut digits: Vec<i64> = frac.bytes().take(3).map(|b| i64::from(b.wrapping_sub(b'0'))).collect();
    if digits.iter().any(|d| !(0..=9).contains(d)) || whole < 0 {
        return None;
    }
    digits.resize(3, 0);
    let thousandths = whole * 1000 + digits[0] * 100 + digits[1] * 10 + digits[2];
    Some(((thousandths + 5) / 10).max(1))
}

fn country_code(name: &str) -> &'static str {
    match name {
        "United Kingdom" => "GB",
        "Germany" => "DE",
        "France" => "FR",
        "EIRE" => "IE",
        "Spain" => "ES",
        "Netherlands" => "NL",
        "Belgium" => "BE",
        "Switzerland" => "CH",
        "Portugal" => "PT",
        "Australia" => "AU",
        "Norway" => "NO",
        "Italy" => "IT",
        "Channel Islands" => "JE",
        "Finland" => "FI",
        "Cyprus" => "CY",
        "Sweden" => "SE",
        "Austria" => "AT",
        "Denmark" => "DK",
        "Japan" => "JP",
        "Poland" => "PL",
        "USA" => "US",
        "Canada" => "CA",
        _ => "",
    }
}

/// Imports the history in `path` (`.gz` is decompressed).
pub fn import_online_retail(
    catalog: &Catalog,
    accounts: &Accounts,
    orders: &Orders,
    path: &Path,
    initial_stock: i64,
) -> anyhow::Result<HistoryReport> {
    let started = Instant::now();
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut report = HistoryReport::default();
    // Latest name and price per stock code (rows are in time order), and the invoices.
    let mut products: BTreeMap<String, (String, i64, usize)> = BTreeMap::new();
    let mut invoices: BTreeMap<u64, Invoice> = BTreeMap::new();
    for (n, row) in csv::Reader::from_reader(reader).deserialize::<Row>().enumerate() {
        report.lines += 1;
        let row = row.map_err(|e| anyhow::anyhow!("line {}: {e}", n + 2))?;
        let (Ok(number), Some(price)) = (row.invoice.parse::<u64>(), pence(&row.price)) else {
            report.lines_skipped += 1;
            continue;
        };
        if row.quantity <= 0 || row.price.trim().starts_with('-') || !is_product_code(&row.code) {
            report.lines_skipped += 1;
            continue;
        }
        let Some(at) = humantime::parse_rfc3339_weak(row.date.trim())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
        else {
            report.lines_skipped += 1;
            continue;
        };
        let title = row.description.trim();
        let entry = products
            .entry(row.code.clone())
            .or_insert((String::new(), price, n + 2));
        if !title.is_empty() {
            entry.0 = title.to_owned();
        }
        entry.1 = price;
        let invoice = invoices.entry(number).or_insert_with(|| Invoice {
            customer: row.customer.trim().to_owned(),
            country: row.country.clone(),
            at_ms: at,
            lines: Vec::new(),
        });
        match invoice.lines.iter_mut().find(|(code, _, _)| *code == row.code) {
            Some(line) => line.1 += row.quantity,
            None => invoice.lines.push((row.code, row.quantity, price)),
        }
    }

    let currency = catalog.currency();
    let inputs = products.iter().map(|(code, (title, price, line))| {
        let title = if title.is_empty() {
            format!("Item {code}")
        } else {
            title.clone()
        };
        (
            *line,
            ProductInput {
                title: Some(title),
                description: Some(String::new()),
                external_id: Some(code.clone()),
                variants: Some(vec![VariantInput {
                    sku: Some(code.clone()),
                    price: Some(Money::new(*price, currency)),
                    stock: Some(initial_stock),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
    });
    let options = ImportOptions {
        format: ImportFormat::OnlineRetail,
        initial_stock,
    };
    report.products = import_inputs(catalog, &options, inputs)?;
    let mut product_ids: BTreeMap<&str, Id> = BTreeMap::new();
    for code in products.keys() {
        if let Some(id) = catalog.product_by_external_id(FEED, code)? {
            product_ids.insert(code, id);
        }
    }

    let mut customers: Vec<String> = invoices
        .values()
        .map(|i| i.customer.clone())
        .filter(|c| !c.is_empty())
        .collect();
    customers.sort();
    customers.dedup();
    let mut users: BTreeMap<String, Id> = BTreeMap::new();
    for chunk in customers.chunks(ORDER_BATCH) {
        let pairs: Vec<(String, String)> = chunk
            .iter()
            .map(|c| (customer_email(c), format!("Customer {c}")))
            .collect();
        for (customer, id) in chunk.iter().zip(accounts.import_customers(&pairs)?) {
            users.insert(customer.clone(), id);
        }
    }
    report.customers = users.len();

    let all: Vec<HistoricalOrder> = invoices
        .into_iter()
        .filter_map(
            |(
                number,
                Invoice {
                    customer,
                    country,
                    at_ms: at,
                    lines,
                },
            )| {
                let lines: Vec<HistoricalLine> = lines
                    .into_iter()
                    .filter_map(|(code, quantity, price)| {
                        Some(HistoricalLine {
                            product_id: *product_ids.get(code.as_str())?,
                            title: products.get(&code).map(|p| p.0.clone()).unwrap_or_default(),
                            sku: code,
                            unit_price_cents: price,
                            quantity,
                        })
                    })
                    .collect();
                (!lines.is_empty()).then(|| HistoricalOrder {
                    number,
                    user_id: users.get(&customer).copied(),
                    email: if customer.is_empty() {
                        "guest@online-retail.invalid".to_owned()
                    } else {
                        customer_email(&customer)
                    },
                    country: country_code(&country).to_owned(),
                    lines,
                    placed_at_ms: at,
                })
            },
        )
        .collect();
    for chunk in all.chunks(ORDER_BATCH) {
        let outcome = orders.import_history(chunk)?;
        report.orders += outcome.written;
        report.orders_present += outcome.present;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_in_pounds_become_pence() {
        assert_eq!(pence("2.55"), Some(255));
        assert_eq!(pence("18.0"), Some(1800));
        assert_eq!(pence("0.001"), Some(1), "never free");
        assert_eq!(pence("1.245"), Some(125));
        assert_eq!(pence("-1.0"), None);
        assert_eq!(pence("abc"), None);
    }

    #[test]
    fn product_codes_are_five_digits_and_a_suffix() {
        for code in ["85123A", "22423", "15056BL"] {
            assert!(is_product_code(code), "{code}");
        }
        for code in ["POST", "DOT", "M", "C2", "BANK CHARGES", "gift_0001_20", "DCGS0003"] {
            assert!(!is_product_code(code), "{code}");
        }
        assert_eq!(customer_of_email(&customer_email("17850")), Some("17850"));
    }

    proptest! {
        #[test]
        fn any_price_text_parses_or_is_refused_without_panicking(raw in "\\PC{0,12}") {
            if let Some(p) = pence(&raw) { prop_assert!(p >= 1); }
        }
    }
}
