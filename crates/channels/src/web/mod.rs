//! Web forms, page views and live chat: a JSON schema Panorama defines for
//! browsers (a public write key, accepted only from configured origins; see
//! [`origin_allowed`]) and web back ends (a channel token). Posted to
//! `/v1/channels/web/events`; keys and origins are checked by the server.
//!
//! A body is one event object or `{"events": [ ... ]}` (at most 500):
//!
//! ```json
//! {
//!   "type": "form.submitted",
//!   "visitor_id": "v-7f3c9a1e",
//!   "event_id": "contact-form-3b1d",
//!   "occurred_at": "2026-11-24T10:12:00Z",
//!   "url": "https://shop.example/contact",
//!   "title": "Contact us",
//!   "referrer": "https://shop.example/orders/1001",
//!   "form": {
//!     "id": "contact",
//!     "fields": {
//!       "name": "Anna de Vries",
//!       "email": "Anna@Example.NL",
//!       "phone": "+31 6 1234 5678",
//!       "account": "C-1001",
//!       "subject": "Order 1001",
//!       "message": "My parcel has not arrived",
//!       "order_number": "1001"
//!     }
//!   },
//!   "attributes": {"utm_source": "newsletter"}
//! }
//! ```
//!
//! | field | | meaning |
//! | --- | --- | --- |
//! | `type` | required | `form.submitted`, `page.viewed` (channel `web`), `chat.started`, `chat.message`, `chat.ended` (channel `chat`) |
//! | `visitor_id` | | the site's first-party visitor cookie: a weak `visitor` identifier |
//! | `event_id` | | an idempotency key (at most 200 characters): a resent event is the same event |
//! | `occurred_at` | | RFC 3339; defaults to the time of receipt |
//! | `url`, `title`, `referrer` | | the page; the title is the subject of a page view |
//! | `customer` | | `{email, phone, account, name}`: who a logged-in session belongs to (back ends) |
//! | `form` | for `form.submitted` | `{id, fields}`; `fields` maps names to strings, numbers or booleans. `email`, `phone` and `account` become identifiers (this is how an anonymous visitor is linked to a known customer; a value that does not parse is kept as attribute `unparsed.<kind>` and named in the answer's warnings), `name` (or `first_name` + `last_name`) the display name, `subject` the subject, `message` the summary and contact reason; other fields are kept as `form.<name>` attributes (at most 32; fields named like passwords, card numbers or tokens are dropped). A chat's pre-chat form goes here too. |
//! | `chat` | for `chat.*` | `{session_id, agent_id, queue, duration_seconds, transcript: [{from, text, at, id}]}`; `session_id` (required) is the conversation id; `from` is `visitor`, `agent` or `bot` |
//! | `attributes` | | up to 32 extra string values |
//!
//! Chat events: `chat.started` (id `<session_id>:started`, the visitor's
//! first line as contact reason), `chat.message` (one event per transcript
//! line, inbound from the visitor and outbound from an agent or bot; id
//! `<session_id>:<line id>`, else derived from the line's time, author and
//! text), `chat.ended` (id `<session_id>:ended`, the transcript as summary,
//! the session length as duration). Sources: `web.form`, `web.beacon` (page
//! views), `web.chat`. Unknown fields are refused, naming the field. An
//! event without any identifier is left out (the answer still names the
//! values that did not parse).

mod chat;
mod forms;
mod origin;

use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierKind};
use serde_json::Value;

use crate::{
    Candidate, ChannelError, Context, MAX_SHORT_TEXT, Outcome, Result, Warning, bounded,
    json_object, json_path, json_take, rfc3339_time, set_attribute,
};
pub use origin::origin_allowed;

/// The `source` of form submissions.
pub const SOURCE_FORM: &str = "web.form";
/// The `source` of page views.
pub const SOURCE_BEACON: &str = "web.beacon";
/// The `source` of chat events.
pub const SOURCE_CHAT: &str = "web.chat";

const FIELDS: &[&str] = &[
    "type",
    "visitor_id",
    "event_id",
    "occurred_at",
    "url",
    "title",
    "referrer",
    "customer",
    "form",
    "chat",
    "attributes",
];
const CUSTOMER_FIELDS: &[&str] = &["email", "phone", "account", "name"];

