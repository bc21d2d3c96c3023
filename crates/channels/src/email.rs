//! What every email adapter shares: one parsed RFC 5322 message becomes one
//! event draft. Raw MIME, SendGrid and Mailgun only differ in how they hand
//! the message over; the parsed-mode webhooks are reassembled into a message
//! (see [`crate::email::Envelope`] for what the provider adds) so the rules
//! below apply to all three:
//!
//! - the sender (From) is the customer: `email` identifier and display name;
//!   recipients never become identifiers (that would merge customers). The
//!   sender is verified when its domain passed SPF, DKIM or DMARC as the
//!   receiving system reports it ([`Authenticated`]), else only claimed;
//!   a bounce's failed recipient is always claimed;
//! - Message-ID is the event id (a retry is the same event); without one, a
//!   hash of the raw message;
//! - the thread root (first References id, else In-Reply-To, else the
//!   message's own id) is the conversation, so replies join their thread;
//! - auto-replies and bounces are recorded as `email.auto_reply` and
//!   `email.bounced`, never as customer contacts; a bounce belongs to the
//!   customer whose address failed, not to the mailer daemon that reports it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration};
use mail_parser::{Addr, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders};
use panorama_core::{EventDraft, IdentifierKind, Trust};
use sha2::{Digest, Sha256};

use crate::{ChannelError, Context, Found, Outcome, Result};

mod assemble;
mod authentication;
mod body;
mod bounce;

pub(crate) use assemble::{BODY_STRUCTURE_HEADERS, assemble, header_block_without, push_header};
pub use authentication::Authenticated;
use body::summary;
use bounce::BounceReport;

/// Longest subject kept (the RFC 5322 line limit, and the contract's).
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Longest conversation id kept, in characters (the contract's limit, which
/// also bounds its bytes).
pub const MAX_CONVERSATION_ID_CHARS: usize = panorama_core::limits::CONVERSATION_ID.chars;
/// Provider ids longer than this are hashed (the contract's limit).
const MAX_EVENT_ID_CHARS: usize = 512;
const MAX_DISPLAY_NAME_CHARS: usize = 200;
const MAX_OUTCOME_CHARS: usize = 200;
const MAX_ATTRIBUTE_CHARS: usize = 1024;
/// How far a Date header may lie ahead of receipt before it is distrusted.
const MAX_DATE_SKEW_MINUTES: i64 = 60;

/// Subject prefixes of out-of-office and other automatic replies, in the
/// languages contact centres meet most (lower case).
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "abwesenheitsnotiz",
    "automatische antwort",
    "automatisch antwoord",
    "afwezigheidsbericht",
    "réponse automatique",
    "absence du bureau",
    "respuesta automática",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "resposta automática",
];

/// What a provider tells about a delivery besides the message itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The mailbox the message was delivered to (SMTP `RCPT TO`); the `to`
    /// attribute, else the first To address.
    pub recipient: Option<String>,
    /// The SMTP `MAIL FROM` (return path), kept as an attribute only: it is
    /// often a bounce address, never the customer.
    pub sender: Option<String>,
    /// Body text with quoted replies already removed by the provider
    /// (Mailgun's `stripped-text`); preferred for the summary.
    pub stripped_text: Option<String>,
    /// The attachment count the provider reports, when the attachments are
    /// not part of the message handed over (parsed-mode webhooks).
    pub attachments: Option<usize>,
    /// Extra attributes (`spf`, `dkim`, `sender_ip`, `spam_score`, ...).
    pub attributes: Vec<(&'static str, String)>,
    /// Who says whether the sender authenticated.
    pub sender_check: SenderCheck,
}

/// Who reports whether an email's sender authenticated (SPF, DKIM, DMARC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderCheck {
    /// The provider, in fields of its own (SendGrid, Mailgun); nothing
    /// reported vouches for nothing.
    Reported(Authenticated),
    /// The receiving MTA, in the message's topmost `Authentication-Results`
    /// header bearing one of these authserv-ids: a raw message handed over
    /// by your own mail server. No ids, no verified sender.
    Headers(Vec<String>),
}

impl Default for SenderCheck {
    fn default() -> Self {
        SenderCheck::Reported(Authenticated::default())
    }
}

