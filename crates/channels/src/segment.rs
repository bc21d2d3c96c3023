//! Segment Spec calls (`identify`, `track`, `page`, `screen`, `group`,
//! `alias`, and `batch` of them) as Segment's and RudderStack's SDKs and
//! webhook destinations send them. Posted to `/v1/segment` (one call or a
//! batch) and `/v1/segment/batch`; the write key or channel token is
//! checked by the server, which also decides the trust of the identifiers.
//!
//! A body is one call, or `{"batch": [...], "sentAt": ..., "context": ...}`
//! (at most 1,000 calls of at most 32 KB each; `context` at the top applies
//! to every call, a call's own keys win):
//!
//! ```json
//! {"type": "identify", "userId": "C-1001", "anonymousId": "a-7f3c",
//!  "messageId": "m-1", "timestamp": "2026-11-24T10:00:00Z",
//!  "sentAt": "2026-11-24T10:00:05Z",
//!  "traits": {"email": "anna@example.nl", "name": "Anna de Vries", "plan": "gold"},
//!  "context": {"library": {"name": "analytics-python", "version": "2.3.6"}}}
//! ```
//!
//! | Segment | Panorama |
//! | --- | --- |
//! | `userId` | an `account` identifier |
//! | `anonymousId` | a `visitor` identifier (weak) |
//! | `traits.email`, `traits.phone` (of `identify`; `context.traits` for the other calls) | `email` and `phone` identifiers |
//! | `traits.name`, else `firstName` + `lastName` | the display name |
//! | `messageId` | the event id (a UUIDv5 of `segment` and the message id): a retry is the same event |
//! | `timestamp`, `sentAt` | `occurred_at`, corrected for the sender's clock as the Spec says: time of receipt − (`sentAt` − `timestamp`). A call that has `originalTimestamp` was corrected upstream: its `timestamp` is kept |
//! | `identify` | `customer.identified`; the other traits as `customer.<trait>` attributes (nested objects with dots, at most 24) |
//! | `track` | `contact.recorded` when its `event` is one of the configured contact events, else `activity.tracked`; the event name is the subject |
//! | `page` / `screen` | `page.viewed` / `screen.viewed`; the title or name is the subject, `url`, `referrer`, `title` as `web.*` attributes |
//! | `group` | `customer.grouped`; `groupId` as `customer.group.id`, its traits as `customer.group.<trait>` |
//! | `alias` | `customer.aliased` with `userId` (account) and `previousId` as a weak `visitor` id: it joins the anonymous history, never two known customers |
//! | `properties` | `properties.<name>` attributes (at most 12) |
//! | `context` | `context.<path>` attributes (at most 12), but `ip`, `location.latitude` and `location.longitude` (personal data no agent needs) and `traits` |
//!
//! Every event is channel `web`, source `segment`, inbound. Unknown fields
//! are ignored, as Segment does; fields named like passwords, card numbers
//! or tokens are never stored.

use chrono::{DateTime, NaiveDateTime, Utc};
use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierKind};
use serde_json::{Map, Value};

use crate::{
    ChannelError, Context, Found, MAX_SHORT_TEXT, Outcome, Result, Warning, bounded, json_path,
    sensitive_field, set_attribute,
};

/// The `source` of every Segment event.
pub const SOURCE: &str = "segment";

/// Most calls in one request.
pub const MAX_CALLS: usize = 1000;

/// Largest call, serialised (Segment's limit).
pub const MAX_CALL_BYTES: usize = 32 * 1024;

/// Largest request body (Segment's limit for a batch).
pub const MAX_BODY_BYTES: usize = 500 * 1024;

/// Most `customer.*` attributes from one call's traits.
const MAX_TRAITS: usize = 24;
/// Most `properties.*` attributes from one call.
const MAX_PROPERTIES: usize = 12;
/// Most `context.*` attributes from one call.
const MAX_CONTEXT: usize = 12;
/// How deep nested objects are flattened into dotted keys; deeper ones are
/// kept as JSON text.
const MAX_DEPTH: usize = 3;
/// Longest attribute key (the contract's bound).
const MAX_KEY_CHARS: usize = 64;
/// Longest message id kept (the contract allows 512 for the derived id).
const MAX_MESSAGE_ID: usize = 400;
/// The contract's bound on subjects.
const MAX_SUBJECT: usize = 998;

/// Context keys never kept: the address and the precise position are
/// personal data an agent does not need, and `traits` is read for
/// identifiers only.
const DROPPED_CONTEXT: &[&str] = &["ip", "traits", "location.latitude", "location.longitude"];

