//! The product document schema and the plain document type the indexer consumes.

use tantivy::schema::{
    FacetOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
    STORED, STRING,
};

/// Name of the stemming English tokenizer registered on every index.
pub const TOKENIZER: &str = "en_stem";

/// Field handles of the product schema.
#[derive(Debug, Clone)]
pub struct ProductFields {
    /// Product id (UUID text), stored; exact-match indexed so updates and deletes can find it.
    pub id: Field,
    /// Title, the most heavily boosted text field.
    pub title: Field,
    /// What the product is, as the catalog's title names it in lower case ("mouse",
    /// "camera lens", "mobile phone case"), when the title names it.
    pub product_type: Field,
    /// The product type the catalog declares ("Notebook"), only when it declares one: stronger
    /// evidence than a type read from the title, so it is scored on its own.
    pub declared_type: Field,
    /// Brand as text.
    pub brand: Field,
    /// Category path names as text.
    pub category_text: Field,
    /// Description text.
    pub description: Field,
    /// Attribute values as text.
    pub attributes_text: Field,
    /// Hierarchical category facet: `/<root slug>/<child slug>/...`.
    pub category: Field,
    /// Brand facet: `/<brand>`.
    pub brand_facet: Field,
    /// Attribute facets: `/<name>/<value>` for facetable attributes.
    pub attributes: Field,
    /// Lowest variant price in minor units.
    pub price_cents: Field,
    /// Average rating × 100.
    pub rating_x100: Field,
    /// 1 when any variant has available stock.
    pub in_stock: Field,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: Field,
    /// Seller id (UUID text) or empty.
    pub seller: Field,
    /// 1 when the title names an accessory (pad, case, cable...), for demotion.
    pub accessory: Field,
}

/// Builds the product schema.
pub fn product_schema() -> (Schema, ProductFields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let number = NumericOptions::default().set_fast().set_indexed();
    let fields = ProductFields {
        id: builder.add_text_field("id", STRING | STORED),
        title: builder.add_text_field("title", text.clone()),
        product_type: builder.add_text_field("product_type", text.clone()),
        declared_type: builder.add_text_field("declared_type", text.clone()),
        brand: builder.add_text_field("brand", text.clone()),
        category_text: builder.add_text_field("category_text", text.clone()),
        description: builder.add_text_field("description", text.clone()),
        attributes_text: builder.add_text_field("attributes_text", text),
        category: builder.add_facet_field("category", FacetOptions::default()),
        brand_facet: builder.add_facet_field("brand_facet", FacetOptions::default()),
        attributes: builder.add_facet_field("attributes", FacetOptions::default()),
        price_cents: builder.add_i64_field("price_cents", number.clone()),
        rating_x100: builder.add_u64_field("rating_x100", number.clone()),
        in_stock: builder.add_u64_field("in_stock", number.clone().set_stored()),
        created_at_ms: builder.add_i64_field("created_at_ms", number),
        seller: builder.add_text_field("seller", STRING | FAST),
        accessory: builder.add_u64_field("accessory", NumericOptions::default().set_fast()),
    };
    let _ = INDEXED;
    (builder.build(), fields)
}

/// A product as the index sees it: plain values, no storage or HTTP types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductDoc {
    /// Product id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Brand.
    pub brand: Option<String>,
    /// Category path from the root, as `(slug, name)` pairs.
    pub category_path: Vec<(String, String)>,
    /// Description.
    pub description: String,
    /// The product type the catalog declares ("Notebook"), if any; otherwise the index reads
    /// one from the title.
    pub product_type: Option<String>,
    /// Attributes as `(name, value text, facetable)`.
    pub attributes: Vec<(String, String, bool)>,
    /// Lowest variant price in minor units.
    pub price_cents: i64,
    /// Average rating × 100.
    pub rating_x100: u64,
    /// Any variant in stock.
    pub in_stock: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Seller id.
    pub seller: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_field() {
        let (schema, _) = product_schema();
        for name in [
            "id",
            "title",
            "brand",
            "category",
            "price_cents",
            "in_stock",
            "attributes",
            "seller",
        ] {
            assert!(schema.get_field(name).is_ok(), "{name}");
        }
    }
}