/// What kind of email a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Written by the customer: `email.received`.
    Received,
    /// Sent by a machine on the customer's behalf (out of office, read
    /// receipt, bulk mail): `email.auto_reply`, with the reason.
    AutoReply(&'static str),
    /// A delivery status report about a message that failed or was delayed:
    /// `email.bounced`.
    Bounced,
}

impl Kind {
    /// The event type this kind is recorded as.
    pub fn event_type(self) -> &'static str {
        match self {
            Kind::Received => "email.received",
            Kind::AutoReply(_) => "email.auto_reply",
            Kind::Bounced => "email.bounced",
        }
    }
}

/// Parses a raw RFC 5322 message and maps it: the path of `message/rfc822`
/// uploads, SendGrid's raw mode and Mailgun's `body-mime`. Bytes that are
/// not a message are malformed; a message without a usable sender is
/// ignored (`no_identifier`).
pub fn parse_raw(
    raw: &[u8],
    source: &'static str,
    envelope: &Envelope,
    context: &Context,
) -> Result<Outcome> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ChannelError::malformed_body("the email message is empty"));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ChannelError::malformed_body("not an RFC 5322 message: no header fields"))?;
    let known_header = message
        .headers()
        .iter()
        .any(|header| !matches!(header.name, HeaderName::Other(_)));
    if !known_header {
        return Err(ChannelError::malformed_body(
            "not an RFC 5322 message: no standard header fields",
        ));
    }
    Ok(to_outcome(&message, source, envelope, context))
}

/// Maps a parsed message to one event draft (or ignores it for want of a
/// customer identifier).
pub fn to_outcome(
    message: &Message<'_>,
    source: &'static str,
    envelope: &Envelope,
    context: &Context,
) -> Outcome {
    let kind = classify(message);
    let from = first_address(message.from());
    let report = (kind == Kind::Bounced).then(|| BounceReport::of(message));

    // The customer: the sender, or for a bounce the recipient that failed.
    let (customer_field, customer_address) = match &report {
        Some(report) => ("Final-Recipient", report.recipient.clone()),
        None => (
            "From",
            from.and_then(|addr| addr.address.as_deref())
                .map(str::to_owned),
        ),
    };
    let display_name = match &report {
        Some(_) => None,
        None => from.and_then(|addr| display_name(addr)),
    };

    let message_id = message.message_id().and_then(clean_id);
    let provider_id = match &message_id {
        Some(id) if id.chars().count() <= MAX_EVENT_ID_CHARS => id.clone(),
        Some(id) => hashed_id(id.as_bytes()),
        None => hashed_id(message.raw_message()),
    };
    let conversation = thread_root(message)
        .or_else(|| {
            report
                .as_ref()
                .and_then(|report| report.original_thread.clone())
        })
        .or_else(|| message_id.clone())
        .unwrap_or_else(|| provider_id.clone());

    let mut attributes = BTreeMap::new();
    let mut attribute = |key: &str, value: &str| {
        let value = bounded_line(value, MAX_ATTRIBUTE_CHARS);
        if !value.is_empty() {
            attributes.insert(key.to_owned(), value);
        }
    };
    let to = envelope.recipient.clone().or_else(|| {
        first_address(message.to())
            .and_then(|addr| addr.address.as_deref())
            .map(str::to_owned)
    });
    if let Some(to) = to {
        attribute("to", &to.trim().to_lowercase());
    }
    if let Some(id) = &message_id {
        attribute("message_id", id);
    }
    let attachments = envelope
        .attachments
        .unwrap_or_else(|| message.attachment_count());
    // A bounce's "attachments" are its own report parts.
    if attachments > 0 && report.is_none() {
        attribute("attachments", &attachments.to_string());
    }
    if let Some(sender) = &envelope.sender {
        attribute("envelope_from", sender);
    }
    for (key, value) in &envelope.attributes {
        attribute(key, value);
    }
    if let Kind::AutoReply(reason) = kind {
        attribute("auto_reply", reason);
    }
    if let Some(report) = &report {
        if let Some(reporter) = from.and_then(|addr| addr.address.as_deref()) {
            attribute("reported_by", reporter);
        }
        for (key, value) in [
            ("bounce_action", &report.action),
            ("bounce_status", &report.status),
            ("bounce_diagnostic", &report.diagnostic),
        ] {
            if let Some(value) = value {
                attribute(key, value);
            }
        }
    }

    let subject = message
        .subject()
        .map(|subject| bounded_line(subject, MAX_SUBJECT_CHARS))
        .filter(|subject| !subject.is_empty());
    let mut draft = EventDraft {
        event_id: Some(provider_id),
        occurred_at: Some(occurred_at(message, context)),
        channel: Some("email".to_owned()),
        source: Some(source.to_owned()),
        event_type: Some(kind.event_type().to_owned()),
        direction: (kind != Kind::Bounced).then(|| "inbound".to_owned()),
        conversation_id: Some(bounded_id(&conversation)),
        subject,
        summary: summary(message, envelope),
        outcome: report
            .and_then(|report| report.action)
            .map(|action| bounded_line(&action, MAX_OUTCOME_CHARS))
            .filter(|action| !action.is_empty()),
        attributes,
        display_name,
        ..EventDraft::default()
    };
    let warnings = crate::identify(
        &mut draft,
        [(
            IdentifierKind::Email,
            customer_field.to_owned(),
            customer_address.as_deref(),
        )],
        context,
    );
    // A bounce names its customer in a report anyone can write; a sender
    // counts as verified only when its domain authenticated.
    let authenticated = match &envelope.sender_check {
        SenderCheck::Reported(authenticated) => authenticated.clone(),
        SenderCheck::Headers(authserv_ids) => Authenticated::from_headers(message, authserv_ids),
    };
    let verified = kind != Kind::Bounced
        && customer_address
            .as_deref()
            .is_some_and(|address| authenticated.vouches_for(address));
    if !verified {
        draft.cap_trust(Trust::Claimed);
    }
    crate::events_or_ignored(vec![Found::whole(draft)], warnings)
}

