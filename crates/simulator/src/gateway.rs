//! What the gateway makes of a planned request: its event drafts, by the
//! same `panorama_channels` adapters that parse the webhook. The plan, the
//! prediction and `POST /v1/events` all start from them, so the events, and
//! their ids, are the same whichever way a request is delivered. Their
//! identifiers have the trust the webhook route gives them: a browser's web
//! and chat events are posted with the write key, so what they carry is
//! claimed; the shop's back end posts [`Payload::Backend`] with its channel
//! token, so what that carries is verified. (Without a write key the
//! sender posts browser events with the channel token too, and then they
//! are verified: the prediction assumes a write key, as `make run` and the
//! test kit configure.)

use chrono::{DateTime, Utc};
use panorama_channels::form::Form;
use panorama_channels::{Context, Outcome, cti, mailgun, meta, sendgrid, twilio, web};
use panorama_core::{EventDraft, Region, Trust};

use crate::bodies::{BOUNDARY, LOCAL_KEY, form_body, json_body, mailgun_pairs, sendgrid_body};
use crate::planned::{Payload, PlannedEvent, Provider};

/// The event drafts the gateway makes of `event`, by the same
/// `panorama_channels` code, as if received at `received_at`; an event the
/// adapter ignores gives none.
pub fn drafts(
    event: &PlannedEvent,
    received_at: DateTime<Utc>,
    default_region: Option<Region>,
) -> Result<Vec<EventDraft>, String> {
    let context = Context {
        received_at,
        default_region,
    };
    let outcome = match (&event.payload, event.provider) {
        (Payload::Form(pairs), Provider::Twilio) => {
            twilio::parse_voice_status(&Form::from_pairs(pairs.clone()), &context)
        }
        (Payload::Form(pairs), _) => {
            let nonce = format!("local-{}", event.seq);
            let body = form_body(&mailgun_pairs(pairs, LOCAL_KEY, received_at, &nonce));
            mailgun::parse(
                "application/x-www-form-urlencoded",
                &body,
                LOCAL_KEY,
                &context,
            )
            .map(|forward| forward.outcome)
        }
        (Payload::Mime(mime), _) => sendgrid::parse(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &sendgrid_body(mime),
            &context,
        ),
        (Payload::Json(value), Provider::Survey | Provider::Agent) => {
            return serde_json::from_value::<EventDraft>(value.clone())
                .map(|draft| vec![draft])
                .map_err(|e| format!("{} event: {e}", event.provider.as_str()));
        }
        (Payload::Json(value), Provider::Cti) => cti::parse(&json_body(value), &context),
        (Payload::Json(value), Provider::Whatsapp | Provider::Instagram) => {
            meta::parse(&json_body(value), &context)
        }
        (Payload::Backend(value), _) => web::parse(&json_body(value), &context),
        (Payload::Json(value), _) => web::parse(&json_body(value), &context).map(|mut outcome| {
            outcome.cap_trust(Trust::Claimed);
            outcome
        }),
    };
    outcome
        .map(Outcome::into_drafts)
        .map_err(|e| format!("{} request: {e}", event.provider.as_str()))
}
