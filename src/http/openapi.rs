//! The API document, generated from code: each handler's `#[utoipa::path]` and the schemas of
//! the request bodies and views it names. The router is assembled from those same handlers
//! (`utoipa_axum::routes!`), so a route cannot exist without its documentation.
//!
//! `/openapi.json` serves the document; `/docs` renders it as a self-contained HTML page (no
//! external script or style: the CSP forbids them, and the page must work offline).

use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::Modify;

use super::error::ErrorBody;
use crate::domain::error::Code;

/// The document's fixed parts; the paths come from the routers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "storefront API",
        version = "1.0.0",
        description = "Single-box e-commerce backend. Money is integer minor units with a currency code \
            (`{\"amount\": 129900, \"currency\": \"USD\"}`); ids are UUIDv7 strings that sort by creation time. \
            Errors are `{\"error\":{\"code\",\"message\",\"details\"}}`: the `code` values and their statuses \
            are listed in the `Error` schema. Admin automation uses `Authorization: Bearer <[auth] admin_api_key>`; \
            users send their access token the same way. Catalog writes: admins change anything, sellers \
            only their own seller's products and stock, customers nothing. Every request is rate limited \
            per client IP (429 with `Retry-After`); an overloaded or slow server answers 503 with `Retry-After`. \
            Text is stored as given and must be escaped by whoever renders it."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "catalog", description = "Products, variants, categories and sellers; public reads are CDN-cacheable"),
        (name = "inventory", description = "Stock levels, holds and stock events"),
        (name = "search", description = "Full-text search and autocomplete"),
        (name = "accounts", description = "Registration, sessions, profile, addresses and roles"),
        (name = "cart", description = "Guest and user carts with stock holds"),
        (name = "orders", description = "Checkout, orders, fulfilment, refunds and payment webhooks"),
        (name = "promotions", description = "Coupons: codes with a percentage or amount off, limits and a scope"),
        (name = "shipping", description = "Shipping zones and their methods: flat, by weight band, or free over a threshold"),
        (name = "reviews", description = "Product reviews: verified purchases, moderation, helpful votes, the seller's reply"),
        (name = "engagement", description = "Wishlists with back-in-stock and price-drop alerts, and recommendations"),
        (name = "notifications", description = "Webhook endpoints, deliveries, dead letters and replay"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Completes a document whose paths are in: adds what holds for every operation once instead
/// of on each handler (the bearer scheme, the table of error codes, and the 429/500/503
/// answers any request can get).
pub fn finish(doc: &mut OpenApi) {
    Conventions.modify(doc);
}

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or the admin API key")
                    .description(Some("An access token from /api/v1/auth/login, or [auth] admin_api_key"))
                    .build(),
            ),
        );
        let mut codes = String::from("Error codes and their HTTP statuses:\n");
        for code in Code::ALL {
            let _ = writeln!(codes, "- `{}`: {}", code.as_str(), code.status());
        }
        if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(error))) = components.schemas.get_mut("ErrorBody")
        {
            error.description = Some(codes);
        }
        let error = error_response;
        for item in doc.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let signed = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut operation.responses.responses;
                if signed {
                    // The admin API key is not a user: `/me` answers it 403, as do roles
                    // without the right.
                    responses
                        .entry("403".into())
                        .or_insert_with(|| error("The caller may not do this (`forbidden`)"));
                }
                responses
                    .entry("400".into())
                    .or_insert_with(|| error("Malformed request: an unknown or unparsable query parameter or header"));
                if has_body {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| error("Body larger than `[server] body_limit_bytes`"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| error("Body is not `Content-Type: application/json`"));
                    responses
                        .entry("422".into())
                        .or_insert_with(|| error("Invalid body; `details` lists each field"));
                }
                responses
                    .entry("429".into())
                    .or_insert_with(|| error("Rate limited; see `Retry-After`"));
                responses
                    .entry("500".into())
                    .or_insert_with(|| error("Internal fault (logged, never described)"));
                responses
                    .entry("503".into())
                    .or_insert_with(|| error("Overloaded or timed out; see `Retry-After`"));
            }
        }
    }
}

/// An error response of the standard shape.
fn error_response(description: &str) -> RefOr<utoipa::openapi::response::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                    .build(),
            )
            .build(),
    )
}

/// Declares a set of error responses shared by many operations, for `responses(...)`.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? })*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
                    [$(($status.to_string(), error_response($description))),+].into_iter().collect()
                }
            }
        )*
    };
}