/// Bounce, auto-reply or a customer's own email, from the headers and the
/// MIME structure.
pub fn classify(message: &Message<'_>) -> Kind {
    let root_type = message.root_part().content_type();
    let report_type = root_type
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .filter(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .map(|ct| {
            ct.attribute("report-type")
                .unwrap_or("")
                .to_ascii_lowercase()
        });
    if report_type
        .as_deref()
        .is_some_and(|t| t.contains("delivery-status"))
    {
        return Kind::Bounced;
    }
    let sender_local_part = first_address(message.from())
        .and_then(|addr| addr.address.as_deref())
        .map(|address| {
            address
                .split('@')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if matches!(
        sender_local_part.as_deref(),
        Some("mailer-daemon" | "postmaster")
    ) || raw_header(message, "X-Failed-Recipients").is_some()
    {
        return Kind::Bounced;
    }
    if report_type.is_some() {
        // Read receipts (disposition-notification), abuse reports, ...
        return Kind::AutoReply("report");
    }
    if let Some(value) = raw_header(message, "Auto-Submitted") {
        let value = value.split(';').next().unwrap_or("").trim();
        if !value.is_empty() && !value.eq_ignore_ascii_case("no") {
            return Kind::AutoReply("auto-submitted");
        }
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Reply",
        "X-Autoresponder",
    ] {
        if raw_header(message, name).is_some_and(|value| !value.trim().eq_ignore_ascii_case("no")) {
            return Kind::AutoReply("x-autoreply");
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if let Some(value) = raw_header(message, name) {
            let value = value.trim().to_ascii_lowercase();
            if matches!(value.as_str(), "auto_reply" | "bulk" | "junk") {
                return Kind::AutoReply("precedence");
            }
        }
    }
    if let Some(subject) = message.subject() {
        let subject = subject.trim_start().to_lowercase();
        if AUTO_REPLY_SUBJECTS
            .iter()
            .any(|prefix| subject.starts_with(prefix))
        {
            return Kind::AutoReply("subject");
        }
    }
    Kind::Received
}

/// The thread root of a message that is itself part of a report.
fn thread_of(message: &Message<'_>) -> Option<String> {
    thread_root(message).or_else(|| message.message_id().and_then(clean_id))
}

/// The first id of References, else of In-Reply-To.
fn thread_root(message: &Message<'_>) -> Option<String> {
    first_id(message.references()).or_else(|| first_id(message.in_reply_to()))
}

fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id),
        HeaderValue::TextList(ids) => ids.iter().find_map(|id| clean_id(id)),
        _ => None,
    }
}

/// A message id without angle brackets, white space or control characters.
fn clean_id(raw: &str) -> Option<String> {
    let id: String = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    (!id.is_empty()).then_some(id)
}

fn hashed_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `id` cut to the contract's bound on conversation ids, in characters and
/// in bytes (on a character boundary, so the same long id is always cut the
/// same way and threads still join).
fn bounded_id(id: &str) -> String {
    panorama_core::limits::CONVERSATION_ID.cut(id).to_owned()
}

fn first_address<'a>(address: Option<&'a mail_parser::Address<'a>>) -> Option<&'a Addr<'a>> {
    address?.iter().find(|addr| {
        addr.address
            .as_deref()
            .is_some_and(|a| !a.trim().is_empty())
    })
}