/// A request's calls, read but not yet mapped: the write key is in the
/// body for some SDKs (`analytics-python` sends it as `writeKey`), so the
/// server reads it before it decides whether to go on.
#[derive(Debug, Clone)]
pub struct Body {
    calls: Vec<(String, Map<String, Value>)>,
    sent_at: Option<Value>,
    write_key: Option<String>,
}

/// Reads a body: one call, or `{"batch": [...]}`.
pub fn read(body: &[u8]) -> Result<Body> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ChannelError::malformed_body(format!("body is not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ChannelError::malformed_body(
            "body must be one call object or {\"batch\": [...]}",
        ));
    };
    let write_key = match object.remove("writeKey") {
        Some(Value::String(key)) => Some(key),
        _ => None,
    };
    let Some(batch) = object.remove("batch") else {
        check_size(&object, "")?;
        let sent_at = object.get("sentAt").cloned();
        return Ok(Body {
            calls: vec![(String::new(), object)],
            sent_at,
            write_key,
        });
    };
    let Value::Array(items) = batch else {
        return Err(ChannelError::malformed(
            "batch",
            "must be an array of call objects",
        ));
    };
    if items.is_empty() || items.len() > MAX_CALLS {
        return Err(ChannelError::malformed(
            "batch",
            format!("must hold 1 to {MAX_CALLS} calls"),
        ));
    }
    let shared_context = match object.remove("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(context)) => Some(context),
        Some(_) => return Err(ChannelError::malformed("context", "must be an object")),
    };
    let mut calls = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("batch[{index}]");
        let Value::Object(mut call) = item else {
            return Err(ChannelError::malformed(path, "must be a call object"));
        };
        check_size(&call, &path)?;
        if let Some(shared) = &shared_context {
            merge_context(&mut call, shared, &path)?;
        }
        calls.push((path, call));
    }
    Ok(Body {
        calls,
        sent_at: object.remove("sentAt"),
        write_key,
    })
}

/// Reads and maps a body in one go (see [`read`] and [`Body::events`]).
pub fn parse(body: &[u8], context: &Context, contact_events: &[String]) -> Result<Outcome> {
    read(body)?.events(context, contact_events)
}

impl Body {
    /// The write key the body names (`writeKey`), if any.
    pub fn write_key(&self) -> Option<&str> {
        self.write_key.as_deref()
    }

    /// Maps every call to an event; `contact_events` are the `track` event
    /// names that count as customer contacts (compared without regard to
    /// case or surrounding spaces).
    pub fn events(self, context: &Context, contact_events: &[String]) -> Result<Outcome> {
        let batch_sent_at = match &self.sent_at {
            None | Some(Value::Null) => None,
            Some(value) => Some(time(value, "sentAt")?),
        };
        let mut events = Vec::with_capacity(self.calls.len());
        let mut warnings = Vec::new();
        for (path, call) in self.calls {
            let draft = parse_call(
                call,
                &path,
                batch_sent_at,
                context,
                contact_events,
                &mut warnings,
            )?;
            events.push(Found { path, draft });
        }
        Ok(crate::events_or_ignored(events, warnings))
    }
}

/// Refuses a call larger than Segment's limit.
fn check_size(call: &Map<String, Value>, path: &str) -> Result<()> {
    let size = serde_json::to_vec(call).map_or(usize::MAX, |bytes| bytes.len());
    if size <= MAX_CALL_BYTES {
        return Ok(());
    }
    let message = format!("a call may be at most {} KB", MAX_CALL_BYTES / 1024);
    Err(if path.is_empty() {
        ChannelError::malformed_body(message)
    } else {
        ChannelError::malformed(path, message)
    })
}

/// Puts the batch's `context` under the call's: the call's keys win.
fn merge_context(
    call: &mut Map<String, Value>,
    shared: &Map<String, Value>,
    path: &str,
) -> Result<()> {
    let mut merged = shared.clone();
    match call.remove("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(own)) => merged.extend(own),
        Some(_) => {
            return Err(ChannelError::malformed(
                json_path(path, "context"),
                "must be an object",
            ));
        }
    }
    call.insert("context".to_owned(), Value::Object(merged));
    Ok(())
}

/// The Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

/// What the mapping of one call reads from it.
struct Fields<'a> {
    call: &'a mut Map<String, Value>,
    path: &'a str,
}

