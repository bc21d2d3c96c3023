//! Notes: about a customer, and about an identifier whether or not a
//! customer owns it yet, where the first note about an unknown caller
//! creates the customer.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::action::{Action, IdempotencyKey, MAX_TEXT, accepted, publish_action, publish_for};
use super::doc;
use crate::audit::subject;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::body::JsonBody;
use crate::routes::params::customer_in_path;
use crate::{AppState, problem, store};

/// `POST /v1/customers/{id}/notes {"text": "...", "case_id": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/notes",
    tag = "actions",
    summary = "Add a note",
    description = "A `note.added` event on the customer's timeline, optionally about a case.",
    params(
        doc::IdempotencyKeyHeader,
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
    let key = IdempotencyKey::read(&request, &caller, &path)?;
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
            key,
            event_type: "note.added",
            case_id,
            summary: Some(text),
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, in_path.answer(json!({}))))
}

/// `POST /v1/notes {"identifier": {"kind": "phone", "value": "..."}, "text": "..."}`
/// — the agent who took a call from an unknown number writes the first
/// note; the projector files it under the customer owning the identifier,
/// creating one when nobody does.
#[utoipa::path(
    post,
    path = "/v1/notes",
    tag = "actions",
    summary = "Add a note about an identifier",
    description = "A `note.added` event filed under the identifier, the same event \
        `POST /v1/customers/{id}/notes` publishes. The projector attaches it to the \
        customer owning the identifier or, when nobody does yet (an unknown caller), \
        creates that customer: look it up by the identifier moments later. \
        `customer_id` is in the answer when the identifier already had a customer.",
    params(doc::IdempotencyKeyHeader),
    request_body(content = doc::IdentifierNoteRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::Publish,
    ),
)]
pub(crate) async fn add_identifier_note(
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut body = JsonBody::read(&request, payload).await?;
    let identifier = body.identifier("identifier", state.settings.default_region)?;
    let text = body.text("text", MAX_TEXT)?;
    body.finish()?;
    let key = IdempotencyKey::read(&request, &caller, &identifier.to_string())?;
    subject::note_identifier_kind(&request, identifier.kind());
    let known = store(&state)?.lookup(&identifier).await?;
    if let Some(customer) = known {
        subject::note_customer(&request, customer);
    }
    let event = publish_for(
        &state,
        &caller,
        &identifier,
        Action {
            key,
            event_type: "note.added",
            summary: Some(text),
            ..Action::default()
        },
    )
    .await?;
    let extra = match known {
        Some(customer) => json!({ "customer_id": customer }),
        None => json!({}),
    };
    Ok(accepted(&event, extra))
}
