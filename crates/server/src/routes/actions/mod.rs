//! Agent actions: cases opened, resolved and reopened, notes, follow-up
//! tasks and feedback taken down by an agent. Each is published as an event
//! to the contact-event topic and projected like any contact, so the
//! history is complete and a replay of the topic rebuilds it. The answer is
//! 202 once the broker has the event; the projection follows within
//! moments (watch the live stream, or read again).

mod cases;
pub(crate) mod doc;
mod notes;
mod tasks;

pub(crate) use cases::*;
pub(crate) use notes::*;
pub(crate) use tasks::*;

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_core::{
    ContactEvent, EventDraft, FeedbackDraft, Identifier, IdentifierDraft, Role, ValidationContext,
};
use panorama_store::TimelineCursor;
use serde_json::json;
use uuid::Uuid;

use super::body::{JsonBody, invalid as invalid_field};
use super::customers::{customer_in_path, store};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ingest::publish_with;
use crate::openapi::problem;

/// Longest note, reason or outcome text.
pub(super) const MAX_TEXT: usize = 4_000;
pub(super) const MAX_SHORT: usize = 200;

/// What an agent did, before it becomes an event.
#[derive(Debug, Default)]
pub(super) struct Action {
    event_type: &'static str,
    case_id: Option<Uuid>,
    reason: Option<String>,
    summary: Option<String>,
    subject: Option<String>,
    outcome: Option<String>,
    feedback: Option<FeedbackDraft>,
    attributes: BTreeMap<String, String>,
}

/// Publishes `action` about surviving customer `customer`, filed under the
/// customer's handle identifier so the projector attaches it there.
pub(super) async fn publish_action(
    state: &AppState,
    caller: &Caller,
    customer: Uuid,
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let store = store(state)?;
    let Some(handle) = store.customer_handle(customer).await? else {
        return Err(ApiError::NotFound(format!("no customer {customer}")));
    };
    publish_for(state, caller, &handle, action).await
}

/// Publishes `action` filed under `identifier`: the projector attaches it
/// to the customer owning it, or creates one.
pub(super) async fn publish_for(
    state: &AppState,
    caller: &Caller,
    identifier: &Identifier,
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let draft = EventDraft {
        channel: Some("agent".to_owned()),
        source: Some("agent".to_owned()),
        event_type: Some(action.event_type.to_owned()),
        identifiers: vec![IdentifierDraft::new(identifier.kind(), identifier.value())],
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
    publish_with(state, state.actions.as_ref(), std::slice::from_ref(&event)).await?;
    Ok(event)
}

pub(super) fn accepted(event: &ContactEvent, extra: serde_json::Value) -> HttpResponse {
    let mut body = json!({ "event_id": event.event_id });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    HttpResponse::Accepted().json(body)
}

/// `POST /v1/customers/{id}/notes {"text": "...", "case_id": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/notes",
    tag = "actions",
    summary = "Add a note",
    description = "A `note.added` event on the customer's timeline, optionally about a case.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::NoteRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn add_note(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let text = body.text("text", MAX_TEXT)?;
    let case_id = body.optional_uuid("case_id")?;
    body.finish()?;
    let event = publish_action(
        &state,
        &caller,
        in_path.customer,
        Action {
            event_type: "note.added",
            case_id,
            summary: Some(text),
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, in_path.answer(json!({}))))
}

/// `POST /v1/customers/{id}/feedback {"metric": "nps", "score": 9, "comment": "..."?, "case_id": "..."?}`
/// — an answer an agent took down (on the phone, say).
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/feedback",
    tag = "actions",
    summary = "Take down a survey answer",
    description = "A `feedback.submitted` event: an answer an agent took down (on the phone, say).\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::FeedbackRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn add_feedback(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let metric = body.text("metric", 10)?;
    let score = i32::try_from(body.integer("score")?)
        .map_err(|_| invalid_field("score", "out of range"))?;
    let comment = body.optional_text("comment", MAX_TEXT)?;
    let case_id = body.optional_uuid("case_id")?;
    body.finish()?;
    let event = publish_action(
        &state,
        &caller,
        in_path.customer,
        Action {
            event_type: "feedback.submitted",
            case_id,
            feedback: Some(FeedbackDraft {
                metric,
                score,
                comment,
            }),
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, in_path.answer(json!({}))))
}

/// The opaque cursor of a (time, id) position.
pub(super) fn position(at: DateTime<Utc>, id: Uuid) -> String {
    TimelineCursor {
        occurred_at: at,
        event_id: id,
    }
    .encode()
}
