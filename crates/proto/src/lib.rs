//! The contracts on the wire: protobuf types generated from
//! `proto/panorama/v1/contact_event.proto` (the contact event) and
//! `customer_change.proto` (the change feed), and conversions to and from
//! [`panorama_core::ContactEvent`].
//!
//! Decoding checks a record in one of two ways ([`Checks`]): in full, the
//! same validation as the HTTP gateway, for bytes anything may have
//! written; or, for records this project's gateway wrote (the projector
//! reading its topic), a cheap check that every value is already in the
//! normalised form the gateway writes, which refuses what it does not
//! recognise instead of normalising it.

use chrono::{DateTime, Utc};
use panorama_core::{
    Channel, Consent, ConsentChannel, ConsentDraft, ConsentPurpose, ContactEvent, Direction,
    EventDraft, EventIdentifier, EventType, Feedback, FeedbackDraft, FeedbackMetric, FieldError,
    Identifier, IdentifierDraft, IdentifierKind, NormalisedEvent, Trust, ValidationContext, limits,
};
use prost::Message;
use uuid::Uuid;

/// Types generated from the `panorama.v1` protobuf package.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/panorama.v1.rs"));
}

pub mod sealed;

/// Why a record could not be turned into a contact event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a protobuf `ContactEvent` at all.
    #[error("not a panorama.v1.ContactEvent: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A protobuf message that breaks the contract.
    #[error("invalid contact event: {0}")]
    Invalid(#[from] FieldError),
}

impl DecodeError {
    /// A short, stable reason for metrics and DLQ headers.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Protobuf(_) => "undecodable",
            DecodeError::Invalid(_) => "invalid",
        }
    }
}

/// How much of the contract decoding checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Every field parsed and normalised as the gateway parses a request
    /// ([`EventDraft::validate`]): for bytes anything may have written
    /// (tools, tests, other producers).
    Full,
    /// A cheap integrity check of a record this project's gateway wrote
    /// ([`ContactEvent::from_normalised`]): every value must already be
    /// in normalised form and within the contract's bounds; a phone number
    /// is checked for E.164 form, not against the numbering plans. What
    /// fails is an invalid record, as under [`Checks::Full`].
    Normalised,
}

/// Encodes an event as a `panorama.v1.ContactEvent` record value.
pub fn encode(event: &ContactEvent) -> Vec<u8> {
    to_proto(event).encode_to_vec()
}

/// Decodes and validates a record value.
/// Sealed records and erasure requests are refused here: they are read
/// with [`sealed::decode_record`].
pub fn decode(bytes: &[u8]) -> Result<ContactEvent, DecodeError> {
    decode_with(bytes, Checks::Full)
}

/// Decodes a record value, checked as `checks` says; sealed records and
/// erasure requests are refused as by [`decode`].
pub fn decode_with(bytes: &[u8], checks: Checks) -> Result<ContactEvent, DecodeError> {
    let message = v1::ContactEvent::decode(bytes)?;
    if message.sealed.is_some() || message.erasure.is_some() {
        return Err(DecodeError::Invalid(FieldError {
            field: "sealed".to_owned(),
            message: "is a sealed record or an erasure request, read with the subjects' keys"
                .to_owned(),
        }));
    }
    Ok(from_proto_with(message, checks)?)
}

