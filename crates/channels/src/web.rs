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
//! | `form` | for `form.submitted` | `{id, fields}`; `fields` maps names to strings, numbers or booleans. `email`, `phone` and `account` become identifiers (this is how an anonymous visitor is linked to a known customer; values that do not parse are left out), `name` (or `first_name` + `last_name`) the display name, `subject` the subject, `message` the summary and contact reason; other fields are kept as `form.<name>` attributes (at most 32; fields named like passwords, card numbers or tokens are dropped). A chat's pre-chat form goes here too. |
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
//! event without any identifier is left out.

use chrono::{DateTime, Utc};
use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierDraft, IdentifierKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::text::SUMMARY_CHARS;
use crate::{
    ChannelError, Context, Outcome, Result, bounded, json_batch, json_object, json_path, json_take,
    set_attribute,
};

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
const FORM_FIELDS: &[&str] = &["id", "fields"];
const CHAT_FIELDS: &[&str] = &[
    "session_id",
    "agent_id",
    "queue",
    "duration_seconds",
    "transcript",
];
const LINE_FIELDS: &[&str] = &["from", "text", "at", "id"];

/// Longest idempotency key, session id or line id.
const MAX_ID: usize = 200;
/// Most form fields, transcript lines and caller attributes accepted.
const MAX_FORM_FIELDS: usize = 100;
const MAX_TRANSCRIPT_LINES: usize = 500;
const MAX_CALLER_ATTRIBUTES: usize = 32;
/// Most extra form fields kept as attributes.
const MAX_FORM_ATTRIBUTES: usize = 32;
/// The contract's bounds.
const MAX_SHORT_TEXT: usize = 200;
const MAX_REASON: usize = 500;
const MAX_SUBJECT: usize = 998;

/// Parses a web body (one event or `{"events": [...]}`) into events.
pub fn parse(body: &[u8], context: &Context) -> Result<Outcome> {
    let mut drafts = Vec::new();
    for (path, value) in json_batch(body)? {
        drafts.extend(parse_event(value, &path, context)?);
    }
    Ok(crate::events_or_ignored(drafts))
}

/// Whether a browser request from `origin` (its `Origin` header) may post:
/// an exact scheme, host and port match with an entry of `allowed` (default
/// ports and a trailing slash in the configuration do not matter, case does
/// not either), or any origin when `allowed` holds `"*"`. Without an
/// `Origin`, or with the opaque origin `null`, only `"*"` allows.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    if allowed.iter().any(|entry| entry.trim() == "*") {
        return true;
    }
    let Some(origin) = origin.and_then(normalised_origin) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|entry| normalised_origin(entry.trim().trim_end_matches('/')))
        .any(|entry| entry == origin)
}

