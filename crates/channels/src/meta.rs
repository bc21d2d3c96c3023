//! Meta webhooks: WhatsApp Cloud API, Messenger and Instagram messaging.
//!
//! At Meta (App Dashboard → Webhooks, and the WhatsApp configuration page),
//! set the callback URL to `PANORAMA_PUBLIC_URL` + `/v1/channels/meta/webhook`
//! and the verify token to `PANORAMA_META_VERIFY_TOKEN`; set
//! `PANORAMA_META_APP_SECRET` to the app secret. Subscribe to `messages` for
//! WhatsApp, and to `messages`, `message_echoes`, `message_deliveries`,
//! `message_reads` (Messenger) or `messages`, `messaging_seen` (Instagram).
//!
//! - [`handshake`] answers the `GET` verification request.
//! - [`verify`] checks `X-Hub-Signature-256` over the raw body.
//! - [`parse`] turns one notification, which may batch many entries and
//!   changes, into events:
//!   - `whatsapp_business_account` (source `meta.whatsapp`): each message →
//!     `message.received` with identifiers `whatsapp:<wa_id>` and
//!     `phone:+<wa_id>`, the profile name as display name, text (or a
//!     `[image]`-style label) as summary; each status `sent`, `delivered`,
//!     `read`, `failed` → `message.sent` / `message.delivered` /
//!     `message.read` / `message.failed` about the recipient;
//!   - `page` (Messenger, source `meta.messenger`) and `instagram` (source
//!     `meta.instagram`): messages → `message.received`, echoes of the
//!     business's own messages → `message.sent`, delivery and read receipts →
//!     `message.delivered` / `message.read`, postbacks (button taps) →
//!     `message.received`; the customer is a `messenger:` / `instagram:`
//!     identifier (the page- or Instagram-scoped user id).
//!
//! Event ids are Meta's message ids (`wamid.…`, `mid`), with the status
//! appended for receipts. What is not mapped (template status updates,
//! reactions, comments, a WhatsApp `played` status, ...) is skipped; a
//! notification with nothing mapped is ignored with a reason
//! (`whatsapp.unmapped`, `messenger.unmapped`, `instagram.unmapped`,
//! `meta.unmapped_object`), answered 200 so Meta does not retry it.

use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierKind};
use serde::Deserialize;
use serde_json::Value;

use crate::signature::{secrets_equal, verify_hmac_sha256_hex};
use crate::text::{SUMMARY_CHARS, excerpt};
use crate::{ChannelError, Context, Outcome, Result, bounded, set_attribute};

/// The `source` of WhatsApp events.
pub const SOURCE_WHATSAPP: &str = "meta.whatsapp";
/// The `source` of Messenger events.
pub const SOURCE_MESSENGER: &str = "meta.messenger";
/// The `source` of Instagram events.
pub const SOURCE_INSTAGRAM: &str = "meta.instagram";

/// Longest `hub.challenge` echoed back (Meta sends a short number).
const MAX_CHALLENGE: usize = 256;

