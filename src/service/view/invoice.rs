//! The invoice of an order as a PDF: the seller(s), the buyer, the lines with their
//! discounts and tax, the tax per rate, shipping and the totals. Written with `pdf-writer` in
//! the standard Helvetica fonts (nothing embedded), A4, as many pages as the lines need.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::domain::user::Address;
use crate::domain::Currency;

/// What an invoice shows.
#[derive(Debug, Clone)]
pub struct InvoiceDocument {
    /// `INV-000001`.
    pub label: String,
    /// `SF-100001`.
    pub order_number: String,
    /// Date of the order, Unix ms.
    pub issued_at_ms: i64,
    /// The order's status when printed.
    pub status: String,
    /// The store's name.
    pub store: String,
    /// The sellers of the lines.
    pub sellers: Vec<String>,
    /// The buyer's email.
    pub buyer_email: String,
    /// Billing address.
    pub billing_address: Address,
    /// Shipping address.
    pub shipping_address: Address,
    /// Currency of every amount.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<InvoiceLine>,
    /// Sum of the lines before discount.
    pub subtotal: i64,
    /// Discount.
    pub discount: i64,
    /// Shipping charged.
    pub shipping: i64,
    /// The shipping method's name.
    pub shipping_method: String,
    /// Tax.
    pub tax: i64,
    /// Tax rate, basis points.
    pub tax_rate_bps: u32,
    /// Total.
    pub total: i64,
    /// Refunded so far.
    pub refunded: i64,
}

/// One line of an invoice (amounts in minor units).
#[derive(Debug, Clone)]
pub struct InvoiceLine {
    /// Product (and variant) title.
    pub title: String,
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// Unit price.
    pub unit_price: i64,
    /// The line's discount.
    pub discount: i64,
    /// The line's tax.
    pub tax: i64,
    /// Line total after discount, before tax.
    pub total: i64,
}

const PAGE: Rect = Rect {
    x1: 0.0,
    y1: 0.0,
    x2: 595.0,
    y2: 842.0,
};
const LEFT: f32 = 50.0;
const TOP: f32 = 790.0;
const BOTTOM: f32 = 70.0;
const LEADING: f32 = 14.0;

/// Text as WinAnsi bytes (the standard fonts' encoding); what it cannot show becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

/// Pages of text: each page a content stream, written line by line.
struct Pages {
    done: Vec<Vec<u8>>,
    current: Content,
    y: f32,
}

impl Pages {
    fn new() -> Pages {
        Pages {
            done: Vec::new(),
            current: Content::new(),
            y: TOP,
        }
    }

    /// Writes cells (x offset, text) on the next line, bold or not.
    fn line(&mut self, cells: &[(f32, &str)], bold: bool) {
        if self.y < BOTTOM {
            let full = std::mem::replace(&mut self.current, Content::new());
            self.done.push(full.finish().into_vec());
            self.y = TOP;
        }
        for (x, text) in cells {
            self.current.begin_text();
            self.current.set_font(Name(if bold { b"F2" } else { b"F1" }), 10.0);
            self.current.next_line(LEFT + x, self.y);
            self.current.show(Str(&win_ansi(text)));
            self.current.end_text();
        }
        self.y -= LEADING;
    }

    fn gap(&mut self) {
        self.y -= LEADING / 2.0;
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.done.push(self.current.finish().into_vec());
        self.done
    }
}

fn address_lines(a: &Address) -> Vec<String> {
    let mut lines = vec![a.name.clone(), a.line1.clone()];
    if !a.line2.is_empty() {
        lines.push(a.line2.clone());
    }
    let city = [a.postal_code.as_str(), a.city.as_str(), a.region.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    lines.push(city);
    lines.push(a.country.clone());
    lines
}

/// The PDF of `doc`.
pub fn render(doc: &InvoiceDocument) -> Vec<u8> {
    let money = |amount: i64| doc.currency.format(amount);
    let mut pages = Pages::new();
    pages.line(&[(0.0, &format!("Invoice {}", doc.label))], true);
    let date = super::rfc3339(doc.issued_at_ms);
    pages.line(
        &[(
            0.0,
            &format!(
                "Order {}   Date {}   Status {}",
                doc.order_number,
                &date[..10],
                doc.status
            ),
        )],
        false,
    );
    pages.gap();
    pages.line(&[(0.0, "Sold by"), (260.0, "Billed to"), (400.0, "Shipped to")], true);
    let mut seller_lines: Vec<String> = doc.sellers.clone();
    seller_lines.push(format!("via {}", doc.store));
    let billing = address_lines(&doc.billing_address);
    let mut billing = billing;
    billing.push(doc.buyer_email.clone());
    let shipping = address_lines(&doc.shipping_address);
    let rows = seller_lines.len().max(billing.len()).max(shipping.len());
    for i in 0..rows {
        let cell = |v: &Vec<String>| v.get(i).map(|s| clip(s, 34)).unwrap_or_default();
        let (s, b, h) = (cell(&seller_lines), cell(&billing), cell(&shipping));
        pages.line(&[(0.0, &s), (260.0, &b), (400.0, &h)], false);
    }
    pages.gap();
    let columns = [0.0, 215.0, 290.0, 320.0, 385.0, 445.0];
    let heads = ["Item", "SKU", "Qty", "Unit price", "Discount", "Amount"];
    let cells: Vec<(f32, &str)> = columns.iter().copied().zip(heads).collect();
    pages.line(&cells, true);
    for l in &doc.lines {
        let texts = [
            clip(&l.title, 40),
            clip(&l.sku, 14),
            l.quantity.to_string(),
            money(l.unit_price),
            money(l.discount),
            money(l.total),
        ];
        let cells: Vec<(f32, &str)> = columns.iter().copied().zip(texts.iter().map(String::as_str)).collect();
        pages.line(&cells, false);
    }
    pages.gap();
    let rate = format!("{}.{:02}%", doc.tax_rate_bps / 100, doc.tax_rate_bps % 100);
    let mut totals = vec![
        ("Subtotal".to_owned(), money(doc.subtotal)),
        ("Discount".to_owned(), money(-doc.discount)),
        (format!("Shipping ({})", doc.shipping_method), money(doc.shipping)),
        (format!("Tax at {rate}"), money(doc.tax)),
        ("Total".to_owned(), money(doc.total)),
    ];
    if doc.refunded > 0 {
        totals.push(("Refunded".to_owned(), money(-doc.refunded)));
    }
    for (name, amount) in &totals {
        pages.line(&[(320.0, name), (445.0, amount)], name == "Total");
    }
    pages.gap();
    pages.line(&[(0.0, "Tax is charged on the amount after discounts.")], false);

    let streams = pages.finish();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let first = 5;
    let page_ids: Vec<Ref> = (0..streams.len()).map(|i| Ref::new(first + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    for (i, stream) in streams.iter().enumerate() {
        let content = Ref::new(first + 2 * i as i32 + 1);
        let mut page = pdf.page(page_ids[i]);
        page.media_box(PAGE).parent(tree).contents(content);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();
        pdf.stream(content, stream);
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.finish()
}