/// `scheme://host:port` lower-cased with the port made explicit; `None` for
/// anything that is not an http(s) origin (paths, user info, `null`).
fn normalised_origin(raw: &str) -> Option<String> {
    let (scheme, authority) = raw.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || authority.chars().any(char::is_whitespace)
    {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority
        .rfind(':')
        .filter(|&colon| !authority[colon..].contains(']'))
    {
        Some(colon) => (
            &authority[..colon],
            authority[colon + 1..].parse::<u16>().ok()?,
        ),
        None => (authority.as_str(), default_port),
    };
    (!host.is_empty()).then(|| format!("{scheme}://{host}:{port}"))
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
        Ok(match raw.trim() {
            "form.submitted" => Kind::FormSubmitted,
            "page.viewed" => Kind::PageViewed,
            "chat.started" => Kind::ChatStarted,
            "chat.message" => Kind::ChatMessage,
            "chat.ended" => Kind::ChatEnded,
            other => {
                return Err(ChannelError::malformed(
                    json_path(path, "type"),
                    format!(
                        "unknown type \"{}\"; expected one of form.submitted, page.viewed, chat.started, chat.message, chat.ended",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        })
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
    email: Option<String>,
    phone: Option<String>,
    account: Option<String>,
    name: Option<String>,
}

/// A form: its id, the fields Panorama reads, and the rest.
#[derive(Debug, Default)]
struct WebForm {
    id: Option<String>,
    subject: Option<String>,
    message: Option<String>,
    extra: Vec<(String, String)>,
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Author {
    Visitor,
    Agent,
    Bot,
}

impl Author {
    fn as_str(self) -> &'static str {
        match self {
            Author::Visitor => "visitor",
            Author::Agent => "agent",
            Author::Bot => "bot",
        }
    }
}

#[derive(Debug)]
struct Line {
    author: Author,
    text: String,
    at: Option<DateTime<Utc>>,
    id: Option<String>,
}

#[derive(Debug)]
struct Chat {
    session_id: String,
    agent_id: Option<String>,
    queue: Option<String>,
    duration_seconds: Option<u32>,
    transcript: Vec<Line>,
}

fn parse_event(value: Value, path: &str, context: &Context) -> Result<Vec<EventDraft>> {
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
        Some(value) => Some(parse_form(value, &json_path(path, "form"), &mut person)?),
        None if kind == Kind::FormSubmitted => {
            return Err(ChannelError::malformed(
                json_path(path, "form"),
                "is required for form.submitted",
            ));
        }
        None => None,
    };
    let chat = match chat {
        Some(value) => Some(parse_chat(value, &json_path(path, "chat"))?),
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
    let identifiers: Vec<IdentifierDraft> = [
        (IdentifierKind::Visitor, visitor_id.as_deref()),
        (IdentifierKind::Email, person.email.as_deref()),
        (IdentifierKind::Phone, person.phone.as_deref()),
        (IdentifierKind::Account, person.account.as_deref()),
    ]
    .into_iter()
    .filter_map(|(kind, raw)| crate::identifier(kind, raw?, context))
    .collect();
    let (channel, source) = kind.channel_and_source();
    let mut base = EventDraft {
        event_id: event_id.clone(),
        occurred_at: occurred_at.map(crate::rfc3339),
        channel: Some(channel.as_str().to_owned()),
        source: Some(source.to_owned()),
        event_type: Some(kind.event_type().as_str().to_owned()),
        direction: Some(Direction::Inbound.as_str().to_owned()),
        identifiers,
        display_name: person
            .name
            .as_deref()
            .and_then(|n| bounded(n, MAX_SHORT_TEXT)),
        ..EventDraft::default()
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
        base.subject = form
            .subject
            .as_deref()
            .and_then(|s| bounded(s, MAX_SUBJECT));
        base.summary = form
            .message
            .as_deref()
            .and_then(|m| bounded(m, SUMMARY_CHARS));
        base.contact_reason = form.message.as_deref().and_then(|m| bounded(m, MAX_REASON));
        if let Some(id) = &form.id {
            set_attribute(&mut base, "form.id", id);
        }
        for (name, value) in form.extra.iter().take(MAX_FORM_ATTRIBUTES) {
            set_attribute(&mut base, &format!("form.{name}"), value);
        }
    }
    if kind == Kind::PageViewed || base.subject.is_none() {
        base.subject = title
            .as_deref()
            .and_then(|t| bounded(t, MAX_SUBJECT))
            .or(base.subject);
    }

    let Some(chat) = chat else {
        return Ok(vec![base]);
    };
    base.conversation_id = Some(chat.session_id.clone());
    base.agent_id = chat
        .agent_id
        .as_deref()
        .and_then(|a| bounded(a, MAX_SHORT_TEXT));
    base.queue = chat
        .queue
        .as_deref()
        .and_then(|q| bounded(q, MAX_SHORT_TEXT));
    let first_visitor_line = chat
        .transcript
        .iter()
        .find(|line| line.author == Author::Visitor)
        .map(|line| line.text.as_str());
    // The visitor's opening line says why they came: the contact reason of
    // the session's start and end (single messages do not repeat it).
    if kind != Kind::ChatMessage && base.contact_reason.is_none() {
        base.contact_reason = first_visitor_line.and_then(|t| bounded(t, MAX_REASON));
    }
    match kind {
        Kind::ChatStarted => {
            base.event_id =
                Some(event_id.unwrap_or_else(|| format!("{}:started", chat.session_id)));
            if base.summary.is_none() {
                base.summary = first_visitor_line.and_then(|t| bounded(t, SUMMARY_CHARS));
            }
            Ok(vec![base])
        }
        Kind::ChatEnded => {
            base.event_id = Some(event_id.unwrap_or_else(|| format!("{}:ended", chat.session_id)));
            let digest: Vec<String> = chat
                .transcript
                .iter()
                .map(|line| format!("{}: {}", line.author.as_str(), line.text))
                .collect();
            base.summary = bounded(&digest.join(" | "), SUMMARY_CHARS).or(base.summary);
            base.duration_seconds = chat
                .duration_seconds
                .or_else(|| session_length(&chat.transcript));
            if base.occurred_at.is_none() {
                base.occurred_at = chat
                    .transcript
                    .iter()
                    .filter_map(|l| l.at)
                    .max()
                    .map(crate::rfc3339);
            }
            Ok(vec![base])
        }
        Kind::ChatMessage => {
            if chat.transcript.is_empty() {
                return Err(ChannelError::malformed(
                    json_path(path, "chat.transcript"),
                    "must hold the message(s) of a chat.message event",
                ));
            }
            let single = chat.transcript.len() == 1;
            let drafts = chat
                .transcript
                .iter()
                .enumerate()
                .map(|(index, line)| {
                    let event_id = match (&line.id, &event_id) {
                        (Some(id), _) => format!("{}:{id}", chat.session_id),
                        (None, Some(key)) if single => key.clone(),
                        (None, Some(key)) => format!("{key}:{index}"),
                        (None, None) => line_key(&chat.session_id, index, line),
                    };
                    let direction = match line.author {
                        Author::Visitor => Direction::Inbound,
                        Author::Agent | Author::Bot => Direction::Outbound,
                    };
                    let mut draft = EventDraft {
                        event_id: Some(event_id),
                        occurred_at: line
                            .at
                            .map(crate::rfc3339)
                            .or_else(|| base.occurred_at.clone()),
                        direction: Some(direction.as_str().to_owned()),
                        summary: bounded(&line.text, SUMMARY_CHARS),
                        ..base.clone()
                    };
                    set_attribute(&mut draft, "chat.from", line.author.as_str());
                    draft
                })
                .collect();
            Ok(drafts)
        }
        Kind::FormSubmitted | Kind::PageViewed => Ok(vec![base]),
    }
}

/// A stable id for a transcript line without its own id: the session, the
/// line's time (or position), its author and a hash of its text, so a resent
/// line is the same event.
fn line_key(session_id: &str, index: usize, line: &Line) -> String {
    let digest = Sha256::digest(line.text.as_bytes());
    let hash = hex::encode(&digest[..8]);
    let when = match line.at {
        Some(at) => crate::rfc3339(at),
        None => index.to_string(),
    };
    format!("{session_id}:{when}:{}:{hash}", line.author.as_str())
}

/// From the first to the last timed line.
fn session_length(transcript: &[Line]) -> Option<u32> {
    let first = transcript.iter().filter_map(|l| l.at).min()?;
    let last = transcript.iter().filter_map(|l| l.at).max()?;
    u32::try_from((last - first).num_seconds()).ok()
}

fn parse_customer(value: Value, path: &str) -> Result<Person> {
    let mut customer = json_object(value, path, CUSTOMER_FIELDS)?;
    let mut text = |name: &str| json_take::<String>(&mut customer, name, path);
    Ok(Person {
        email: text("email")?,
        phone: text("phone")?,
        account: text("account")?,
        name: text("name")?,
    })
}

/// Field names whose values must never be stored.
fn sensitive(name: &str) -> bool {
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

/// Reads a form; its identifying fields fill the gaps in `person`.
fn parse_form(value: Value, path: &str, person: &mut Person) -> Result<WebForm> {
    let mut form = json_object(value, path, FORM_FIELDS)?;
    let id = json_take::<String>(&mut form, "id", path)?;
    let fields_path = json_path(path, "fields");
    let fields = match form.remove("fields") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(fields)) => fields,
        Some(_) => {
            return Err(ChannelError::malformed(
                fields_path,
                "must be an object of form fields",
            ));
        }
    };
    if fields.len() > MAX_FORM_FIELDS {
        return Err(ChannelError::malformed(
            fields_path,
            format!("at most {MAX_FORM_FIELDS} fields"),
        ));
    }
    let mut parsed = WebForm {
        id,
        ..WebForm::default()
    };
    let (mut first_name, mut last_name) = (None, None);
    for (name, value) in fields {
        let Some(value) = scalar(value) else {
            return Err(ChannelError::malformed(
                json_path(&fields_path, &name),
                "must be a string, number or boolean",
            ));
        };
        if value.trim().is_empty() {
            continue;
        }
        let slot = match name.as_str() {
            "email" => &mut person.email,
            "phone" => &mut person.phone,
            "account" => &mut person.account,
            "name" => &mut person.name,
            "first_name" => &mut first_name,
            "last_name" => &mut last_name,
            "subject" => &mut parsed.subject,
            "message" => &mut parsed.message,
            _ => {
                let key_fits = name.chars().count() <= 58 && !name.chars().any(char::is_control);
                if key_fits && !name.is_empty() && !sensitive(&name) {
                    parsed.extra.push((name, value));
                }
                continue;
            }
        };
        // The customer object (a logged-in session) wins over what was typed.
        slot.get_or_insert(value);
    }
    if person.name.is_none() {
        let full: Vec<String> = [first_name, last_name].into_iter().flatten().collect();
        if !full.is_empty() {
            person.name = Some(full.join(" "));
        }
    }
    Ok(parsed)
}

fn parse_chat(value: Value, path: &str) -> Result<Chat> {
    let mut chat = json_object(value, path, CHAT_FIELDS)?;
    let session_id = json_take::<String>(&mut chat, "session_id", path)?
        .ok_or_else(|| ChannelError::malformed(json_path(path, "session_id"), "is required"))?;
    let session_id = checked_id(&session_id, &json_path(path, "session_id"))?;
    let agent_id = json_take::<String>(&mut chat, "agent_id", path)?;
    let queue = json_take::<String>(&mut chat, "queue", path)?;
    let duration_seconds = json_take::<u32>(&mut chat, "duration_seconds", path)?;
    let transcript_path = json_path(path, "transcript");
    let lines = json_take::<Vec<Value>>(&mut chat, "transcript", path)?.unwrap_or_default();
    if lines.len() > MAX_TRANSCRIPT_LINES {
        return Err(ChannelError::malformed(
            transcript_path,
            format!("at most {MAX_TRANSCRIPT_LINES} lines"),
        ));
    }
    let transcript = lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| parse_line(line, &format!("{transcript_path}[{index}]")))
        .collect::<Result<Vec<Line>>>()?;
    Ok(Chat {
        session_id,
        agent_id,
        queue,
        duration_seconds,
        transcript,
    })
}

fn parse_line(value: Value, path: &str) -> Result<Line> {
    let mut line = json_object(value, path, LINE_FIELDS)?;
    let mut text = |name: &str| json_take::<String>(&mut line, name, path);
    let author = match text("from")?.as_deref().map(str::trim) {
        Some("visitor") => Author::Visitor,
        Some("agent") => Author::Agent,
        Some("bot") => Author::Bot,
        _ => {
            return Err(ChannelError::malformed(
                json_path(path, "from"),
                "must be visitor, agent or bot",
            ));
        }
    };
    let body = text("text")?.unwrap_or_default();
    let at = text("at")?
        .map(|raw| rfc3339_time(&raw, &json_path(path, "at")))
        .transpose()?;
    let id = text("id")?
        .map(|id| checked_id(&id, &json_path(path, "id")))
        .transpose()?;
    Ok(Line {
        author,
        text: body,
        at,
        id,
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

/// An RFC 3339 time, or a malformed-payload error naming `field`.
fn rfc3339_time(raw: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            ChannelError::malformed(
                field,
                "must be an RFC 3339 time such as 2026-11-24T10:00:00Z",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn origins_match_exactly_by_scheme_host_and_port() {
        let list = allowed(&[
            "https://shop.example",
            "http://localhost:3000/",
            "https://Help.Example:443",
        ]);
        for origin in [
            "https://shop.example",
            "https://shop.example:443",
            "HTTPS://SHOP.EXAMPLE",
            "http://localhost:3000",
            "https://help.example",
        ] {
            assert!(origin_allowed(Some(origin), &list), "{origin}");
        }
        for origin in [
            "http://shop.example",
            "https://shop.example:8443",
            "https://evil.shop.example",
            "https://shop.example.evil",
            "https://shop.example/path",
            "https://user@shop.example",
            "http://localhost:3001",
            "null",
            "",
            "shop.example",
        ] {
            assert!(!origin_allowed(Some(origin), &list), "{origin}");
        }
        assert!(!origin_allowed(None, &list));
        assert!(!origin_allowed(Some("https://shop.example"), &[]));
        assert!(origin_allowed(
            Some("https://anything.example"),
            &allowed(&["*"])
        ));
        assert!(origin_allowed(
            None,
            &allowed(&["https://shop.example", "*"])
        ));
    }

    #[test]
    fn sensitive_field_names_are_recognised() {
        for name in [
            "password",
            "Password_confirm",
            "cvv",
            "card_number",
            "api_token",
            "pin",
            "IBAN",
        ] {
            assert!(sensitive(name), "{name}");
        }
        for name in ["shipping_method", "order_number", "opinion", "spinach"] {
            assert!(!sensitive(name), "{name}");
        }
    }

    #[test]
    fn line_keys_are_stable_and_tell_lines_apart() {
        let line = |text: &str, at: Option<&str>| Line {
            author: Author::Visitor,
            text: text.to_owned(),
            at: at.map(|a| a.parse().expect("time")),
            id: None,
        };
        let a = line_key("s1", 0, &line("hi", Some("2026-11-24T10:00:00Z")));
        assert_eq!(
            a,
            line_key("s1", 3, &line("hi", Some("2026-11-24T10:00:00Z")))
        );
        assert!(a.starts_with("s1:2026-11-24T10:00:00Z:visitor:"), "{a}");
        assert_ne!(
            a,
            line_key("s1", 0, &line("hello", Some("2026-11-24T10:00:00Z")))
        );
        assert_ne!(
            a,
            line_key("s2", 0, &line("hi", Some("2026-11-24T10:00:00Z")))
        );
        assert_ne!(
            line_key("s1", 0, &line("hi", None)),
            line_key("s1", 1, &line("hi", None))
        );
    }
}
