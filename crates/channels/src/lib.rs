//! Channel adapters: each provider's webhook (bytes and headers in) becomes
//! canonical event drafts, or a typed error out. Pure: no I/O, no clock
//! (the caller passes the time), no global state. The gateway validates the
//! drafts like any other event and publishes them.
//!
//! One module per provider; what several providers share (signatures, form
//! and multipart bodies, email threading, text excerpts) lives in one place.

pub mod cti;
pub mod email;
pub mod form;
pub mod mailgun;
pub mod meta;
pub mod mime;
pub mod multipart;
pub mod segment;
pub mod sendgrid;
pub mod signature;
pub mod text;
pub mod twilio;
pub mod web;

use chrono::{DateTime, Utc};
use panorama_core::{
    Channel, Direction, EventDraft, EventType, Identifier, IdentifierDraft, IdentifierKind, Region,
    Trust,
};

/// What an adapter needs to know besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// When the gateway received the request (default `occurred_at`, and
    /// "now" for replay windows).
    pub received_at: DateTime<Utc>,
    /// Region for national phone numbers.
    pub default_region: Option<Region>,
}

/// What a webhook amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Contact events to publish (possibly several from one delivery).
    Events {
        /// The events, in the request's order.
        events: Vec<Found>,
        /// Values given as identifiers that do not parse (see [`Warning`]).
        warnings: Vec<Warning>,
    },
    /// Nothing to publish: a payload type the adapter does not map, or one
    /// without a customer identifier. Answered 200 so the provider does not
    /// retry; counted by `reason` (low cardinality, static).
    Ignored {
        /// Why, e.g. `whatsapp.template_status`, `no_identifier`.
        reason: &'static str,
        /// Values given as identifiers that do not parse: why an event may
        /// have been left without an identifier.
        warnings: Vec<Warning>,
    },
}

impl Outcome {
    /// Nothing to publish for `reason`, and nothing to warn about.
    pub fn ignored(reason: &'static str) -> Self {
        Outcome::Ignored {
            reason,
            warnings: Vec::new(),
        }
    }

    /// The drafts to publish, in order (none when ignored).
    pub fn into_drafts(self) -> Vec<EventDraft> {
        match self {
            Outcome::Events { events, .. } => events.into_iter().map(|found| found.draft).collect(),
            Outcome::Ignored { .. } => Vec::new(),
        }
    }

    /// Lowers the trust of every event's identifiers to at most `ceiling`:
    /// the gateway's part, from the route and credential the webhook came
    /// through (a browser write key vouches for nothing).
    pub fn cap_trust(&mut self, ceiling: Trust) {
        if let Outcome::Events { events, .. } = self {
            for found in events {
                found.draft.cap_trust(ceiling);
            }
        }
    }

    /// The values given as identifiers that do not parse.
    pub fn warnings(&self) -> &[Warning] {
        match self {
            Outcome::Events { warnings, .. } | Outcome::Ignored { warnings, .. } => warnings,
        }
    }
}

/// One event an adapter found, and where in the request it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The JSON path of the item the event was made of (`events[2]`,
    /// `entry[0].changes[0].value.messages[1]`); empty when the request as
    /// a whole is the event.
    pub path: String,
    /// The event.
    pub draft: EventDraft,
}

impl Found {
    /// An event made of the request as a whole.
    pub fn whole(draft: EventDraft) -> Self {
        Found {
            path: String::new(),
            draft,
        }
    }
}

/// A value given as a customer identifier that does not parse (a national
/// phone number without a default region, a mistyped email address). It is
/// not dropped: its raw text stays on the event as attribute
/// `unparsed.<kind>` (see [`UNPARSED_ATTRIBUTE_PREFIX`]), and the gateway
/// names it in its answer and counts it. A warning never holds the value
/// itself, only where it was and why it does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the value was: a JSON path (`events[0].form.fields.phone`) or a
    /// provider's field name (`From`).
    pub field: String,
    /// The identifier kind it was read as.
    pub kind: IdentifierKind,
    /// Why it does not parse.
    pub message: String,
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Missing or wrong signature or credentials: 401, nothing published.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The payload is not what the provider sends: 400 with this message.
    #[error("{message}")]
    Malformed {
        /// The field at fault, when there is one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl ChannelError {
    /// A malformed-payload error naming `field`.
    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChannelError::Malformed {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A malformed-payload error about the body as a whole.
    pub fn malformed_body(message: impl Into<String>) -> Self {
        ChannelError::Malformed {
            field: None,
            message: message.into(),
        }
    }
}

/// Crate result type.
pub type Result<T, E = ChannelError> = std::result::Result<T, E>;

/// The attribute key prefix under which identifier values that do not parse
/// are kept: `unparsed.phone`, `unparsed.email`, ... (`unparsed.phone.2` for
/// a second value of one kind on one event).
pub const UNPARSED_ATTRIBUTE_PREFIX: &str = "unparsed.";

/// A value an adapter reads as an identifier: its kind, where it was in the
/// request, and the raw text (absent when the request has none).
pub(crate) type Candidate<'a> = (IdentifierKind, String, Option<&'a str>);

