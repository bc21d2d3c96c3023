//! Contact preferences an agent took down: the customer said on the phone
//! "no more marketing email", say. Preference centres and CRMs post the
//! same `consent.updated` events through `POST /v1/events`.

use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::{ConsentChannel, ConsentDraft, ConsentPurpose};
use serde_json::json;

use super::action::{Action, IdempotencyKey, MAX_TEXT, accepted, publish_action};
use super::doc;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::body::{JsonBody, invalid_field};
use crate::routes::params::customer_in_path;
use crate::{AppState, problem};

/// `POST /v1/customers/{id}/consent {"channel": "email", "purpose": "marketing", "granted": false, "note": "..."?}`
/// — a preference the customer stated to an agent.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/consent",
    tag = "actions",
    summary = "Record a contact preference",
    description = "A `consent.updated` event (channel `agent`) with one statement: whether the \
        customer allows contact through `channel` (or `any` channel) for `purpose`. The \
        profile keeps the latest statement per channel and purpose; a statement about `any` \
        speaks for every channel without a later one of its own.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::ConsentRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn record_consent(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let channel = body.text("channel", 20)?;
    let channel = channel
        .parse::<ConsentChannel>()
        .map_err(|error| invalid_field("channel", error))?;
    let purpose = body.text("purpose", 20)?;
    let purpose = purpose
        .parse::<ConsentPurpose>()
        .map_err(|error| invalid_field("purpose", error))?;
    let granted = body.boolean("granted")?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    let event = publish_action(
        &state,
        &caller,
        in_path.customer,
        Action {
            key,
            event_type: "consent.updated",
            summary: note,
            consent: vec![ConsentDraft {
                channel: channel.as_str().to_owned(),
                purpose: purpose.as_str().to_owned(),
                granted: Some(granted),
            }],
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, in_path.answer(json!({}))))
}
