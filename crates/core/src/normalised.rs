//! Reading back what this project already validated: events its gateway
//! wrote to the topic, decoded again by the projector for every record.
//!
//! Parsing them again through [`EventDraft::validate`](crate::EventDraft)
//! costs several times the protobuf decode (phone numbers through the
//! numbering plans, every value copied and normalised). A record the
//! gateway wrote is already in normalised form, so
//! [`ContactEvent::from_normalised`] only checks that it is: one pass over
//! each value, no copies, and every bound the projection's SQL relies on
//! (lengths, control characters, time range, one identifier and one
//! consent statement each). What fails is refused, never normalised, so a
//! record that anything else wrote in another form is dead-lettered
//! instead of stored. What passes is what validation would have given,
//! save that a phone number is checked for E.164 form only, not against
//! the numbering plans.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::attributes::parse_attributes;
use crate::consent::{Consent, MAX_STATEMENTS};
use crate::event::{
    Channel, ContactEvent, Direction, EventType, Feedback, FieldError, MAX_CLOCK_SKEW_HOURS,
    is_source,
};
use crate::limits::{self, TextLimit};
use crate::text::has_control_chars;
use crate::trust::EventIdentifier;

/// The fields of a contact event as a record carries them, already in the
/// form validation gives: identifiers made with
/// [`Identifier::from_normalised`](crate::Identifier::from_normalised),
/// text trimmed, absent text `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedEvent {
    /// Idempotency key; never nil.
    pub event_id: Uuid,
    /// When it happened at the channel.
    pub occurred_at: DateTime<Utc>,
    /// When the gateway received it.
    pub received_at: DateTime<Utc>,
    /// The channel.
    pub channel: Channel,
    /// The provider or system it came from.
    pub source: String,
    /// What happened.
    pub event_type: EventType,
    /// Who started it.
    pub direction: Option<Direction>,
    /// One to [`limits::MAX_IDENTIFIERS`], each once.
    pub identifiers: Vec<EventIdentifier>,
    /// Thread.
    pub conversation_id: Option<String>,
    /// The customer's reason for contact.
    pub contact_reason: Option<String>,
    /// Email subject or title.
    pub subject: Option<String>,
    /// A bounded excerpt of the content.
    pub summary: Option<String>,
    /// The agent who handled it.
    pub agent_id: Option<String>,
    /// The queue or team.
    pub queue: Option<String>,
    /// Talk time or session length.
    pub duration_seconds: Option<u32>,
    /// How it ended.
    pub outcome: Option<String>,
    /// -1 to 1.
    pub sentiment: Option<f32>,
    /// A survey answer.
    pub feedback: Option<Feedback>,
    /// Contact preferences, one per channel and purpose.
    pub consent: Vec<Consent>,
    /// Extra string values.
    pub attributes: BTreeMap<String, String>,
    /// Best-known name of the customer.
    pub display_name: Option<String>,
    /// W3C trace context, lower case.
    pub traceparent: Option<String>,
    /// The case it is about.
    pub case_id: Option<Uuid>,
}

/// The fields of an event, as a record carries them:
/// [`ContactEvent::from_normalised`] takes them back.
impl From<ContactEvent> for NormalisedEvent {
    fn from(event: ContactEvent) -> Self {
        NormalisedEvent {
            event_id: event.event_id,
            occurred_at: event.occurred_at,
            received_at: event.received_at,
            channel: event.channel,
            source: event.source,
            event_type: event.event_type,
            direction: event.direction,
            identifiers: event.identifiers,
            conversation_id: event.conversation_id,
            contact_reason: event.contact_reason,
            subject: event.subject,
            summary: event.summary,
            agent_id: event.agent_id,
            queue: event.queue,
            duration_seconds: event.duration_seconds,
            outcome: event.outcome,
            sentiment: event.sentiment,
            feedback: event.feedback,
            consent: event.consent,
            attributes: event.attributes,
            display_name: event.display_name,
            traceparent: event.traceparent,
            case_id: event.case_id,
        }
    }
}