fn first_address_string(address: Option<&mail_parser::Address<'_>>) -> Option<String> {
    first_address(address)
        .and_then(|addr| addr.address.as_deref())
        .map(str::to_owned)
}

fn display_name(addr: &Addr<'_>) -> Option<String> {
    let name = bounded_line(
        addr.name.as_deref()?.trim_matches(['"', '\'', ' ']),
        MAX_DISPLAY_NAME_CHARS,
    );
    let same_as_address = addr
        .address
        .as_deref()
        .is_some_and(|address| name.eq_ignore_ascii_case(address.trim()));
    (!name.is_empty() && !same_as_address).then_some(name)
}

/// The value of the first header field `name` (case-insensitive), unparsed.
fn raw_header<'a>(message: &'a Message<'_>, name: &str) -> Option<&'a str> {
    message
        .headers_raw()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// One line of text: control characters and line breaks become spaces, runs
/// of white space fold, cut to `max_chars` characters.
fn bounded_line(text: &str, max_chars: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max_chars));
    let mut count = 0;
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
    {
        let needed = usize::from(count > 0) + word.chars().count();
        if count + needed > max_chars {
            if count == 0 {
                line.extend(word.chars().take(max_chars));
            }
            break;
        }
        if count > 0 {
            line.push(' ');
        }
        line.push_str(word);
        count += needed;
    }
    line
}

