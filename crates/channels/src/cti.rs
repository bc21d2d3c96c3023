//! On-premise PBX and CTI systems: a small JSON schema Panorama defines, one
//! call state change per object, posted to `/v1/channels/cti/events` with a
//! channel token (checked by the server, not here).
//!
//! A body is one event object or `{"events": [ ... ]}` (at most 500):
//!
//! ```json
//! {
//!   "call_id": "pbx1-20261124-000417",
//!   "state": "ended",
//!   "direction": "inbound",
//!   "caller": "+31 20 794 0958",
//!   "callee": "+31 85 888 1000",
//!   "queue": "billing",
//!   "agent_id": "agent-17",
//!   "started_at": "2026-11-24T09:58:02Z",
//!   "answered_at": "2026-11-24T09:58:40Z",
//!   "ended_at": "2026-11-24T10:01:44Z",
//!   "duration_seconds": 184,
//!   "customer_name": "Anna de Vries",
//!   "account": "C-1001",
//!   "reason": "parcel not delivered",
//!   "outcome": "resolved"
//! }
//! ```
//!
//! | field | | meaning |
//! | --- | --- | --- |
//! | `call_id` | required | the PBX's id of the call (at most 200 characters); the conversation id |
//! | `state` | required | `ringing` → `call.started`, `answered` → `call.answered`, `transferred` → `call.answered` with outcome `transferred` (the new `queue`/`agent_id` took it), `ended` → `call.ended`, `missed` → `call.missed` |
//! | `direction` | required | `inbound` (the customer is the `caller`) or `outbound` (the customer is the `callee`) |
//! | `caller`, `callee` | | phone numbers or extensions; the customer's number becomes a `phone` identifier when it is a valid number (national numbers read in the configured default region), else it is kept as attribute `unparsed.phone` and named in the answer's warnings |
//! | `queue`, `agent_id` | | queue or hunt group, and the agent who took the call |
//! | `started_at`, `answered_at`, `ended_at` | | RFC 3339 times; the event's time is the one of its state (`ringing` → `started_at`, `answered`/`transferred` → `answered_at`, `ended`/`missed` → `ended_at`), else `started_at`, else the time of receipt |
//! | `occurred_at` | | RFC 3339; overrides the state's own time |
//! | `duration_seconds` | | talk time; for `ended` it defaults to `ended_at − answered_at` |
//! | `customer_name` | | the name the PBX or CRM knows (display name hint) |
//! | `account` | | the customer number, e.g. from an IVR lookup: an `account` identifier |
//! | `reason` | | the contact reason (IVR choice, wrap-up code or free text) |
//! | `outcome` | | how the call ended (`resolved`, `abandoned`, `voicemail`, ...) |
//! | `sequence` | | a counter for repeated states of one call (a second transfer) |
//!
//! The event id is `call_id:state` (`call_id:state:sequence` with a
//! sequence), so a PBX that resends a state change does not duplicate it.
//! Unknown fields are refused, naming the field, so a misspelt field is not
//! silently lost. An event whose customer cannot be identified (an anonymous
//! caller, an internal extension, no account) is left out; the answer's
//! warnings still name the number that did not parse.

use chrono::{DateTime, Utc};
use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierKind};

use crate::{
    ChannelError, Context, MAX_REASON, MAX_SHORT_TEXT, Outcome, Result, Warning, bounded,
    json_choice, json_object, json_path, json_take, rfc3339_time, set_attribute,
};

/// The `source` of CTI events.
pub const SOURCE: &str = "cti";

/// Every field of a CTI event.
const FIELDS: &[&str] = &[
    "call_id",
    "state",
    "direction",
    "caller",
    "callee",
    "queue",
    "agent_id",
    "started_at",
    "answered_at",
    "ended_at",
    "occurred_at",
    "duration_seconds",
    "customer_name",
    "account",
    "reason",
    "outcome",
    "sequence",
];

/// Longest call id (it is the conversation id and part of the event id).
const MAX_CALL_ID: usize = 200;

/// Parses a CTI body (one event or `{"events": [...]}`) into call events.
pub fn parse(body: &[u8], context: &Context) -> Result<Outcome> {
    crate::json_events(body, |value, path, warnings| {
        parse_event(value, path, context, warnings).map(|draft| [draft])
    })
}

/// A call state as the PBX reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    Answered,
    Transferred,
    Ended,
    Missed,
}

impl State {
    fn parse(raw: &str, path: &str) -> Result<Self> {
        json_choice(
            raw,
            path,
            "state",
            &[
                ("ringing", State::Ringing),
                ("answered", State::Answered),
                ("transferred", State::Transferred),
                ("ended", State::Ended),
                ("missed", State::Missed),
            ],
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            State::Ringing => "ringing",
            State::Answered => "answered",
            State::Transferred => "transferred",
            State::Ended => "ended",
            State::Missed => "missed",
        }
    }

    fn event_type(self) -> EventType {
        match self {
            State::Ringing => EventType::CallStarted,
            State::Answered | State::Transferred => EventType::CallAnswered,
            State::Ended => EventType::CallEnded,
            State::Missed => EventType::CallMissed,
        }
    }
}

