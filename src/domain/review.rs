//! Review rules: what a valid review is, how moderation moves, how reviews sort, and how a
//! product's rating histogram follows each change.

use super::product::RatingSummary;
use super::FieldErrors;

/// Longest title, in characters.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest body or reply, in characters.
pub const MAX_BODY_LEN: usize = 5000;

/// Body of `POST /products/{id}/reviews` and the author's `PATCH /reviews/{id}`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// 1 to 5 stars.
    pub rating: Option<i64>,
    /// Up to 200 characters. Stored as given: whoever renders it escapes it.
    pub title: Option<String>,
    /// Up to 5,000 characters. Stored as given: whoever renders it escapes it.
    pub body: Option<String>,
    /// Moderation (admins, or the product's seller): `approved` or `rejected`.
    pub status: Option<String>,
}

/// A validated review's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewContent {
    /// 1 to 5.
    pub rating: u8,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// Checks a rating, recording `out_of_range`.
fn check_rating(rating: i64, errors: &mut FieldErrors) -> u8 {
    if (1..=5).contains(&rating) {
        rating as u8
    } else {
        errors.add("rating", "out_of_range", "must be a whole number from 1 to 5");
        0
    }
}

impl ReviewInput {
    /// The content of a new review: every field required except the body.
    pub fn new_review(&self, errors: &mut FieldErrors) -> ReviewContent {
        let rating = match self.rating {
            Some(r) => check_rating(r, errors),
            None => {
                errors.add("rating", "required", "must be given");
                0
            }
        };
        let title = self.title.clone().unwrap_or_default();
        errors.text("title", &title, true, MAX_TITLE_LEN);
        let body = self.body.clone().unwrap_or_default();
        errors.text("body", &body, false, MAX_BODY_LEN);
        if self.status.is_some() {
            errors.add("status", "not_allowed", "a new review is moderated, not set");
        }
        ReviewContent { rating, title, body }
    }

    /// Applies the author's edit to `current`; absent fields stay.
    pub fn edit(&self, current: &ReviewContent, errors: &mut FieldErrors) -> ReviewContent {
        let rating = self.rating.map(|r| check_rating(r, errors)).unwrap_or(current.rating);
        if let Some(t) = &self.title {
            errors.text("title", t, true, MAX_TITLE_LEN);
        }
        if let Some(b) = &self.body {
            errors.text("body", b, false, MAX_BODY_LEN);
        }
        ReviewContent {
            rating,
            title: self.title.clone().unwrap_or_else(|| current.title.clone()),
            body: self.body.clone().unwrap_or_else(|| current.body.clone()),
        }
    }

    /// Whether the body carries content fields (an author's edit) besides `status`.
    pub fn edits_content(&self) -> bool {
        self.rating.is_some() || self.title.is_some() || self.body.is_some()
    }
}

/// Moderation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStatus {
    /// Waiting for a moderator.
    Pending,
    /// Public and counted.
    Approved,
    /// Hidden.
    Rejected,
}

impl ReviewStatus {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
        }
    }

    /// A moderator's decision: `approved` or `rejected` (a decision may be reversed).
    pub fn parse_decision(raw: &str, errors: &mut FieldErrors) -> Option<ReviewStatus> {
        match raw {
            "approved" => Some(ReviewStatus::Approved),
            "rejected" => Some(ReviewStatus::Rejected),
            _ => {
                errors.add("status", "invalid", "must be approved or rejected");
                None
            }
        }
    }

    /// Whether a review in this state is public and counts in the product's rating.
    pub fn counts(self) -> bool {
        self == ReviewStatus::Approved
    }
}

/// A product's approved ratings by star.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Histogram(pub [u32; 5]);

impl Histogram {
    /// Moves one rating out of and into the histogram: `(rating, counts)` before and after a
    /// change (`None` when the review did not exist or no longer does).
    pub fn apply(&mut self, before: Option<(u8, bool)>, after: Option<(u8, bool)>) {
        if let Some((r, true)) = before {
            let slot = &mut self.0[usize::from(r.clamp(1, 5)) - 1];
            *slot = slot.saturating_sub(1);
        }
        if let Some((r, true)) = after {
            self.0[usize::from(r.clamp(1, 5)) - 1] += 1;
        }
    }