/// The protobuf form of an event.
pub fn to_proto(event: &ContactEvent) -> v1::ContactEvent {
    v1::ContactEvent {
        event_id: event.event_id.as_bytes().to_vec(),
        occurred_at: Some(timestamp(event.occurred_at)),
        received_at: Some(timestamp(event.received_at)),
        channel: channel_to_proto(event.channel) as i32,
        source: event.source.clone(),
        r#type: event.event_type.as_str().to_owned(),
        direction: event
            .direction
            .map_or(v1::Direction::Unspecified, direction_to_proto) as i32,
        identifiers: event
            .identifiers
            .iter()
            .map(|carried| v1::Identifier {
                kind: kind_to_proto(carried.identifier.kind()) as i32,
                value: carried.identifier.value().to_owned(),
                trust: trust_to_proto(carried.trust) as i32,
            })
            .collect(),
        conversation_id: event.conversation_id.clone().unwrap_or_default(),
        contact_reason: event.contact_reason.clone().unwrap_or_default(),
        subject: event.subject.clone().unwrap_or_default(),
        summary: event.summary.clone().unwrap_or_default(),
        agent_id: event.agent_id.clone().unwrap_or_default(),
        queue: event.queue.clone().unwrap_or_default(),
        duration_seconds: event.duration_seconds,
        outcome: event.outcome.clone().unwrap_or_default(),
        sentiment: event.sentiment,
        feedback: event.feedback.as_ref().map(|feedback| v1::Feedback {
            metric: metric_to_proto(feedback.metric) as i32,
            score: feedback.score,
            comment: feedback.comment.clone().unwrap_or_default(),
        }),
        consent: event
            .consent
            .iter()
            .map(|consent| v1::Consent {
                channel: consent_channel_to_proto(consent.channel) as i32,
                purpose: consent_purpose_to_proto(consent.purpose) as i32,
                granted: consent.granted,
            })
            .collect(),
        attributes: event.attributes.clone().into_iter().collect(),
        display_name: event.display_name.clone().unwrap_or_default(),
        traceparent: event.traceparent.clone().unwrap_or_default(),
        case_id: event
            .case_id
            .map(|id| id.as_bytes().to_vec())
            .unwrap_or_default(),
        sealed: None,
        erasure: None,
    }
}

/// The canonical event of a protobuf one, checked as `checks` says.
pub fn from_proto_with(
    message: v1::ContactEvent,
    checks: Checks,
) -> Result<ContactEvent, FieldError> {
    match checks {
        Checks::Full => from_proto(message),
        Checks::Normalised => from_normalised_proto(message),
    }
}

