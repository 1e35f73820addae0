//! Invoices through the server: the PDF read back with poppler's `pdftotext` (a real PDF
//! text extractor), and numbers that are sequential, gap-free and stable over a restart.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::checkout::{guest_body, CARD_DECLINED, CARD_OK};
use crate::helpers::{product, spawn_with, TestApp};

impl TestApp {
    /// `GET /orders/{id}/invoice` with a guest token: (status, content type, body bytes).
    async fn invoice(&self, id: &str, token: Option<&str>) -> (StatusCode, String, Vec<u8>) {
        let mut req = self.client.get(self.url(&format!("/api/v1/orders/{id}/invoice")));
        if let Some(t) = token {
            req = req.header("x-order-token", t);
        }
        let res = req.send().await.unwrap();
        let kind = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (res.status(), kind, res.bytes().await.unwrap().to_vec())
    }

    /// Places a guest order of `sku`; returns the checkout answer.
    async fn guest_order(&self, sku: &str, card: &str, key: &str) -> (StatusCode, Value) {
        let cart = self.guest_add(None, sku, 1).await;
        let r = self.checkout(Some(&cart), None, Some(key), &guest_body(card)).await;
        (r.status, r.body)
    }
}

/// The text of a PDF, as `pdftotext -layout` reads it.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by scripts/setup.sh)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The invoice number printed on an order's invoice.
async fn invoice_number(app: &TestApp, order: &Value) -> String {
    let id = order["id"].as_str().unwrap();
    let token = order["order_token"].as_str().unwrap();
    let (status, _, pdf) = app.invoice(id, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    pdf_text(&pdf)
        .split_whitespace()
        .find(|w| w.starts_with("INV-"))
        .unwrap()
        .to_owned()
}

fn usd(minor: &Value) -> String {
    let m = minor["amount"].as_i64().unwrap();
    format!("{}.{:02} USD", m / 100, m % 100)
}

#[tokio::test]
async fn an_invoice_pdf_shows_the_seller_buyer_lines_tax_discount_and_totals() {
    // UK VAT at 20% for the GB address of the checkout body.
    let app = spawn_with(None, |c: &mut storefront::config::Config| {
        c.pricing.tax_bps.insert("GB".into(), 2000);
    })
    .await;
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/sellers",
            json!({ "name": "Northwind Lighting", "slug": "northwind" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut lamp = product("Brass Desk Lamp", "LAMP-9", 2599);
    lamp["seller"] = json!("northwind");
    app.create_product(lamp).await;
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "FIVE", "kind": "fixed", "value": 500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cart = app.guest_add(None, "LAMP-9", 2).await;
    let (status, _) = app.apply_coupon(&cart, "five").await;
    assert_eq!(status, StatusCode::OK);
    let r = app.checkout(Some(&cart), None, Some("inv"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let token = r.body["order_token"].as_str().unwrap();

    let (status, kind, pdf) = app.invoice(id, Some(token)).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for expected in [
        "Invoice INV-000001".to_owned(),
        r.body["number"].as_str().unwrap().to_owned(),
        "Northwind Lighting".to_owned(),
        "Ada Lovelace".to_owned(),
        "ada@example.com".to_owned(),
        "Brass Desk Lamp".to_owned(),
        "LAMP-9".to_owned(),
        "25.99 USD".to_owned(),
        format!("-{}", usd(&r.body["discount"])),
        usd(&r.body["subtotal"]),
        usd(&r.body["tax"]),
        usd(&r.body["shipping"]),
        "Tax at 20.00%".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing from:\n{text}");
    }
    let total_line = text.lines().find(|l| l.trim_start().starts_with("Total")).unwrap();
    assert!(total_line.contains(&usd(&r.body["total"])), "{total_line}");
    assert_eq!(r.body["discount"]["amount"], 500);
    assert!(r.body["tax"]["amount"].as_i64().unwrap() > 0, "{}", r.body);

    // Only the buyer and the staff: no token is 404, a seller is refused.
    assert_eq!(app.invoice(id, None).await.0, StatusCode::NOT_FOUND);
    let user = app.register("nw@example.com").await;
    let seller = app.promote(&user, "seller", Some("northwind")).await;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/orders/{id}/invoice"),
            Some(&seller.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn invoice_numbers_are_sequential_gap_free_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Some(dir), |_| {}).await;
    app.create_product(product("Pen", "PEN-1", 300)).await;
    let (status, first) = app.guest_order("PEN-1", CARD_OK, "a").await;
    assert_eq!(status, StatusCode::CREATED);
    // A declined order is never confirmed: no invoice, and no number used up.
    let (status, declined) = app.guest_order("PEN-1", CARD_DECLINED, "b").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let failed_id = declined["error"]["details"]["order"]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .admin_json(Method::GET, &format!("/api/v1/orders/{failed_id}/invoice"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, second) = app.guest_order("PEN-1", CARD_OK, "c").await;
    assert_eq!(status, StatusCode::CREATED);
    // The worker numbers them in the order they were confirmed.
    app.run_worker("invoice_numbering").await;
    assert_eq!(invoice_number(&app, &first).await, "INV-000001");
    assert_eq!(invoice_number(&app, &second).await, "INV-000002");

    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |_| {}).await;
    assert_eq!(
        invoice_number(&app, &second).await,
        "INV-000002",
        "the same number after a restart"
    );
    let (status, third) = app.guest_order("PEN-1", CARD_OK, "d").await;
    assert_eq!(status, StatusCode::CREATED);
    // Asked for before the worker ran, it is numbered at once, after the last one.
    assert_eq!(invoice_number(&app, &third).await, "INV-000003");
}
