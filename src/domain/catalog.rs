//! Catalog request bodies (products, variants, categories, sellers, stock) and their
//! validation rules.
//!
//! Inputs are plain serde structs with every field optional, so a missing field is reported as
//! a 422 `required` error alongside every other invalid field instead of failing fast on the
//! first. References to other entities (category, seller) are resolved by the service, which
//! appends its findings to the same [`FieldErrors`].

use serde::{Deserialize, Deserializer};

use super::{Currency, FieldErrors, Money, Slug};

/// Longest product title.
pub const MAX_TITLE_LEN: usize = 300;
/// Longest product description.
pub const MAX_DESCRIPTION_LEN: usize = 20_000;
/// Most variants per product.
pub const MAX_VARIANTS: usize = 100;
/// Most attributes per product or variant.
pub const MAX_ATTRIBUTES: usize = 300;
/// Most images per product.
pub const MAX_IMAGES: usize = 20;
/// Longest text attribute value (real spec sheets list compatible models at length).
pub const MAX_ATTRIBUTE_TEXT_LEN: usize = 10_000;
/// Highest accepted price in minor units.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Highest accepted stock figure.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// Publication state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Hidden from shoppers.
    Draft,
    /// Visible.
    Published,
    /// Retired.
    Archived,
}

impl Status {
    /// Parses `draft|published|archived`.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "draft" => Some(Status::Draft),
            "published" => Some(Status::Published),
            "archived" => Some(Status::Archived),
            _ => None,
        }
    }

    /// Returns the wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Archived => "archived",
        }
    }
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Text.
    Text(String),
    /// Number (a specification figure, never money).
    Number(f64),
    /// Yes/no.
    Bool(bool),
}

/// A validated attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Name: lowercase letters, digits and underscores.
    pub name: String,
    /// Value.
    pub value: AttributeValue,
}

/// A validated image.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// http(s) URL.
    pub url: String,
    /// Alternative text.
    #[serde(default)]
    pub alt: String,
}

/// Deserialises a field that distinguishes "absent" (`None`) from `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /products` and one line of a JSON Lines import.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Title (required).
    pub title: Option<String>,
    /// Slug; derived from the title when absent.
    pub slug: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category id or slug.
    pub category: Option<String>,
    /// Category by names from the root, created as needed (imports only).
    pub category_path: Option<Vec<String>>,
    /// Seller id or slug.
    pub seller: Option<String>,
    /// `draft|published|archived` (default `published`).
    pub status: Option<String>,
    /// Images.
    pub images: Option<Vec<Image>>,
    /// Attributes as a JSON object of scalars.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Variants (at least one).
    pub variants: Option<Vec<VariantInput>>,
    /// Id in the source catalog.
    pub external_id: Option<String>,
}

/// A variant in a product body, or the body of `POST /products/{id}/variants`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// SKU (required, unique).
    pub sku: Option<String>,
    /// Variant title.
    pub title: Option<String>,
    /// Price (required).
    pub price: Option<Money>,
    /// "Was" price.
    pub compare_at_price: Option<Money>,
    /// Variant attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Initial on-hand stock for a new SKU (default 0).
    pub stock: Option<i64>,
    /// Shipping weight in grams (default 0: weight-band shipping counts it as nothing).
    pub weight_grams: Option<u32>,
}

/// Body of `PATCH /products/{id}`: absent fields stay unchanged; `null` clears nullable ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// New title.
    pub title: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New brand, or `null` to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub brand: Option<Option<String>>,
    /// New category, or `null` to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// New seller, or `null` to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub seller: Option<Option<String>>,
    /// New status.
    pub status: Option<String>,
    /// Replacement images.
    pub images: Option<Vec<Image>>,
    /// Replacement attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Body of `PATCH /variants/{sku}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    /// New title.
    pub title: Option<String>,
    /// New price.
    pub price: Option<Money>,
    /// New "was" price, or `null` to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Money>)]
    pub compare_at_price: Option<Option<Money>>,
    /// Replacement attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// New shipping weight, grams.
    pub weight_grams: Option<u32>,
}