/// Answers Meta's verification request (`hub.mode`, `hub.verify_token`,
/// `hub.challenge` query parameters): the challenge to echo when the mode is
/// `subscribe` and the token matches the configured one, else unauthorized.
pub fn handshake(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Result<String> {
    if mode != Some("subscribe") {
        return Err(ChannelError::Unauthorized(
            "hub.mode must be subscribe".into(),
        ));
    }
    let token_matches = !expected_token.is_empty()
        && verify_token
            .is_some_and(|token| secrets_equal(token.as_bytes(), expected_token.as_bytes()));
    if !token_matches {
        return Err(ChannelError::Unauthorized(
            "hub.verify_token does not match".into(),
        ));
    }
    // The challenge is echoed into a response body: only a plain token.
    let challenge = challenge.unwrap_or_default();
    let plain = !challenge.is_empty()
        && challenge.len() <= MAX_CHALLENGE
        && challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !plain {
        return Err(ChannelError::malformed(
            "hub.challenge",
            format!("must be 1 to {MAX_CHALLENGE} letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(challenge.to_owned())
}

/// Checks `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
/// body keyed by the app secret. A missing header or an unset secret is
/// refused.
pub fn verify(body: &[u8], signature_header: Option<&str>, app_secret: &str) -> Result<()> {
    let Some(header) = signature_header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(ChannelError::Unauthorized(
            "missing X-Hub-Signature-256 header".into(),
        ));
    };
    if app_secret.is_empty() {
        return Err(ChannelError::Unauthorized(
            "no Meta app secret is configured".into(),
        ));
    }
    let Some(hex) = header.strip_prefix("sha256=") else {
        return Err(ChannelError::Unauthorized(
            "X-Hub-Signature-256 must start with sha256=".into(),
        ));
    };
    verify_hmac_sha256_hex(app_secret.as_bytes(), body, hex)
}

/// A notification: the product it is about and its entries.
#[derive(Debug, Deserialize)]
struct Notification {
    object: String,
    #[serde(default)]
    entry: Vec<Value>,
}

/// Parses a webhook notification into events (see the module docs). A body
/// that is not a Meta notification is malformed; parts of it that are not
/// mapped are skipped.
pub fn parse(body: &[u8], context: &Context) -> Result<Outcome> {
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        ChannelError::malformed_body(format!("not a Meta webhook notification: {e}"))
    })?;
    let mut batch = Batch::default();
    match notification.object.as_str() {
        "whatsapp_business_account" => {
            for entry in notification.entry {
                whatsapp_entry(entry, context, &mut batch);
            }
        }
        "page" => {
            for entry in notification.entry {
                messaging_entry(entry, Platform::Messenger, context, &mut batch);
            }
        }
        "instagram" => {
            for entry in notification.entry {
                messaging_entry(entry, Platform::Instagram, context, &mut batch);
            }
        }
        _ => {
            return Ok(Outcome::Ignored {
                reason: "meta.unmapped_object",
            });
        }
    }
    Ok(batch.finish())
}

/// The events found so far, and why something was skipped.
#[derive(Debug, Default)]
struct Batch {
    drafts: Vec<EventDraft>,
    skipped: Option<&'static str>,
}

impl Batch {
    fn skip(&mut self, reason: &'static str) {
        self.skipped.get_or_insert(reason);
    }

    fn finish(self) -> Outcome {
        match (self.drafts.is_empty(), self.skipped) {
            (true, Some(reason)) => Outcome::Ignored { reason },
            (true, None) => Outcome::Ignored {
                reason: "meta.empty",
            },
            (false, _) => crate::events_or_ignored(self.drafts),
        }
    }
}

/// A draft with what every Meta event shares.
fn draft(source: &str, event_type: EventType, direction: Direction) -> EventDraft {
    EventDraft {
        channel: Some(Channel::Social.as_str().to_owned()),
        source: Some(source.to_owned()),
        event_type: Some(event_type.as_str().to_owned()),
        direction: Some(direction.as_str().to_owned()),
        ..EventDraft::default()
    }
}

/// A unix time Meta sends as a number or a numeric string.
fn unix_number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------- WhatsApp

#[derive(Debug, Deserialize)]
struct WhatsappEntry {
    #[serde(default)]
    changes: Vec<WhatsappChange>,
}

#[derive(Debug, Deserialize)]
struct WhatsappChange {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
struct WhatsappValue {
    metadata: Option<WhatsappMetadata>,
    #[serde(default)]
    contacts: Vec<WhatsappContact>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct WhatsappMetadata {
    display_phone_number: Option<String>,
    phone_number_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappContact {
    wa_id: Option<String>,
    profile: Option<WhatsappProfile>,
}

#[derive(Debug, Deserialize)]
struct WhatsappProfile {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappMessage {
    id: String,
    from: Option<String>,
    timestamp: Option<Value>,
    #[serde(rename = "type", default)]
    kind: String,
    context: Option<WhatsappContext>,
    referral: Option<WhatsappReferral>,
    /// The type-specific part (`text`, `image`, `interactive`, ...).
    #[serde(flatten)]
    content: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct WhatsappContext {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappReferral {
    source_url: Option<String>,
    headline: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappStatus {
    id: String,
    status: String,
    timestamp: Option<Value>,
    recipient_id: Option<String>,
    recipient_type: Option<String>,
    conversation: Option<WhatsappConversation>,
    pricing: Option<WhatsappPricing>,
    #[serde(default)]
    errors: Vec<WhatsappError>,
}

#[derive(Debug, Deserialize)]
struct WhatsappConversation {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappPricing {
    category: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsappError {
    code: Option<Value>,
    title: Option<String>,
    error_data: Option<WhatsappErrorData>,
}

#[derive(Debug, Deserialize)]
struct WhatsappErrorData {
    details: Option<String>,
}

const WHATSAPP_UNMAPPED: &str = "whatsapp.unmapped";

fn whatsapp_entry(entry: Value, context: &Context, batch: &mut Batch) {
    let Ok(entry) = serde_json::from_value::<WhatsappEntry>(entry) else {
        return batch.skip(WHATSAPP_UNMAPPED);
    };
    for change in entry.changes {
        if change.field != "messages" {
            batch.skip(WHATSAPP_UNMAPPED);
            continue;
        }
        let Ok(value) = serde_json::from_value::<WhatsappValue>(change.value) else {
            batch.skip(WHATSAPP_UNMAPPED);
            continue;
        };
        for message in &value.messages {
            match serde_json::from_value::<WhatsappMessage>(message.clone()) {
                Ok(message) => whatsapp_message(message, &value, context, batch),
                Err(_) => batch.skip(WHATSAPP_UNMAPPED),
            }
        }
        for status in &value.statuses {
            match serde_json::from_value::<WhatsappStatus>(status.clone()) {
                Ok(status) => whatsapp_status(status, &value, context, batch),
                Err(_) => batch.skip(WHATSAPP_UNMAPPED),
            }
        }
        if value.messages.is_empty() && value.statuses.is_empty() {
            batch.skip(WHATSAPP_UNMAPPED);
        }
    }
}

/// `whatsapp:<wa_id>` and `phone:+<wa_id>` (a wa_id is the phone number's
/// digits).
fn whatsapp_identifiers(wa_id: &str, context: &Context) -> Vec<panorama_core::IdentifierDraft> {
    let wa_id = wa_id.trim();
    let phone = match wa_id.strip_prefix('+') {
        Some(_) => wa_id.to_owned(),
        None => format!("+{wa_id}"),
    };
    [
        crate::identifier(IdentifierKind::Whatsapp, wa_id, context),
        crate::identifier(IdentifierKind::Phone, &phone, context),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The business number an event went through, for multi-number setups.
fn whatsapp_business_number(draft: &mut EventDraft, value: &WhatsappValue) {
    if let Some(metadata) = &value.metadata {
        if let Some(number) = &metadata.display_phone_number {
            set_attribute(draft, "whatsapp.business_number", number);
        }
        if let Some(id) = &metadata.phone_number_id {
            set_attribute(draft, "whatsapp.phone_number_id", id);
        }
    }
}

fn whatsapp_message(
    message: WhatsappMessage,
    value: &WhatsappValue,
    context: &Context,
    batch: &mut Batch,
) {
    // Not customer messages: a number change notice, the "chat opened"
    // ping, a reaction to one of our messages.
    if matches!(
        message.kind.as_str(),
        "system" | "request_welcome" | "reaction"
    ) {
        return batch.skip(WHATSAPP_UNMAPPED);
    }
    let from = message.from.as_deref().unwrap_or_default();
    let name = value
        .contacts
        .iter()
        .find(|contact| !from.is_empty() && contact.wa_id.as_deref() == Some(from))
        .and_then(|contact| contact.profile.as_ref()?.name.as_deref());
    let mut draft = EventDraft {
        event_id: Some(message.id.clone()),
        occurred_at: unix_number(message.timestamp.as_ref()).and_then(crate::unix_seconds),
        identifiers: whatsapp_identifiers(from, context),
        summary: bounded(&whatsapp_summary(&message), SUMMARY_CHARS),
        display_name: name.and_then(|n| bounded(n, 200)),
        ..draft(
            SOURCE_WHATSAPP,
            EventType::MessageReceived,
            Direction::Inbound,
        )
    };
    set_attribute(&mut draft, "whatsapp.message_type", &message.kind);
    if let Some(reply_to) = message.context.as_ref().and_then(|c| c.id.as_deref()) {
        set_attribute(&mut draft, "whatsapp.reply_to", reply_to);
    }
    if let Some(referral) = &message.referral {
        if let Some(url) = &referral.source_url {
            set_attribute(&mut draft, "whatsapp.referral_source_url", url);
        }
        if let Some(headline) = &referral.headline {
            set_attribute(&mut draft, "whatsapp.referral_headline", headline);
        }
    }
    whatsapp_business_number(&mut draft, value);
    batch.drafts.push(draft);
}

/// The text of a message, or a label for what it carries: `[image] caption`,
/// `[location] name, address`, `[button] title`, ...
fn whatsapp_summary(message: &WhatsappMessage) -> String {
    let kind = message.kind.as_str();
    let part = message.content.get(kind);
    let field = |key: &str| {
        part.and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let label = |label: &str, detail: &str| {
        let detail = detail.trim();
        if detail.is_empty() {
            format!("[{label}]")
        } else {
            format!("[{label}] {detail}")
        }
    };
    match kind {
        "text" => field("body").to_owned(),
        "audio" if part.and_then(|p| p.get("voice")).and_then(Value::as_bool) == Some(true) => {
            "[voice message]".to_owned()
        }
        "image" | "video" | "sticker" | "audio" => label(kind, field("caption")),
        "document" => {
            let caption = field("caption");
            label(
                kind,
                if caption.is_empty() {
                    field("filename")
                } else {
                    caption
                },
            )
        }
        "location" => {
            let place: Vec<&str> = [field("name"), field("address")]
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect();
            label(kind, &place.join(", "))
        }
        "button" => label("button", field("text")),
        "interactive" => {
            let reply_type = field("type");
            let reply = part.and_then(|p| p.get(reply_type));
            let reply_field = |key: &str| {
                reply
                    .and_then(|r| r.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            match reply_type {
                "button_reply" => label("button", reply_field("title")),
                "list_reply" => label("list", reply_field("title")),
                "nfm_reply" => label("form", reply_field("name")),
                _ => label("interactive", ""),
            }
        }
        "contacts" => {
            let name = part
                .and_then(Value::as_array)
                .and_then(|contacts| contacts.first())
                .and_then(|contact| contact.get("name")?.get("formatted_name")?.as_str())
                .unwrap_or_default();
            label(kind, name)
        }
        "" => label("message", ""),
        other => label(&excerpt(other, 40), ""),
    }
}

fn whatsapp_status(
    status: WhatsappStatus,
    value: &WhatsappValue,
    context: &Context,
    batch: &mut Batch,
) {
    let event_type = match status.status.as_str() {
        "sent" => EventType::MessageSent,
        "delivered" => EventType::MessageDelivered,
        "read" => EventType::MessageRead,
        "failed" => EventType::MessageFailed,
        _ => return batch.skip(WHATSAPP_UNMAPPED),
    };
    // A message to a group is not about one customer.
    if status.recipient_type.as_deref() == Some("group") {
        return batch.skip(WHATSAPP_UNMAPPED);
    }
    let error = status.errors.first();
    let error_code = error.and_then(|e| match e.code.as_ref()? {
        Value::Number(code) => Some(code.to_string()),
        Value::String(code) => Some(code.clone()),
        _ => None,
    });
    let error_title = error.and_then(|e| e.title.as_deref());
    let outcome = match (&error_code, error_title) {
        (Some(code), Some(title)) => bounded(&format!("{code} {title}"), 200),
        (Some(code), None) => bounded(code, 200),
        (None, Some(title)) => bounded(title, 200),
        (None, None) => None,
    };
    let mut draft = EventDraft {
        event_id: Some(format!("{}:{}", status.id, status.status)),
        occurred_at: unix_number(status.timestamp.as_ref()).and_then(crate::unix_seconds),
        identifiers: whatsapp_identifiers(
            status.recipient_id.as_deref().unwrap_or_default(),
            context,
        ),
        outcome,
        ..draft(SOURCE_WHATSAPP, event_type, Direction::Outbound)
    };
    set_attribute(&mut draft, "whatsapp.message_id", &status.id);
    if let Some(code) = &error_code {
        set_attribute(&mut draft, "whatsapp.error_code", code);
    }
    if let Some(details) = error.and_then(|e| e.error_data.as_ref()?.details.as_deref()) {
        set_attribute(&mut draft, "whatsapp.error_details", details);
    }
    if let Some(id) = status.conversation.as_ref().and_then(|c| c.id.as_deref()) {
        set_attribute(&mut draft, "whatsapp.conversation_id", id);
    }
    if let Some(category) = status.pricing.as_ref().and_then(|p| p.category.as_deref()) {
        set_attribute(&mut draft, "whatsapp.pricing_category", category);
    }
    whatsapp_business_number(&mut draft, value);
    batch.drafts.push(draft);
}

// ------------------------------------------------- Messenger and Instagram

/// The two products that share the Messenger Platform's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Messenger,
    Instagram,
}

impl Platform {
    fn source(self) -> &'static str {
        match self {
            Platform::Messenger => SOURCE_MESSENGER,
            Platform::Instagram => SOURCE_INSTAGRAM,
        }
    }

    fn identifier_kind(self) -> IdentifierKind {
        match self {
            Platform::Messenger => IdentifierKind::Messenger,
            Platform::Instagram => IdentifierKind::Instagram,
        }
    }

    fn unmapped(self) -> &'static str {
        match self {
            Platform::Messenger => "messenger.unmapped",
            Platform::Instagram => "instagram.unmapped",
        }
    }
}

#[derive(Debug, Deserialize)]
struct MessagingEntry {
    #[serde(default)]
    messaging: Vec<Value>,
    /// Events for conversations another app controls (handover protocol):
    /// still contacts of this customer.
    #[serde(default)]
    standby: Vec<Value>,
    #[serde(default)]
    changes: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Messaging {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<Value>,
    message: Option<MessagingMessage>,
    delivery: Option<Delivery>,
    read: Option<Read>,
    postback: Option<Postback>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessagingMessage {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    attachments: Vec<Attachment>,
    quick_reply: Option<QuickReply>,
    reply_to: Option<ReplyTo>,
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyTo {
    mid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
    watermark: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Read {
    watermark: Option<Value>,
    /// Instagram's `messaging_seen` names the message read.
    mid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

fn messaging_entry(entry: Value, platform: Platform, context: &Context, batch: &mut Batch) {
    let Ok(entry) = serde_json::from_value::<MessagingEntry>(entry) else {
        return batch.skip(platform.unmapped());
    };
    // `changes` carries feed and comment notifications: not messaging.
    if !entry.changes.is_empty() {
        batch.skip(platform.unmapped());
    }
    for item in entry.messaging.into_iter().chain(entry.standby) {
        match serde_json::from_value::<Messaging>(item) {
            Ok(item) => messaging_item(item, platform, context, batch),
            Err(_) => batch.skip(platform.unmapped()),
        }
    }
}

fn messaging_item(item: Messaging, platform: Platform, context: &Context, batch: &mut Batch) {
    let sender = item
        .sender
        .as_ref()
        .and_then(|p| p.id.as_deref())
        .unwrap_or_default();
    let recipient = item
        .recipient
        .as_ref()
        .and_then(|p| p.id.as_deref())
        .unwrap_or_default();
    let identifiers = |user: &str| -> Vec<panorama_core::IdentifierDraft> {
        crate::identifier(platform.identifier_kind(), user, context)
            .into_iter()
            .collect()
    };
    let timestamp = unix_number(item.timestamp.as_ref());
    let source = platform.source();

    if let Some(message) = item.message {
        let Some(mid) = message.mid.filter(|m| !m.trim().is_empty()) else {
            return batch.skip(platform.unmapped());
        };
        if message.is_deleted {
            return batch.skip(platform.unmapped());
        }
        // An echo is the business's own message: the customer is its recipient.
        let (event_type, direction, customer) = if message.is_echo {
            (EventType::MessageSent, Direction::Outbound, recipient)
        } else {
            (EventType::MessageReceived, Direction::Inbound, sender)
        };
        let summary = match message.text.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(text) => text.to_owned(),
            None => attachment_labels(&message.attachments),
        };
        let mut draft = EventDraft {
            event_id: Some(mid),
            occurred_at: timestamp.and_then(crate::unix_millis),
            identifiers: identifiers(customer),
            summary: bounded(&summary, SUMMARY_CHARS),
            ..draft(source, event_type, direction)
        };
        if let Some(payload) = message.quick_reply.and_then(|q| q.payload) {
            set_attribute(&mut draft, "meta.quick_reply_payload", &payload);
        }
        if let Some(reply_to) = message.reply_to.and_then(|r| r.mid) {
            set_attribute(&mut draft, "meta.reply_to", &reply_to);
        }
        return batch.drafts.push(draft);
    }

    if let Some(delivery) = item.delivery {
        let watermark = unix_number(delivery.watermark.as_ref());
        let occurred_at = timestamp.or(watermark).and_then(crate::unix_millis);
        let receipt = |event_id: String| EventDraft {
            event_id: Some(event_id),
            occurred_at: occurred_at.clone(),
            identifiers: identifiers(sender),
            ..draft(source, EventType::MessageDelivered, Direction::Outbound)
        };
        if delivery.mids.is_empty() {
            // Older clients confirm by watermark only: "everything before".
            let Some(watermark) = watermark else {
                return batch.skip(platform.unmapped());
            };
            return batch
                .drafts
                .push(receipt(format!("delivered:{sender}:{watermark}")));
        }
        for mid in &delivery.mids {
            batch.drafts.push(receipt(format!("{mid}:delivered")));
        }
        return;
    }

    if let Some(read) = item.read {
        let watermark = unix_number(read.watermark.as_ref());
        let event_id = match (read.mid.as_deref(), watermark) {
            (Some(mid), _) => format!("{mid}:read"),
            (None, Some(watermark)) => format!("read:{sender}:{watermark}"),
            (None, None) => return batch.skip(platform.unmapped()),
        };
        return batch.drafts.push(EventDraft {
            event_id: Some(event_id),
            occurred_at: timestamp.or(watermark).and_then(crate::unix_millis),
            identifiers: identifiers(sender),
            ..draft(source, EventType::MessageRead, Direction::Outbound)
        });
    }

    if let Some(postback) = item.postback {
        let event_id = match (postback.mid, timestamp) {
            (Some(mid), _) => mid,
            (None, Some(at)) => format!("postback:{sender}:{at}"),
            (None, None) => return batch.skip(platform.unmapped()),
        };
        let title = postback.title.unwrap_or_default();
        let mut draft = EventDraft {
            event_id: Some(event_id),
            occurred_at: timestamp.and_then(crate::unix_millis),
            identifiers: identifiers(sender),
            summary: bounded(&format!("[button] {title}"), SUMMARY_CHARS),
            ..draft(source, EventType::MessageReceived, Direction::Inbound)
        };
        if let Some(payload) = postback.payload {
            set_attribute(&mut draft, "meta.postback_payload", &payload);
        }
        return batch.drafts.push(draft);
    }

    // Reactions, referrals, opt-ins, edits, handovers: not mapped.
    batch.skip(platform.unmapped());
}

/// `[image] [video]` for a message without text.
fn attachment_labels(attachments: &[Attachment]) -> String {
    let labels: Vec<String> = attachments
        .iter()
        .map(|a| {
            format!(
                "[{}]",
                excerpt(a.kind.as_deref().unwrap_or("attachment"), 40)
            )
        })
        .collect();
    if labels.is_empty() {
        "[message]".to_owned()
    } else {
        labels.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
        let ok = handshake(
            Some("subscribe"),
            Some("s3cret"),
            Some("1158201444"),
            "s3cret",
        );
        assert_eq!(ok, Ok("1158201444".to_owned()));
        for (mode, token, expected) in [
            (Some("subscribe"), Some("wrong"), "s3cret"),
            (Some("subscribe"), None, "s3cret"),
            (Some("unsubscribe"), Some("s3cret"), "s3cret"),
            (None, Some("s3cret"), "s3cret"),
            (Some("subscribe"), Some(""), ""),
        ] {
            assert!(
                matches!(
                    handshake(mode, token, Some("1"), expected),
                    Err(ChannelError::Unauthorized(_))
                ),
                "{mode:?} {token:?}"
            );
        }
        for challenge in [None, Some(""), Some("<script>"), Some("a b")] {
            assert!(matches!(
                handshake(Some("subscribe"), Some("t"), challenge, "t"),
                Err(ChannelError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn unix_times_come_as_numbers_or_strings() {
        assert_eq!(
            unix_number(Some(&Value::from(1_749_416_383_i64))),
            Some(1_749_416_383)
        );
        assert_eq!(
            unix_number(Some(&Value::from("1749416383"))),
            Some(1_749_416_383)
        );
        assert_eq!(unix_number(Some(&Value::from("soon"))), None);
        assert_eq!(unix_number(Some(&Value::Bool(true))), None);
        assert_eq!(unix_number(None), None);
    }

    fn message(json: &str) -> WhatsappMessage {
        serde_json::from_str(json).expect("message")
    }

    #[test]
    fn whatsapp_messages_without_text_get_a_label() {
        for (json, expected) in [
            (
                r#"{"id":"w","type":"text","text":{"body":"Where is my parcel?"}}"#,
                "Where is my parcel?",
            ),
            (
                r#"{"id":"w","type":"image","image":{"caption":"the dent","id":"1"}}"#,
                "[image] the dent",
            ),
            (r#"{"id":"w","type":"image","image":{"id":"1"}}"#, "[image]"),
            (
                r#"{"id":"w","type":"audio","audio":{"id":"1","voice":true}}"#,
                "[voice message]",
            ),
            (r#"{"id":"w","type":"audio","audio":{"id":"1"}}"#, "[audio]"),
            (
                r#"{"id":"w","type":"document","document":{"filename":"invoice.pdf"}}"#,
                "[document] invoice.pdf",
            ),
            (
                r#"{"id":"w","type":"location","location":{"latitude":52.37,"longitude":4.89,"name":"Depot","address":"Kade 1, Amsterdam"}}"#,
                "[location] Depot, Kade 1, Amsterdam",
            ),
            (
                r#"{"id":"w","type":"location","location":{"latitude":52.37,"longitude":4.89}}"#,
                "[location]",
            ),
            (
                r#"{"id":"w","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b1","title":"Track order"}}}"#,
                "[button] Track order",
            ),
            (
                r#"{"id":"w","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"l1","title":"Returns","description":"x"}}}"#,
                "[list] Returns",
            ),
            (
                r#"{"id":"w","type":"button","button":{"payload":"p","text":"Stop promotions"}}"#,
                "[button] Stop promotions",
            ),
            (
                r#"{"id":"w","type":"contacts","contacts":[{"name":{"formatted_name":"Piet Jansen"}}]}"#,
                "[contacts] Piet Jansen",
            ),
            (
                r#"{"id":"w","type":"unsupported","errors":[{"code":131051}]}"#,
                "[unsupported]",
            ),
            (r#"{"id":"w"}"#, "[message]"),
        ] {
            assert_eq!(whatsapp_summary(&message(json)), expected, "{json}");
        }
    }

    #[test]
    fn attachments_are_labelled() {
        let attachments = vec![
            Attachment {
                kind: Some("image".into()),
            },
            Attachment { kind: None },
        ];
        assert_eq!(attachment_labels(&attachments), "[image] [attachment]");
        assert_eq!(attachment_labels(&[]), "[message]");
    }
}
