//! The canonical contact event and the one path that makes it: an
//! [`EventDraft`] (the JSON shape of `POST /v1/events`, and what every channel
//! adapter fills in) validated into a [`ContactEvent`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::attributes::parse_attributes;
use crate::consent::{Consent, ConsentDraft, parse_consent};
use crate::identifier::{Identifier, IdentifierKind, Region};
use crate::limits::{self, TextLimit};
use crate::text::{has_control_chars, non_empty_trimmed};
use crate::trust::{EventIdentifier, Trust};

/// Namespace of the UUIDv5 ids derived from provider ids (`source` + id).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_0b7e_5a43_4c1f_9f0e_8a2b_3c4d_5e6f);

/// How far in the future `occurred_at` may lie (clock skew between systems).
pub(crate) const MAX_CLOCK_SKEW_HOURS: i64 = 24;

// `$text` is a `tt`, not a `literal`: a `literal` fragment reaches derive
// macros wrapped in an invisible group, which serde reads through but
// utoipa does not, so the OpenAPI document listed the variants' Rust names
// ("Phone") instead of the wire names ("phone").
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} \"{}\"; expected one of {}",
                        $what,
                        raw.chars().take(40).collect::<String>(),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
// For the other closed sets of the contract (`consent`).
pub(crate) use string_enum;

string_enum!(
    /// The channel a contact came through.
    Channel, "channel" {
        /// Voice calls.
        Phone => "phone",
        /// Email.
        Email => "email",
        /// Web forms, page views.
        Web => "web",
        /// Live chat.
        Chat => "chat",
        /// Social messaging (WhatsApp, Messenger, Instagram, X).
        Social => "social",
        /// Text messages.
        Sms => "sms",
        /// The agent desktop: actions agents take (cases, notes, tasks),
        /// never a contact by the customer.
        Agent => "agent",
    }
);

string_enum!(
    /// Who started the contact.
    Direction, "direction" {
        /// From the customer.
        Inbound => "inbound",
        /// To the customer.
        Outbound => "outbound",
    }
);

string_enum!(
    /// What happened. Dotted names, grouped by what they are about.
    EventType, "event type" {
        /// A call started ringing.
        CallStarted => "call.started",
        /// A call was answered.
        CallAnswered => "call.answered",
        /// A call ended after being answered.
        CallEnded => "call.ended",
        /// Busy, failed, not answered or cancelled.
        CallMissed => "call.missed",
        /// A voicemail was left.
        VoicemailReceived => "voicemail.received",
        /// An email from the customer.
        EmailReceived => "email.received",
        /// An email to the customer.
        EmailSent => "email.sent",
        /// An automatic reply (out of office); not a customer contact.
        EmailAutoReply => "email.auto_reply",
        /// A delivery failure report; not a customer contact.
        EmailBounced => "email.bounced",
        /// A message from the customer (WhatsApp, Messenger, SMS, ...).
        MessageReceived => "message.received",
        /// A message to the customer.
        MessageSent => "message.sent",
        /// A sent message reached the customer's device.
        MessageDelivered => "message.delivered",
        /// A sent message was read.
        MessageRead => "message.read",
        /// A sent message could not be delivered.
        MessageFailed => "message.failed",
        /// A web form was submitted.
        FormSubmitted => "form.submitted",
        /// A web page was viewed.
        PageViewed => "page.viewed",
        /// An app screen was viewed (a Segment `screen` call).
        ScreenViewed => "screen.viewed",
        /// Something the customer did in a product or app (a Segment
        /// `track` call): history, not a contact.
        ActivityTracked => "activity.tracked",
        /// A contact another system recorded (a Segment `track` event
        /// configured as a contact, such as "Support Ticket Created").
        ContactRecorded => "contact.recorded",
        /// A system said who the customer is and what it knows about them
        /// (a Segment `identify` call; traits as `customer.*` attributes).
        /// Not a contact.
        CustomerIdentified => "customer.identified",
        /// The customer belongs to a group such as a company (a Segment
        /// `group` call). Not a contact.
        CustomerGrouped => "customer.grouped",
        /// Two ids of the customer were linked (a Segment `alias` call).
        /// Not a contact.
        CustomerAliased => "customer.aliased",
        /// A chat session started.
        ChatStarted => "chat.started",
        /// A chat message.
        ChatMessage => "chat.message",
        /// A chat session ended (with its transcript summary).
        ChatEnded => "chat.ended",
        /// A survey answer (NPS, CSAT, CES).
        FeedbackSubmitted => "feedback.submitted",
        /// The customer's contact preferences changed (a preference centre,
        /// a CRM, an agent): carries the statements in `consent`. Not a
        /// contact.
        ConsentUpdated => "consent.updated",
        /// A case was opened.
        CaseOpened => "case.opened",
        /// A case was resolved.
        CaseResolved => "case.resolved",
        /// A resolved case was reopened.
        CaseReopened => "case.reopened",
        /// An agent wrote a note.
        NoteAdded => "note.added",
        /// A follow-up task was created.
        TaskCreated => "task.created",
        /// A follow-up task was done.
        TaskCompleted => "task.completed",
        /// A follow-up task got a new due time.
        TaskRescheduled => "task.rescheduled",
        /// An agent confirmed that an identifier belongs to the customer:
        /// the identifier becomes verified for that customer. Its first
        /// identifier names the customer, the others are confirmed.
        IdentifierConfirmed => "identifier.confirmed",
    }
);