/// Body of `POST /categories` and `PATCH /categories/{id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// Name (required on create).
    pub name: Option<String>,
    /// Slug (derived from the name when absent on create).
    pub slug: Option<String>,
    /// Parent id or slug; `null` on PATCH makes it a root.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent: Option<Option<String>>,
    /// Sort position among siblings.
    pub position: Option<i32>,
}

/// Body of `POST /sellers`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerInput {
    /// Name (required).
    pub name: Option<String>,
    /// Slug (derived from the name when absent).
    pub slug: Option<String>,
}

/// Body of `PUT /inventory/{sku}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryInput {
    /// Units on hand (required), 0 to 10⁹.
    pub on_hand: Option<i64>,
    /// Low-stock threshold (0 turns low-stock events off).
    pub low_stock_threshold: Option<i64>,
}

/// Body of `POST /inventory/{sku}/adjust`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustInput {
    /// Units to add (negative to remove), e.g. a delivery or a stock count correction.
    pub delta: Option<i64>,
    /// Low-stock threshold (0 turns low-stock events off).
    pub low_stock_threshold: Option<i64>,
}

/// A validated variant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVariant {
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// "Was" price in minor units.
    pub compare_at_cents: Option<i64>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Initial stock.
    pub stock: i64,
    /// Shipping weight, grams.
    pub weight_grams: u32,
}

/// The validated, reference-free part of a product body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    /// Title.
    pub title: String,
    /// Explicit slug, if given.
    pub slug: Option<Slug>,
    /// Description.
    pub description: String,
    /// Brand.
    pub brand: Option<String>,
    /// Status.
    pub status: Status,
    /// Images.
    pub images: Vec<Image>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Variants.
    pub variants: Vec<NewVariant>,
    /// Source id.
    pub external_id: Option<String>,
}

/// Validates a SKU: 1–64 characters of letters, digits, `.`, `_` and `-`.
pub fn check_sku(field: &str, sku: Option<&str>, errors: &mut FieldErrors) -> String {
    match sku.map(str::trim) {
        None | Some("") => errors.add(field, "required", "must not be empty"),
        Some(s) if s.len() > 64 => errors.add(field, "too_long", "must be at most 64 characters"),
        Some(s)
            if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            errors.add(field, "invalid", "may contain only letters, digits, '.', '_' and '-'")
        }
        Some(s) => return s.to_owned(),
    }
    String::new()
}

/// Validates a price against the store currency.
pub fn check_price(
    field: &str,
    price: Option<&Money>,
    required: bool,
    currency: Currency,
    errors: &mut FieldErrors,
) -> Option<i64> {
    match price {
        None if required => errors.add(field, "required", "must be given"),
        None => {}
        Some(p) if p.currency != currency => errors.add(
            format!("{field}.currency"),
            "currency_mismatch",
            format!("must be {currency}, the store currency"),
        ),
        Some(p) if !(0..=MAX_AMOUNT).contains(&p.amount) => errors.add(
            format!("{field}.amount"),
            "out_of_range",
            format!("must be between 0 and {MAX_AMOUNT} minor units"),
        ),
        Some(p) => return Some(p.amount),
    }
    None
}