/// The Date header as RFC 3339, or the time of receipt when it is missing,
/// invalid, before 1970 or implausibly far in the future.
fn occurred_at(message: &Message<'_>, context: &Context) -> String {
    message
        .date()
        .filter(|date| date.is_valid())
        .and_then(|date| DateTime::parse_from_rfc3339(&date.to_rfc3339()).ok())
        .filter(|date| date.timestamp() >= 0)
        .filter(|date| *date <= context.received_at + Duration::minutes(MAX_DATE_SKEW_MINUTES))
        .map_or_else(
            || context.received_at.to_rfc3339(),
            |date| date.to_rfc3339(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            received_at: "2026-03-02T10:00:00Z".parse().expect("time"),
            default_region: None,
        }
    }

    fn draft(raw: &str) -> EventDraft {
        match parse_raw(raw.as_bytes(), "mime", &Envelope::default(), &context()).expect("parsed") {
            Outcome::Events { mut events, .. } => events.remove(0).draft,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn bounded_line_folds_and_cuts() {
        assert_eq!(bounded_line(" a\r\n\tb  c\u{0}d ", 100), "a b c d");
        assert_eq!(bounded_line("abc def", 5), "abc");
        assert_eq!(bounded_line("abcdefgh", 5), "abcde");
        assert_eq!(bounded_line("ééé ééé", 4), "ééé");
    }

    #[test]
    fn ids_are_cleaned_bounded_and_hashed() {
        assert_eq!(
            clean_id(" <abc@x.example> ").as_deref(),
            Some("abc@x.example")
        );
        assert_eq!(clean_id("<>"), None);
        let long = "é".repeat(2000);
        assert_eq!(bounded_id(&long).chars().count(), MAX_CONVERSATION_ID_CHARS);
        // Four bytes a character: the byte bound cuts first.
        let wide = "\u{20000}".repeat(998);
        assert_eq!(bounded_id(&wide).len(), 2000);
        assert!(hashed_id(b"x").starts_with("sha256:"));
        assert_eq!(hashed_id(b"x").len(), 7 + 64);
    }

    #[test]
    fn a_long_message_id_is_hashed_and_a_missing_one_derived_from_the_bytes() {
        let long_id = format!("<{}@x.example>", "a".repeat(600));
        let event = draft(&format!(
            "From: a@x.example\r\nMessage-ID: {long_id}\r\nSubject: s\r\n\r\nbody\r\n"
        ));
        assert!(
            event
                .event_id
                .as_deref()
                .is_some_and(|id| id.starts_with("sha256:"))
        );
        assert_eq!(
            event
                .attributes
                .get("message_id")
                .map(|v| v.chars().count()),
            Some(610)
        );

        let raw = "From: a@x.example\r\nSubject: no id\r\n\r\nbody\r\n";
        let first = draft(raw);
        assert_eq!(first.event_id, draft(raw).event_id, "stable across retries");
        assert_ne!(
            first.event_id,
            draft("From: a@x.example\r\nSubject: no id\r\n\r\nother\r\n").event_id
        );
        assert_eq!(first.conversation_id, first.event_id);
    }

    #[test]
    fn implausible_dates_fall_back_to_receipt() {
        let future =
            draft("From: a@x.example\r\nDate: Tue, 3 Mar 2026 12:00:00 +0000\r\n\r\nx\r\n");
        assert_eq!(
            future.occurred_at.as_deref(),
            Some("2026-03-02T10:00:00+00:00")
        );
        let good = draft("From: a@x.example\r\nDate: Mon, 2 Mar 2026 09:30:00 +0100\r\n\r\nx\r\n");
        assert_eq!(
            good.occurred_at.as_deref(),
            Some("2026-03-02T09:30:00+01:00")
        );
        let garbage = draft("From: a@x.example\r\nDate: yesterday-ish\r\n\r\nx\r\n");
        assert_eq!(
            garbage.occurred_at.as_deref(),
            Some("2026-03-02T10:00:00+00:00")
        );
    }

    #[test]
    fn recipients_never_become_identifiers_and_names_equal_to_addresses_are_dropped() {
        let event = draft(
            "From: \"anna@example.com\" <anna@example.com>\r\nTo: support@shop.example, bob@example.com\r\nCc: carol@example.com\r\n\r\nx\r\n",
        );
        assert_eq!(event.identifiers.len(), 1);
        assert_eq!(event.identifiers[0].value, "anna@example.com");
        assert_eq!(event.display_name, None);
        assert_eq!(
            event.attributes.get("to").map(String::as_str),
            Some("support@shop.example")
        );
    }

    #[test]
    fn auto_reply_signals_are_recognised() {
        let cases = [
            (
                "Auto-Submitted: auto-replied\r\n",
                Kind::AutoReply("auto-submitted"),
            ),
            ("Auto-Submitted: no\r\n", Kind::Received),
            ("X-Autoreply: yes\r\n", Kind::AutoReply("x-autoreply")),
            (
                "X-Autorespond: Out of office\r\n",
                Kind::AutoReply("x-autoreply"),
            ),
            ("Precedence: bulk\r\n", Kind::AutoReply("precedence")),
            ("Precedence: list\r\n", Kind::Received),
            (
                "Subject: Automatic reply: your order\r\n",
                Kind::AutoReply("subject"),
            ),
            (
                "Subject: Out of Office: back Monday\r\n",
                Kind::AutoReply("subject"),
            ),
            ("Subject: My out of office plans\r\n", Kind::Received),
        ];
        for (header, expected) in cases {
            let raw = format!("From: a@x.example\r\n{header}\r\nbody\r\n");
            let message = MessageParser::default()
                .parse(raw.as_bytes())
                .expect("message");
            assert_eq!(classify(&message), expected, "{header}");
        }
    }
}
