//! Event ids as idempotency keys that refuse a reused key with a different
//! payload, the way payment APIs do. Before publishing, `POST /v1/events`
//! and the agent actions given an `Idempotency-Key` look their event ids up
//! in the projection with one indexed query: an id projected with the same
//! fingerprint (`panorama_store::fingerprint`) is a retry, accepted again
//! (republishing is harmless, the projection is idempotent by id); one
//! projected with another is refused with 409, nothing published.
//!
//! Two windows the check cannot see, both documented: an id still in flight
//! (published, not projected yet), where the projection keeps the first
//! and counts the later one (`panorama_projector_idempotency_conflicts_total`);
//! and PostgreSQL unreachable, where the check is skipped so ingest keeps
//! going, as it does with the tokens it saw lately. Provider webhooks are
//! not checked: their ids derive from the provider's, and a provider may
//! send the same id again with newer content (a status update).

use std::collections::HashMap;

use panorama_core::{ContactEvent, FieldError};

use crate::AppState;
use crate::error::ApiError;

/// `Ok` unless an event of `events` reuses an id that the projection (or an
/// earlier event of the same request) holds with another payload; then a
/// 409 naming `field(index)` of the first such event.
pub(crate) async fn refuse_reused_ids(
    state: &AppState,
    events: &[ContactEvent],
    field: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    let mut in_request = HashMap::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let fingerprint = panorama_store::fingerprint(event);
        let first = in_request.insert(event.event_id, fingerprint);
        if first.is_some_and(|first| first != fingerprint) {
            return Err(conflict(field(index), event, "earlier in this request"));
        }
    }
    let Some(store) = state.store.as_ref() else {
        return Ok(());
    };
    let ids: Vec<_> = in_request.keys().copied().collect();
    let stored = match store.event_fingerprints(&ids).await {
        Ok(stored) => stored,
        Err(error) => {
            // Ingest does not depend on PostgreSQL: without it the check is
            // skipped, and the projection keeps the first of a reused id.
            tracing::warn!(%error, "idempotency check skipped: database unavailable");
            return Ok(());
        }
    };
    for (index, event) in events.iter().enumerate() {
        let differs = stored.get(&event.event_id).is_some_and(|stored| {
            stored.as_slice() != panorama_store::fingerprint(event).as_slice()
        });
        if differs {
            return Err(conflict(field(index), event, "already recorded"));
        }
    }
    Ok(())
}

fn conflict(field: String, event: &ContactEvent, found: &str) -> ApiError {
    ApiError::IdempotencyConflict(FieldError {
        field,
        message: format!(
            "event {} is {found} with a different payload; an idempotency key names one payload, \
             use a new key for a new event",
            event.event_id
        ),
    })
}