/// Validates an attribute object: names are `[a-z0-9_]{1,100}`, values are scalars.
pub fn check_attributes(
    field: &str,
    attrs: Option<&serde_json::Map<String, serde_json::Value>>,
    errors: &mut FieldErrors,
) -> Vec<Attribute> {
    let Some(attrs) = attrs else {
        return Vec::new();
    };
    if attrs.len() > MAX_ATTRIBUTES {
        errors.add(field, "too_many", format!("at most {MAX_ATTRIBUTES} attributes"));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(attrs.len());
    for (name, value) in attrs {
        let path = format!("{field}.{name}");
        if name.is_empty()
            || name.len() > 100
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            errors.add(
                &path,
                "invalid_name",
                "attribute names are 1-100 lowercase letters, digits or underscores",
            );
            continue;
        }
        let value = match value {
            serde_json::Value::String(s) if s.chars().count() <= MAX_ATTRIBUTE_TEXT_LEN => {
                AttributeValue::Text(s.clone())
            }
            serde_json::Value::String(_) => {
                errors.add(
                    &path,
                    "too_long",
                    format!("must be at most {MAX_ATTRIBUTE_TEXT_LEN} characters"),
                );
                continue;
            }
            serde_json::Value::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
                Some(f) => AttributeValue::Number(f),
                None => {
                    errors.add(&path, "invalid", "must be a finite number");
                    continue;
                }
            },
            serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
            _ => {
                errors.add(&path, "invalid_type", "must be a string, number or boolean");
                continue;
            }
        };
        out.push(Attribute {
            name: name.clone(),
            value,
        });
    }
    out
}

/// Validates images: at most [`MAX_IMAGES`], http(s) URLs of at most 2048 characters.
pub fn check_images(images: Option<&[Image]>, errors: &mut FieldErrors) -> Vec<Image> {
    let images = images.unwrap_or_default();
    if images.len() > MAX_IMAGES {
        errors.add("images", "too_many", format!("at most {MAX_IMAGES} images"));
        return Vec::new();
    }
    for (i, image) in images.iter().enumerate() {
        let url = image.url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() > 2048
            || url.contains(char::is_whitespace)
        {
            errors.add(
                format!("images[{i}].url"),
                "invalid_url",
                "must be an http(s) URL of at most 2048 characters",
            );
        }
        errors.text(&format!("images[{i}].alt"), &image.alt, false, 300);
    }
    images.to_vec()
}

/// Validates a status string (default `published`).
pub fn check_status(status: Option<&str>, errors: &mut FieldErrors) -> Status {
    match status {
        None => Status::Published,
        Some(s) => Status::parse(s).unwrap_or_else(|| {
            errors.add("status", "invalid", "must be one of draft, published, archived");
            Status::Published
        }),
    }
}

/// Validates an optional explicit slug.
pub fn check_slug(slug: Option<&str>, errors: &mut FieldErrors) -> Option<Slug> {
    let slug = slug?;
    match Slug::parse(slug) {
        Ok(s) => Some(s),
        Err(msg) => {
            errors.add("slug", "invalid", msg);
            None
        }
    }
}

/// Validates a brand (1–100 characters when present).
pub fn check_brand(brand: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    let brand = brand?.trim();
    errors.text("brand", brand, true, 100);
    Some(brand.to_owned())
}

/// Validates one variant body.
pub fn check_variant(prefix: &str, input: &VariantInput, currency: Currency, errors: &mut FieldErrors) -> NewVariant {
    let sku = check_sku(&format!("{prefix}sku"), input.sku.as_deref(), errors);
    let title = input.title.as_deref().unwrap_or("").trim().to_owned();
    errors.text(&format!("{prefix}title"), &title, false, 200);
    let price_cents = check_price(&format!("{prefix}price"), input.price.as_ref(), true, currency, errors).unwrap_or(0);
    let compare_at_cents = check_price(
        &format!("{prefix}compare_at_price"),
        input.compare_at_price.as_ref(),
        false,
        currency,
        errors,
    );
    if let Some(compare) = compare_at_cents {
        if compare < price_cents {
            errors.add(
                format!("{prefix}compare_at_price.amount"),
                "below_price",
                "must not be lower than the price",
            );
        }
    }
    let stock = input.stock.unwrap_or(0);
    if !(0..=MAX_STOCK).contains(&stock) {
        errors.add(
            format!("{prefix}stock"),
            "out_of_range",
            format!("must be between 0 and {MAX_STOCK}"),
        );
    }
    NewVariant {
        sku,
        title,
        price_cents,
        compare_at_cents,
        attributes: check_attributes(&format!("{prefix}attributes"), input.attributes.as_ref(), errors),
        stock,
        weight_grams: input.weight_grams.unwrap_or(0),
    }
}