string_enum!(
    /// Which survey a feedback score answers.
    FeedbackMetric, "feedback metric" {
        /// Net promoter score, 0 to 10.
        Nps => "nps",
        /// Customer satisfaction, 1 to 5.
        Csat => "csat",
        /// Customer effort score, 1 to 7.
        Ces => "ces",
    }
);

impl EventType {
    /// Whether the event is a contact with the customer, counted in the
    /// profile's per-channel contacts and first/last contact. Calls count
    /// once, when they end (or are missed); delivery receipts, automatic
    /// replies, bounces, page views and agent actions are history, not
    /// contacts.
    pub fn is_customer_contact(self) -> bool {
        matches!(
            self,
            EventType::CallEnded
                | EventType::CallMissed
                | EventType::VoicemailReceived
                | EventType::EmailReceived
                | EventType::EmailSent
                | EventType::MessageReceived
                | EventType::MessageSent
                | EventType::FormSubmitted
                | EventType::ChatStarted
                | EventType::ContactRecorded
        )
    }

    /// Whether only the agent action routes publish it: cases, notes,
    /// tasks and confirmed identifiers change what agents see and decide
    /// identity, so a channel system cannot post them. Feedback is not
    /// one: survey tools post it too.
    pub fn is_agent_action(self) -> bool {
        matches!(
            self,
            EventType::CaseOpened
                | EventType::CaseResolved
                | EventType::CaseReopened
                | EventType::NoteAdded
                | EventType::TaskCreated
                | EventType::TaskCompleted
                | EventType::TaskRescheduled
                | EventType::IdentifierConfirmed
        )
    }
}

impl FeedbackMetric {
    /// The inclusive range of valid scores.
    pub fn range(self) -> (i32, i32) {
        match self {
            FeedbackMetric::Nps => (0, 10),
            FeedbackMetric::Csat => (1, 5),
            FeedbackMetric::Ces => (1, 7),
        }
    }
}

/// A validated survey answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    /// The survey.
    pub metric: FeedbackMetric,
    /// The score, within the metric's range.
    pub score: i32,
    /// The customer's words, if any.
    pub comment: Option<String>,
}

/// A validated contact event. Made only by [`EventDraft::validate`] (or by
/// decoding the event contract, which validates the same way), so every field
/// holds to the contract: normalised identifiers, bounded text, known enums.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContactEvent {
    /// Idempotency key.
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
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Who started it.
    pub direction: Option<Direction>,
    /// At least one, normalised, without duplicates, each with how far the
    /// gateway trusts it.
    pub identifiers: Vec<EventIdentifier>,
    /// Thread: call id, email thread root, chat session.
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
    /// Talk time for calls, session length for chats.
    pub duration_seconds: Option<u32>,
    /// How it ended.
    pub outcome: Option<String>,
    /// -1 (negative) to 1 (positive).
    pub sentiment: Option<f32>,
    /// A survey answer.
    pub feedback: Option<Feedback>,
    /// The customer's contact preferences it states, at most one per
    /// channel and purpose. Left out of the JSON form when empty, so the
    /// fingerprint of an event without any is what it was before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<Consent>,
    /// Extra string values.
    pub attributes: BTreeMap<String, String>,
    /// Best-known name of the customer.
    pub display_name: Option<String>,
    /// W3C trace context of the request that produced the event.
    pub traceparent: Option<String>,
    /// The case an agent action is about, or that an agent linked this
    /// contact to; `None`: the projector finds the case.
    pub case_id: Option<Uuid>,
}

impl ContactEvent {
    /// The Kafka record key: the first identifier, `kind:value`.
    pub fn partition_key(&self) -> String {
        self.identifiers
            .first()
            .map(|first| first.identifier.to_string())
            .unwrap_or_default()
    }

    /// Its identifiers without their trust, in order.
    pub fn plain_identifiers(&self) -> impl Iterator<Item = &Identifier> {
        self.identifiers.iter().map(|carried| &carried.identifier)
    }
}

/// Serialises as `{"kind": "phone", "value": "+31612345678"}`.
impl Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("Identifier", 2)?;
        state.serialize_field("kind", &self.kind())?;
        state.serialize_field("value", self.value())?;
        state.end()
    }
}

/// A field that failed validation: the JSON path of the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `identifiers[0].value`.
    pub field: String,
    /// What is wrong, in words for the caller.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, its field path under `prefix` (e.g. `events[3]`).
    pub fn within(self, prefix: &str) -> Self {
        FieldError {
            field: format!("{prefix}.{}", self.field),
            message: self.message,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// What validation needs to know besides the draft itself.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    /// When the gateway received the event; also the default `occurred_at`.
    pub received_at: DateTime<Utc>,
    /// Region for national phone numbers.
    pub default_region: Option<Region>,
}

impl ValidationContext {
    /// A context for an event received now.
    pub fn now(default_region: Option<Region>) -> Self {
        ValidationContext {
            received_at: Utc::now(),
            default_region,
        }
    }
}

/// An identifier as a caller sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierDraft {
    /// `phone`, `email`, `account`, `whatsapp`, ...
    #[schema(value_type = IdentifierKind)]
    pub kind: String,
    /// The value as the channel knows it. Limits hold after normalisation:
    /// an email address of at most 254 characters in lower case, other ids
    /// of at most 128 (an X handle in lower case).
    pub value: String,
    /// How far the gateway trusts it. Never read from a body (a `trust`
    /// field is refused as unknown): the adapter marks what it cannot vouch
    /// for, and the gateway caps it by the route and credential
    /// ([`EventDraft::cap_trust`]).
    #[serde(skip, default = "Trust::verified")]
    pub trust: Trust,
}

