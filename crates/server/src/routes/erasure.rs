//! Erasure and suppression (docs/privacy.md): an admin asks for a
//! customer to be erased, follows the request until it is done, and lifts
//! the suppression of an erased identifier.
//!
//! The request is recorded, then published to the contact-event topic as
//! an erasure record; the projector applies it in a batch's transaction,
//! so it is ordered with the events like any other record and a replay
//! reads it again.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::{Identifier, IdentifierKind};
use panorama_proto::sealed::{ErasureRequest, SubjectSecret, encode_erasure};
use panorama_store::ErasureState;
use serde::Serialize;
use uuid::Uuid;

use super::body::{JsonBody, invalid_field};
use super::params::{invalid, parse_customer_id};
use crate::audit::subject::note_identifier_kind;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::publish::publish_record;
use crate::{AppState, metrics, problem, store};

/// Longest identifier value accepted when lifting a suppression.
const MAX_VALUE: usize = 320;

/// The answer to an erasure request.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErasureAccepted {
    /// The request's id.
    erasure_id: Uuid,
    /// `in_progress` (on the topic), or `done` when the projector was
    /// quicker than this answer.
    status: ErasureState,
    /// Where to follow it: `GET /v1/erasures/{id}`.
    status_url: String,
}

/// `DELETE /v1/suppressions`: the identifier to stop suppressing.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiftSuppression {
    /// Identifier kind, such as `phone` or `email`.
    kind: IdentifierKind,
    /// Its value, normalised as events' identifiers are (`+31 6 1234 5678`
    /// and `+31612345678` are one phone number).
    value: String,
}

fn status_url(id: Uuid) -> String {
    format!("/v1/erasures/{id}")
}

/// `POST /v1/customers/{id}/erasure` — erases the customer and every
/// profile merged into it.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/erasure",
    tag = "privacy",
    summary = "Erase a customer",
    description = "Erases the customer the id leads to (a merged profile works too) with every \
        profile merged into it: its events, identifiers, cases, tasks, notes, feedback, \
        attributes, consent, identity history and change log are deleted, its identifiers' \
        keys destroyed (records about it on the topic can no longer be read, by the live \
        projector or by a replay) and its identifiers suppressed, so later events naming them \
        are dropped. The audit trail keeps who read or changed the customer and when, with \
        the customer id replaced by the erasure's id.\n\n\
        Answered 202 once the request is on the topic; the projector applies it within \
        moments. Follow it at `status_url` (`GET /v1/erasures/{id}`): `in_progress`, then \
        `done` with what was deleted per table. While a request for the same id is not done, \
        asking again answers that request (and publishes it again). The body is ignored.",
    params(("id" = Uuid, Path, description = "Customer id (a merged one works too)")),
    responses(
        (status = 202, description = "On the topic", body = ErasureAccepted,
            headers(("Location" = String, description = "The status URL"))),
        problem::Read,
    ),
)]
pub(crate) async fn request_erasure(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let requested = parse_customer_id(&path)?;
    let store = store(&state)?;
    let requested_by = &caller.principal().name;
    let Some(request) = store.request_erasure(requested, requested_by).await? else {
        return Err(ApiError::NotFound(format!("no customer {requested}")));
    };
    let record = encode_erasure(&ErasureRequest {
        request_id: request.erasure_id,
        customer_id: request.customer_id,
        requested_by: request.requested_by.clone(),
        requested_at: request.requested_at,
    });
    publish_record(
        &state,
        state.actions.as_ref(),
        request.customer_id.to_string(),
        record,
    )
    .await?;
    metrics::ERASURE_REQUESTS.inc();
    let status = store
        .mark_erasure_published(request.erasure_id)
        .await?
        .map_or(ErasureState::InProgress, |marked| marked.status);
    tracing::info!(erasure = %request.erasure_id, customer = %requested, "erasure requested");
    let url = status_url(request.erasure_id);
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, url.clone()))
        .json(ErasureAccepted {
            erasure_id: request.erasure_id,
            status,
            status_url: url,
        }))
}

/// `GET /v1/erasures/{id}` — where an erasure request is.
#[utoipa::path(
    get,
    path = "/v1/erasures/{id}",
    tag = "privacy",
    summary = "An erasure request",
    description = "`received` (recorded; not on the topic yet: ask again to publish it), \
        `in_progress` (on the topic), `done` (applied: `done_at`, and `counts` of rows \
        deleted per table, `audit_log` rows scrubbed, `subject_keys` destroyed and \
        `suppressions` made). A request whose customer was gone by the time it was applied \
        is `done` with empty `counts`.",
    params(("id" = Uuid, Path, description = "Erasure id")),
    responses(
        (status = 200, description = "The request", body = panorama_store::ErasureStatus),
        problem::Read,
    ),
)]
pub(crate) async fn erasure_status(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| invalid("id", "erasure ids are UUIDs"))?;
    match store(&state)?.erasure_status(id).await? {
        Some(status) => Ok(HttpResponse::Ok().json(status)),
        None => Err(ApiError::NotFound(format!("no erasure {id}"))),
    }
}

/// `DELETE /v1/suppressions` — lets events naming an erased identifier be
/// projected again.
#[utoipa::path(
    delete,
    path = "/v1/suppressions",
    tag = "privacy",
    summary = "Lift a suppression",
    description = "An erased identifier is suppressed: events naming it are dropped, so a late \
        webhook does not bring the person back. This lifts that for one identifier (say the \
        number now belongs to someone else): events naming it are projected again from now \
        on, under a new key. Nothing erased comes back: records sealed before the erasure \
        stay unreadable. 204 when a suppression was in force, 404 when none was.",
    request_body(content = LiftSuppression, content_type = "application/json"),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 429, response = problem::TooManyRequests),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn lift_suppression(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut body = JsonBody::read(&request, payload).await?;
    let kind = body.text("kind", MAX_VALUE)?;
    let value = body.text("value", MAX_VALUE)?;
    body.finish()?;
    let kind = kind
        .parse::<IdentifierKind>()
        .map_err(|error| invalid_field("kind", error.to_string()))?;
    note_identifier_kind(&request, kind);
    let identifier = Identifier::parse(kind, &value, state.settings.default_region)
        .map_err(|error| invalid_field("value", error.to_string()))?;
    let store = store(&state)?;
    let secret = SubjectSecret::new(&store.subject_secret().await?);
    let subject = secret.subject(&identifier);
    if !store.lift_suppression(subject.as_bytes()).await? {
        return Err(ApiError::NotFound(format!(
            "no suppression of this {kind} is in force"
        )));
    }
    metrics::SUPPRESSIONS_LIFTED.inc();
    tracing::info!(kind = kind.as_str(), "suppression lifted");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_url_is_the_status_route() {
        let id = Uuid::nil();
        assert_eq!(
            status_url(id),
            "/v1/erasures/00000000-0000-0000-0000-000000000000"
        );
    }
}
