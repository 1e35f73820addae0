//! rkyv records of product reviews: the reviews, their indexes, helpful votes, and each
//! product's rating histogram (kept in the same batch as every review change).

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::StoredRecord;

/// Where a review stands in moderation; only approved reviews are public and count.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum ReviewStatusRecord {
    /// Waiting for a moderator.
    Pending,
    /// Public, counted in the product's rating.
    Approved,
    /// Hidden.
    Rejected,
}

/// The seller's public answer to a review.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ReviewReplyRecord {
    /// The user who wrote it (a seller user or an admin).
    pub author_id: Option<Id>,
    /// Text, stored as given.
    pub body: String,
    /// When, Unix milliseconds.
    pub created_at_ms: i64,
}

/// A review of a product by a user, keyed by its id in [`crate::cf::CF_REVIEWS`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ReviewRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// The product.
    pub product_id: Id,
    /// The author.
    pub user_id: Id,
    /// The name shown with the review.
    pub author_name: String,
    /// 1 to 5.
    pub rating: u8,
    /// Title, stored as given.
    pub title: String,
    /// Body, stored as given.
    pub body: String,
    /// Moderation state.
    pub status: ReviewStatusRecord,
    /// Whether the author had bought the product when the review was written.
    pub verified_purchase: bool,
    /// Helpful votes.
    pub helpful: u32,
    /// The seller's reply.
    pub reply: Option<ReviewReplyRecord>,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for ReviewRecord {
    const CF: &'static str = crate::cf::CF_REVIEWS;
}

/// The approved ratings of a product, by star (index 0 is one star), keyed by product id in
/// [`crate::cf::CF_RATINGS`]. The product record keeps the sum and count beside it for the
/// listing and the index.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct RatingRecord {
    /// Approved reviews with 1..=5 stars.
    pub histogram: [u32; 5],
}

impl StoredRecord for RatingRecord {
    const CF: &'static str = crate::cf::CF_RATINGS;
}

/// Secondary indexes of reviews in [`crate::cf::CF_REVIEW_INDEX`]; values are review ids
/// unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReviewIndex {
    /// `p ‖ product id ‖ review id` → empty: a product's reviews, oldest first.
    Product = b'p',
    /// `u ‖ user id ‖ product id` → review id: one review per user per product.
    Author = b'u',
    /// `m ‖ review id` → empty: reviews waiting for moderation, oldest first.
    Pending = b'm',
    /// `v ‖ review id ‖ user id` → empty: one helpful vote per user per review.
    Vote = b'v',
}

/// Key of a review index entry.
pub fn review_index(index: ReviewIndex, owner: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + owner.len() + tail.len());
    key.push(index as u8);
    key.extend_from_slice(owner);
    key.extend_from_slice(tail);
    key
}
