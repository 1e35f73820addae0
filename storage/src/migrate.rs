//! Upgrades a data directory written by an older build, in place, when the store opens.
//!
//! rkyv archives have no optional trailing fields, so a record that gains a field is a new
//! layout: the old one is kept here, frozen, and every stored record is rewritten. A step runs
//! in batches and writes its cursor with each batch, so a crash mid-way resumes where it was;
//! the schema version moves on in the step's last batch.

use rkyv::util::AlignedVec;
use rkyv::{rancor, Archive, Deserialize, Serialize};

use crate::cf::{CF_META, CF_ORDERS, CF_PRODUCTS, CF_USERS};
use crate::keys::{self, Id};
use crate::orders::{
    FulfilmentRecord, FulfilmentStatusRecord, OrderLineRecord, OrderPhaseRecord, OrderRecord, PaymentRecord,
    RefundRecord, ShippingChoiceRecord,
};
use crate::records::{
    encode, AddressRecord, AttributeRecord, ImageRecord, ProductRecord, ProductStatus, RoleRecord, UserRecord,
    VariantRecord,
};
use crate::{Error, Result, Store};

/// Records rewritten per batch.
const STEP: usize = 2_000;

/// The cursor of a running upgrade: the last key rewritten, per column family.
fn cursor_key(cf: &str) -> Vec<u8> {
    [keys::META_CURSOR_PREFIX, b"migrate-v3/", cf.as_bytes()].concat()
}

/// Upgrades schema 2 (no weights, shipping methods, returns or verified emails) to 3.
pub(crate) fn v2_to_v3(store: &Store) -> Result<()> {
    rewrite::<v2::ProductRecord, ProductRecord>(store, CF_PRODUCTS, v2::ProductRecord::upgrade)?;
    rewrite::<v2::OrderRecord, OrderRecord>(store, CF_ORDERS, v2::OrderRecord::upgrade)?;
    rewrite::<v2::UserRecord, UserRecord>(store, CF_USERS, v2::UserRecord::upgrade)?;
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(store.cf(CF_META), keys::META_SCHEMA_VERSION, 3u32.to_be_bytes());
    for cf in [CF_PRODUCTS, CF_ORDERS, CF_USERS] {
        batch.delete_cf(store.cf(CF_META), cursor_key(cf));
    }
    store.write(batch)
}

