//! Product reviews: one per user per product, flagged when the author bought it, moderated
//! before they count, voted helpful, answered once by the seller.
//!
//! Every change is one transaction with the product's rating histogram, its rating summary on
//! the product record (so listings, search and pages follow through the changelog) and, when
//! the public reviews change, a changelog entry whose tag purges the review pages.

use std::sync::Arc;

use base64::Engine;
use storefront_storage::cf::{CF_ORDER_INDEX, CF_REVIEWS, CF_REVIEW_INDEX};
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{FulfilmentStatusRecord, OrderPhaseRecord, OrderRecord};
use storefront_storage::records::{ChangeOp, EntityKind, ProductRecord, UserRecord};
use storefront_storage::reviews::{
    review_index, RatingRecord, ReviewIndex, ReviewRecord, ReviewReplyRecord, ReviewStatusRecord,
};
use storefront_storage::{Owned, Store, Txn};

use crate::domain::error::DomainError;
use crate::domain::review::{Histogram, ReviewContent, ReviewInput, ReviewSort, ReviewStatus, MAX_BODY_LEN};
use crate::domain::{FieldErrors, Id};
use crate::service::auth::Actor;
use crate::service::catalog::tags;
use crate::service::events::outbox::new_event;
use crate::service::view::product_status;
use crate::service::view::review::{ReviewPage, ReviewView};
use crate::service::{blocking, Catalog, ServiceError};

/// Which reviews are approved without a moderator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoApprove {
    /// Every review waits for a moderator.
    None,
    /// Reviews of verified purchases are approved at once.
    Verified,
    /// Every review is approved at once.
    All,
}

/// When a purchase counts as verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedWhen {
    /// Once the shipment holding the product was delivered.
    Delivered,
    /// Once the order was placed (paid or awaiting a manual payment).
    Placed,
}

/// Settings of reviews (`[reviews]`).
#[derive(Debug, Clone, Copy)]
pub struct ReviewSettings {
    /// Which reviews skip moderation.
    pub auto_approve: AutoApprove,
    /// When a purchase is verified.
    pub verified_when: VerifiedWhen,
}

/// Query of `GET /products/{id}/reviews`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct ReviewQuery {
    /// `helpful` (default), `newest`, `highest` or `lowest`.
    pub sort: Option<String>,
    /// Only reviews with this many stars (1–5).
    pub rating: Option<String>,
    /// Page size, 1–50 (default 10).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The review service.
pub struct Reviews {
    store: Store,
    catalog: Arc<Catalog>,
    settings: ReviewSettings,
}

impl Reviews {
    /// The service over `store`.
    pub fn new(store: Store, catalog: Arc<Catalog>, settings: ReviewSettings) -> Reviews {
        Reviews {
            store,
            catalog,
            settings,
        }
    }

