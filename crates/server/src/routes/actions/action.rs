//! What every agent action shares: the action as an event draft filed
//! under the customer's identifier, published with the API's producer, and
//! the 202 answer with the event id.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse};
use panorama_core::{
    ConsentDraft, ContactEvent, EventDraft, EventIdentifier, FeedbackDraft, Identifier,
    IdentifierDraft, ValidationContext,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::refuse_reused_ids;
use crate::publish::publish_with;
use crate::{AppState, metrics, store};

/// Longest note, reason or outcome text.
pub(super) const MAX_TEXT: usize = 4_000;
/// Longest short text: a case's reason or outcome, a task's title or
/// assignee.
pub(super) const MAX_SHORT: usize = 200;

/// The header that makes an agent action safe to retry.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The UUIDv5 namespace of the ids derived from an `Idempotency-Key`.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6964_656d_706f_7465_6e63_795f_6b65_7931);

/// An agent action's `Idempotency-Key`, bound to who sent it, the route
/// and what the action is about: the ids of the action (its event, a new
/// case or task) derive from it, so a retry after a timeout publishes the
/// same event again, which the projection writes once.
#[derive(Debug)]
pub(super) struct IdempotencyKey {
    seed: String,
}

impl IdempotencyKey {
    /// The request's `Idempotency-Key`, if any, for its route template
    /// about `about` (the customer, case, task or identifier as the path or
    /// body names it); 400 naming the header unless it is 1 to 255 visible
    /// ASCII characters.
    pub(super) fn read(
        request: &HttpRequest,
        caller: &Caller,
        about: &str,
    ) -> Result<Option<IdempotencyKey>, ApiError> {
        let Some(value) = request.headers().get(IDEMPOTENCY_KEY) else {
            return Ok(None);
        };
        let bytes = value.as_bytes();
        if bytes.is_empty()
            || bytes.len() > MAX_IDEMPOTENCY_KEY
            || !bytes.iter().all(u8::is_ascii_graphic)
        {
            return Err(ApiError::InvalidParameter {
                field: IDEMPOTENCY_KEY.to_owned(),
                message: format!(
                    "must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (no spaces)"
                ),
            });
        }
        let key = String::from_utf8_lossy(bytes);
        let route = crate::endpoints::template_of(request).unwrap_or_default();
        Ok(Some(IdempotencyKey {
            seed: format!("{}\n{route}\n{about}\n{key}", caller.principal().token_id),
        }))
    }

    /// The id `what` (`event`, `case`, `task`) of the action.
    pub(super) fn id(&self, what: &str) -> Uuid {
        Uuid::new_v5(
            &IDEMPOTENCY_NAMESPACE,
            format!("{what}\n{}", self.seed).as_bytes(),
        )
    }
}

/// A new id `what` for an action: derived from its key, else a UUIDv7.
pub(super) fn new_id(key: Option<&IdempotencyKey>, what: &str) -> Uuid {
    key.map_or_else(Uuid::now_v7, |key| key.id(what))
}

/// What an agent did, before it becomes an event.
#[derive(Debug, Default)]
pub(super) struct Action {
    /// Its `Idempotency-Key`, which fixes its event id.
    pub(super) key: Option<IdempotencyKey>,
    pub(super) event_type: &'static str,
    pub(super) case_id: Option<Uuid>,
    pub(super) reason: Option<String>,
    pub(super) summary: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) outcome: Option<String>,
    pub(super) feedback: Option<FeedbackDraft>,
    pub(super) consent: Vec<ConsentDraft>,
    pub(super) attributes: BTreeMap<String, String>,
}

/// Publishes `action` about surviving customer `customer`, filed under the
/// customer's handle identifier so the projector attaches it there.
pub(super) async fn publish_action(
    state: &AppState,
    caller: &Caller,
    customer: Uuid,
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let handle = customer_handle(state, customer).await?;
    publish_under(state, caller, &[handle], action).await
}

/// The identifier actions about surviving customer `customer` are filed
/// under, with its trust: a customer of claims is reached through a claim,
/// which the action does not verify.
pub(super) async fn customer_handle(
    state: &AppState,
    customer: Uuid,
) -> Result<EventIdentifier, ApiError> {
    store(state)?
        .customer_handle(customer)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {customer}")))
}

/// Publishes `action` filed under `identifier`: the projector attaches it
/// to the customer owning it, or creates one. An agent typed it, an
/// authenticated user of the organisation: it is verified.
pub(super) async fn publish_for(
    state: &AppState,
    caller: &Caller,
    identifier: &Identifier,
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let filed_under = EventIdentifier::verified(identifier.clone());
    publish_under(state, caller, &[filed_under], action).await
}

/// Publishes `action` filed under `identifiers`, each with its trust.
pub(super) async fn publish_under(
    state: &AppState,
    caller: &Caller,
    identifiers: &[EventIdentifier],
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let draft = EventDraft {
        channel: Some("agent".to_owned()),
        source: Some("agent".to_owned()),
        event_type: Some(action.event_type.to_owned()),
        identifiers: identifiers
            .iter()
            .map(|carried| {
                IdentifierDraft::new(carried.identifier.kind(), carried.identifier.value())
                    .with_trust(carried.trust)
            })
            .collect(),
        agent_id: Some(caller.principal().name.clone()),
        case_id: action.case_id.map(|id| id.to_string()),
        contact_reason: action.reason,
        summary: action.summary,
        subject: action.subject,
        outcome: action.outcome,
        feedback: action.feedback,
        consent: action.consent,
        attributes: action.attributes,
        event_id: action.key.as_ref().map(|key| key.id("event").to_string()),
        ..EventDraft::default()
    };
    let event = draft.validate(&ValidationContext::now(state.settings.default_region))?;
    if action.key.is_some() {
        refuse_reused_ids(state, std::slice::from_ref(&event), |_| {
            IDEMPOTENCY_KEY.to_owned()
        })
        .await?;
    }
    publish_with(
        state,
        state.actions.as_ref(),
        metrics::SOURCE_AGENT,
        std::slice::from_ref(&event),
    )
    .await?;
    Ok(event)
}

/// Whether the action of `key` was projected already: a retry of a state
/// change that succeeded answers like the first, though the state changed.
pub(super) async fn already_recorded(
    state: &AppState,
    key: Option<&IdempotencyKey>,
) -> Result<bool, ApiError> {
    let Some(key) = key else {
        return Ok(false);
    };
    let found = store(state)?.event_fingerprints(&[key.id("event")]).await?;
    Ok(!found.is_empty())
}

/// The 202 answer: the id of the event published, and `extra`.
pub(super) fn accepted(event: &ContactEvent, extra: serde_json::Value) -> HttpResponse {
    let mut body = json!({ "event_id": event.event_id });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    HttpResponse::Accepted().json(body)
}