impl Default for IdentifierDraft {
    fn default() -> Self {
        IdentifierDraft {
            kind: String::new(),
            value: String::new(),
            trust: Trust::Verified,
        }
    }
}

impl IdentifierDraft {
    /// A draft from a kind and a raw value, verified until the gateway caps
    /// it.
    pub fn new(kind: IdentifierKind, value: impl Into<String>) -> Self {
        IdentifierDraft {
            kind: kind.as_str().to_owned(),
            value: value.into(),
            trust: Trust::Verified,
        }
    }

    /// The same draft with `trust`.
    #[must_use]
    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }
}

/// A survey answer as a caller sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackDraft {
    /// `nps`, `csat` or `ces`.
    #[schema(value_type = FeedbackMetric)]
    pub metric: String,
    /// The score: 0–10 for `nps`, 1–5 for `csat`, 1–7 for `ces`.
    pub score: i32,
    /// The customer's words, at most 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// An event as a caller sends it: the JSON body of `POST /v1/events`, and
/// what every channel adapter fills in. Strings are checked by
/// [`EventDraft::validate`], which names the field at fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "A contact event in the event contract (docs/event-contract.md): unknown fields are refused, and each problem names the field at fault."
)]
pub struct EventDraft {
    /// A UUID (kept as is), a provider id of at most 512 characters (turned
    /// into a stable UUIDv5), or absent (a new UUIDv7).
    #[serde(default)]
    #[schema(max_length = 512)]
    pub event_id: Option<String>,
    /// RFC 3339; defaults to the time of receipt. From 1970 to the end of
    /// year 9999, and at most a day after receipt.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    /// `phone`, `email`, `web`, `chat`, `social`, `sms`.
    #[serde(default)]
    #[schema(value_type = Channel, required = true)]
    pub channel: Option<String>,
    /// The provider or system; defaults to `api`.
    #[serde(default)]
    pub source: Option<String>,
    /// Dotted event type.
    #[serde(default, rename = "type")]
    #[schema(value_type = EventType, required = true)]
    pub event_type: Option<String>,
    /// `inbound` or `outbound`.
    #[serde(default)]
    #[schema(value_type = Option<Direction>)]
    pub direction: Option<String>,
    /// At least one.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 20)]
    pub identifiers: Vec<IdentifierDraft>,
    /// Thread id: at most 998 characters and 2,000 bytes of UTF-8 (cases
    /// index their conversations).
    #[serde(default)]
    #[schema(max_length = 998)]
    pub conversation_id: Option<String>,
    /// The customer's reason for contact, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub contact_reason: Option<String>,
    /// Subject or title, at most 998 characters.
    #[serde(default)]
    #[schema(max_length = 998)]
    pub subject: Option<String>,
    /// Text excerpt, at most 4,000 characters.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub summary: Option<String>,
    /// Handling agent, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub agent_id: Option<String>,
    /// Queue or team, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub queue: Option<String>,
    /// Talk or session time.
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// How it ended, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub outcome: Option<String>,
    /// -1 to 1.
    #[serde(default)]
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub sentiment: Option<f32>,
    /// Survey answer.
    #[serde(default)]
    pub feedback: Option<FeedbackDraft>,
    /// Contact preferences: `{"channel", "purpose", "granted"}` statements,
    /// at most one per channel and purpose. Required (at least one) for
    /// `consent.updated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 24)]
    pub consent: Vec<ConsentDraft>,
    /// Extra string values: at most 64, keys of 1 to 64 characters, values
    /// of at most 1,024 characters (200 for `task.assignee` and
    /// `task.channel`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Name hint, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// W3C trace context; normally set by the gateway, not the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The case (a UUID) an agent action is about, or that the contact
    /// belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub case_id: Option<String>,
}

impl EventDraft {
    /// Lowers the trust of every identifier to at most `ceiling`: what the
    /// gateway does with the route and credential a draft came through.
    pub fn cap_trust(&mut self, ceiling: Trust) {
        for identifier in &mut self.identifiers {
            identifier.trust = identifier.trust.min(ceiling);
        }
    }