impl ContactEvent {
    /// The event from fields this project already validated and
    /// normalised (a record its gateway wrote), checked cheaply instead of
    /// parsed: see the [module](self) for what is checked. For input from
    /// outside, use [`EventDraft::validate`](crate::EventDraft::validate).
    pub fn from_normalised(event: NormalisedEvent) -> Result<ContactEvent, FieldError> {
        check_times(event.occurred_at, event.received_at)?;
        if event.event_id.is_nil() {
            return Err(FieldError::new("event_id", "must not be the nil UUID"));
        }
        if event.source.is_empty() || !is_source(&event.source) {
            return Err(FieldError::new(
                "source",
                "must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-'",
            ));
        }
        check_identifiers(&event.identifiers)?;
        match &event.feedback {
            None if event.event_type == EventType::FeedbackSubmitted => {
                return Err(FieldError::new(
                    "feedback",
                    "is required for feedback.submitted events",
                ));
            }
            None => {}
            Some(feedback) => {
                let (low, high) = feedback.metric.range();
                if !(low..=high).contains(&feedback.score) {
                    return Err(FieldError::new(
                        "feedback.score",
                        format!("{} scores run from {low} to {high}", feedback.metric),
                    ));
                }
                check_text("feedback.comment", &feedback.comment, limits::COMMENT)?;
            }
        }
        check_consent(&event.consent, event.event_type)?;
        if event
            .sentiment
            .is_some_and(|value| !value.is_finite() || !(-1.0..=1.0).contains(&value))
        {
            return Err(FieldError::new("sentiment", "must be between -1 and 1"));
        }
        for (field, text, limit) in [
            (
                "conversation_id",
                &event.conversation_id,
                limits::CONVERSATION_ID,
            ),
            (
                "contact_reason",
                &event.contact_reason,
                limits::CONTACT_REASON,
            ),
            ("subject", &event.subject, limits::SUBJECT),
            ("summary", &event.summary, limits::SUMMARY),
            ("agent_id", &event.agent_id, limits::SHORT_TEXT),
            ("queue", &event.queue, limits::SHORT_TEXT),
            ("outcome", &event.outcome, limits::SHORT_TEXT),
            ("display_name", &event.display_name, limits::SHORT_TEXT),
        ] {
            check_text(field, text, limit)?;
        }
        if event
            .traceparent
            .as_deref()
            .is_some_and(|traceparent| !is_traceparent(traceparent))
        {
            return Err(FieldError::new(
                "traceparent",
                "must be a W3C traceparent in lower case (00-<32 hex>-<16 hex>-<2 hex>)",
            ));
        }
        Ok(ContactEvent {
            event_id: event.event_id,
            occurred_at: event.occurred_at,
            received_at: event.received_at,
            channel: event.channel,
            source: event.source,
            event_type: event.event_type,
            direction: event.direction,
            identifiers: event.identifiers,
            conversation_id: event.conversation_id,
            contact_reason: event.contact_reason,
            subject: event.subject,
            summary: event.summary,
            agent_id: event.agent_id,
            queue: event.queue,
            duration_seconds: event.duration_seconds,
            outcome: event.outcome,
            sentiment: event.sentiment,
            feedback: event.feedback,
            consent: event.consent,
            attributes: parse_attributes(event.attributes)?,
            display_name: event.display_name,
            traceparent: event.traceparent,
            case_id: event.case_id,
        })
    }
}

/// Both times within the contract's range, and the event at most a day
/// after its receipt, as validation has them.
fn check_times(occurred_at: DateTime<Utc>, received_at: DateTime<Utc>) -> Result<(), FieldError> {
    if !limits::event_time_in_range(received_at) {
        return Err(FieldError::new("received_at", limits::EVENT_TIME_RANGE));
    }
    if !limits::event_time_in_range(occurred_at) {
        return Err(FieldError::new("occurred_at", limits::EVENT_TIME_RANGE));
    }
    let latest = received_at
        .checked_add_signed(Duration::hours(MAX_CLOCK_SKEW_HOURS))
        .unwrap_or(limits::LATEST_EVENT_TIME);
    if occurred_at > latest {
        return Err(FieldError::new(
            "occurred_at",
            "lies more than a day in the future",
        ));
    }
    Ok(())
}

/// At least one identifier, at most the contract's number, none twice (the
/// projection upserts them by kind and value).
fn check_identifiers(identifiers: &[EventIdentifier]) -> Result<(), FieldError> {
    if identifiers.is_empty() {
        return Err(FieldError::new(
            "identifiers",
            "at least one identifier (phone, email, account, ...) is required",
        ));
    }
    if identifiers.len() > limits::MAX_IDENTIFIERS {
        return Err(FieldError::new(
            "identifiers",
            format!("at most {} identifiers", limits::MAX_IDENTIFIERS),
        ));
    }
    for (index, carried) in identifiers.iter().enumerate() {
        if let Some(first) = identifiers[..index]
            .iter()
            .position(|earlier| earlier.identifier == carried.identifier)
        {
            return Err(FieldError::new(
                format!("identifiers[{index}]"),
                format!("repeats identifiers[{first}]"),
            ));
        }
    }
    Ok(())
}

/// At most one statement per channel and purpose, and at least one on a
/// consent update.
fn check_consent(consent: &[Consent], event_type: EventType) -> Result<(), FieldError> {
    if consent.is_empty() && event_type == EventType::ConsentUpdated {
        return Err(FieldError::new(
            "consent",
            "is required for consent.updated events: at least one {channel, purpose, granted}",
        ));
    }
    if consent.len() > MAX_STATEMENTS {
        return Err(FieldError::new(
            "consent",
            format!("at most {MAX_STATEMENTS} statements, one per channel and purpose"),
        ));
    }
    for (index, statement) in consent.iter().enumerate() {
        if let Some(first) = consent[..index]
            .iter()
            .position(|s| s.channel == statement.channel && s.purpose == statement.purpose)
        {
            return Err(FieldError::new(
                format!("consent[{index}]"),
                format!(
                    "repeats the channel and purpose of consent[{first}]: one statement per channel and purpose"
                ),
            ));
        }
    }
    Ok(())
}

