//! Feedback an agent took down: a survey answer given on the phone, say.

use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::FeedbackDraft;
use serde_json::json;

use super::action::{Action, IdempotencyKey, MAX_TEXT, accepted, publish_action};
use super::doc;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::body::{JsonBody, invalid_field};
use crate::routes::params::customer_in_path;
use crate::{AppState, problem};

/// `POST /v1/customers/{id}/feedback {"metric": "nps", "score": 9, "comment": "..."?, "case_id": "..."?}`
/// — an answer an agent took down (on the phone, say).
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/feedback",
    tag = "actions",
    summary = "Take down a survey answer",
    description = "A `feedback.submitted` event: an answer an agent took down (on the phone, say).",
    params(
        doc::IdempotencyKeyHeader,
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
    let key = IdempotencyKey::read(&request, &caller, &path)?;
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
            key,
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