/// Reads `candidates` into `draft`: each value that parses becomes one of
/// its identifiers (in order); each that does not (an anonymous caller's
/// "+266696687", a `client:` address, a national number without a default
/// region) is kept as attribute `unparsed.<kind>` and returned as a
/// [`Warning`], so nothing given as an identifier is dropped without trace.
/// Absent and blank values are skipped.
pub(crate) fn identify<'a>(
    draft: &mut EventDraft,
    candidates: impl IntoIterator<Item = Candidate<'a>>,
    context: &Context,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (kind, field, raw) in candidates {
        let Some(raw) = raw.filter(|raw| !raw.trim().is_empty()) else {
            continue;
        };
        match Identifier::parse(kind, raw, context.default_region) {
            Ok(parsed) => draft
                .identifiers
                .push(IdentifierDraft::new(parsed.kind(), parsed.value())),
            Err(error) => {
                keep_unparsed(draft, kind, raw);
                warnings.push(Warning {
                    field,
                    kind,
                    message: error.to_string(),
                });
            }
        }
    }
    warnings
}

/// Keeps `raw` as attribute `unparsed.<kind>` (or `unparsed.<kind>.<n>` when
/// the event holds another such value of that kind), bounded like any
/// attribute.
fn keep_unparsed(draft: &mut EventDraft, kind: IdentifierKind, raw: &str) {
    let Some(value) = bounded(raw, MAX_ATTRIBUTE_CHARS) else {
        return;
    };
    let base = format!("{UNPARSED_ATTRIBUTE_PREFIX}{kind}");
    let mut key = base.clone();
    let mut n = 1;
    while let Some(kept) = draft.attributes.get(&key) {
        if *kept == value {
            return;
        }
        n += 1;
        key = format!("{base}.{n}");
    }
    // Room is kept for these past the adapters' own attributes: the
    // contract's bound is the only limit.
    if draft.attributes.len() < MAX_CONTRACT_ATTRIBUTES {
        draft.attributes.insert(key, value);
    }
}

/// A draft with what every adapter sets: channel, source, type and direction.
pub(crate) fn draft(
    channel: Channel,
    source: &str,
    event_type: EventType,
    direction: Direction,
) -> EventDraft {
    EventDraft {
        channel: Some(channel.as_str().to_owned()),
        source: Some(source.to_owned()),
        event_type: Some(event_type.as_str().to_owned()),
        direction: Some(direction.as_str().to_owned()),
        ..EventDraft::default()
    }
}

/// `Outcome::Events` when any event with an identifier is left, else
/// ignored for want of an identifier; the warnings go with either.
pub fn events_or_ignored(events: Vec<Found>, warnings: Vec<Warning>) -> Outcome {
    let events: Vec<Found> = events
        .into_iter()
        .filter(|found| !found.draft.identifiers.is_empty())
        .collect();
    if events.is_empty() {
        Outcome::Ignored {
            reason: "no_identifier",
            warnings,
        }
    } else {
        Outcome::Events { events, warnings }
    }
}

/// `at` as the contract's `occurred_at`: RFC 3339, UTC.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A unix time in seconds as RFC 3339; `None` before 1970 or out of range.
pub(crate) fn unix_seconds(seconds: i64) -> Option<String> {
    (seconds >= 0)
        .then(|| DateTime::from_timestamp(seconds, 0))
        .flatten()
        .map(rfc3339)
}

/// A unix time in milliseconds as RFC 3339; `None` before 1970 or out of range.
pub(crate) fn unix_millis(millis: i64) -> Option<String> {
    (millis >= 0)
        .then(|| DateTime::from_timestamp_millis(millis))
        .flatten()
        .map(rfc3339)
}

/// An RFC 3339 time, or a malformed-payload error naming `field`.
pub(crate) fn rfc3339_time(raw: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            ChannelError::malformed(
                field,
                "must be an RFC 3339 time such as 2026-11-24T10:00:00Z",
            )
        })
}

/// Longest queue, agent id, outcome and display name (the contract's bound).
pub(crate) const MAX_SHORT_TEXT: usize = 200;
/// Longest contact reason (the contract's bound).
pub(crate) const MAX_REASON: usize = 500;

/// Most events one JSON request may carry as `{"events": [...]}`.
pub(crate) const MAX_BATCH_EVENTS: usize = 500;

/// Parses a body of a JSON schema Panorama defines itself (CTI, web): one
/// event object or `{"events": [...]}`, each object turned into drafts by
/// `parse_event(object, path, warnings)` (see [`json_batch`] for the path),
/// which adds what it could not read as identifiers to `warnings`.
pub(crate) fn json_events<Drafts: IntoIterator<Item = EventDraft>>(
    body: &[u8],
    mut parse_event: impl FnMut(serde_json::Value, &str, &mut Vec<Warning>) -> Result<Drafts>,
) -> Result<Outcome> {
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    for (path, value) in json_batch(body)? {
        for draft in parse_event(value, &path, &mut warnings)? {
            events.push(Found {
                path: path.clone(),
                draft,
            });
        }
    }
    Ok(events_or_ignored(events, warnings))
}

