//! The product document schema.

use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};

/// Field handles of the product schema.
#[derive(Debug, Clone)]
pub struct ProductFields {
    /// Product id (UUID bytes as hex), stored and exact-match indexed for deletes.
    pub id: Field,
    /// Title, the most heavily boosted text field.
    pub title: Field,
    /// Brand as text.
    pub brand: Field,
    /// Description text.
    pub description: Field,
    /// Lowest variant price in minor units.
    pub price_cents: Field,
}

/// Builds the product schema.
pub fn product_schema() -> (Schema, ProductFields) {
    let mut builder = Schema::builder();
    let fields = ProductFields {
        id: builder.add_text_field("id", STRING | STORED),
        title: builder.add_text_field("title", TEXT),
        brand: builder.add_text_field("brand", TEXT),
        description: builder.add_text_field("description", TEXT),
        price_cents: builder.add_i64_field("price_cents", INDEXED | FAST),
    };
    (builder.build(), fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_field() {
        let (schema, _) = product_schema();
        for name in ["id", "title", "brand", "description", "price_cents"] {
            assert!(schema.get_field(name).is_ok(), "{name}");
        }
    }
}
