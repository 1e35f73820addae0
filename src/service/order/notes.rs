//! Notes on an order's timeline: staff and the order's sellers write them (a call with the
//! customer, a parcel re-sent); each is internal unless marked for the customer (see
//! [`super::timeline`] for who reads which).

use std::sync::Arc;

use super::{Event, Orders, Viewer};
use crate::domain::order::{NoteInput, MAX_NOTE_CHARS};
use crate::domain::{FieldErrors, Id};
use crate::service::auth::Actor;
use crate::service::view::order::OrderEventView;
use crate::service::{blocking, ServiceError};

/// The timeline kind of a note.
pub(crate) const NOTE: &str = "note";

impl Orders {
    /// `POST /orders/{id}/notes` (admins, and the sellers with lines in the order).
    pub async fn add_note(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: NoteInput,
    ) -> Result<OrderEventView, ServiceError> {
        actor.require_signed_in()?;
        let mut errors = FieldErrors::default();
        let text = input.text.as_deref().map(str::trim).unwrap_or_default().to_owned();
        if text.is_empty() {
            errors.add("text", "required", "must be given");
        } else if text.chars().count() > MAX_NOTE_CHARS {
            errors.add("text", "too_long", format!("at most {MAX_NOTE_CHARS} characters"));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(id);
            let (mut order, viewer) = this.load_for(&actor, None, id)?;
            if !matches!(viewer, Viewer::Admin | Viewer::Seller(_)) {
                return Err(ServiceError::Forbidden(
                    "only staff and the order's sellers write notes",
                ));
            }
            let mut batch = this.store.batch();
            let record = this.stage_event(
                &mut batch,
                &Event {
                    actor: &viewer.actor(),
                    kind: NOTE,
                    from: None,
                    data: serde_json::json!({
                        "text": text,
                        "customer_visible": input.customer_visible.unwrap_or(false),
                    }),
                },
                &mut order,
            )?;
            this.stage_order(&mut batch, &mut order)?;
            batch.commit()?;
            Ok(OrderEventView::from(&record))
        })
        .await
    }
}