/// Validates a protobuf event into the canonical one.
pub fn from_proto(message: v1::ContactEvent) -> Result<ContactEvent, FieldError> {
    let invalid = |field: &str, message: &str| FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let event_id =
        Uuid::from_slice(&message.event_id).map_err(|_| invalid("event_id", "must be 16 bytes"))?;
    let received_at = event_time("received_at", message.received_at)?;
    let occurred_at = event_time("occurred_at", message.occurred_at)?;
    let channel =
        channel_from_proto(message.channel).ok_or_else(|| invalid("channel", "is required"))?;
    let mut identifiers = Vec::with_capacity(message.identifiers.len());
    for (index, identifier) in message.identifiers.into_iter().enumerate() {
        let kind = kind_from_proto(identifier.kind)
            .ok_or_else(|| invalid(&format!("identifiers[{index}].kind"), "is unknown"))?;
        let trust = trust_from_proto(identifier.trust);
        identifiers.push(IdentifierDraft::new(kind, identifier.value).with_trust(trust));
    }
    let feedback = match message.feedback {
        None => None,
        Some(feedback) => Some(FeedbackDraft {
            metric: metric_from_proto(feedback.metric)
                .ok_or_else(|| invalid("feedback.metric", "is unknown"))?
                .as_str()
                .to_owned(),
            score: feedback.score,
            comment: non_empty(feedback.comment),
        }),
    };
    let mut consent = Vec::with_capacity(message.consent.len());
    for (index, statement) in message.consent.into_iter().enumerate() {
        let channel = consent_channel_from_proto(statement.channel)
            .ok_or_else(|| invalid(&format!("consent[{index}].channel"), "is unknown"))?;
        let purpose = consent_purpose_from_proto(statement.purpose)
            .ok_or_else(|| invalid(&format!("consent[{index}].purpose"), "is unknown"))?;
        consent.push(ConsentDraft {
            channel: channel.as_str().to_owned(),
            purpose: purpose.as_str().to_owned(),
            granted: Some(statement.granted),
        });
    }
    let draft = EventDraft {
        event_id: Some(event_id.to_string()),
        occurred_at: Some(occurred_at.to_rfc3339()),
        channel: Some(channel.as_str().to_owned()),
        source: Some(message.source),
        event_type: Some(message.r#type),
        direction: direction_from_proto(message.direction).map(|d| d.as_str().to_owned()),
        identifiers,
        conversation_id: non_empty(message.conversation_id),
        contact_reason: non_empty(message.contact_reason),
        subject: non_empty(message.subject),
        summary: non_empty(message.summary),
        agent_id: non_empty(message.agent_id),
        queue: non_empty(message.queue),
        duration_seconds: message.duration_seconds,
        outcome: non_empty(message.outcome),
        sentiment: message.sentiment,
        feedback,
        consent,
        attributes: message.attributes.into_iter().collect(),
        display_name: non_empty(message.display_name),
        traceparent: non_empty(message.traceparent),
        case_id: match message.case_id.as_slice() {
            [] => None,
            bytes => Some(
                Uuid::from_slice(bytes)
                    .map_err(|_| invalid("case_id", "must be 16 bytes"))?
                    .to_string(),
            ),
        },
    };
    // Identifiers on the wire are already normalised (E.164 phones), so no
    // default region is needed to read them again.
    draft.validate(&ValidationContext {
        received_at,
        default_region: None,
    })
}

/// The canonical event of a protobuf one the gateway wrote: each value
/// taken as it is, in its typed form, and checked by
/// [`ContactEvent::from_normalised`]; nothing goes through text and back.
fn from_normalised_proto(message: v1::ContactEvent) -> Result<ContactEvent, FieldError> {
    let event_id = Uuid::from_slice(&message.event_id)
        .map_err(|_| field_error("event_id", "must be 16 bytes"))?;
    let received_at = event_time("received_at", message.received_at)?;
    let occurred_at = event_time("occurred_at", message.occurred_at)?;
    let channel =
        channel_from_proto(message.channel).ok_or_else(|| field_error("channel", "is required"))?;
    let event_type = message
        .r#type
        .parse::<EventType>()
        .map_err(|e| field_error("type", &e))?;
    let mut identifiers = Vec::with_capacity(message.identifiers.len());
    for (index, identifier) in message.identifiers.into_iter().enumerate() {
        let kind = kind_from_proto(identifier.kind)
            .ok_or_else(|| field_error(&format!("identifiers[{index}].kind"), "is unknown"))?;
        let trust = trust_from_proto(identifier.trust);
        let identifier = Identifier::from_normalised(kind, identifier.value).map_err(|e| {
            field_error(
                &format!("identifiers[{index}].value"),
                &format!("{kind}: {e}"),
            )
        })?;
        identifiers.push(EventIdentifier { identifier, trust });
    }
    let feedback = match message.feedback {
        None => None,
        Some(feedback) => Some(Feedback {
            metric: metric_from_proto(feedback.metric)
                .ok_or_else(|| field_error("feedback.metric", "is unknown"))?,
            score: feedback.score,
            comment: non_empty(feedback.comment),
        }),
    };
    let mut consent = Vec::with_capacity(message.consent.len());
    for (index, statement) in message.consent.into_iter().enumerate() {
        consent.push(Consent {
            channel: consent_channel_from_proto(statement.channel)
                .ok_or_else(|| field_error(&format!("consent[{index}].channel"), "is unknown"))?,
            purpose: consent_purpose_from_proto(statement.purpose)
                .ok_or_else(|| field_error(&format!("consent[{index}].purpose"), "is unknown"))?,
            granted: statement.granted,
        });
    }
    ContactEvent::from_normalised(NormalisedEvent {
        event_id,
        occurred_at,
        received_at,
        channel,
        source: message.source,
        event_type,
        direction: direction_from_proto(message.direction),
        identifiers,
        conversation_id: non_empty(message.conversation_id),
        contact_reason: non_empty(message.contact_reason),
        subject: non_empty(message.subject),
        summary: non_empty(message.summary),
        agent_id: non_empty(message.agent_id),
        queue: non_empty(message.queue),
        duration_seconds: message.duration_seconds,
        outcome: non_empty(message.outcome),
        sentiment: message.sentiment,
        feedback,
        consent,
        attributes: message.attributes.into_iter().collect(),
        display_name: non_empty(message.display_name),
        traceparent: non_empty(message.traceparent),
        case_id: match message.case_id.as_slice() {
            [] => None,
            bytes => Some(
                Uuid::from_slice(bytes).map_err(|_| field_error("case_id", "must be 16 bytes"))?,
            ),
        },
    })
}

fn field_error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// A time of the event: present, and within the contract's range, so that
/// PostgreSQL can store it and RFC 3339 can write it (a producer writing to
/// the topic directly can send any number of seconds).
fn event_time(
    field: &str,
    at: Option<prost_types::Timestamp>,
) -> Result<DateTime<Utc>, FieldError> {
    let at = at.ok_or_else(|| FieldError {
        field: field.to_owned(),
        message: "is required".to_owned(),
    })?;
    from_timestamp(at)
        .filter(|at| limits::event_time_in_range(*at))
        .ok_or_else(|| FieldError {
            field: field.to_owned(),
            message: limits::EVENT_TIME_RANGE.to_owned(),
        })
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn from_timestamp(at: prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(at.nanos).ok()?;
    DateTime::from_timestamp(at.seconds, nanos)
}

fn channel_to_proto(channel: Channel) -> v1::Channel {
    match channel {
        Channel::Phone => v1::Channel::Phone,
        Channel::Email => v1::Channel::Email,
        Channel::Web => v1::Channel::Web,
        Channel::Chat => v1::Channel::Chat,
        Channel::Social => v1::Channel::Social,
        Channel::Sms => v1::Channel::Sms,
        Channel::Agent => v1::Channel::Agent,
    }
}

fn channel_from_proto(raw: i32) -> Option<Channel> {
    Some(match v1::Channel::try_from(raw).ok()? {
        v1::Channel::Unspecified => return None,
        v1::Channel::Phone => Channel::Phone,
        v1::Channel::Email => Channel::Email,
        v1::Channel::Web => Channel::Web,
        v1::Channel::Chat => Channel::Chat,
        v1::Channel::Social => Channel::Social,
        v1::Channel::Sms => Channel::Sms,
        v1::Channel::Agent => Channel::Agent,
    })
}

fn direction_to_proto(direction: Direction) -> v1::Direction {
    match direction {
        Direction::Inbound => v1::Direction::Inbound,
        Direction::Outbound => v1::Direction::Outbound,
    }
}

fn direction_from_proto(raw: i32) -> Option<Direction> {
    match v1::Direction::try_from(raw).ok()? {
        v1::Direction::Unspecified => None,
        v1::Direction::Inbound => Some(Direction::Inbound),
        v1::Direction::Outbound => Some(Direction::Outbound),
    }
}

/// An identifier as the contracts carry it (the change feed's
/// `identifier.added` and conflicts), from its stored kind, value and
/// trust; a kind or trust this version does not know (or an empty trust)
/// reads as unspecified.
pub fn identifier_to_proto(kind: &str, value: &str, trust: &str) -> v1::Identifier {
    v1::Identifier {
        kind: kind
            .parse::<IdentifierKind>()
            .map_or(v1::IdentifierKind::Unspecified, kind_to_proto) as i32,
        value: value.to_owned(),
        trust: trust
            .parse::<Trust>()
            .map_or(v1::Trust::Unspecified, trust_to_proto) as i32,
    }
}

fn kind_to_proto(kind: IdentifierKind) -> v1::IdentifierKind {
    match kind {
        IdentifierKind::Phone => v1::IdentifierKind::Phone,
        IdentifierKind::Email => v1::IdentifierKind::Email,
        IdentifierKind::Account => v1::IdentifierKind::Account,
        IdentifierKind::Whatsapp => v1::IdentifierKind::Whatsapp,
        IdentifierKind::Messenger => v1::IdentifierKind::Messenger,
        IdentifierKind::Instagram => v1::IdentifierKind::Instagram,
        IdentifierKind::X => v1::IdentifierKind::X,
        IdentifierKind::Visitor => v1::IdentifierKind::Visitor,
    }
}

fn kind_from_proto(raw: i32) -> Option<IdentifierKind> {
    Some(match v1::IdentifierKind::try_from(raw).ok()? {
        v1::IdentifierKind::Unspecified => return None,
        v1::IdentifierKind::Phone => IdentifierKind::Phone,
        v1::IdentifierKind::Email => IdentifierKind::Email,
        v1::IdentifierKind::Account => IdentifierKind::Account,
        v1::IdentifierKind::Whatsapp => IdentifierKind::Whatsapp,
        v1::IdentifierKind::Messenger => IdentifierKind::Messenger,
        v1::IdentifierKind::Instagram => IdentifierKind::Instagram,
        v1::IdentifierKind::X => IdentifierKind::X,
        v1::IdentifierKind::Visitor => IdentifierKind::Visitor,
    })
}

fn trust_to_proto(trust: Trust) -> v1::Trust {
    match trust {
        Trust::Verified => v1::Trust::Verified,
        Trust::Claimed => v1::Trust::Claimed,
    }
}

/// The trust of a record's identifier. Unspecified is verified: records
/// written before the field existed were projected as verified, so a
/// replay reads them the same way. A value this version does not know is
/// trusted least.
fn trust_from_proto(raw: i32) -> Trust {
    match v1::Trust::try_from(raw) {
        Ok(v1::Trust::Unspecified | v1::Trust::Verified) => Trust::Verified,
        Ok(v1::Trust::Claimed) | Err(_) => Trust::Claimed,
    }
}

fn metric_to_proto(metric: FeedbackMetric) -> v1::FeedbackMetric {
    match metric {
        FeedbackMetric::Nps => v1::FeedbackMetric::Nps,
        FeedbackMetric::Csat => v1::FeedbackMetric::Csat,
        FeedbackMetric::Ces => v1::FeedbackMetric::Ces,
    }
}

fn metric_from_proto(raw: i32) -> Option<FeedbackMetric> {
    match v1::FeedbackMetric::try_from(raw).ok()? {
        v1::FeedbackMetric::Unspecified => None,
        v1::FeedbackMetric::Nps => Some(FeedbackMetric::Nps),
        v1::FeedbackMetric::Csat => Some(FeedbackMetric::Csat),
        v1::FeedbackMetric::Ces => Some(FeedbackMetric::Ces),
    }
}

fn consent_channel_to_proto(channel: ConsentChannel) -> v1::ConsentChannel {
    match channel {
        ConsentChannel::Any => v1::ConsentChannel::Any,
        ConsentChannel::Phone => v1::ConsentChannel::Phone,
        ConsentChannel::Email => v1::ConsentChannel::Email,
        ConsentChannel::Sms => v1::ConsentChannel::Sms,
        ConsentChannel::Whatsapp => v1::ConsentChannel::Whatsapp,
        ConsentChannel::Messenger => v1::ConsentChannel::Messenger,
        ConsentChannel::Instagram => v1::ConsentChannel::Instagram,
        ConsentChannel::Web => v1::ConsentChannel::Web,
    }
}

fn consent_channel_from_proto(raw: i32) -> Option<ConsentChannel> {
    Some(match v1::ConsentChannel::try_from(raw).ok()? {
        v1::ConsentChannel::Unspecified => return None,
        v1::ConsentChannel::Any => ConsentChannel::Any,
        v1::ConsentChannel::Phone => ConsentChannel::Phone,
        v1::ConsentChannel::Email => ConsentChannel::Email,
        v1::ConsentChannel::Sms => ConsentChannel::Sms,
        v1::ConsentChannel::Whatsapp => ConsentChannel::Whatsapp,
        v1::ConsentChannel::Messenger => ConsentChannel::Messenger,
        v1::ConsentChannel::Instagram => ConsentChannel::Instagram,
        v1::ConsentChannel::Web => ConsentChannel::Web,
    })
}

fn consent_purpose_to_proto(purpose: ConsentPurpose) -> v1::ConsentPurpose {
    match purpose {
        ConsentPurpose::Service => v1::ConsentPurpose::Service,
        ConsentPurpose::Marketing => v1::ConsentPurpose::Marketing,
        ConsentPurpose::Surveys => v1::ConsentPurpose::Surveys,
    }
}

fn consent_purpose_from_proto(raw: i32) -> Option<ConsentPurpose> {
    Some(match v1::ConsentPurpose::try_from(raw).ok()? {
        v1::ConsentPurpose::Unspecified => return None,
        v1::ConsentPurpose::Service => ConsentPurpose::Service,
        v1::ConsentPurpose::Marketing => ConsentPurpose::Marketing,
        v1::ConsentPurpose::Surveys => ConsentPurpose::Surveys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ContactEvent {
        let draft: EventDraft = serde_json::from_value(serde_json::json!({
            "event_id": "SM123",
            "occurred_at": "2026-11-23T09:58:00.123456Z",
            "channel": "social",
            "source": "meta.whatsapp",
            "type": "message.received",
            "direction": "inbound",
            "identifiers": [
                {"kind": "whatsapp", "value": "31612345678"},
                {"kind": "phone", "value": "+31612345678"}
            ],
            "conversation_id": "wa-31612345678",
            "contact_reason": "my order did not arrive",
            "summary": "Where is my parcel?",
            "sentiment": -0.5,
            "feedback": {"metric": "csat", "score": 2, "comment": "slow"},
            "consent": [
                {"channel": "whatsapp", "purpose": "service", "granted": true},
                {"channel": "any", "purpose": "marketing", "granted": false}
            ],
            "attributes": {"order": "1234"},
            "display_name": "Anna",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        }))
        .expect("draft");
        let context = ValidationContext {
            received_at: "2026-11-23T10:00:00Z".parse().expect("time"),
            default_region: None,
        };
        draft.validate(&context).expect("valid")
    }

    #[test]
    fn events_round_trip_through_the_wire_format() {
        let event = sample();
        assert_eq!(decode(&encode(&event)).expect("decodes"), event);
    }

    #[test]
    fn trust_travels_on_the_record_and_old_records_read_as_verified() {
        let mut event = sample();
        event.identifiers[1].trust = Trust::Claimed;
        let decoded = decode(&encode(&event)).expect("decodes");
        assert_eq!(decoded.identifiers[0].trust, Trust::Verified);
        assert_eq!(decoded.identifiers[1].trust, Trust::Claimed);

        // A record from before the field: no trust on the wire.
        let mut message = to_proto(&event);
        for identifier in &mut message.identifiers {
            identifier.trust = v1::Trust::Unspecified as i32;
        }
        let old = decode(&message.encode_to_vec()).expect("decodes");
        assert!(old.identifiers.iter().all(|c| c.trust == Trust::Verified));

        // A trust this version does not know is trusted least.
        message.identifiers[0].trust = 42;
        let unknown = decode(&message.encode_to_vec()).expect("decodes");
        assert_eq!(unknown.identifiers[0].trust, Trust::Claimed);
    }

    #[test]
    fn consent_travels_on_the_record_and_unknown_values_are_named() {
        let event = sample();
        assert_eq!(event.consent.len(), 2);
        let message = to_proto(&event);
        assert_eq!(message.consent[1].channel, v1::ConsentChannel::Any as i32);
        assert_eq!(
            message.consent[1].purpose,
            v1::ConsentPurpose::Marketing as i32
        );
        assert!(!message.consent[1].granted);
        assert_eq!(
            decode(&encode(&event)).expect("decodes").consent,
            event.consent
        );
        // Every value round trips.
        for channel in ConsentChannel::ALL {
            assert_eq!(
                consent_channel_from_proto(consent_channel_to_proto(*channel) as i32),
                Some(*channel)
            );
        }
        for purpose in ConsentPurpose::ALL {
            assert_eq!(
                consent_purpose_from_proto(consent_purpose_to_proto(*purpose) as i32),
                Some(*purpose)
            );
        }
        for (mutate, field) in [
            (
                (|m: &mut v1::Consent| m.channel = 0) as fn(&mut v1::Consent),
                "consent[1].channel",
            ),
            (|m: &mut v1::Consent| m.channel = 99, "consent[1].channel"),
            (|m: &mut v1::Consent| m.purpose = 0, "consent[1].purpose"),
            (|m: &mut v1::Consent| m.purpose = -3, "consent[1].purpose"),
        ] {
            let mut message = to_proto(&event);
            mutate(&mut message.consent[1]);
            let Err(DecodeError::Invalid(error)) = decode(&message.encode_to_vec()) else {
                panic!("{field} should be invalid");
            };
            assert_eq!(error.field, field);
        }
        // Two statements about one channel and purpose break the contract.
        let mut message = to_proto(&event);
        message.consent.push(message.consent[0]);
        let Err(DecodeError::Invalid(error)) = decode(&message.encode_to_vec()) else {
            panic!("a repeated statement should be invalid");
        };
        assert_eq!(error.field, "consent[2]");
        // A consent update without statements too.
        let mut message = to_proto(&event);
        message.r#type = "consent.updated".into();
        message.consent.clear();
        let Err(DecodeError::Invalid(error)) = decode(&message.encode_to_vec()) else {
            panic!("a consent update without statements should be invalid");
        };
        assert_eq!(error.field, "consent");
    }

    #[test]
    fn garbage_is_undecodable_and_broken_contracts_are_invalid() {
        let garbage = decode(b"\xff\xff\xff not protobuf").expect_err("garbage");
        assert_eq!(garbage.reason(), "undecodable");

        let mut message = to_proto(&sample());
        message.identifiers.clear();
        let invalid = decode(&message.encode_to_vec()).expect_err("no identifiers");
        assert_eq!(invalid.reason(), "invalid");

        let mut message = to_proto(&sample());
        message.channel = 42;
        assert_eq!(
            decode(&message.encode_to_vec())
                .expect_err("channel")
                .reason(),
            "invalid"
        );
    }

    fn with_times(
        received_at: Option<prost_types::Timestamp>,
        occurred_at: Option<prost_types::Timestamp>,
    ) -> Result<ContactEvent, DecodeError> {
        let mut message = to_proto(&sample());
        message.received_at = received_at;
        message.occurred_at = occurred_at;
        decode(&message.encode_to_vec())
    }

    /// Any timestamp, mostly within what chrono can hold and often within
    /// the contract's range.
    fn any_timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
        let latest = DateTime::<Utc>::MAX_UTC.timestamp();
        let seconds = prop_oneof![
            any::<i64>(),
            DateTime::<Utc>::MIN_UTC.timestamp()..=latest,
            // Within a day of the end of chrono's range: a day of clock
            // skew past it does not exist.
            latest - 100_000..=latest,
            0..=limits::LATEST_EVENT_TIME.timestamp(),
        ];
        let nanos = prop_oneof![0..1_000_000_000i32, any::<i32>()];
        (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
    }

    #[test]
    fn times_outside_what_postgresql_can_store_are_invalid() {
        let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
        let ordinary = at(1_795_428_000, 0);
        // Year -262143, the earliest chrono can hold; PostgreSQL stops at
        // 4713 BC.
        let earliest = DateTime::<Utc>::MIN_UTC.timestamp();
        for (received_at, occurred_at, field) in [
            (at(earliest, 0), ordinary, "received_at"),
            (at(-1, 999_999_999), ordinary, "received_at"),
            (at(253_402_300_800, 0), ordinary, "received_at"),
            (at(i64::MAX, 0), ordinary, "received_at"),
            (at(i64::MIN, 0), ordinary, "received_at"),
            (at(1_795_428_000, -1), ordinary, "received_at"),
            (None, ordinary, "received_at"),
            (ordinary, at(earliest, 0), "occurred_at"),
            (ordinary, at(i64::MAX, 0), "occurred_at"),
            (ordinary, None, "occurred_at"),
        ] {
            let Err(DecodeError::Invalid(error)) = with_times(received_at, occurred_at) else {
                panic!("{received_at:?} {occurred_at:?} should be invalid");
            };
            assert_eq!(error.field, field, "{received_at:?} {occurred_at:?}");
        }
        let Err(DecodeError::Invalid(error)) = with_times(at(earliest, 0), ordinary) else {
            panic!("invalid");
        };
        assert_eq!(
            error.to_string(),
            "received_at: must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z"
        );
        // The last instant of year 9999 is fine, and the first of 1970.
        let last = at(253_402_300_799, 999_999_999);
        assert!(with_times(last, last).is_ok());
        assert!(with_times(at(0, 0), at(0, 0)).is_ok());
    }

    #[test]
    fn a_record_the_gateway_would_never_write_is_invalid_when_read_as_normalised() {
        // A phone number as people write it: full decoding normalises it,
        // the normalised reading refuses it.
        let mut message = to_proto(&sample());
        message.identifiers[1].value = "+31 6 1234 5678".into();
        let bytes = message.encode_to_vec();
        let full = decode(&bytes).expect("full decoding normalises it");
        assert_eq!(full.identifiers[1].identifier.value(), "+31612345678");
        let Err(error) = decode_with(&bytes, Checks::Normalised) else {
            panic!("a phone number not in E.164 should be refused");
        };
        assert_eq!(error.reason(), "invalid");
        assert_eq!(
            error.to_string(),
            "invalid contact event: identifiers[1].value: phone: not a valid phone number"
        );
        // An untrimmed summary, an upper-case handle, a type with spaces.
        for change in [
            (|m: &mut v1::ContactEvent| m.summary = " padded ".into()) as fn(&mut v1::ContactEvent),
            |m| m.identifiers[0].value = "+31612345678".into(),
            |m| m.r#type = " message.received".into(),
            |m| m.traceparent = m.traceparent.to_uppercase(),
            |m| m.source = String::new(),
        ] {
            let mut message = to_proto(&sample());
            change(&mut message);
            let bytes = message.encode_to_vec();
            assert!(decode(&bytes).is_ok(), "{message:?}");
            assert!(
                decode_with(&bytes, Checks::Normalised).is_err(),
                "{message:?}"
            );
        }
    }

    /// Any text, over all of Unicode: mostly printable, sometimes not.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            panorama_core::arbitrary::text(limits::SHORT_TEXT),
            "[+0-9a-z@. -]{0,24}",
        ]
    }

    /// An event as the gateway writes it, with arbitrary text in its
    /// fields: what a producer writing to the topic could send.
    fn forged() -> impl Strategy<Value = v1::ContactEvent> {
        let identifier = (0..10i32, any_text(), 0..3i32)
            .prop_map(|(kind, value, trust)| v1::Identifier { kind, value, trust });
        (
            proptest::collection::vec(identifier, 0..4),
            (
                prop_oneof![3 => "[a-z0-9._-]{1,12}".boxed(), 1 => any_text().boxed()],
                prop_oneof![
                    3 => proptest::sample::select(EventType::ALL).prop_map(|t| t.as_str().to_owned()).boxed(),
                    1 => any_text().boxed(),
                ],
                any_text(),
                any_text(),
            ),
            (
                any_text(),
                prop_oneof![
                    Just(String::new()),
                    Just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
                    any_text(),
                ],
                any_text(),
            ),
            proptest::collection::hash_map(any_text(), any_text(), 0..3),
        )
            .prop_map(
                |(identifiers, (source, kind, summary, name), (thread, trace, comment), attributes)| {
                    let mut message = to_proto(&sample());
                    message.identifiers = identifiers;
                    message.source = source;
                    message.r#type = kind;
                    message.summary = summary;
                    message.display_name = name;
                    message.conversation_id = thread;
                    message.traceparent = trace;
                    if let Some(feedback) = &mut message.feedback {
                        feedback.comment = comment;
                    }
                    message.attributes = attributes;
                    message
                },
            )
    }

    /// What the normalised reading accepts, full validation accepts too,
    /// as the very same event (so the projection can write it): phone
    /// numbers aside, which are checked for E.164 form only.
    fn validates_to_itself_but_for_phones(event: &ContactEvent) -> Result<(), TestCaseError> {
        let mut without_phones = event.clone();
        without_phones
            .identifiers
            .retain(|carried| carried.identifier.kind() != IdentifierKind::Phone);
        for carried in &event.identifiers {
            let value = carried.identifier.value();
            if carried.identifier.kind() == IdentifierKind::Phone {
                prop_assert!(value.starts_with('+') && value.len() <= 21, "{value}");
                prop_assert!(value[1..].bytes().all(|b| b.is_ascii_digit()), "{value}");
            }
        }
        if without_phones.identifiers.is_empty() {
            return Ok(());
        }
        let again = EventDraft::from(&without_phones).validate(&ValidationContext {
            received_at: event.received_at,
            default_region: None,
        });
        prop_assert_eq!(again, Ok(without_phones));
        Ok(())
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            if let Ok(event) = decode_with(&bytes, Checks::Normalised) {
                validates_to_itself_but_for_phones(&event)?;
            }
        }

        /// Arbitrary text in every field of a record: the normalised
        /// reading never panics, and what it accepts validates.
        #[test]
        fn forged_records_are_refused_or_hold_to_the_contract(message in forged()) {
            if let Ok(event) = decode_with(&message.encode_to_vec(), Checks::Normalised) {
                validates_to_itself_but_for_phones(&event)?;
            }
        }

        /// Every event the gateway accepts reads back, without parsing, as
        /// itself.
        #[test]
        fn whatever_validates_reads_back_as_normalised(
            (context, draft) in panorama_core::arbitrary::draft_in_context(),
        ) {
            if let Ok(event) = draft.validate(&context) {
                prop_assert_eq!(
                    decode_with(&encode(&event), Checks::Normalised).map_err(|e| e.to_string()),
                    Ok(event)
                );
            }
        }

        #[test]
        fn decoding_arbitrary_times_never_panics(
            received in proptest::option::of(any_timestamp()),
            occurred in proptest::option::of(any_timestamp()),
        ) {
            let _ = with_times(received, occurred);
        }

        /// Whatever validates survives the wire: the projector decodes
        /// (and so validates again) the very same event.
        #[test]
        fn whatever_validates_decodes_to_itself(
            (context, draft) in panorama_core::arbitrary::draft_in_context(),
        ) {
            if let Ok(event) = draft.validate(&context) {
                prop_assert_eq!(decode(&encode(&event)).map_err(|e| e.to_string()), Ok(event));
            }
        }
    }
}