/// Validates the reference-free fields of a product body.
pub fn check_product(input: &ProductInput, currency: Currency, errors: &mut FieldErrors) -> NewProduct {
    let title = input.title.as_deref().unwrap_or("").trim().to_owned();
    errors.text("title", &title, true, MAX_TITLE_LEN);
    let description = input.description.as_deref().unwrap_or("").trim().to_owned();
    errors.text("description", &description, false, MAX_DESCRIPTION_LEN);
    if let Some(external_id) = &input.external_id {
        errors.text("external_id", external_id, true, 100);
    }
    let variants = match input.variants.as_deref() {
        None | Some([]) => {
            errors.add("variants", "required", "at least one variant is required");
            Vec::new()
        }
        Some(v) if v.len() > MAX_VARIANTS => {
            errors.add("variants", "too_many", format!("at most {MAX_VARIANTS} variants"));
            Vec::new()
        }
        Some(v) => v
            .iter()
            .enumerate()
            .map(|(i, variant)| check_variant(&format!("variants[{i}]."), variant, currency, errors))
            .collect(),
    };
    for (i, variant) in variants.iter().enumerate() {
        if !variant.sku.is_empty() && variants[..i].iter().any(|v| v.sku == variant.sku) {
            errors.add(
                format!("variants[{i}].sku"),
                "duplicate",
                "SKU appears twice in this product",
            );
        }
    }
    NewProduct {
        slug: check_slug(input.slug.as_deref(), errors),
        brand: check_brand(input.brand.as_deref(), errors),
        status: check_status(input.status.as_deref(), errors),
        images: check_images(input.images.as_deref(), errors),
        attributes: check_attributes("attributes", input.attributes.as_ref(), errors),
        external_id: input.external_id.clone(),
        title,
        description,
        variants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn parse(json: &str) -> ProductInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let input = parse(
            r#"{"title":"","slug":"Bad Slug","status":"gone","images":[{"url":"ftp://x"}],
                "attributes":{"Colour":"red","ok":[1]},
                "variants":[{"sku":"a b","price":{"amount":-1,"currency":"USD"}},
                            {"sku":"X","price":{"amount":5,"currency":"EUR"}},
                            {"sku":"X","price":{"amount":5,"currency":"USD"},"compare_at_price":{"amount":1,"currency":"USD"}}]}"#,
        );
        let mut errors = FieldErrors::default();
        check_product(&input, usd(), &mut errors);
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        for expected in [
            "title",
            "slug",
            "status",
            "images[0].url",
            "attributes.Colour",
            "attributes.ok",
            "variants[0].sku",
            "variants[0].price.amount",
            "variants[1].price.currency",
            "variants[2].sku",
            "variants[2].compare_at_price.amount",
        ] {
            assert!(fields.iter().any(|f| f == expected), "missing {expected} in {fields:?}");
        }
    }

    #[test]
    fn a_minimal_product_is_valid() {
        let input = parse(r#"{"title":" Mug ","variants":[{"sku":"MUG-1","price":{"amount":1299,"currency":"usd"}}]}"#);
        let mut errors = FieldErrors::default();
        let product = check_product(&input, usd(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(product.title, "Mug");
        assert_eq!(product.status, Status::Published);
        assert_eq!(product.variants[0].price_cents, 1299);
    }

    #[test]
    fn zero_variants_are_rejected() {
        let mut errors = FieldErrors::default();
        check_product(&parse(r#"{"title":"x","variants":[]}"#), usd(), &mut errors);
        assert_eq!(errors.into_vec()[0].field, "variants");
    }
}