impl Fields<'_> {
    fn field(&self, name: &str) -> String {
        json_path(self.path, name)
    }

    /// A string (or a number, which some SDKs send for ids); absent, null
    /// and blank are `None`.
    fn text(&mut self, name: &str) -> Result<Option<String>> {
        match self.call.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok((!text.trim().is_empty()).then_some(text)),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(_) => Err(ChannelError::malformed(
                self.field(name),
                "must be a string",
            )),
        }
    }

    /// An object; absent and null are empty.
    fn object(&mut self, name: &str) -> Result<Map<String, Value>> {
        match self.call.remove(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(object)) => Ok(object),
            Some(_) => Err(ChannelError::malformed(
                self.field(name),
                "must be an object",
            )),
        }
    }

    fn required(&mut self, name: &str, call: &str) -> Result<String> {
        self.text(name)?.ok_or_else(|| {
            ChannelError::malformed(self.field(name), format!("is required for {call}"))
        })
    }
}

fn parse_call(
    mut call: Map<String, Value>,
    path: &str,
    batch_sent_at: Option<DateTime<Utc>>,
    context: &Context,
    contact_events: &[String],
    warnings: &mut Vec<Warning>,
) -> Result<EventDraft> {
    let mut fields = Fields {
        call: &mut call,
        path,
    };
    let kind = match fields.text("type")? {
        None => return Err(ChannelError::malformed(fields.field("type"), "is required")),
        Some(raw) => crate::json_choice(
            &raw,
            path,
            "type",
            &[
                ("identify", Call::Identify),
                ("track", Call::Track),
                ("page", Call::Page),
                ("screen", Call::Screen),
                ("group", Call::Group),
                ("alias", Call::Alias),
            ],
        )?,
    };
    let user_id = fields.text("userId")?;
    let anonymous_id = fields.text("anonymousId")?;
    let message_id = fields.text("messageId")?;
    let occurred_at = occurred_at(&mut fields, batch_sent_at, context.received_at)?;
    let traits = fields.object("traits")?;
    let properties = fields.object("properties")?;
    let mut call_context = fields.object("context")?;
    let context_traits = match call_context.remove("traits") {
        Some(Value::Object(traits)) => traits,
        _ => Map::new(),
    };

    let event_type = match kind {
        Call::Identify => EventType::CustomerIdentified,
        Call::Track => EventType::ActivityTracked,
        Call::Page => EventType::PageViewed,
        Call::Screen => EventType::ScreenViewed,
        Call::Group => EventType::CustomerGrouped,
        Call::Alias => EventType::CustomerAliased,
    };
    let mut draft = crate::draft(Channel::Web, SOURCE, event_type, Direction::Inbound);
    draft.occurred_at = occurred_at.map(crate::rfc3339);
    if let Some(id) = &message_id {
        let id = id.trim();
        if id.chars().count() > MAX_MESSAGE_ID || id.chars().any(char::is_control) {
            return Err(ChannelError::malformed(
                fields.field("messageId"),
                format!("must be at most {MAX_MESSAGE_ID} printable characters"),
            ));
        }
        // Never the id itself, even when it is a UUID: a sender must not
        // be able to take the id of another source's event.
        draft.event_id = Some(format!("message:{id}"));
        set_attribute(&mut draft, "segment.message_id", id);
    }

    // Who it is about: the user's traits (an identify call's own, else the
    // copy SDKs keep in `context.traits`).
    let person = if kind == Call::Identify {
        &traits
    } else {
        &context_traits
    };
    draft.display_name = display_name(person);
    let mut previous_id = None;
    match kind {
        Call::Identify => flatten_into(
            &mut draft,
            "customer",
            &traits,
            MAX_TRAITS,
            &["email", "phone"],
        ),
        Call::Track => {
            let event = fields.required("event", "track")?;
            if is_contact(&event, contact_events) {
                draft.event_type = Some(EventType::ContactRecorded.as_str().to_owned());
            }
            draft.subject = bounded(&event, MAX_SUBJECT);
        }
        Call::Page | Call::Screen => {
            let name = fields.text("name")?;
            let category = fields.text("category")?;
            let title = text_of(properties.get("title"));
            if kind == Call::Page {
                let page = match call_context.get("page") {
                    Some(Value::Object(page)) => page.clone(),
                    _ => Map::new(),
                };
                for (key, name) in [
                    ("web.url", "url"),
                    ("web.referrer", "referrer"),
                    ("web.page_title", "title"),
                ] {
                    let value = text_of(properties.get(name)).or_else(|| text_of(page.get(name)));
                    if let Some(value) = value {
                        set_attribute(&mut draft, key, &value);
                    }
                }
            }
            if let Some(category) = &category {
                set_attribute(&mut draft, "segment.category", category);
            }
            draft.subject = title
                .or(name)
                .and_then(|subject| bounded(&subject, MAX_SUBJECT));
        }
        Call::Group => {
            let group_id = fields.required("groupId", "group")?;
            set_attribute(&mut draft, "customer.group.id", &group_id);
            flatten_into(&mut draft, "customer.group", &traits, MAX_TRAITS, &["id"]);
        }
        Call::Alias => previous_id = Some(fields.required("previousId", "alias")?),
    }
    if matches!(kind, Call::Track | Call::Page | Call::Screen) {
        flatten_into(&mut draft, "properties", &properties, MAX_PROPERTIES, &[]);
    }
    flatten_into(
        &mut draft,
        "context",
        &call_context,
        MAX_CONTEXT,
        DROPPED_CONTEXT,
    );

    if user_id.is_none() && anonymous_id.is_none() {
        return Err(ChannelError::malformed(
            fields.field("userId"),
            "userId or anonymousId is required",
        ));
    }
    let person_text = |name: &str| text_of(person.get(name));
    let (email, phone) = (person_text("email"), person_text("phone"));
    let traits_path = if kind == Call::Identify {
        json_path(path, "traits")
    } else {
        json_path(path, "context.traits")
    };
    warnings.extend(crate::identify(
        &mut draft,
        [
            (
                IdentifierKind::Account,
                json_path(path, "userId"),
                user_id.as_deref(),
            ),
            (
                IdentifierKind::Email,
                json_path(&traits_path, "email"),
                email.as_deref(),
            ),
            (
                IdentifierKind::Phone,
                json_path(&traits_path, "phone"),
                phone.as_deref(),
            ),
            (
                IdentifierKind::Visitor,
                json_path(path, "anonymousId"),
                anonymous_id.as_deref(),
            ),
            (
                IdentifierKind::Visitor,
                json_path(path, "previousId"),
                previous_id.as_deref(),
            ),
        ],
        context,
    ));
    Ok(draft)
}