    /// Checks every field and builds the canonical event, or names the first
    /// field at fault.
    pub fn validate(self, context: &ValidationContext) -> Result<ContactEvent, FieldError> {
        // Decoding reads `received_at` from the record: it must be a time
        // PostgreSQL can store and RFC 3339 can write.
        if !limits::event_time_in_range(context.received_at) {
            return Err(FieldError::new("received_at", limits::EVENT_TIME_RANGE));
        }
        let source = match self.source.as_deref().and_then(non_empty_trimmed) {
            None => "api".to_owned(),
            Some(source) => parse_source(source)?,
        };
        let event_id = parse_event_id(self.event_id.as_deref(), &source)?;
        let occurred_at = match self.occurred_at.as_deref().and_then(non_empty_trimmed) {
            None => context.received_at,
            Some(raw) => parse_occurred_at(raw, context.received_at)?,
        };
        let channel = required_enum::<Channel>("channel", self.channel.as_deref())?;
        let event_type = required_enum::<EventType>("type", self.event_type.as_deref())?;
        let direction = match self.direction.as_deref().and_then(non_empty_trimmed) {
            None => None,
            Some(raw) => Some(
                raw.parse::<Direction>()
                    .map_err(|e| FieldError::new("direction", e))?,
            ),
        };
        let identifiers = parse_identifiers(&self.identifiers, context.default_region)?;
        let feedback = match self.feedback {
            None if event_type == EventType::FeedbackSubmitted => {
                return Err(FieldError::new(
                    "feedback",
                    "is required for feedback.submitted events",
                ));
            }
            None => None,
            Some(draft) => Some(parse_feedback(draft)?),
        };
        if self.consent.is_empty() && event_type == EventType::ConsentUpdated {
            return Err(FieldError::new(
                "consent",
                "is required for consent.updated events: at least one {channel, purpose, granted}",
            ));
        }
        let consent = parse_consent(self.consent)?;
        let sentiment = match self.sentiment {
            Some(value) if !value.is_finite() || !(-1.0..=1.0).contains(&value) => {
                return Err(FieldError::new("sentiment", "must be between -1 and 1"));
            }
            other => other,
        };
        Ok(ContactEvent {
            event_id,
            occurred_at,
            received_at: context.received_at,
            channel,
            source,
            event_type,
            direction,
            identifiers,
            conversation_id: bounded(
                "conversation_id",
                self.conversation_id,
                limits::CONVERSATION_ID,
            )?,
            contact_reason: bounded(
                "contact_reason",
                self.contact_reason,
                limits::CONTACT_REASON,
            )?,
            subject: bounded("subject", self.subject, limits::SUBJECT)?,
            summary: bounded("summary", self.summary, limits::SUMMARY)?,
            agent_id: bounded("agent_id", self.agent_id, limits::SHORT_TEXT)?,
            queue: bounded("queue", self.queue, limits::SHORT_TEXT)?,
            duration_seconds: self.duration_seconds,
            outcome: bounded("outcome", self.outcome, limits::SHORT_TEXT)?,
            sentiment,
            feedback,
            consent,
            attributes: parse_attributes(self.attributes)?,
            display_name: bounded("display_name", self.display_name, limits::SHORT_TEXT)?,
            traceparent: parse_traceparent(self.traceparent)?,
            case_id: match self.case_id.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(raw) => Some(
                    Uuid::parse_str(raw)
                        .map_err(|_| FieldError::new("case_id", "must be a UUID"))?,
                ),
            },
        })
    }
}

impl From<&ContactEvent> for EventDraft {
    /// The draft that validates back into the same event (given the event's
    /// `received_at` in the context).
    fn from(event: &ContactEvent) -> Self {
        EventDraft {
            event_id: Some(event.event_id.to_string()),
            occurred_at: Some(
                event
                    .occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
            channel: Some(event.channel.as_str().to_owned()),
            source: Some(event.source.clone()),
            event_type: Some(event.event_type.as_str().to_owned()),
            direction: event.direction.map(|d| d.as_str().to_owned()),
            identifiers: event
                .identifiers
                .iter()
                .map(|carried| {
                    IdentifierDraft::new(carried.identifier.kind(), carried.identifier.value())
                        .with_trust(carried.trust)
                })
                .collect(),
            conversation_id: event.conversation_id.clone(),
            contact_reason: event.contact_reason.clone(),
            subject: event.subject.clone(),
            summary: event.summary.clone(),
            agent_id: event.agent_id.clone(),
            queue: event.queue.clone(),
            duration_seconds: event.duration_seconds,
            outcome: event.outcome.clone(),
            sentiment: event.sentiment,
            feedback: event.feedback.as_ref().map(|f| FeedbackDraft {
                metric: f.metric.as_str().to_owned(),
                score: f.score,
                comment: f.comment.clone(),
            }),
            consent: event
                .consent
                .iter()
                .copied()
                .map(ConsentDraft::from)
                .collect(),
            attributes: event.attributes.clone(),
            display_name: event.display_name.clone(),
            traceparent: event.traceparent.clone(),
            case_id: event.case_id.map(|id| id.to_string()),
        }
    }
}

/// `raw` as an event source: at most 64 characters of `a-z`, `0-9`, `.`,
/// `_` and `-` (a channel token's bound source follows the same rule).
pub fn parse_source(raw: &str) -> Result<String, FieldError> {
    if !is_source(raw) {
        return Err(FieldError::new(
            "source",
            "must be at most 64 characters of a-z, 0-9, '.', '_' and '-'",
        ));
    }
    Ok(raw.to_owned())
}

/// Whether `raw` is at most 64 characters of `a-z`, `0-9`, `.`, `_` and
/// `-` (the empty string is: a missing source is `api`).
pub(crate) fn is_source(raw: &str) -> bool {
    raw.len() <= 64
        && raw.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn parse_event_id(raw: Option<&str>, source: &str) -> Result<Uuid, FieldError> {
    let Some(raw) = raw.and_then(non_empty_trimmed) else {
        return Ok(Uuid::now_v7());
    };
    if let Ok(uuid) = Uuid::parse_str(raw) {
        if uuid.is_nil() {
            return Err(FieldError::new("event_id", "must not be the nil UUID"));
        }
        return Ok(uuid);
    }
    if !limits::PROVIDER_EVENT_ID.admits(raw) || has_control_chars(raw) {
        return Err(FieldError::new(
            "event_id",
            format!(
                "must be a UUID or a provider id of at most {} printable characters",
                limits::PROVIDER_EVENT_ID.chars
            ),
        ));
    }
    Ok(derived_event_id(source, raw))
}

/// The stable event id for a provider's own id: a retried webhook is the
/// same event.
pub(crate) fn derived_event_id(source: &str, provider_id: &str) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{source}\n{provider_id}").as_bytes(),
    )
}

