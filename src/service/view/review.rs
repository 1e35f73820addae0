//! JSON views of reviews.

use serde::Serialize;

use super::rfc3339;
use crate::domain::Id;
use storefront_storage::reviews::{ArchivedReviewStatusRecord, ReviewRecord, ReviewStatusRecord};

/// A review. Text fields are returned as the author wrote them: escape them when rendering.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// Review id.
    pub id: String,
    /// The product.
    pub product_id: String,
    /// The author's display name.
    pub author: String,
    /// 1 to 5.
    pub rating: u8,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `pending`, `approved` or `rejected`.
    pub status: &'static str,
    /// The author had bought the product.
    pub verified_purchase: bool,
    /// Helpful votes.
    pub helpful: u32,
    /// The seller's reply.
    pub reply: Option<ReplyView>,
    /// Optimistic-concurrency version (`If-Match`).
    pub version: u64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// The seller's reply to a review.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplyView {
    /// Text.
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A page of a product's approved reviews.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewPage {
    /// The reviews.
    pub items: Vec<ReviewView>,
    /// Approved reviews matching the filter.
    pub total: usize,
    /// Cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
}

/// The API name of a stored status.
pub fn status_name(status: ReviewStatusRecord) -> &'static str {
    match status {
        ReviewStatusRecord::Pending => "pending",
        ReviewStatusRecord::Approved => "approved",
        ReviewStatusRecord::Rejected => "rejected",
    }
}

/// The stored status of an archived one.
pub fn archived_status(status: &ArchivedReviewStatusRecord) -> ReviewStatusRecord {
    match status {
        ArchivedReviewStatusRecord::Pending => ReviewStatusRecord::Pending,
        ArchivedReviewStatusRecord::Approved => ReviewStatusRecord::Approved,
        ArchivedReviewStatusRecord::Rejected => ReviewStatusRecord::Rejected,
    }
}

impl From<&ReviewRecord> for ReviewView {
    fn from(r: &ReviewRecord) -> ReviewView {
        ReviewView {
            id: Id::from_bytes(r.id).to_string(),
            product_id: Id::from_bytes(r.product_id).to_string(),
            author: r.author_name.clone(),
            rating: r.rating,
            title: r.title.clone(),
            body: r.body.clone(),
            status: status_name(r.status),
            verified_purchase: r.verified_purchase,
            helpful: r.helpful,
            reply: r.reply.as_ref().map(|reply| ReplyView {
                body: reply.body.clone(),
                created_at: rfc3339(reply.created_at_ms),
            }),
            version: r.version,
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}