    /// Writes the signed-in user's review of a published product.
    pub async fn create(
        self: &Arc<Self>,
        actor: Actor,
        product: String,
        input: ReviewInput,
    ) -> Result<ReviewView, ServiceError> {
        let user = actor.user_id()?;
        let mut errors = FieldErrors::default();
        let content = input.new_review(&mut errors);
        errors.finish(()).map_err(ServiceError::Validation)?;
        let this = self.clone();
        blocking(move || {
            let product = this.visible_product(&product)?;
            let verified = this.bought(user, product)?;
            let status = match (this.settings.auto_approve, verified) {
                (AutoApprove::All, _) | (AutoApprove::Verified, true) => ReviewStatusRecord::Approved,
                _ => ReviewStatusRecord::Pending,
            };
            let (record, inv) = this.store.transact(|txn| {
                let author_key = review_index(ReviewIndex::Author, &user.to_bytes(), &product.to_bytes());
                if txn.get_raw(CF_REVIEW_INDEX, &author_key)?.is_some() {
                    return Err(DomainError::ReviewExists.into());
                }
                let author_name = txn
                    .get::<UserRecord>(&user.to_bytes())?
                    .map(|u| u.archived().name.to_string())
                    .unwrap_or_default();
                let now = txn.now_ms();
                let record = ReviewRecord {
                    id: Id::new().to_bytes(),
                    product_id: product.to_bytes(),
                    user_id: user.to_bytes(),
                    author_name,
                    rating: content.rating,
                    title: content.title.clone(),
                    body: content.body.clone(),
                    status,
                    verified_purchase: verified,
                    helpful: 0,
                    reply: None,
                    version: 1,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                txn.put_raw(CF_REVIEW_INDEX, &author_key, &record.id);
                txn.put_raw(
                    CF_REVIEW_INDEX,
                    &review_index(ReviewIndex::Product, &record.product_id, &record.id),
                    &[],
                );
                let event = new_event(
                    "review_submitted",
                    serde_json::json!({
                        "review_id": Id::from_bytes(record.id).to_string(),
                        "product_id": product.to_string(),
                        "rating": record.rating,
                        "status": crate::service::view::review::status_name(record.status),
                        "verified_purchase": verified,
                    }),
                    now,
                );
                txn.put(&event.id, &event)?;
                let inv = this.stage(txn, None, Some(&record))?;
                Ok::<_, ServiceError>((record, inv))
            })?;
            this.catalog.apply(inv)?;
            Ok(ReviewView::from(&record))
        })
        .await
    }

    /// A product's approved reviews, sorted and filtered, a page at a time.
    pub async fn list(self: &Arc<Self>, product: String, query: ReviewQuery) -> Result<(ReviewPage, Id), ServiceError> {
        let mut errors = FieldErrors::default();
        let sort = ReviewSort::parse(query.sort.as_deref(), &mut errors);
        let rating = query.rating.as_deref().and_then(|r| match r.parse::<u8>() {
            Ok(r) if (1..=5).contains(&r) => Some(r),
            _ => {
                errors.add("rating", "out_of_range", "must be a whole number from 1 to 5");
                None
            }
        });
        let limit = match query.limit.as_deref().map(str::parse::<usize>) {
            None => 10,
            Some(Ok(n)) if (1..=50).contains(&n) => n,
            Some(_) => {
                errors.add("limit", "out_of_range", "must be from 1 to 50");
                10
            }
        };
        errors.finish(()).map_err(ServiceError::Validation)?;
        let after = query.cursor.as_deref().map(|c| decode_cursor(c, sort)).transpose()?;
        let this = self.clone();
        blocking(move || {
            let product = this.visible_product(&product)?;
            let mut reviews: Vec<ReviewRecord> = this
                .of_product(product)?
                .into_iter()
                .filter(|r| r.status == ReviewStatusRecord::Approved && rating.is_none_or(|want| r.rating == want))
                .collect();
            let key = |r: &ReviewRecord| sort.key(r.rating, r.helpful, r.created_at_ms, r.id);
            reviews.sort_by_key(key);
            let total = reviews.len();
            let start = after.map(|a| reviews.partition_point(|r| key(r) <= a)).unwrap_or(0);
            let page: Vec<&ReviewRecord> = reviews[start..].iter().take(limit).collect();
            let next_cursor = (start + page.len() < total)
                .then(|| page.last().map(|last| encode_cursor(sort, key(last))))
                .flatten();
            Ok((
                ReviewPage {
                    items: page.into_iter().map(ReviewView::from).collect(),
                    total,
                    next_cursor,
                },
                product,
            ))
        })
        .await
    }

    /// One review: public once approved; before that, only its author and moderators see it.
    pub async fn get(self: &Arc<Self>, actor: Actor, id: Id) -> Result<ReviewView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let review = this.load(id)?;
            if review.status != ReviewStatusRecord::Approved && !this.is_author(&actor, &review) {
                this.require_moderator(&actor, &review)
                    .map_err(|_| ServiceError::NotFound { kind: "review" })?;
            }
            Ok(ReviewView::from(&review))
        })
        .await
    }

    /// Reviews waiting for moderation, oldest first: all of them for admins, a seller's own
    /// products' for a seller.
    pub async fn pending(self: &Arc<Self>, actor: Actor, limit: usize) -> Result<Vec<ReviewView>, ServiceError> {
        actor.require_catalog_writer()?;
        let this = self.clone();
        blocking(move || {
            let prefix = [ReviewIndex::Pending as u8];
            let upper = keys::prefix_successor(&prefix);
            let mut ids = Vec::new();
            this.store
                .for_each_raw(CF_REVIEW_INDEX, &prefix, upper.as_deref(), |key, _| {
                    if let Ok(id) = <[u8; 16]>::try_from(&key[1..]) {
                        ids.push(id);
                    }
                    true
                })?;
            let mut out = Vec::new();
            for review in this.store.multi_get::<ReviewRecord, _>(&ids)?.into_iter().flatten() {
                let review = review.to_native();
                if this.require_moderator(&actor, &review).is_ok() {
                    out.push(ReviewView::from(&review));
                    if out.len() >= limit.clamp(1, 500) {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// The author edits the content (the review is moderated again unless auto-approval
    /// applies), or a moderator (an admin, or the product's seller) approves or rejects it.
    pub async fn update(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        if_match: Option<u64>,
        input: ReviewInput,
    ) -> Result<ReviewView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let (record, inv) = this.store.transact(|txn| {
                let old = load_in(txn, id)?;
                if if_match.is_some_and(|v| v != old.version) {
                    return Err(ServiceError::VersionMismatch { current: old.version });
                }
                let mut new = old.clone();
                let mut errors = FieldErrors::default();
                if input.edits_content() {
                    if !this.is_author(&actor, &old) {
                        return Err(ServiceError::Forbidden("only the author may edit a review"));
                    }
                    let content = input.edit(
                        &ReviewContent {
                            rating: old.rating,
                            title: old.title.clone(),
                            body: old.body.clone(),
                        },
                        &mut errors,
                    );
                    new.rating = content.rating;
                    new.title = content.title;
                    new.body = content.body;
                    new.status = match (this.settings.auto_approve, old.verified_purchase) {
                        (AutoApprove::All, _) | (AutoApprove::Verified, true) => ReviewStatusRecord::Approved,
                        _ => ReviewStatusRecord::Pending,
                    };
                }
                if let Some(raw) = &input.status {
                    this.require_moderator(&actor, &old)?;
                    if let Some(decision) = ReviewStatus::parse_decision(raw, &mut errors) {
                        new.status = match decision {
                            ReviewStatus::Approved => ReviewStatusRecord::Approved,
                            ReviewStatus::Rejected => ReviewStatusRecord::Rejected,
                            ReviewStatus::Pending => ReviewStatusRecord::Pending,
                        };
                    }
                }
                if !input.edits_content() && input.status.is_none() {
                    errors.add(
                        "status",
                        "required",
                        "give rating, title or body (the author), or status (a moderator)",
                    );
                }
                errors.finish(()).map_err(ServiceError::Validation)?;
                if new == old {
                    return Ok((new, Default::default()));
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                let inv = this.stage(txn, Some(&old), Some(&new))?;
                Ok((new, inv))
            })?;
            this.catalog.apply(inv)?;
            Ok(ReviewView::from(&record))
        })
        .await
    }

    /// The author or an admin deletes a review (with its votes).
    pub async fn delete(self: &Arc<Self>, actor: Actor, id: Id) -> Result<(), ServiceError> {
        let this = self.clone();
        blocking(move || {
            let inv = this.store.transact(|txn| {
                let old = load_in(txn, id)?;
                if !this.is_author(&actor, &old) && !actor.is_admin() {
                    return Err(ServiceError::Forbidden(
                        "only the author or an admin may delete a review",
                    ));
                }
                let votes = review_index(ReviewIndex::Vote, &old.id, &[]);
                let upper = keys::prefix_successor(&votes);
                let mut voters = Vec::new();
                this.store
                    .for_each_raw(CF_REVIEW_INDEX, &votes, upper.as_deref(), |key, _| {
                        voters.push(key.to_vec());
                        true
                    })?;
                for key in voters {
                    txn.delete(CF_REVIEW_INDEX, &key);
                }
                this.stage(txn, Some(&old), None)
            })?;
            this.catalog.apply(inv)
        })
        .await
    }

    /// Counts the signed-in user's helpful vote: once per review, never on their own.
    pub async fn helpful(self: &Arc<Self>, actor: Actor, id: Id) -> Result<ReviewView, ServiceError> {
        let user = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            let (record, inv) = this.store.transact(|txn| {
                let old = load_in(txn, id)?;
                if old.status != ReviewStatusRecord::Approved {
                    return Err(ServiceError::NotFound { kind: "review" });
                }
                if old.user_id == user.to_bytes() {
                    return Err(ServiceError::Forbidden("you may not vote on your own review"));
                }
                let vote = review_index(ReviewIndex::Vote, &old.id, &user.to_bytes());
                if txn.get_raw(CF_REVIEW_INDEX, &vote)?.is_some() {
                    return Err(DomainError::AlreadyVoted.into());
                }
                txn.put_raw(CF_REVIEW_INDEX, &vote, &[]);
                let mut new = old.clone();
                new.helpful += 1;
                let inv = this.stage(txn, Some(&old), Some(&new))?;
                Ok::<_, ServiceError>((new, inv))
            })?;
            this.catalog.apply(inv)?;
            Ok(ReviewView::from(&record))
        })
        .await
    }

    /// The product's seller (or an admin) answers a review, once.
    pub async fn reply(self: &Arc<Self>, actor: Actor, id: Id, body: String) -> Result<ReviewView, ServiceError> {
        let mut errors = FieldErrors::default();
        errors.text("body", &body, true, MAX_BODY_LEN);
        errors.finish(()).map_err(ServiceError::Validation)?;
        let this = self.clone();
        blocking(move || {
            let (record, inv) = this.store.transact(|txn| {
                let old = load_in(txn, id)?;
                this.require_moderator(&actor, &old)?;
                if old.reply.is_some() {
                    return Err(DomainError::ReplyExists.into());
                }
                let mut new = old.clone();
                new.reply = Some(ReviewReplyRecord {
                    author_id: actor.user_id().ok().map(Id::to_bytes),
                    body: body.clone(),
                    created_at_ms: txn.now_ms(),
                });
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                let inv = this.stage(txn, Some(&old), Some(&new))?;
                Ok::<_, ServiceError>((new, inv))
            })?;
            this.catalog.apply(inv)?;
            Ok(ReviewView::from(&record))
        })
        .await
    }

    /// Stages a review change: the record and its indexes, the histogram, the product's
    /// summary, and a changelog entry when the public reviews change.
    fn stage(
        &self,
        txn: &mut Txn<'_>,
        old: Option<&ReviewRecord>,
        new: Option<&ReviewRecord>,
    ) -> Result<crate::service::catalog::Invalidation, ServiceError> {
        let any = new.or(old).expect("a change has a side");
        let product = any.product_id;
        let pending_key = review_index(ReviewIndex::Pending, &[], &any.id);
        match new {
            Some(n) => {
                txn.put(&n.id, n)?;
                if n.status == ReviewStatusRecord::Pending {
                    txn.put_raw(CF_REVIEW_INDEX, &pending_key, &[]);
                } else {
                    txn.delete(CF_REVIEW_INDEX, &pending_key);
                }
            }
            None => {
                let o = old.expect("a change has a side");
                txn.delete(CF_REVIEWS, &o.id);
                txn.delete(CF_REVIEW_INDEX, &pending_key);
                txn.delete(
                    CF_REVIEW_INDEX,
                    &review_index(ReviewIndex::Product, &o.product_id, &o.id),
                );
                txn.delete(
                    CF_REVIEW_INDEX,
                    &review_index(ReviewIndex::Author, &o.user_id, &o.product_id),
                );
            }
        }
        let side = |r: Option<&ReviewRecord>| r.map(|r| (r.rating, r.status == ReviewStatusRecord::Approved));
        let mut inv = crate::service::catalog::Invalidation::default();
        let public = |r: Option<&ReviewRecord>| r.filter(|r| r.status == ReviewStatusRecord::Approved).cloned();
        if public(old) != public(new) {
            let mut histogram = Histogram(
                txn.get::<RatingRecord>(&product)?
                    .map(|r| r.to_native().histogram)
                    .unwrap_or_default(),
            );
            histogram.apply(side(old), side(new));
            txn.put(&product, &RatingRecord { histogram: histogram.0 })?;
            inv = self
                .catalog
                .stage_rating(txn, &Id::from_bytes(product), histogram.summary())?;
            txn.record_change(
                EntityKind::Review,
                ChangeOp::Upsert,
                &product,
                vec![tags::reviews(Id::from_bytes(product))],
            );
        }
        Ok(inv)
    }

    fn load(&self, id: Id) -> Result<ReviewRecord, ServiceError> {
        self.store
            .get::<ReviewRecord>(&id.to_bytes())?
            .map(|r| r.to_native())
            .ok_or(ServiceError::NotFound { kind: "review" })
    }

    fn of_product(&self, product: Id) -> Result<Vec<ReviewRecord>, ServiceError> {
        let prefix = review_index(ReviewIndex::Product, &product.to_bytes(), &[]);
        let upper = keys::prefix_successor(&prefix);
        let mut ids = Vec::new();
        self.store
            .for_each_raw(CF_REVIEW_INDEX, &prefix, upper.as_deref(), |key, _| {
                if let Ok(id) = <[u8; 16]>::try_from(&key[prefix.len()..]) {
                    ids.push(id);
                }
                true
            })?;
        Ok(self
            .store
            .multi_get::<ReviewRecord, _>(&ids)?
            .into_iter()
            .flatten()
            .map(|r: Owned<ReviewRecord>| r.to_native())
            .collect())
    }

    fn visible_product(&self, key: &str) -> Result<Id, ServiceError> {
        let not_found = || ServiceError::NotFound { kind: "product" };
        let id = self.catalog.resolve_product_id(key)?.ok_or_else(not_found)?;
        let product = self.store.get::<ProductRecord>(&id.to_bytes())?.ok_or_else(not_found)?;
        if !crate::domain::product::is_visible(product_status(&product.archived().status)) {
            return Err(not_found());
        }
        Ok(id)
    }

    /// Whether `user` bought `product` (per [`VerifiedWhen`]).
    fn bought(&self, user: Id, product: Id) -> Result<bool, ServiceError> {
        let prefix = keys::order_index(OrderIndex::User, &user.to_bytes(), &[]);
        let upper = keys::prefix_successor(&prefix);
        let mut ids = Vec::new();
        self.store
            .for_each_raw(CF_ORDER_INDEX, &prefix, upper.as_deref(), |key, _| {
                if let Ok(id) = <[u8; 16]>::try_from(&key[prefix.len()..]) {
                    ids.push(id);
                }
                true
            })?;
        for order in self.store.multi_get::<OrderRecord, _>(&ids)?.into_iter().flatten() {
            let o = order.to_native();
            if o.phase != OrderPhaseRecord::Placed {
                continue;
            }
            let bought = o.lines.iter().filter(|l| l.product_id == product.to_bytes()).any(|l| {
                match self.settings.verified_when {
                    VerifiedWhen::Placed => true,
                    VerifiedWhen::Delivered => o
                        .fulfilments
                        .iter()
                        .any(|f| f.seller_id == l.seller_id && f.status == FulfilmentStatusRecord::Delivered),
                }
            });
            if bought {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn is_author(&self, actor: &Actor, review: &ReviewRecord) -> bool {
        matches!(actor, Actor::User { id, .. } if id.to_bytes() == review.user_id)
    }

    /// Admins moderate every review; a seller those of their own products.
    fn require_moderator(&self, actor: &Actor, review: &ReviewRecord) -> Result<(), ServiceError> {
        let seller = self
            .store
            .get::<ProductRecord>(&review.product_id)?
            .and_then(|p| p.archived().seller_id.as_ref().map(|s| Id::from_bytes(*s)));
        actor
            .may_manage_catalog(seller)
            .map_err(|_| ServiceError::Forbidden("only an admin or the product's seller may moderate its reviews"))
    }
}

fn load_in(txn: &Txn<'_>, id: Id) -> Result<ReviewRecord, ServiceError> {
    txn.get::<ReviewRecord>(&id.to_bytes())?
        .map(|r| r.to_native())
        .ok_or(ServiceError::NotFound { kind: "review" })
}

fn sort_tag(sort: ReviewSort) -> u8 {
    match sort {
        ReviewSort::Helpful => b'h',
        ReviewSort::Newest => b'n',
        ReviewSort::Highest => b'H',
        ReviewSort::Lowest => b'l',
    }
}

fn encode_cursor(sort: ReviewSort, key: (i64, i64, [u8; 16])) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(sort_tag(sort));
    raw.extend_from_slice(&key.0.to_be_bytes());
    raw.extend_from_slice(&key.1.to_be_bytes());
    raw.extend_from_slice(&key.2);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(raw: &str, sort: ReviewSort) -> Result<(i64, i64, [u8; 16]), ServiceError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| ServiceError::InvalidCursor)?;
    if bytes.len() != 33 || bytes[0] != sort_tag(sort) {
        return Err(ServiceError::InvalidCursor);
    }
    let int = |r: &[u8]| i64::from_be_bytes(r.try_into().expect("8 bytes"));
    Ok((
        int(&bytes[1..9]),
        int(&bytes[9..17]),
        bytes[17..33].try_into().expect("16 bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip_and_refuse_other_sorts(a: i64, b: i64, id: [u8; 16], junk in ".{0,40}") {
            let c = encode_cursor(ReviewSort::Highest, (a, b, id));
            prop_assert_eq!(decode_cursor(&c, ReviewSort::Highest).unwrap(), (a, b, id));
            prop_assert!(decode_cursor(&c, ReviewSort::Newest).is_err());
            let _ = decode_cursor(&junk, ReviewSort::Helpful);
        }
    }
}