fn parse_occurred_at(raw: &str, received_at: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| {
            FieldError::new(
                "occurred_at",
                "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    let latest = received_at
        .checked_add_signed(Duration::hours(MAX_CLOCK_SKEW_HOURS))
        .unwrap_or(limits::LATEST_EVENT_TIME);
    if parsed > latest {
        return Err(FieldError::new(
            "occurred_at",
            "lies more than a day in the future",
        ));
    }
    if parsed < limits::EARLIEST_EVENT_TIME {
        return Err(FieldError::new("occurred_at", "lies before 1970"));
    }
    // A time past year 9999 (an offset can carry one there) has no RFC 3339
    // form to give back.
    if parsed > limits::LATEST_EVENT_TIME {
        return Err(FieldError::new("occurred_at", limits::EVENT_TIME_RANGE));
    }
    Ok(parsed)
}

fn required_enum<T: FromStr<Err = String>>(
    field: &str,
    raw: Option<&str>,
) -> Result<T, FieldError> {
    let raw = raw
        .and_then(non_empty_trimmed)
        .ok_or_else(|| FieldError::new(field, "is required"))?;
    raw.parse::<T>().map_err(|e| FieldError::new(field, e))
}

fn parse_identifiers(
    drafts: &[IdentifierDraft],
    default_region: Option<Region>,
) -> Result<Vec<EventIdentifier>, FieldError> {
    if drafts.is_empty() {
        return Err(FieldError::new(
            "identifiers",
            "at least one identifier (phone, email, account, ...) is required",
        ));
    }
    if drafts.len() > limits::MAX_IDENTIFIERS {
        return Err(FieldError::new(
            "identifiers",
            format!("at most {} identifiers", limits::MAX_IDENTIFIERS),
        ));
    }
    let mut identifiers: Vec<EventIdentifier> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        let kind =
            draft.kind.trim().parse::<IdentifierKind>().map_err(|e| {
                FieldError::new(format!("identifiers[{index}].kind"), e.to_string())
            })?;
        let identifier = Identifier::parse(kind, &draft.value, default_region).map_err(|e| {
            FieldError::new(
                format!("identifiers[{index}].value"),
                format!("{kind}: {e}"),
            )
        })?;
        // One identifier given twice is one, in its first place, and as
        // trusted as its most trusted mention.
        match identifiers
            .iter_mut()
            .find(|carried| carried.identifier == identifier)
        {
            Some(carried) => carried.trust = carried.trust.max(draft.trust),
            None => identifiers.push(EventIdentifier {
                identifier,
                trust: draft.trust,
            }),
        }
    }
    Ok(identifiers)
}

fn parse_feedback(draft: FeedbackDraft) -> Result<Feedback, FieldError> {
    let metric = draft
        .metric
        .trim()
        .parse::<FeedbackMetric>()
        .map_err(|e| FieldError::new("feedback.metric", e))?;
    let (low, high) = metric.range();
    if !(low..=high).contains(&draft.score) {
        return Err(FieldError::new(
            "feedback.score",
            format!("{metric} scores run from {low} to {high}"),
        ));
    }
    Ok(Feedback {
        metric,
        score: draft.score,
        comment: bounded("feedback.comment", draft.comment, limits::COMMENT)?,
    })
}

fn parse_traceparent(raw: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw.as_deref().and_then(non_empty_trimmed) else {
        return Ok(None);
    };
    let parts: Vec<&str> = raw.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    let valid = parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2);
    if !valid {
        return Err(FieldError::new(
            "traceparent",
            "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
        ));
    }
    Ok(Some(raw.to_ascii_lowercase()))
}

