//! WhatsApp Cloud API notifications (`whatsapp_business_account`): messages
//! from customers and statuses of the business's own messages.

use panorama_core::{Direction, EventDraft, EventType, IdentifierKind};
use serde::Deserialize;
use serde_json::Value;

use super::{Batch, SOURCE_WHATSAPP, draft, unix_number};
use crate::text::{SUMMARY_CHARS, excerpt};
use crate::{Candidate, Context, MAX_SHORT_TEXT, bounded, set_attribute};

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

/// The messages and statuses of one `whatsapp_business_account` entry,
/// found at `path` (`entry[0]`).
pub(super) fn entry(entry: Value, path: &str, context: &Context, batch: &mut Batch) {
    let Ok(entry) = serde_json::from_value::<WhatsappEntry>(entry) else {
        return batch.skip(WHATSAPP_UNMAPPED);
    };
    for (index, change) in entry.changes.into_iter().enumerate() {
        if change.field != "messages" {
            batch.skip(WHATSAPP_UNMAPPED);
            continue;
        }
        let Ok(value) = serde_json::from_value::<WhatsappValue>(change.value) else {
            batch.skip(WHATSAPP_UNMAPPED);
            continue;
        };
        let value_path = format!("{path}.changes[{index}].value");
        for (index, message) in value.messages.iter().enumerate() {
            let path = format!("{value_path}.messages[{index}]");
            match serde_json::from_value::<WhatsappMessage>(message.clone()) {
                Ok(message) => whatsapp_message(message, &value, &path, context, batch),
                Err(_) => batch.skip(WHATSAPP_UNMAPPED),
            }
        }
        for (index, status) in value.statuses.iter().enumerate() {
            let path = format!("{value_path}.statuses[{index}]");
            match serde_json::from_value::<WhatsappStatus>(status.clone()) {
                Ok(status) => whatsapp_status(status, &value, &path, context, batch),
                Err(_) => batch.skip(WHATSAPP_UNMAPPED),
            }
        }
        if value.messages.is_empty() && value.statuses.is_empty() {
            batch.skip(WHATSAPP_UNMAPPED);
        }
    }
}

/// Pushes `draft`, the event found at `path`, onto `batch` with the
/// business number it went through and the customer's `whatsapp:<wa_id>`
/// and `phone:+<wa_id>` (a wa_id is the phone number's digits), read from
/// `path`.`field`; no identifier when the wa_id is missing.
fn push_event(
    batch: &mut Batch,
    path: &str,
    mut draft: EventDraft,
    value: &WhatsappValue,
    (field, wa_id): (&str, &str),
    context: &Context,
) {
    whatsapp_business_number(&mut draft, value);
    let wa_id = wa_id.trim();
    let phone = match wa_id.strip_prefix('+') {
        Some(_) => wa_id.to_owned(),
        None => format!("+{wa_id}"),
    };
    let field = format!("{path}.{field}");
    let given = !wa_id.is_empty();
    let identifiers: [Candidate<'_>; 2] = [
        (
            IdentifierKind::Whatsapp,
            field.clone(),
            given.then_some(wa_id),
        ),
        (
            IdentifierKind::Phone,
            field,
            given.then_some(phone.as_str()),
        ),
    ];
    batch.push(path, draft, identifiers, context);
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
    path: &str,
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
        summary: bounded(&whatsapp_summary(&message), SUMMARY_CHARS),
        display_name: name.and_then(|n| bounded(n, MAX_SHORT_TEXT)),
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
    push_event(batch, path, draft, value, ("from", from), context);
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
    path: &str,
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
        (Some(code), Some(title)) => bounded(&format!("{code} {title}"), MAX_SHORT_TEXT),
        (Some(code), None) => bounded(code, MAX_SHORT_TEXT),
        (None, Some(title)) => bounded(title, MAX_SHORT_TEXT),
        (None, None) => None,
    };
    let mut draft = EventDraft {
        event_id: Some(format!("{}:{}", status.id, status.status)),
        occurred_at: unix_number(status.timestamp.as_ref()).and_then(crate::unix_seconds),
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
    let recipient = status.recipient_id.as_deref().unwrap_or_default();
    push_event(
        batch,
        path,
        draft,
        value,
        ("recipient_id", recipient),
        context,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