/// Whether `event` is one of the configured contact events.
fn is_contact(event: &str, contact_events: &[String]) -> bool {
    let event = event.trim();
    contact_events
        .iter()
        .any(|contact| contact.trim().eq_ignore_ascii_case(event))
}

/// When the call happened, corrected for the sender's clock: the Spec's
/// `receivedAt - (sentAt - timestamp)`, with the gateway's time of
/// receipt. Without `sentAt` the timestamp is kept as it is; a call with
/// `originalTimestamp` was corrected upstream (a Segment or RudderStack
/// destination), so its `timestamp` is kept; without either, `None` (the
/// time of receipt).
fn occurred_at(
    fields: &mut Fields<'_>,
    batch_sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let mut read = |name: &str| match fields.call.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => time(&value, &json_path(fields.path, name)).map(Some),
    };
    let timestamp = read("timestamp")?;
    let original = read("originalTimestamp")?;
    let sent_at = read("sentAt")?.or(batch_sent_at);
    Ok(match (timestamp, original, sent_at) {
        (Some(timestamp), Some(_), _) => Some(timestamp),
        (timestamp, original, sent_at) => {
            let Some(at) = timestamp.or(original) else {
                return Ok(None);
            };
            sent_at
                .and_then(|sent_at| received_at.checked_sub_signed(sent_at - at))
                .or(Some(at))
        }
    })
}

/// A Segment time: ISO 8601 with an offset, or without one (read as UTC).
fn time(value: &Value, field: &str) -> Result<DateTime<Utc>> {
    let malformed = || {
        ChannelError::malformed(
            field,
            "must be an ISO 8601 time such as 2026-11-24T10:00:00.000Z",
        )
    };
    let Value::String(raw) = value else {
        return Err(malformed());
    };
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| malformed())
}