/// Longest idempotency key, session id or line id.
const MAX_ID: usize = 200;
/// Most caller attributes accepted.
const MAX_CALLER_ATTRIBUTES: usize = 32;
/// The contract's bound.
const MAX_SUBJECT: usize = 998;

/// Parses a web body (one event or `{"events": [...]}`) into events.
pub fn parse(body: &[u8], context: &Context) -> Result<Outcome> {
    crate::json_events(body, |value, path, warnings| {
        parse_event(value, path, context, warnings)
    })
}

/// What a web event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FormSubmitted,
    PageViewed,
    ChatStarted,
    ChatMessage,
    ChatEnded,
}

impl Kind {
    fn parse(raw: &str, path: &str) -> Result<Self> {
        crate::json_choice(
            raw,
            path,
            "type",
            &[
                ("form.submitted", Kind::FormSubmitted),
                ("page.viewed", Kind::PageViewed),
                ("chat.started", Kind::ChatStarted),
                ("chat.message", Kind::ChatMessage),
                ("chat.ended", Kind::ChatEnded),
            ],
        )
    }

    fn event_type(self) -> EventType {
        match self {
            Kind::FormSubmitted => EventType::FormSubmitted,
            Kind::PageViewed => EventType::PageViewed,
            Kind::ChatStarted => EventType::ChatStarted,
            Kind::ChatMessage => EventType::ChatMessage,
            Kind::ChatEnded => EventType::ChatEnded,
        }
    }

    fn channel_and_source(self) -> (Channel, &'static str) {
        match self {
            Kind::FormSubmitted => (Channel::Web, SOURCE_FORM),
            Kind::PageViewed => (Channel::Web, SOURCE_BEACON),
            Kind::ChatStarted | Kind::ChatMessage | Kind::ChatEnded => (Channel::Chat, SOURCE_CHAT),
        }
    }
}

/// Who the event is about, gathered from `customer` and the form.
#[derive(Debug, Default)]
struct Person {
    email: Option<Given>,
    phone: Option<Given>,
    account: Option<Given>,
    name: Option<String>,
}

/// An identifier value as given, and the JSON path it was given at.
#[derive(Debug)]
struct Given {
    value: String,
    field: String,
}

impl Given {
    /// What [`crate::identify`] reads as a `kind` identifier.
    fn candidate(kind: IdentifierKind, given: Option<&Given>) -> Candidate<'_> {
        (
            kind,
            given.map(|g| g.field.clone()).unwrap_or_default(),
            given.map(|g| g.value.as_str()),
        )
    }
}