/// Text as validation leaves it: not empty, trimmed, within `limit`, no
/// control characters other than tab and line breaks.
fn check_text(field: &str, text: &Option<String>, limit: TextLimit) -> Result<(), FieldError> {
    let Some(text) = text else {
        return Ok(());
    };
    if text.is_empty() || text.trim().len() != text.len() {
        return Err(FieldError::new(field, "must be trimmed and not empty"));
    }
    if !limit.admits(text) {
        return Err(FieldError::new(field, format!("must be {limit}")));
    }
    if has_control_chars(text) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, hex in lower case, as validation writes
/// it.
fn is_traceparent(text: &str) -> bool {
    let bytes = text.as_bytes();
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    bytes.len() == 55
        && bytes.iter().enumerate().all(|(at, b)| match at {
            2 | 35 | 52 => *b == b'-',
            _ => hex(b),
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{EventDraft, IdentifierDraft, IdentifierKind, ValidationContext};

    fn event() -> ContactEvent {
        EventDraft {
            channel: Some("phone".into()),
            event_type: Some("call.ended".into()),
            identifiers: vec![
                IdentifierDraft::new(IdentifierKind::Phone, "+31612345678"),
                IdentifierDraft::new(IdentifierKind::Email, "anna@example.nl"),
            ],
            summary: Some("order 1234".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..EventDraft::default()
        }
        .validate(&ValidationContext::now(None))
        .expect("valid")
    }

    fn field_of(change: impl FnOnce(&mut NormalisedEvent)) -> String {
        let mut fields = NormalisedEvent::from(event());
        change(&mut fields);
        ContactEvent::from_normalised(fields)
            .expect_err("should be refused")
            .field
    }

    #[test]
    fn a_validated_event_reads_back_as_itself() {
        let event = event();
        assert_eq!(
            ContactEvent::from_normalised(NormalisedEvent::from(event.clone())),
            Ok(event)
        );
    }

    #[test]
    fn what_validation_would_change_or_refuse_is_refused() {
        assert_eq!(field_of(|e| e.event_id = Uuid::nil()), "event_id");
        assert_eq!(field_of(|e| e.source = String::new()), "source");
        assert_eq!(field_of(|e| e.source = "Twilio".into()), "source");
        assert_eq!(
            field_of(|e| e.received_at = DateTime::<Utc>::MIN_UTC),
            "received_at"
        );
        assert_eq!(
            field_of(|e| e.occurred_at = e.received_at + Duration::hours(25)),
            "occurred_at"
        );
        assert_eq!(field_of(|e| e.identifiers.clear()), "identifiers");
        assert_eq!(
            field_of(|e| e.identifiers.push(e.identifiers[0].clone())),
            "identifiers[2]"
        );
        assert_eq!(field_of(|e| e.summary = Some(" padded".into())), "summary");
        assert_eq!(field_of(|e| e.summary = Some(String::new())), "summary");
        assert_eq!(field_of(|e| e.queue = Some("a\u{0}b".into())), "queue");
        assert_eq!(
            field_of(|e| e.conversation_id = Some("\u{20000}".repeat(501))),
            "conversation_id"
        );
        assert_eq!(field_of(|e| e.sentiment = Some(f32::NAN)), "sentiment");
        assert_eq!(field_of(|e| e.sentiment = Some(1.5)), "sentiment");
        assert_eq!(
            field_of(|e| e.traceparent =
                Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".into())),
            "traceparent"
        );
        assert_eq!(
            field_of(|e| e.attributes = BTreeMap::from([("k".into(), "\u{0}".into())])),
            "attributes.k"
        );
        assert_eq!(
            field_of(|e| e.event_type = EventType::FeedbackSubmitted),
            "feedback"
        );
        assert_eq!(
            field_of(|e| e.feedback = Some(Feedback {
                metric: crate::FeedbackMetric::Csat,
                score: 6,
                comment: None,
            })),
            "feedback.score"
        );
        assert_eq!(
            field_of(|e| e.event_type = EventType::ConsentUpdated),
            "consent"
        );
        let statement = Consent {
            channel: crate::ConsentChannel::Email,
            purpose: crate::ConsentPurpose::Marketing,
            granted: true,
        };
        assert_eq!(
            field_of(|e| e.consent = vec![statement, statement]),
            "consent[1]"
        );
    }

    proptest! {
        /// Whatever validation gives reads back as itself, over all of
        /// Unicode and at the contract's limits.
        #[test]
        fn whatever_validates_reads_back_as_itself(
            (context, draft) in crate::arbitrary::draft_in_context(),
        ) {
            if let Ok(event) = draft.validate(&context) {
                prop_assert_eq!(ContactEvent::from_normalised(NormalisedEvent::from(event.clone())), Ok(event));
            }
        }
    }
}