/// Rewrites every record of `cf` from layout `Old` to `New`, resuming after the stored cursor.
fn rewrite<Old, New>(store: &Store, cf: &'static str, upgrade: fn(Old) -> New) -> Result<()>
where
    Old: Archive,
    Old::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + Deserialize<Old, rkyv::api::high::HighDeserializer<rancor::Error>>,
    New: crate::StoredRecord,
    New::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + Deserialize<New, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    let mut after = store.get_raw(CF_META, &cursor_key(cf))?;
    loop {
        let mut chunk: Vec<(Vec<u8>, AlignedVec)> = Vec::with_capacity(STEP);
        let mut failed = None;
        let lower = after
            .as_ref()
            .map(|k| [k.as_slice(), &[0]].concat())
            .unwrap_or_default();
        store.for_each_raw(cf, &lower, None, |key, value| {
            let mut aligned = AlignedVec::<16>::with_capacity(value.len());
            aligned.extend_from_slice(value);
            match rkyv::from_bytes::<Old, rancor::Error>(&aligned) {
                Ok(old) => match encode(&upgrade(old)) {
                    Ok(bytes) => chunk.push((key.to_vec(), bytes)),
                    Err(e) => failed = Some(e),
                },
                Err(e) => failed = Some(Error::corrupt(cf, key, e)),
            }
            failed.is_none() && chunk.len() < STEP
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        let last = last.clone();
        let mut batch = rocksdb::WriteBatch::default();
        for (key, bytes) in &chunk {
            batch.put_cf(store.cf(cf), key, bytes);
        }
        batch.put_cf(store.cf(CF_META), cursor_key(cf), &last);
        store.write(batch)?;
        after = Some(last);
    }
}

/// The layouts of schema 2, frozen.
#[allow(missing_docs)]
mod v2 {
    use super::*;

    #[derive(Archive, Serialize, Deserialize)]
    pub struct VariantRecord {
        pub sku: String,
        pub title: String,
        pub price_cents: i64,
        pub compare_at_cents: Option<i64>,
        pub attributes: Vec<AttributeRecord>,
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct ProductRecord {
        pub id: Id,
        pub version: u64,
        pub external_id: Option<String>,
        pub slug: String,
        pub title: String,
        pub description: String,
        pub brand: Option<String>,
        pub category_id: Option<Id>,
        pub seller_id: Option<Id>,
        pub status: ProductStatus,
        pub currency: String,
        pub images: Vec<ImageRecord>,
        pub attributes: Vec<AttributeRecord>,
        pub variants: Vec<VariantRecord>,
        pub rating_sum: u64,
        pub rating_count: u32,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    impl ProductRecord {
        pub fn upgrade(self) -> super::ProductRecord {
            super::ProductRecord {
                id: self.id,
                version: self.version,
                external_id: self.external_id,
                slug: self.slug,
                title: self.title,
                description: self.description,
                brand: self.brand,
                category_id: self.category_id,
                seller_id: self.seller_id,
                status: self.status,
                currency: self.currency,
                images: self.images,
                attributes: self.attributes,
                variants: self
                    .variants
                    .into_iter()
                    .map(|v| super::VariantRecord {
                        sku: v.sku,
                        title: v.title,
                        price_cents: v.price_cents,
                        compare_at_cents: v.compare_at_cents,
                        attributes: v.attributes,
                        weight_grams: 0,
                    })
                    .collect(),
                rating_sum: self.rating_sum,
                rating_count: self.rating_count,
                created_at_ms: self.created_at_ms,
                updated_at_ms: self.updated_at_ms,
            }
        }
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct OrderLineRecord {
        pub sku: String,
        pub product_id: Id,
        pub seller_id: Option<Id>,
        pub title: String,
        pub variant_title: String,
        pub unit_price_cents: i64,
        pub quantity: i64,
        pub line_total_cents: i64,
        pub discount_cents: i64,
        pub tax_cents: i64,
        pub refunded_quantity: i64,
        pub restocked_quantity: i64,
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct FulfilmentRecord {
        pub id: Id,
        pub seller_id: Option<Id>,
        pub status: FulfilmentStatusRecord,
        pub carrier: Option<String>,
        pub tracking_number: Option<String>,
        pub updated_at_ms: i64,
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct OrderRecord {
        pub id: Id,
        pub number: u64,
        pub version: u64,
        pub phase: OrderPhaseRecord,
        pub user_id: Option<Id>,
        pub email: String,
        pub guest_token_hash: Option<[u8; 32]>,
        pub cart_key: Vec<u8>,
        pub lines: Vec<OrderLineRecord>,
        pub fulfilments: Vec<FulfilmentRecord>,
        pub currency: String,
        pub subtotal_cents: i64,
        pub discount_cents: i64,
        pub shipping_cents: i64,
        pub tax_cents: i64,
        pub total_cents: i64,
        pub tax_rate_bps: u32,
        pub shipping_address: AddressRecord,
        pub billing_address: AddressRecord,
        pub payment: PaymentRecord,
        pub refunds: Vec<RefundRecord>,
        pub holds_stock: bool,
        pub next_event: u32,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    impl OrderRecord {
        /// Schema 2 had one shipping rule: the whole charge sits on the first shipment.
        pub fn upgrade(self) -> super::OrderRecord {
            let shipping = self.shipping_cents;
            super::OrderRecord {
                id: self.id,
                number: self.number,
                version: self.version,
                phase: self.phase,
                user_id: self.user_id,
                email: self.email,
                guest_token_hash: self.guest_token_hash,
                cart_key: self.cart_key,
                lines: self
                    .lines
                    .into_iter()
                    .map(|l| super::OrderLineRecord {
                        sku: l.sku,
                        product_id: l.product_id,
                        seller_id: l.seller_id,
                        title: l.title,
                        variant_title: l.variant_title,
                        unit_price_cents: l.unit_price_cents,
                        quantity: l.quantity,
                        line_total_cents: l.line_total_cents,
                        discount_cents: l.discount_cents,
                        tax_cents: l.tax_cents,
                        refunded_quantity: l.refunded_quantity,
                        restocked_quantity: l.restocked_quantity,
                        replaces: None,
                    })
                    .collect(),
                fulfilments: self
                    .fulfilments
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| super::FulfilmentRecord {
                        id: f.id,
                        seller_id: f.seller_id,
                        status: f.status,
                        carrier: f.carrier,
                        tracking_number: f.tracking_number,
                        shipping_cents: if i == 0 { shipping } else { 0 },
                        updated_at_ms: f.updated_at_ms,
                    })
                    .collect(),
                currency: self.currency,
                subtotal_cents: self.subtotal_cents,
                discount_cents: self.discount_cents,
                shipping_cents: self.shipping_cents,
                tax_cents: self.tax_cents,
                total_cents: self.total_cents,
                tax_rate_bps: self.tax_rate_bps,
                shipping_address: self.shipping_address,
                billing_address: self.billing_address,
                payment: self.payment,
                refunds: self.refunds,
                shipping_method: ShippingChoiceRecord {
                    code: "standard".to_owned(),
                    name: "Standard".to_owned(),
                    min_days: 0,
                    max_days: 0,
                },
                returns: Vec::new(),
                holds_stock: self.holds_stock,
                next_event: self.next_event,
                created_at_ms: self.created_at_ms,
                updated_at_ms: self.updated_at_ms,
            }
        }
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct UserRecord {
        pub id: Id,
        pub version: u64,
        pub email: String,
        pub name: String,
        pub password_hash: String,
        pub role: RoleRecord,
        pub seller_id: Option<Id>,
        pub addresses: Vec<AddressRecord>,
        pub default_address_id: Option<Id>,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    impl UserRecord {
        /// Accounts from before verification count as verified: they were never asked.
        pub fn upgrade(self) -> super::UserRecord {
            super::UserRecord {
                id: self.id,
                version: self.version,
                email: self.email,
                name: self.name,
                password_hash: self.password_hash,
                role: self.role,
                seller_id: self.seller_id,
                addresses: self.addresses,
                default_address_id: self.default_address_id,
                email_verified: true,
                created_at_ms: self.created_at_ms,
                updated_at_ms: self.updated_at_ms,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn old_product(n: u8) -> v2::ProductRecord {
        v2::ProductRecord {
            id: [n; 16],
            version: 1,
            external_id: None,
            slug: format!("p-{n}"),
            title: format!("Product {n}"),
            description: String::new(),
            brand: None,
            category_id: None,
            seller_id: None,
            status: ProductStatus::Published,
            currency: "USD".into(),
            images: Vec::new(),
            attributes: Vec::new(),
            variants: vec![v2::VariantRecord {
                sku: format!("SKU-{n}"),
                title: "Default".into(),
                price_cents: 1_000 + n as i64,
                compare_at_cents: None,
                attributes: Vec::new(),
            }],
            rating_sum: 0,
            rating_count: 0,
            created_at_ms: 1,
            updated_at_ms: 1,
        }
    }

    #[test]
    fn a_schema_2_store_opens_upgraded_with_every_product_readable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let mut batch = rocksdb::WriteBatch::default();
            for n in 0..5u8 {
                let bytes = rkyv::to_bytes::<rancor::Error>(&old_product(n)).unwrap();
                batch.put_cf(store.cf(CF_PRODUCTS), [n; 16], &bytes);
            }
            batch.put_cf(store.cf(CF_META), keys::META_SCHEMA_VERSION, 2u32.to_be_bytes());
            store.write(batch).unwrap();
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        for n in 0..5u8 {
            let p = store.get::<ProductRecord>(&[n; 16]).unwrap().unwrap();
            let v = &p.archived().variants[0];
            assert_eq!(v.sku.as_str(), format!("SKU-{n}"));
            assert_eq!(v.price_cents.to_native(), 1_000 + n as i64);
            assert_eq!(v.weight_grams.to_native(), 0);
        }
        let version = store.get_raw(CF_META, keys::META_SCHEMA_VERSION).unwrap().unwrap();
        assert_eq!(version, 3u32.to_be_bytes());
    }

    #[test]
    fn schema_2_orders_and_users_keep_every_field_through_the_upgrade() {
        let address = AddressRecord {
            id: [1; 16],
            name: "Ada".into(),
            line1: "1 Way".into(),
            line2: String::new(),
            city: "London".into(),
            region: String::new(),
            postal_code: "N1".into(),
            country: "GB".into(),
            phone: String::new(),
        };
        let order = v2::OrderRecord {
            id: [2; 16],
            number: 100_001,
            version: 3,
            phase: OrderPhaseRecord::Placed,
            user_id: Some([3; 16]),
            email: "ada@example.com".into(),
            guest_token_hash: None,
            cart_key: vec![b'u'; 17],
            lines: vec![v2::OrderLineRecord {
                sku: "A-1".into(),
                product_id: [4; 16],
                seller_id: None,
                title: "Lamp".into(),
                variant_title: "Default".into(),
                unit_price_cents: 1500,
                quantity: 2,
                line_total_cents: 3000,
                discount_cents: 100,
                tax_cents: 232,
                refunded_quantity: 1,
                restocked_quantity: 1,
            }],
            fulfilments: vec![v2::FulfilmentRecord {
                id: [5; 16],
                seller_id: None,
                status: FulfilmentStatusRecord::Delivered,
                carrier: Some("UPS".into()),
                tracking_number: Some("1Z".into()),
                updated_at_ms: 9,
            }],
            currency: "USD".into(),
            subtotal_cents: 3000,
            discount_cents: 100,
            shipping_cents: 599,
            tax_cents: 232,
            total_cents: 3731,
            tax_rate_bps: 800,
            shipping_address: address.clone(),
            billing_address: address.clone(),
            payment: PaymentRecord {
                provider: "test".into(),
                status: crate::orders::PaymentStatusRecord::Captured,
                reference: Some("ch_1".into()),
                idempotency_key: "order-x".into(),
                method: "{}".into(),
                authorized_cents: 3731,
                captured_cents: 3731,
                refunded_cents: 1500,
                failure: None,
            },
            refunds: Vec::new(),
            holds_stock: false,
            next_event: 4,
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let user = v2::UserRecord {
            id: [3; 16],
            version: 2,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: "$argon2id$x".into(),
            role: RoleRecord::Customer,
            seller_id: None,
            addresses: vec![address],
            default_address_id: Some([1; 16]),
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(
                store.cf(CF_ORDERS),
                [2; 16],
                rkyv::to_bytes::<rancor::Error>(&order).unwrap(),
            );
            batch.put_cf(
                store.cf(CF_USERS),
                [3; 16],
                rkyv::to_bytes::<rancor::Error>(&user).unwrap(),
            );
            batch.put_cf(store.cf(CF_META), keys::META_SCHEMA_VERSION, 2u32.to_be_bytes());
            store.write(batch).unwrap();
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let o = store.get::<OrderRecord>(&[2; 16]).unwrap().unwrap().to_native();
        assert_eq!(
            (o.number, o.total_cents, o.payment.refunded_cents),
            (100_001, 3731, 1500)
        );
        assert_eq!(
            (
                o.lines[0].discount_cents,
                o.lines[0].refunded_quantity,
                o.lines[0].replaces.clone()
            ),
            (100, 1, None)
        );
        assert_eq!(
            o.fulfilments[0].shipping_cents, 599,
            "the old single charge sits on the first shipment"
        );
        assert_eq!(o.fulfilments[0].tracking_number.as_deref(), Some("1Z"));
        assert_eq!(o.shipping_method.code, "standard");
        assert!(o.returns.is_empty());
        let u = store.get::<UserRecord>(&[3; 16]).unwrap().unwrap().to_native();
        assert_eq!(
            (u.email.as_str(), u.addresses.len(), u.email_verified),
            ("ada@example.com", 1, true)
        );
        assert_eq!(u.password_hash, "$argon2id$x");
    }
}