    /// The sum and count the listings and the index read.
    pub fn summary(&self) -> RatingSummary {
        let count: u32 = self.0.iter().sum();
        let sum = self
            .0
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u64 + 1) * u64::from(*n))
            .sum();
        RatingSummary { sum, count }
    }
}

/// How a product's reviews are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewSort {
    /// Most helpful votes first, then newest.
    Helpful,
    /// Newest first.
    Newest,
    /// Highest rating first, then newest.
    Highest,
    /// Lowest rating first, then newest.
    Lowest,
}

impl ReviewSort {
    /// Parses `sort`, recording `invalid`.
    pub fn parse(raw: Option<&str>, errors: &mut FieldErrors) -> ReviewSort {
        match raw.unwrap_or("helpful") {
            "helpful" => ReviewSort::Helpful,
            "newest" => ReviewSort::Newest,
            "highest" => ReviewSort::Highest,
            "lowest" => ReviewSort::Lowest,
            _ => {
                errors.add("sort", "invalid", "must be one of helpful, newest, highest, lowest");
                ReviewSort::Helpful
            }
        }
    }

    /// The key a review sorts by, ascending: `(primary, created_at desc, id desc)`, so ties
    /// break newest first and the order is total (cursors stay stable).
    pub fn key(self, rating: u8, helpful: u32, created_at_ms: i64, id: [u8; 16]) -> (i64, i64, [u8; 16]) {
        let primary = match self {
            ReviewSort::Helpful => -i64::from(helpful),
            ReviewSort::Newest => 0,
            ReviewSort::Highest => -i64::from(rating),
            ReviewSort::Lowest => i64::from(rating),
        };
        let inverted: [u8; 16] = id.map(|b| !b);
        (primary, -created_at_ms, inverted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_review_needs_a_rating_in_range_and_a_title() {
        let mut errors = FieldErrors::default();
        ReviewInput {
            rating: Some(6),
            body: Some("x".repeat(MAX_BODY_LEN + 1)),
            ..Default::default()
        }
        .new_review(&mut errors);
        let fields: Vec<_> = errors.into_vec().into_iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(
            fields,
            [
                ("rating".to_string(), "out_of_range"),
                ("title".to_string(), "required"),
                ("body".to_string(), "too_long")
            ]
        );
    }

    #[test]
    fn only_approved_reviews_count() {
        let mut h = Histogram::default();
        h.apply(None, Some((4, false)));
        assert_eq!(h.summary().count, 0);
        h.apply(Some((4, false)), Some((4, true)));
        h.apply(None, Some((2, true)));
        assert_eq!(h.0, [0, 1, 0, 1, 0]);
        assert_eq!(h.summary(), RatingSummary { sum: 6, count: 2 });
        h.apply(Some((4, true)), Some((5, true)));
        h.apply(Some((2, true)), None);
        assert_eq!(h.0, [0, 0, 0, 0, 1]);
    }

    proptest! {
        /// Whatever sequence of creates, edits, moderations and deletes, the histogram equals
        /// the one counted from scratch over the surviving approved reviews.
        #[test]
        fn the_incremental_histogram_equals_a_recount(ops in proptest::collection::vec((0usize..6, 1u8..=5, any::<bool>(), any::<bool>()), 0..60)) {
            let mut reviews: Vec<Option<(u8, bool)>> = vec![None; 6];
            let mut h = Histogram::default();
            for (slot, rating, approved, delete) in ops {
                let before = reviews[slot];
                let after = if delete { None } else { Some((rating, approved)) };
                h.apply(before, after);
                reviews[slot] = after;
            }
            let mut recount = Histogram::default();
            for (r, approved) in reviews.into_iter().flatten() {
                if approved { recount.0[usize::from(r) - 1] += 1; }
            }
            prop_assert_eq!(h, recount);
        }

        #[test]
        fn every_sort_is_a_total_order(a in (1u8..=5, 0u32..9, 0i64..5, any::<[u8; 16]>()), b in (1u8..=5, 0u32..9, 0i64..5, any::<[u8; 16]>())) {
            for sort in [ReviewSort::Helpful, ReviewSort::Newest, ReviewSort::Highest, ReviewSort::Lowest] {
                let (ka, kb) = (sort.key(a.0, a.1, a.2, a.3), sort.key(b.0, b.1, b.2, b.3));
                prop_assert_eq!(ka == kb, a.3 == b.3 || (ka == kb));
                if a.3 != b.3 { prop_assert_ne!(ka, kb); }
            }
        }
    }
}