/// The event objects of a JSON body that holds one event object or
/// `{"events": [...]}`, each with its path for error messages (`""` for a
/// lone object, `events[3]` in a batch).
fn json_batch(body: &[u8]) -> Result<Vec<(String, serde_json::Value)>> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ChannelError::malformed_body(format!("body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(ChannelError::malformed_body(
            "body must be one event object or {\"events\": [...]}",
        ));
    };
    let Some(events) = object.remove("events") else {
        return Ok(vec![(String::new(), serde_json::Value::Object(object))]);
    };
    if let Some(extra) = object.keys().next() {
        return Err(ChannelError::malformed(
            extra.clone(),
            "unknown field next to \"events\"",
        ));
    }
    let serde_json::Value::Array(events) = events else {
        return Err(ChannelError::malformed(
            "events",
            "must be an array of event objects",
        ));
    };
    if events.is_empty() {
        return Err(ChannelError::malformed(
            "events",
            "must hold at least one event",
        ));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(ChannelError::malformed(
            "events",
            format!("at most {MAX_BATCH_EVENTS} events per request"),
        ));
    }
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(index, event)| (format!("events[{index}]"), event))
        .collect())
}

/// Deserialises `value` (found at `path`) into `T`, or a malformed-payload
/// error naming `path`.
pub(crate) fn json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    path: &str,
) -> Result<T> {
    serde_json::from_value(value).map_err(|error| {
        if path.is_empty() {
            ChannelError::malformed_body(error.to_string())
        } else {
            ChannelError::malformed(path, error.to_string())
        }
    })
}

/// The JSON object at `path`, refusing any key not in `allowed` (schemas
/// Panorama defines are strict: a misspelt field is an error, not a silent
/// loss).
pub(crate) fn json_object(
    value: serde_json::Value,
    path: &str,
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let serde_json::Value::Object(object) = value else {
        let message = "must be a JSON object";
        return Err(if path.is_empty() {
            ChannelError::malformed_body(format!("the event {message}"))
        } else {
            ChannelError::malformed(path, message)
        });
    };
    if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(ChannelError::malformed(
            json_path(path, unknown),
            format!("unknown field; expected one of {}", allowed.join(", ")),
        ));
    }
    Ok(object)
}

/// Takes field `name` out of `object` (found at `path`) as `T`; absent and
/// `null` are `None`.
pub(crate) fn json_take<T: serde::de::DeserializeOwned>(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    path: &str,
) -> Result<Option<T>> {
    match object.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => json_value(value, &json_path(path, name)).map(Some),
    }
}

/// The value `raw` names among `choices`, the allowed values of field `name`
/// of the object at `path`; else a malformed-payload error listing them.
pub(crate) fn json_choice<T: Copy>(
    raw: &str,
    path: &str,
    name: &str,
    choices: &[(&str, T)],
) -> Result<T> {
    let raw = raw.trim();
    if let Some((_, value)) = choices.iter().find(|(choice, _)| *choice == raw) {
        return Ok(*value);
    }
    let expected: Vec<&str> = choices.iter().map(|(choice, _)| *choice).collect();
    Err(ChannelError::malformed(
        json_path(path, name),
        format!(
            "unknown {name} \"{}\"; expected one of {}",
            raw.chars().take(40).collect::<String>(),
            expected.join(", ")
        ),
    ))
}

/// `name` under `path` (`events[2].form`, `call_id`).
pub(crate) fn json_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// `raw` folded and cut to `max_chars` (see [`text::excerpt`]); `None` when
/// nothing is left.
pub(crate) fn bounded(raw: &str, max_chars: usize) -> Option<String> {
    let text = text::excerpt(raw, max_chars);
    (!text.is_empty()).then_some(text)
}

/// Most attributes an adapter sets (the contract allows 64).
const MAX_ADAPTER_ATTRIBUTES: usize = 48;
/// Most attributes an event may carry (the contract's bound).
const MAX_CONTRACT_ATTRIBUTES: usize = 64;
/// Longest attribute value (the contract's bound).
const MAX_ATTRIBUTE_CHARS: usize = 1024;

/// Sets attribute `key` (at most 64 printable characters: callers check keys
/// they did not choose) to `value`, folded and bounded as the contract
/// allows; blank values and attributes past the limit are left out.
pub(crate) fn set_attribute(draft: &mut EventDraft, key: &str, value: &str) {
    if draft.attributes.len() >= MAX_ADAPTER_ATTRIBUTES && !draft.attributes.contains_key(key) {
        return;
    }
    if let Some(value) = bounded(value, MAX_ATTRIBUTE_CHARS) {
        draft.attributes.insert(key.to_owned(), value);
    }
}

/// Whether a field (a form field, a trait, a property) is named like a
/// value that must never be stored: passwords, card numbers, tokens.
pub(crate) fn sensitive_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "cvc",
        "cvv",
        "iban",
        "card_number",
        "cardnumber",
        "credit_card",
    ]
    .iter()
    .any(|word| name.contains(word))
        || matches!(name.as_str(), "pin" | "ssn" | "card")
}
