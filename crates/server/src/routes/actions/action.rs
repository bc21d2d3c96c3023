//! What every agent action shares: the action as an event draft filed
//! under the customer's identifier, published with the API's producer, and
//! the 202 answer with the event id.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use panorama_core::{
    ContactEvent, EventDraft, EventIdentifier, FeedbackDraft, Identifier, IdentifierDraft,
    ValidationContext,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::publish::publish_with;
use crate::{AppState, metrics, store};

/// Longest note, reason or outcome text.
pub(super) const MAX_TEXT: usize = 4_000;
/// Longest short text: a case's reason or outcome, a task's title or
/// assignee.
pub(super) const MAX_SHORT: usize = 200;

/// What an agent did, before it becomes an event.
#[derive(Debug, Default)]
pub(super) struct Action {
    pub(super) event_type: &'static str,
    pub(super) case_id: Option<Uuid>,
    pub(super) reason: Option<String>,
    pub(super) summary: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) outcome: Option<String>,
    pub(super) feedback: Option<FeedbackDraft>,
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
        attributes: action.attributes,
        ..EventDraft::default()
    };
    let event = draft.validate(&ValidationContext::now(state.settings.default_region))?;
    publish_with(
        state,
        state.actions.as_ref(),
        metrics::SOURCE_AGENT,
        std::slice::from_ref(&event),
    )
    .await?;
    Ok(event)
}

/// The 202 answer: the id of the event published, and `extra`.
pub(super) fn accepted(event: &ContactEvent, extra: serde_json::Value) -> HttpResponse {
    let mut body = json!({ "event_id": event.event_id });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    HttpResponse::Accepted().json(body)
}