fn parse_event(
    value: Value,
    path: &str,
    context: &Context,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<EventDraft>> {
    let mut event = json_object(value, path, FIELDS)?;
    let mut text = |name: &str| json_take::<String>(&mut event, name, path);
    let kind = text("type")?.filter(|t| !t.trim().is_empty());
    let visitor_id = text("visitor_id")?;
    let event_id = text("event_id")?;
    let occurred_at = text("occurred_at")?;
    let url = text("url")?;
    let title = text("title")?;
    let referrer = text("referrer")?;
    let customer = event.remove("customer").filter(|v| !v.is_null());
    let form = event.remove("form").filter(|v| !v.is_null());
    let chat = event.remove("chat").filter(|v| !v.is_null());
    let attributes = json_take::<serde_json::Map<String, Value>>(&mut event, "attributes", path)?;

    let kind = Kind::parse(
        &kind.ok_or_else(|| ChannelError::malformed(json_path(path, "type"), "is required"))?,
        path,
    )?;
    let event_id = event_id
        .map(|id| checked_id(&id, &json_path(path, "event_id")))
        .transpose()?;
    let occurred_at = occurred_at
        .map(|raw| rfc3339_time(&raw, &json_path(path, "occurred_at")))
        .transpose()?;
    let mut person = match customer {
        Some(value) => parse_customer(value, &json_path(path, "customer"))?,
        None => Person::default(),
    };
    let form = match form {
        Some(value) => Some(forms::parse_form(
            value,
            &json_path(path, "form"),
            &mut person,
        )?),
        None if kind == Kind::FormSubmitted => {
            return Err(ChannelError::malformed(
                json_path(path, "form"),
                "is required for form.submitted",
            ));
        }
        None => None,
    };
    let chat = match chat {
        Some(value) => Some(chat::parse_chat(value, &json_path(path, "chat"))?),
        None if matches!(
            kind,
            Kind::ChatStarted | Kind::ChatMessage | Kind::ChatEnded
        ) =>
        {
            return Err(ChannelError::malformed(
                json_path(path, "chat"),
                "is required for chat events",
            ));
        }
        None => None,
    };

    // What every event of this object shares.
    let (channel, source) = kind.channel_and_source();
    let mut base = EventDraft {
        event_id: event_id.clone(),
        occurred_at: occurred_at.map(crate::rfc3339),
        display_name: person
            .name
            .as_deref()
            .and_then(|n| bounded(n, MAX_SHORT_TEXT)),
        ..crate::draft(channel, source, kind.event_type(), Direction::Inbound)
    };
    if let Some(attributes) = attributes {
        caller_attributes(&mut base, attributes, &json_path(path, "attributes"))?;
    }
    for (key, value) in [
        ("web.url", &url),
        ("web.referrer", &referrer),
        ("web.page_title", &title),
    ] {
        if let Some(value) = value {
            set_attribute(&mut base, key, value);
        }
    }

    if let Some(form) = &form {
        form.fill(&mut base);
    }
    // After the caller's attributes, so `unparsed.*` is always what was
    // given as an identifier.
    warnings.extend(crate::identify(
        &mut base,
        [
            (
                IdentifierKind::Visitor,
                json_path(path, "visitor_id"),
                visitor_id.as_deref(),
            ),
            Given::candidate(IdentifierKind::Email, person.email.as_ref()),
            Given::candidate(IdentifierKind::Phone, person.phone.as_ref()),
            Given::candidate(IdentifierKind::Account, person.account.as_ref()),
        ],
        context,
    ));
    if kind == Kind::PageViewed || base.subject.is_none() {
        base.subject = title
            .as_deref()
            .and_then(|t| bounded(t, MAX_SUBJECT))
            .or(base.subject);
    }

    let Some(chat) = chat else {
        return Ok(vec![base]);
    };
    chat::events(kind, event_id, &chat, base, path)
}

fn parse_customer(value: Value, path: &str) -> Result<Person> {
    let mut customer = json_object(value, path, CUSTOMER_FIELDS)?;
    let mut given = |name: &str| {
        json_take::<String>(&mut customer, name, path).map(|value| {
            value.map(|value| Given {
                value,
                field: json_path(path, name),
            })
        })
    };
    Ok(Person {
        email: given("email")?,
        phone: given("phone")?,
        account: given("account")?,
        name: json_take::<String>(&mut customer, "name", path)?,
    })
}

/// Caller-supplied attributes (strings, numbers or booleans), checked
/// against the contract's bounds.
fn caller_attributes(
    draft: &mut EventDraft,
    attributes: serde_json::Map<String, Value>,
    path: &str,
) -> Result<()> {
    if attributes.len() > MAX_CALLER_ATTRIBUTES {
        return Err(ChannelError::malformed(
            path,
            format!("at most {MAX_CALLER_ATTRIBUTES} attributes"),
        ));
    }
    for (key, value) in attributes {
        let key_ok = !key.trim().is_empty()
            && key.chars().count() <= 64
            && !key.chars().any(char::is_control);
        if !key_ok {
            return Err(ChannelError::malformed(
                path,
                "keys must be 1 to 64 printable characters",
            ));
        }
        let Some(value) = scalar(value) else {
            return Err(ChannelError::malformed(
                json_path(path, &key),
                "must be a string, number or boolean",
            ));
        };
        set_attribute(draft, &key, &value);
    }
    Ok(())
}

/// A JSON string, number or boolean as text; `Some("")` for null.
fn scalar(value: Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// An id the caller chose: trimmed, 1 to 200 printable characters.
fn checked_id(raw: &str, field: &str) -> Result<String> {
    let id = raw.trim();
    if id.is_empty() || id.chars().count() > MAX_ID || id.chars().any(char::is_control) {
        return Err(ChannelError::malformed(
            field,
            format!("must be 1 to {MAX_ID} printable characters"),
        ));
    }
    Ok(id.to_owned())
}