error_responses! {
    /// A signed-in caller is required.
    SignedIn { "401" => "No, bad or expired credentials" }
    /// Admins only.
    AdminOnly { "401" => "No, bad or expired credentials", "403" => "Admins only" }
    /// Admins, or the seller that owns the data.
    CatalogWriter {
        "401" => "No, bad or expired credentials",
        "403" => "Admins, or the owning seller, only",
    }
    /// `If-Match` was given and names another version.
    Versioned { "412" => "`If-Match` names another version; `details.current_version` is the current one" }
    /// Invalid fields.
    Invalid { "422" => "Invalid fields: `details` lists each with its reason" }
    /// The refusals of a stock change.
    StockWrite {
        "401" => "No, bad or expired credentials",
        "403" => "Admins, or the owning seller, only",
        "404" => "No such SKU",
        "409" => "`below_reserved`: on hand would fall below what carts and orders hold",
        "412" => "`If-Match` names another version; `details.current_version` is the current one",
        "422" => "Out of range",
    }
    /// The body could not be read.
    BadBody {
        "400" => "Malformed JSON",
        "413" => "Body over `[server] body_limit_bytes`",
        "415" => "Not `application/json`",
    }
}

/// The document, serialised once, and the page rendered from it.
#[derive(Debug, Clone)]
pub struct ApiDocs {
    /// `/openapi.json`.
    pub json: Bytes,
    /// `/docs`.
    pub html: Bytes,
}

impl ApiDocs {
    /// Serialises `doc` and renders its page.
    pub fn new(doc: &OpenApi) -> Arc<ApiDocs> {
        let json = doc.to_json().unwrap_or_else(|_| "{}".into());
        Arc::new(ApiDocs {
            html: Bytes::from(render(doc)),
            json: Bytes::from(json),
        })
    }
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// A self-contained reference page: every operation with its summary, description,
/// parameters and responses, grouped by tag.
fn render(doc: &OpenApi) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>storefront API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;line-height:1.4}\
         code{background:#f3f3f3;padding:0 .2rem}.m{display:inline-block;width:4.5rem;font-weight:bold}\
         details{margin:.4rem 0;border-left:3px solid #ddd;padding-left:.6rem}summary{cursor:pointer}\
         table{border-collapse:collapse}td{padding:.1rem .6rem;vertical-align:top}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p>",
        esc(&doc.info.title),
        esc(doc.info.description.as_deref().unwrap_or(""))
    );
    let tags: Vec<String> = doc
        .tags
        .iter()
        .flatten()
        .map(|t| t.name.clone())
        .chain(std::iter::once(String::new()))
        .collect();
    for tag in &tags {
        let mut section = String::new();
        for (path, item) in doc.paths.paths.iter() {
            let operations = [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ];
            for (method, operation) in operations {
                let Some(op) = operation else { continue };
                let op_tags = op.tags.clone().unwrap_or_default();
                let in_section = if tag.is_empty() {
                    op_tags.is_empty()
                } else {
                    op_tags.contains(tag)
                };
                if !in_section {
                    continue;
                }
                let _ = write!(
                    section,
                    "<details><summary><span class=m>{}</span><code>{}</code> {}</summary>",
                    method.to_uppercase(),
                    esc(path),
                    esc(op.summary.as_deref().unwrap_or(""))
                );
                if let Some(d) = &op.description {
                    let _ = write!(section, "<p>{}</p>", esc(d));
                }
                if let Some(params) = &op.parameters {
                    section.push_str("<table>");
                    for p in params {
                        let place = match p.parameter_in {
                            ParameterIn::Path => "path",
                            ParameterIn::Query => "query",
                            ParameterIn::Header => "header",
                            ParameterIn::Cookie => "cookie",
                        };
                        let _ = write!(
                            section,
                            "<tr><td><code>{}</code></td><td>{place}</td><td>{}</td></tr>",
                            esc(&p.name),
                            esc(p.description.as_deref().unwrap_or(""))
                        );
                    }
                    section.push_str("</table>");
                }
                section.push_str("<ul>");
                for (status, response) in &op.responses.responses {
                    let description = match response {
                        RefOr::T(r) => r.description.clone(),
                        RefOr::Ref(r) => r.ref_location.clone(),
                    };
                    let _ = write!(section, "<li><code>{}</code> {}</li>", esc(status), esc(&description));
                }
                section.push_str("</ul></details>");
            }
        }
        if !section.is_empty() {
            let _ = write!(
                html,
                "<h2>{}</h2>{section}",
                esc(if tag.is_empty() { "other" } else { tag })
            );
        }
    }
    html.push_str("</body></html>");
    html
}
