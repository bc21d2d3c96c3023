//! `POST /v1/events`: one event or `{"events": [...]}`, validated whole,
//! published to the topic, and acknowledged only once the broker has
//! acknowledged every record. A request is validated whole before anything
//! is published: one bad event refuses the request. When publishing fails
//! part-way the answer is 503 and some records may already be on the topic;
//! retrying with the same event ids is safe, since the projection is
//! idempotent by event id. An event id reused with a different payload is
//! refused before anything is published (see `idempotency`).

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use panorama_core::{ContactEvent, EventDraft, FieldError, ValidationContext};
use panorama_store::Principal;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::refuse_reused_ids;
use crate::payload::{read_body, require_json};
use crate::posting::{default_source, may_post};
use crate::publish::publish;
use crate::trace::RequestTrace;
use crate::{AppState, metrics, problem};

/// Most events in one request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// Largest email route body by default: 25 MiB, what mail providers accept
/// as a message with its attachments.
pub const DEFAULT_MAX_EMAIL_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The ids of the events the broker acknowledged, in the request's order.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// One id per event: the given UUID, the UUIDv5 of a provider id, or a
    /// new UUIDv7.
    accepted: Vec<Uuid>,
}

/// The request body of `POST /v1/events`, for the OpenAPI document only:
/// the handler reads the body as JSON and deserialises each event.
pub(crate) mod doc {
    #![allow(dead_code)]

    use panorama_core::EventDraft;
    use serde::Serialize;

    /// One event, or a batch.
    #[derive(Serialize, utoipa::ToSchema)]
    #[serde(untagged)]
    pub(crate) enum EventsBody {
        /// One event.
        One(Box<EventDraft>),
        /// Up to 1,000 events.
        Batch(EventBatch),
    }

    /// Several events, validated whole: one bad event refuses the request.
    #[derive(Serialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct EventBatch {
        /// 1 to 1,000 events.
        #[schema(min_items = 1, max_items = 1000)]
        events: Vec<EventDraft>,
    }
}

/// Handles `POST /v1/events`.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    summary = "Post contact events",
    description = "One event in the event contract, or `{\"events\": [...]}` (1 to 1,000), \
        validated whole, published to the topic and answered once the broker acknowledged \
        every record. `event_id` is the sender's idempotency key: posting an event again adds \
        nothing and answers the same id. An `event_id` already recorded with a different \
        payload is refused with 409 `/problems/idempotency-conflict` naming \
        `events[i].event_id` (or `event_id`), nothing published; one still in flight (not \
        projected yet) cannot be checked, and the projection keeps the first. While \
        PostgreSQL is unreachable the check is skipped. The request's trace context (a valid `traceparent` header, else a new \
        trace) is kept on events that carry none. On a 503 some \
        records may already be on the topic; retrying with the same event ids is safe. \
        Identifiers posted here are *verified*: a channel token belongs to a system that \
        authenticates its users. The gateway decides trust, so a `trust` field is refused \
        (422, naming it). A `channel` token posts contact events of its own system: \
        channel `agent`, the agent action types (`case.*`, `note.added`, `task.*`, \
        `identifier.confirmed`) and the sources of the channel adapters and agent actions \
        (`twilio`, `cti`, `sendgrid`, `mailgun`, `mime`, `meta.*`, `web.form`, \
        `web.beacon`, `web.chat`, `segment`, `agent`, and any source under one of them) are refused \
        with a 422 naming `events[i].channel`, `events[i].type` or `events[i].source`. \
        An `admin` token is not bound (backfills, the simulator).",
    request_body(content = doc::EventsBody, content_type = "application/json",
        description = "`Content-Type` `application/json` (or any `+json`), or none"),
    responses(
        (status = 202, description = "Accepted: the broker has every event", body = Accepted),
        problem::Publish,
    ),
)]
pub(crate) async fn post_events(
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(&request)?;
    let body = read_body(payload, state.settings.max_body_bytes).await?;
    let drafts = parse_drafts(&body)?;
    let drafts_were_batch = drafts.first().is_some_and(|(prefix, _)| !prefix.is_empty());
    let context = ValidationContext::now(state.settings.default_region);
    // The gateway's own span context (see `trace`), not the raw header: an
    // invalid header starts a new trace instead of refusing the events.
    let traceparent = request
        .extensions()
        .get::<RequestTrace>()
        .and_then(RequestTrace::outbound);
    let events = validate_all(drafts, &context, traceparent.as_deref(), caller.principal())?;
    // A single event's fields have no prefix; a batch's are `events[i]`.
    let batch = drafts_were_batch;
    refuse_reused_ids(&state, &events, |index| {
        if batch {
            format!("events[{index}].event_id")
        } else {
            "event_id".to_owned()
        }
    })
    .await?;
    metrics::INGEST_BATCH_SIZE.observe(events.len() as f64);
    publish(&state, metrics::SOURCE_EVENTS, &events).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        accepted: events.iter().map(|event| event.event_id).collect(),
    }))
}

