//! Confirming an identifier: the agent vouches that a claimed identifier
//! (typed into a web form, say) belongs to the customer, e.g. after asking
//! on the phone. Published as an `identifier.confirmed` event, so a replay
//! of the topic confirms it again.

use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::{EventIdentifier, Identifier, IdentifierKind};
use serde_json::json;

use super::action::{Action, IdempotencyKey, accepted, customer_handle, publish_under};
use super::doc;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::body::{JsonBody, invalid_field};
use crate::routes::params::customer_in_path;
use crate::{AppState, problem};

/// `POST /v1/customers/{id}/identifiers/confirm {"kind": "phone", "value": "..."}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/identifiers/confirm",
    tag = "actions",
    summary = "Confirm an identifier",
    description = "The agent vouches that the identifier belongs to the customer (a claimed one \
        typed into a web form, say, confirmed on the phone). An `identifier.confirmed` event \
        is published, filed under the customer's handle with the identifier as verified; \
        when it is projected the identifier is verified for the customer and from then on \
        follows the rules of verified identifiers, guards included: one that belongs to \
        another customer links the two like any verified event (a merge, or a conflict for \
        review), and a customer known by claims only becomes a customer of its own, \
        letting its other claims go.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::ConfirmIdentifierRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn confirm_identifier(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let kind = body.text("kind", 20)?;
    let value = body.text("value", 512)?;
    body.finish()?;
    let kind = kind
        .parse::<IdentifierKind>()
        .map_err(|error| invalid_field("kind", error.to_string()))?;
    let identifier = Identifier::parse(kind, &value, state.settings.default_region)
        .map_err(|error| invalid_field("value", error.to_string()))?;
    let handle = customer_handle(&state, in_path.customer).await?;
    // The handle names the customer (a claim when it is known by claims
    // only, which the event does not verify); the confirmed identifier
    // comes after it, verified. Confirming the handle itself is one
    // verified identifier.
    let mut identifiers = vec![handle];
    let confirmed = EventIdentifier::verified(identifier);
    if identifiers[0].identifier == confirmed.identifier {
        identifiers[0] = confirmed;
    } else {
        identifiers.push(confirmed);
    }
    let event = publish_under(
        &state,
        &caller,
        &identifiers,
        Action {
            key,
            event_type: "identifier.confirmed",
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, in_path.answer(json!({}))))
}