/// A scalar JSON value as text; `None` for null, blank, arrays and objects.
fn text_of(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// The customer's name from traits: `name`, else first and last name.
fn display_name(traits: &Map<String, Value>) -> Option<String> {
    let name = text_of(traits.get("name")).or_else(|| {
        let parts: Vec<String> = ["firstName", "lastName", "first_name", "last_name"]
            .iter()
            .filter_map(|key| text_of(traits.get(*key)))
            .take(2)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    })?;
    bounded(&name, MAX_SHORT_TEXT)
}

/// Sets the values of `object` as `<prefix>.<key>` attributes (nested
/// objects as dotted keys, arrays and deeper objects as JSON text), at most
/// `max` of them, leaving out `skipped` keys (dotted paths below the
/// prefix), null values, keys the contract cannot hold, and fields named
/// like secrets.
fn flatten_into(
    draft: &mut EventDraft,
    prefix: &str,
    object: &Map<String, Value>,
    max: usize,
    skipped: &[&str],
) {
    let mut pairs = Vec::new();
    flatten(prefix, "", object, 1, skipped, max, &mut pairs);
    for (key, value) in pairs {
        set_attribute(draft, &key, &value);
    }
}

fn flatten(
    prefix: &str,
    below: &str,
    object: &Map<String, Value>,
    depth: usize,
    skipped: &[&str],
    max: usize,
    pairs: &mut Vec<(String, String)>,
) {
    for (name, value) in object {
        if pairs.len() >= max {
            return;
        }
        let path = if below.is_empty() {
            name.clone()
        } else {
            format!("{below}.{name}")
        };
        let usable = !name.trim().is_empty()
            && !name.chars().any(char::is_control)
            && !sensitive_field(name)
            && !skipped.contains(&path.as_str());
        if !usable {
            continue;
        }
        let key = format!("{prefix}.{path}");
        if key.chars().count() > MAX_KEY_CHARS {
            continue;
        }
        let text = match value {
            Value::Null => continue,
            Value::Object(inner) if depth < MAX_DEPTH => {
                flatten(prefix, &path, inner, depth + 1, skipped, max, pairs);
                continue;
            }
            Value::Array(_) | Value::Object(_) => value.to_string(),
            scalar => match text_of(Some(scalar)) {
                Some(text) => text,
                None => continue,
            },
        };
        pairs.push((key, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        raw.parse().expect("time")
    }

    fn corrected(call: Value, batch_sent_at: Option<&str>) -> Option<DateTime<Utc>> {
        let Value::Object(mut call) = call else {
            panic!("an object")
        };
        let mut fields = Fields {
            call: &mut call,
            path: "",
        };
        occurred_at(
            &mut fields,
            batch_sent_at.map(at),
            at("2026-11-24T12:00:00Z"),
        )
        .expect("times parse")
    }

    #[test]
    fn a_slow_sender_clock_is_corrected_as_the_spec_says() {
        // The sender's clock is an hour behind: it sent 5 s after the call.
        let call = serde_json::json!({
            "timestamp": "2026-11-24T10:59:55Z",
            "sentAt": "2026-11-24T11:00:00Z",
        });
        assert_eq!(corrected(call, None), Some(at("2026-11-24T11:59:55Z")));
        let call = serde_json::json!({"timestamp": "2026-11-24T10:59:55Z"});
        assert_eq!(
            corrected(call.clone(), Some("2026-11-24T11:00:00Z")),
            Some(at("2026-11-24T11:59:55Z")),
            "the batch's sentAt"
        );
        assert_eq!(
            corrected(call, None),
            Some(at("2026-11-24T10:59:55Z")),
            "no sentAt: kept"
        );
        let forwarded = serde_json::json!({
            "timestamp": "2026-11-24T09:00:00Z",
            "originalTimestamp": "2026-11-24T08:00:00Z",
            "sentAt": "2026-11-24T08:00:01Z",
        });
        assert_eq!(corrected(forwarded, None), Some(at("2026-11-24T09:00:00Z")));
        assert_eq!(corrected(serde_json::json!({}), None), None);
        let naive = serde_json::json!({"timestamp": "2026-11-24T10:00:00.250"});
        assert_eq!(corrected(naive, None), Some(at("2026-11-24T10:00:00.250Z")));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let call = serde_json::json!({
            "timestamp": "0001-01-01T00:00:00Z",
            "sentAt": "9999-12-31T23:59:59Z",
        });
        // Far out of the contract's range, which validation then refuses
        // naming `occurred_at`; no panic on the way.
        assert!(corrected(call, None).is_some_and(|at| at.timestamp() < 0));
    }

    #[test]
    fn nested_traits_flatten_within_bounds() {
        let traits = serde_json::json!({
            "plan": "gold",
            "address": {"city": "Utrecht", "geo": {"deep": {"deeper": 1}}},
            "tags": ["a", "b"],
            "password": "hunter2",
            "nothing": null,
            "k".repeat(70): "too long a key",
        });
        let Value::Object(traits) = traits else {
            panic!("an object")
        };
        let mut draft = EventDraft::default();
        flatten_into(&mut draft, "customer", &traits, 10, &[]);
        let keys: Vec<&str> = draft.attributes.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "customer.address.city",
                "customer.address.geo.deep",
                "customer.plan",
                "customer.tags"
            ]
        );
        assert_eq!(
            draft.attributes["customer.address.geo.deep"],
            r#"{"deeper":1}"#
        );
        assert_eq!(draft.attributes["customer.tags"], r#"["a","b"]"#);
        let mut few = EventDraft::default();
        flatten_into(&mut few, "customer", &traits, 2, &[]);
        assert_eq!(few.attributes.len(), 2);
    }
}