/// Trims optional text; empty becomes `None`; past `limit` or holding
/// control characters is an error naming `field`. Trimming again changes
/// nothing, so the result validates to itself.
fn bounded(
    field: &str,
    raw: Option<String>,
    limit: TextLimit,
) -> Result<Option<String>, FieldError> {
    let Some(text) = raw.as_deref().and_then(non_empty_trimmed) else {
        return Ok(None);
    };
    if !limit.admits(text) {
        return Err(FieldError::new(field, format!("must be {limit}")));
    }
    if has_control_chars(text) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn context() -> ValidationContext {
        ValidationContext {
            received_at: "2026-11-23T10:00:00Z".parse().expect("timestamp"),
            default_region: "NL".parse().ok(),
        }
    }

    fn call() -> EventDraft {
        EventDraft {
            event_id: Some("CA123-completed-3".into()),
            occurred_at: Some("2026-11-23T09:58:00+01:00".into()),
            channel: Some("phone".into()),
            source: Some("twilio".into()),
            event_type: Some("call.ended".into()),
            direction: Some("inbound".into()),
            identifiers: vec![
                IdentifierDraft::new(IdentifierKind::Phone, "06 1234 5678"),
                IdentifierDraft::new(IdentifierKind::Email, "Anna@Example.NL"),
                IdentifierDraft::new(IdentifierKind::Phone, "+31612345678"),
            ],
            summary: Some("  order 1234 did not arrive  ".into()),
            duration_seconds: Some(240),
            ..EventDraft::default()
        }
    }

    fn field_of(draft: EventDraft) -> String {
        draft
            .validate(&context())
            .expect_err("should be refused")
            .field
    }

    /// The values the OpenAPI document lists for an enum, in order.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("the schema serialises");
        schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|value| value.as_str().expect("a string").to_owned())
            .collect()
    }

    fn wire<T: Copy + fmt::Display>(all: &[T]) -> Vec<String> {
        all.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_document_lists_the_wire_names_of_every_enum() {
        assert_eq!(documented::<Channel>(), wire(Channel::ALL));
        assert_eq!(documented::<Direction>(), wire(Direction::ALL));
        assert_eq!(documented::<EventType>(), wire(EventType::ALL));
        assert_eq!(documented::<FeedbackMetric>(), wire(FeedbackMetric::ALL));
        for channel in Channel::ALL {
            let json = serde_json::to_value(channel).expect("serialises");
            assert_eq!(json, serde_json::json!(channel.as_str()));
        }
    }

    #[test]
    fn a_good_draft_becomes_a_normalised_event() {
        let event = call().validate(&context()).expect("valid");
        assert_eq!(event.channel, Channel::Phone);
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(event.direction, Some(Direction::Inbound));
        assert_eq!(event.occurred_at.to_rfc3339(), "2026-11-23T08:58:00+00:00");
        assert_eq!(event.identifiers.len(), 2, "duplicate phone folded");
        assert_eq!(event.partition_key(), "phone:+31612345678");
        assert_eq!(event.identifiers[1].identifier.value(), "anna@example.nl");
        assert_eq!(event.summary.as_deref(), Some("order 1234 did not arrive"));
    }

    #[test]
    fn provider_ids_give_stable_uuids_and_uuids_are_kept() {
        let first = call().validate(&context()).expect("valid").event_id;
        let again = call().validate(&context()).expect("valid").event_id;
        assert_eq!(first, again, "a retried webhook is the same event");
        assert_eq!(first.get_version_num(), 5);
        let other_source = EventDraft {
            source: Some("cti".into()),
            ..call()
        };
        assert_ne!(
            other_source.validate(&context()).expect("valid").event_id,
            first
        );

        let uuid = "0191f0a4-1c2b-7d3e-8f40-123456789abc";
        let kept = EventDraft {
            event_id: Some(uuid.into()),
            ..call()
        };
        assert_eq!(
            kept.validate(&context())
                .expect("valid")
                .event_id
                .to_string(),
            uuid
        );

        let fresh = EventDraft {
            event_id: None,
            ..call()
        };
        assert_eq!(
            fresh
                .validate(&context())
                .expect("valid")
                .event_id
                .get_version_num(),
            7
        );
    }

    #[test]
    fn defaults_fill_in_source_and_time() {
        let event = EventDraft {
            source: None,
            occurred_at: None,
            ..call()
        }
        .validate(&context())
        .expect("valid");
        assert_eq!(event.source, "api");
        assert_eq!(event.occurred_at, context().received_at);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            field_of(EventDraft {
                channel: Some("fax".into()),
                ..call()
            }),
            "channel"
        );
        assert_eq!(
            field_of(EventDraft {
                channel: None,
                ..call()
            }),
            "channel"
        );
        assert_eq!(
            field_of(EventDraft {
                event_type: Some("call.exploded".into()),
                ..call()
            }),
            "type"
        );
        assert_eq!(
            field_of(EventDraft {
                direction: Some("sideways".into()),
                ..call()
            }),
            "direction"
        );
        assert_eq!(
            field_of(EventDraft {
                identifiers: vec![],
                ..call()
            }),
            "identifiers"
        );
        assert_eq!(
            field_of(EventDraft {
                identifiers: vec![IdentifierDraft::new(IdentifierKind::Phone, "12")],
                ..call()
            }),
            "identifiers[0].value"
        );
        assert_eq!(
            field_of(EventDraft {
                identifiers: vec![
                    IdentifierDraft::new(IdentifierKind::Email, "a@b.nl"),
                    IdentifierDraft {
                        kind: "fax".into(),
                        value: "1".into(),
                        ..IdentifierDraft::default()
                    }
                ],
                ..call()
            }),
            "identifiers[1].kind"
        );
        assert_eq!(
            field_of(EventDraft {
                occurred_at: Some("yesterday".into()),
                ..call()
            }),
            "occurred_at"
        );
        assert_eq!(
            field_of(EventDraft {
                occurred_at: Some("2030-01-01T00:00:00Z".into()),
                ..call()
            }),
            "occurred_at"
        );
        assert_eq!(
            field_of(EventDraft {
                source: Some("Twilio Voice".into()),
                ..call()
            }),
            "source"
        );
        assert_eq!(
            field_of(EventDraft {
                summary: Some("x".repeat(4001)),
                ..call()
            }),
            "summary"
        );
        assert_eq!(
            field_of(EventDraft {
                sentiment: Some(1.5),
                ..call()
            }),
            "sentiment"
        );
        assert_eq!(
            field_of(EventDraft {
                event_id: Some("00000000-0000-0000-0000-000000000000".into()),
                ..call()
            }),
            "event_id"
        );
        assert_eq!(
            field_of(EventDraft {
                traceparent: Some("nope".into()),
                ..call()
            }),
            "traceparent"
        );
        let attributes = BTreeMap::from([("tier".to_owned(), "x".repeat(1025))]);
        assert_eq!(
            field_of(EventDraft {
                attributes,
                ..call()
            }),
            "attributes.tier"
        );
    }

    #[test]
    fn feedback_scores_are_checked_per_metric() {
        let survey = |metric: &str, score| EventDraft {
            event_type: Some("feedback.submitted".into()),
            feedback: Some(FeedbackDraft {
                metric: metric.into(),
                score,
                comment: None,
            }),
            ..call()
        };
        assert!(survey("nps", 0).validate(&context()).is_ok());
        assert!(survey("nps", 10).validate(&context()).is_ok());
        assert_eq!(field_of(survey("nps", 11)), "feedback.score");
        assert_eq!(field_of(survey("csat", 0)), "feedback.score");
        assert!(survey("ces", 7).validate(&context()).is_ok());
        assert_eq!(field_of(survey("ces", 8)), "feedback.score");
        assert_eq!(field_of(survey("stars", 3)), "feedback.metric");
        assert_eq!(
            field_of(EventDraft {
                event_type: Some("feedback.submitted".into()),
                ..call()
            }),
            "feedback"
        );
    }

    #[test]
    fn only_contacts_count_as_contacts() {
        let contacts: Vec<&str> = EventType::ALL
            .iter()
            .filter(|t| t.is_customer_contact())
            .map(|t| t.as_str())
            .collect();
        assert!(contacts.contains(&"email.received") && contacts.contains(&"call.ended"));
        for not_contact in [
            "email.auto_reply",
            "email.bounced",
            "message.read",
            "call.started",
            "note.added",
            "consent.updated",
        ] {
            assert!(!contacts.contains(&not_contact), "{not_contact}");
        }
    }

    #[test]
    fn consent_is_required_for_consent_updates_and_named_when_wrong() {
        let update = |consent: serde_json::Value| -> EventDraft {
            serde_json::from_value(serde_json::json!({
                "channel": "web",
                "source": "preferences",
                "type": "consent.updated",
                "identifiers": [{"kind": "email", "value": "anna@example.nl"}],
                "consent": consent,
            }))
            .expect("a draft")
        };
        let event = update(serde_json::json!([
            {"channel": "email", "purpose": "marketing", "granted": false},
            {"channel": "phone", "purpose": "service", "granted": true}
        ]))
        .validate(&context())
        .expect("valid");
        assert_eq!(event.consent.len(), 2);
        assert!(!event.event_type.is_customer_contact());
        assert!(
            !event.event_type.is_agent_action(),
            "channel systems post it"
        );
        assert_eq!(field_of(update(serde_json::json!([]))), "consent");
        assert_eq!(
            field_of(update(
                serde_json::json!([{"channel": "email", "purpose": "ads", "granted": false}])
            )),
            "consent[0].purpose"
        );
        assert_eq!(
            field_of(update(serde_json::json!([
                {"channel": "email", "purpose": "service", "granted": true},
                {"channel": "fax", "purpose": "service", "granted": true}
            ]))),
            "consent[1].channel"
        );
        assert_eq!(
            field_of(update(
                serde_json::json!([{"channel": "email", "purpose": "service"}])
            )),
            "consent[0].granted"
        );
        // Another event may carry statements too (a form's opt-in box).
        let form = EventDraft {
            consent: vec![ConsentDraft {
                channel: "sms".into(),
                purpose: "surveys".into(),
                granted: Some(true),
            }],
            ..call()
        }
        .validate(&context())
        .expect("valid");
        assert_eq!(EventDraft::from(&form).validate(&context()), Ok(form));
        let unknown = serde_json::from_value::<EventDraft>(serde_json::json!({
            "channel": "web", "type": "consent.updated",
            "consent": [{"channel": "email", "purpose": "service", "granted": true, "until": "x"}]
        }));
        assert!(unknown.is_err(), "unknown statement fields are refused");
    }

    #[test]
    fn an_event_without_consent_serialises_as_before() {
        let event = call().validate(&context()).expect("valid");
        let json = serde_json::to_value(&event).expect("serialises");
        assert!(json.get("consent").is_none(), "{json}");
        let draft = serde_json::to_value(EventDraft::from(&event)).expect("serialises");
        assert!(draft.get("consent").is_none(), "{draft}");
    }

    #[test]
    fn json_drafts_refuse_unknown_fields() {
        let result = serde_json::from_str::<EventDraft>(r#"{"channel":"phone","colour":"red"}"#);
        assert!(result.is_err());
    }

    #[test]
    fn an_event_round_trips_through_its_draft() {
        let event = call().validate(&context()).expect("valid");
        let again = EventDraft::from(&event)
            .validate(&context())
            .expect("valid");
        assert_eq!(again, event);
    }

    #[test]
    fn indexed_text_is_bounded_in_bytes_too() {
        // 998 four-byte characters: within the character limit, but twice
        // what a PostgreSQL index entry holds.
        let error = EventDraft {
            conversation_id: Some("\u{20000}".repeat(998)),
            ..call()
        }
        .validate(&context())
        .expect_err("too many bytes");
        assert_eq!(
            error.to_string(),
            "conversation_id: must be at most 998 characters and 2000 bytes"
        );
        let widest = EventDraft {
            conversation_id: Some("\u{20000}".repeat(500)),
            ..call()
        };
        assert!(widest.validate(&context()).is_ok());
        let assignee = BTreeMap::from([(
            crate::attributes::TASK_ASSIGNEE.to_owned(),
            "\u{20000}".repeat(201),
        )]);
        assert_eq!(
            field_of(EventDraft {
                event_type: Some("task.created".into()),
                attributes: assignee,
                ..call()
            }),
            "attributes.task.assignee"
        );
    }

    #[test]
    fn times_stay_within_what_postgresql_and_rfc_3339_can_hold() {
        for received_at in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::UNIX_EPOCH - Duration::nanoseconds(1),
            limits::LATEST_EVENT_TIME + Duration::nanoseconds(1),
            DateTime::<Utc>::MAX_UTC,
        ] {
            let error = EventDraft {
                occurred_at: None,
                ..call()
            }
            .validate(&ValidationContext {
                received_at,
                default_region: None,
            })
            .expect_err("out of range");
            assert_eq!(error.field, "received_at", "{received_at:?}");
        }
        let last = ValidationContext {
            received_at: limits::LATEST_EVENT_TIME,
            default_region: "NL".parse().ok(),
        };
        // Within a day of receipt, but past year 9999 in UTC.
        let error = EventDraft {
            occurred_at: Some("9999-12-31T23:59:59-05:00".into()),
            ..call()
        }
        .validate(&last)
        .expect_err("past 9999");
        assert_eq!(error.field, "occurred_at");
        let event = EventDraft {
            occurred_at: Some("9999-12-31T23:59:59.999999999Z".into()),
            ..call()
        }
        .validate(&last)
        .expect("the last instant");
        assert_eq!(EventDraft::from(&event).validate(&last), Ok(event));
    }

    #[test]
    fn drafts_of_the_property_tests_mostly_validate() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;

        // The properties below hold only for what validates: they say
        // little unless most drafts do.
        let mut runner = TestRunner::deterministic();
        let strategy = crate::arbitrary::draft_in_context();
        let valid = (0..200)
            .filter(|_| {
                let (context, draft) = strategy.new_tree(&mut runner).expect("a draft").current();
                draft.validate(&context).is_ok()
            })
            .count();
        assert!(valid >= 50, "only {valid} of 200 drafts validate");
    }

    fn any_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(any::<String>())
    }

    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        prop_oneof![
            any::<i64>(),
            DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        ]
        .prop_flat_map(|seconds| {
            any::<u32>().prop_map(move |nanos| {
                DateTime::from_timestamp(seconds, nanos)
                    .or_else(|| DateTime::from_timestamp(seconds, 0))
                    .unwrap_or(DateTime::UNIX_EPOCH)
            })
        })
    }

    proptest! {
        #[test]
        fn validation_never_panics(
            (event_id, occurred_at, channel, source, event_type, direction) in
                (any_text(), any_text(), any_text(), any_text(), any_text(), any_text()),
            (conversation_id, contact_reason, subject, summary, agent_id, queue, outcome, display_name) in
                (any_text(), any_text(), any_text(), any_text(), any_text(), any_text(), any_text(), any_text()),
            identifiers in proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(IdentifierKind::ALL.to_vec()).prop_map(|k| k.as_str().to_owned()),
                        any::<String>(),
                    ],
                    any::<String>(),
                ),
                0..4,
            ),
            attributes in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
            (traceparent, case_id, comment, metric) in (any_text(), any_text(), any_text(), any::<String>()),
            consent in proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(crate::ConsentChannel::ALL).prop_map(|c| c.as_str().to_owned()),
                        any::<String>(),
                    ],
                    prop_oneof![
                        proptest::sample::select(crate::ConsentPurpose::ALL).prop_map(|p| p.as_str().to_owned()),
                        any::<String>(),
                    ],
                    proptest::option::of(any::<bool>()),
                ),
                0..4,
            ),
            (score, sentiment, duration_seconds) in
                (any::<i32>(), proptest::option::of(any::<f32>()), proptest::option::of(any::<u32>())),
            received_at in any_time(),
            region in proptest::sample::select(vec![None, Some("NL"), Some("US")]),
        ) {
            let draft = EventDraft {
                event_id,
                occurred_at,
                channel,
                source,
                event_type,
                direction,
                identifiers: identifiers
                    .into_iter()
                    .map(|(kind, value)| IdentifierDraft { kind, value, trust: Trust::Verified })
                    .collect(),
                conversation_id,
                contact_reason,
                subject,
                summary,
                agent_id,
                queue,
                duration_seconds,
                outcome,
                sentiment,
                feedback: Some(FeedbackDraft { metric, score, comment }),
                consent: consent
                    .into_iter()
                    .map(|(channel, purpose, granted)| ConsentDraft { channel, purpose, granted })
                    .collect(),
                attributes,
                display_name,
                traceparent,
                case_id,
            };
            let context = ValidationContext {
                received_at,
                default_region: region.and_then(|code| code.parse().ok()),
            };
            if let Ok(event) = draft.validate(&context) {
                let again = EventDraft::from(&event).validate(&ValidationContext {
                    received_at: event.received_at,
                    default_region: None,
                });
                prop_assert_eq!(again, Ok(event));
            }
        }

        #[test]
        fn arbitrary_json_never_panics(body in any::<String>()) {
            if let Ok(draft) = serde_json::from_str::<EventDraft>(&body) {
                let _ = draft.validate(&context());
            }
        }

        /// Whatever validates validates again to the same event, as the
        /// projector does when it decodes a record (without a default
        /// region: phone numbers are already E.164).
        #[test]
        fn whatever_validates_validates_to_itself(
            (context, draft) in crate::arbitrary::draft_in_context(),
        ) {
            if let Ok(event) = draft.validate(&context) {
                let again = EventDraft::from(&event).validate(&ValidationContext {
                    received_at: event.received_at,
                    default_region: None,
                });
                prop_assert_eq!(again, Ok(event));
            }
        }
    }
}