/// The drafts in a body, each with the JSON path prefix of its fields.
fn parse_drafts(body: &[u8]) -> Result<Vec<(String, EventDraft)>, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let batch = match &value {
        Value::Object(map) if map.contains_key("events") => true,
        Value::Object(_) => false,
        _ => {
            return Err(ApiError::Validation(FieldError {
                field: "$".into(),
                message: "expected an event object or {\"events\": [...]}".into(),
            }));
        }
    };
    if !batch {
        return Ok(vec![(String::new(), draft_from(value, "")?)]);
    }
    let Value::Object(mut map) = value else {
        return Err(ApiError::Internal);
    };
    if let Some(extra) = map.keys().find(|key| *key != "events") {
        return Err(ApiError::Validation(FieldError {
            field: extra.clone(),
            message: "unknown field beside \"events\"".into(),
        }));
    }
    let Some(Value::Array(items)) = map.remove("events") else {
        return Err(ApiError::Validation(FieldError {
            field: "events".into(),
            message: "must be an array of events".into(),
        }));
    };
    if items.is_empty() || items.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::Validation(FieldError {
            field: "events".into(),
            message: format!("must hold 1 to {MAX_EVENTS_PER_REQUEST} events"),
        }));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let prefix = format!("events[{index}]");
            let draft = draft_from(item, &prefix)?;
            Ok((prefix, draft))
        })
        .collect()
}

fn draft_from(value: Value, prefix: &str) -> Result<EventDraft, ApiError> {
    serde_path_to_error::deserialize::<_, EventDraft>(value).map_err(|error| {
        let path = error.path().to_string();
        // A sender cannot vouch for itself: the gateway decides trust from
        // the route and credential (`panorama_core::Trust`).
        let message = if path == "trust" || path.ends_with(".trust") {
            "is decided by the gateway from the route and credential, never by the sender"
                .to_owned()
        } else {
            error.into_inner().to_string()
        };
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, ".") => "$".to_owned(),
            (true, _) => path,
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{path}"),
        };
        ApiError::Validation(FieldError { field, message })
    })
}

/// Validates every draft, and checks that `caller` may post it (see
/// [`may_post`]).
fn validate_all(
    drafts: Vec<(String, EventDraft)>,
    context: &ValidationContext,
    traceparent: Option<&str>,
    caller: &Principal,
) -> Result<Vec<ContactEvent>, ApiError> {
    drafts
        .into_iter()
        .map(|(prefix, mut draft)| {
            if draft.traceparent.is_none() {
                draft.traceparent = traceparent.map(str::to_owned);
            }
            default_source(caller, &mut draft);
            let event = draft.validate(context).map_err(|error| {
                metrics::REJECTED.with_label_values(&["validation"]).inc();
                if prefix.is_empty() {
                    ApiError::from(error)
                } else {
                    error.within(&prefix).into()
                }
            })?;
            may_post(caller, &event, &prefix).map_err(|error| {
                metrics::REJECTED.with_label_values(&["validation"]).inc();
                ApiError::Validation(error)
            })?;
            Ok(event)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        match parse_drafts(body.as_bytes()) {
            Err(ApiError::Validation(error)) => error.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn single_and_batch_bodies_parse() {
        let single = parse_drafts(br#"{"channel":"phone"}"#).expect("single");
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].0, "");
        let batch = parse_drafts(br#"{"events":[{"channel":"phone"},{"channel":"email"}]}"#)
            .expect("batch");
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].0, "events[1]");
    }

    #[test]
    fn type_errors_name_the_field_path() {
        assert_eq!(field(r#"{"duration_seconds":"long"}"#), "duration_seconds");
        assert_eq!(
            field(r#"{"events":[{}, {"identifiers":[{"kind":"phone","value":5}]}]}"#),
            "events[1].identifiers[0].value"
        );
        assert_eq!(
            field(r#"{"events":[{"colour":"red"}]}"#),
            "events[0].colour"
        );
        assert_eq!(field(r#"{"events":[]}"#), "events");
        assert_eq!(field(r#"{"events":{}}"#), "events");
        assert_eq!(field(r#"{"events":[], "more": 1}"#), "more");
        assert_eq!(field("[1,2]"), "$");
    }

    #[test]
    fn a_sender_cannot_set_its_own_trust() {
        for (body, path) in [
            (
                r#"{"identifiers":[{"kind":"phone","value":"+31612345678","trust":"verified"}]}"#,
                "identifiers[0].trust",
            ),
            (r#"{"events":[{"trust":"verified"}]}"#, "events[0].trust"),
        ] {
            match parse_drafts(body.as_bytes()) {
                Err(ApiError::Validation(error)) => {
                    assert_eq!(error.field, path);
                    assert!(error.message.contains("decided by the gateway"), "{error}");
                }
                other => panic!("expected a validation error, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_is_its_own_problem() {
        assert!(matches!(
            parse_drafts(b"{\"channel\":"),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