fn parse_event(
    value: serde_json::Value,
    path: &str,
    context: &Context,
    warnings: &mut Vec<Warning>,
) -> Result<EventDraft> {
    let mut event = json_object(value, path, FIELDS)?;
    let mut text = |name: &str| json_take::<String>(&mut event, name, path);
    let call_id = text("call_id")?;
    let state = text("state")?;
    let direction = text("direction")?;
    let caller = text("caller")?;
    let callee = text("callee")?;
    let queue = text("queue")?;
    let agent_id = text("agent_id")?;
    let customer_name = text("customer_name")?;
    let account = text("account")?;
    let reason = text("reason")?;
    let outcome = text("outcome")?;
    let mut time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        let field = json_path(path, name);
        match json_take::<String>(&mut event, name, path)? {
            None => Ok(None),
            Some(raw) => rfc3339_time(&raw, &field).map(Some),
        }
    };
    let started_at = time("started_at")?;
    let answered_at = time("answered_at")?;
    let ended_at = time("ended_at")?;
    let occurred_at = time("occurred_at")?;
    let duration_seconds = json_take::<u32>(&mut event, "duration_seconds", path)?;
    let sequence = json_take::<u32>(&mut event, "sequence", path)?;

    let required = |value: Option<String>, name: &str| {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ChannelError::malformed(json_path(path, name), "is required"))
    };
    let call_id = required(call_id, "call_id")?;
    let call_id = call_id.trim().to_owned();
    if call_id.chars().count() > MAX_CALL_ID || call_id.chars().any(char::is_control) {
        return Err(ChannelError::malformed(
            json_path(path, "call_id"),
            format!("must be at most {MAX_CALL_ID} printable characters"),
        ));
    }
    let state = State::parse(&required(state, "state")?, path)?;
    let direction = match required(direction, "direction")?.trim() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        _ => {
            return Err(ChannelError::malformed(
                json_path(path, "direction"),
                "must be inbound or outbound",
            ));
        }
    };

    let (customer_field, customer_number, line) = match direction {
        Direction::Inbound => ("caller", caller, callee),
        Direction::Outbound => ("callee", callee, caller),
    };

    let state_time = match state {
        State::Ringing => started_at,
        State::Answered | State::Transferred => answered_at,
        State::Ended | State::Missed => ended_at,
    };
    let duration_seconds = duration_seconds.or_else(|| match (state, answered_at, ended_at) {
        (State::Ended, Some(answered), Some(ended)) if ended >= answered => {
            u32::try_from((ended - answered).num_seconds()).ok()
        }
        _ => None,
    });
    let outcome = match state {
        State::Transferred => Some("transferred".to_owned()),
        _ => outcome.as_deref().and_then(|o| bounded(o, MAX_SHORT_TEXT)),
    };
    let event_id = match sequence {
        Some(sequence) => format!("{call_id}:{}:{sequence}", state.as_str()),
        None => format!("{call_id}:{}", state.as_str()),
    };
    let mut draft = EventDraft {
        event_id: Some(event_id),
        occurred_at: occurred_at
            .or(state_time)
            .or(started_at)
            .map(crate::rfc3339),
        conversation_id: Some(call_id),
        contact_reason: reason.as_deref().and_then(|r| bounded(r, MAX_REASON)),
        agent_id: agent_id.as_deref().and_then(|a| bounded(a, MAX_SHORT_TEXT)),
        queue: queue.as_deref().and_then(|q| bounded(q, MAX_SHORT_TEXT)),
        duration_seconds,
        outcome,
        display_name: customer_name
            .as_deref()
            .and_then(|n| bounded(n, MAX_SHORT_TEXT)),
        ..crate::draft(Channel::Phone, SOURCE, state.event_type(), direction)
    };
    if let Some(line) = line {
        set_attribute(&mut draft, "cti.line", &line);
    }
    warnings.extend(crate::identify(
        &mut draft,
        [
            (
                IdentifierKind::Phone,
                json_path(path, customer_field),
                customer_number.as_deref(),
            ),
            (
                IdentifierKind::Account,
                json_path(path, "account"),
                account.as_deref(),
            ),
        ],
        context,
    ));
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            received_at: "2026-11-24T12:00:00Z".parse().expect("time"),
            default_region: "NL".parse().ok(),
        }
    }

    fn one(body: &str) -> EventDraft {
        match parse(body.as_bytes(), &context()).expect("parses") {
            Outcome::Events { mut events, .. } if events.len() == 1 => events.remove(0).draft,
            other => panic!("expected one event, got {other:?}"),
        }
    }

    #[test]
    fn states_map_to_call_event_types() {
        for (state, expected) in [
            ("ringing", "call.started"),
            ("answered", "call.answered"),
            ("transferred", "call.answered"),
            ("ended", "call.ended"),
            ("missed", "call.missed"),
        ] {
            let body = format!(
                r#"{{"call_id":"c1","state":"{state}","direction":"inbound","caller":"020 794 0958"}}"#
            );
            let draft = one(&body);
            assert_eq!(draft.event_type.as_deref(), Some(expected), "{state}");
            assert_eq!(
                draft.event_id.as_deref(),
                Some(format!("c1:{state}").as_str())
            );
        }
    }

    #[test]
    fn talk_time_defaults_to_answered_until_ended() {
        let draft = one(
            r#"{"call_id":"c1","state":"ended","direction":"inbound","caller":"+31207940958",
                "answered_at":"2026-11-24T10:00:00+01:00","ended_at":"2026-11-24T09:03:05Z"}"#,
        );
        assert_eq!(draft.duration_seconds, Some(185));
        assert_eq!(draft.occurred_at.as_deref(), Some("2026-11-24T09:03:05Z"));
    }

    #[test]
    fn a_transfer_is_answered_again_with_its_own_sequence() {
        let draft = one(
            r#"{"call_id":"c1","state":"transferred","direction":"outbound","callee":"0612345678",
                "caller":"204","queue":"retention","agent_id":"a-9","sequence":2,"outcome":"ignored"}"#,
        );
        assert_eq!(draft.event_id.as_deref(), Some("c1:transferred:2"));
        assert_eq!(draft.outcome.as_deref(), Some("transferred"));
        assert_eq!(draft.queue.as_deref(), Some("retention"));
        assert_eq!(draft.identifiers[0].value, "+31612345678");
        assert_eq!(
            draft.attributes.get("cti.line").map(String::as_str),
            Some("204")
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let error = |body: &str| parse(body.as_bytes(), &context()).expect_err("refused");
        assert_eq!(
            error(r#"{"call_id":"c1","state":"ended","direction":"inbound","colour":"red"}"#),
            ChannelError::malformed(
                "colour",
                format!("unknown field; expected one of {}", FIELDS.join(", "))
            )
        );
        let ChannelError::Malformed { field, .. } = error(
            r#"{"events":[{"call_id":"c1","state":"ended","direction":"inbound"},{"call_id":"c2","state":"hung up","direction":"inbound"}]}"#,
        ) else {
            panic!("malformed");
        };
        assert_eq!(field.as_deref(), Some("events[1].state"));
        for (body, expected) in [
            (r#"{"state":"ended","direction":"inbound"}"#, "call_id"),
            (
                r#"{"call_id":" ","state":"ended","direction":"inbound"}"#,
                "call_id",
            ),
            (r#"{"call_id":"c","direction":"inbound"}"#, "state"),
            (
                r#"{"call_id":"c","state":"ended","direction":"sideways"}"#,
                "direction",
            ),
            (
                r#"{"call_id":"c","state":"ended","direction":"inbound","ended_at":"yesterday"}"#,
                "ended_at",
            ),
            (
                r#"{"call_id":"c","state":"ended","direction":"inbound","duration_seconds":-1}"#,
                "duration_seconds",
            ),
            (
                r#"{"call_id":5,"state":"ended","direction":"inbound"}"#,
                "call_id",
            ),
            (
                r#"{"call_id":"a\u0000b","state":"ended","direction":"inbound"}"#,
                "call_id",
            ),
        ] {
            let ChannelError::Malformed { field, .. } = error(body) else {
                panic!("{body} should be malformed");
            };
            assert_eq!(field.as_deref(), Some(expected), "{body}");
        }
        let long_id = format!(
            r#"{{"call_id":"{}","state":"ended","direction":"inbound"}}"#,
            "c".repeat(201)
        );
        assert!(
            matches!(error(&long_id), ChannelError::Malformed { field: Some(f), .. } if f == "call_id")
        );
    }

    #[test]
    fn an_unidentifiable_caller_is_ignored_with_a_warning() {
        let outcome = parse(
            br#"{"call_id":"c1","state":"missed","direction":"inbound","caller":"anonymous"}"#,
            &context(),
        )
        .expect("parses");
        assert_eq!(
            outcome,
            Outcome::Ignored {
                reason: "no_identifier",
                warnings: vec![Warning {
                    field: "caller".into(),
                    kind: IdentifierKind::Phone,
                    message: "not a valid phone number".into(),
                }],
            }
        );
    }

    #[test]
    fn a_number_that_does_not_parse_is_kept_beside_the_account() {
        let body = br#"{"events":[{"call_id":"c1","state":"ended","direction":"outbound",
            "callee":"0612345678","account":"C-1"}]}"#;
        let no_region = Context {
            default_region: None,
            ..context()
        };
        let outcome = parse(body, &no_region).expect("parses");
        assert_eq!(outcome.warnings().len(), 1);
        assert_eq!(outcome.warnings()[0].field, "events[0].callee");
        assert!(
            outcome.warnings()[0].message.contains("needs a country"),
            "{:?}",
            outcome.warnings()
        );
        let draft = outcome.into_drafts().remove(0);
        assert_eq!(draft.identifiers.len(), 1, "the account is left");
        assert_eq!(
            draft.attributes.get("unparsed.phone").map(String::as_str),
            Some("0612345678")
        );
    }
}
