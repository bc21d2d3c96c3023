//! Messenger Platform notifications, which Messenger (`page`) and Instagram
//! (`instagram`) share: messages, echoes, delivery and read receipts,
//! postbacks.

use panorama_core::{Direction, EventDraft, EventType, IdentifierKind};
use serde::Deserialize;
use serde_json::Value;

use super::{Batch, SOURCE_INSTAGRAM, SOURCE_MESSENGER, draft, unix_number};
use crate::text::{SUMMARY_CHARS, excerpt};
use crate::{Context, bounded, set_attribute};

/// The two products that share the Messenger Platform's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Platform {
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

/// The messaging events of one `page` or `instagram` entry, found at `path`
/// (`entry[0]`).
pub(super) fn entry(
    entry: Value,
    path: &str,
    platform: Platform,
    context: &Context,
    batch: &mut Batch,
) {
    let Ok(entry) = serde_json::from_value::<MessagingEntry>(entry) else {
        return batch.skip(platform.unmapped());
    };
    // `changes` carries feed and comment notifications: not messaging.
    if !entry.changes.is_empty() {
        batch.skip(platform.unmapped());
    }
    let items = (entry.messaging.into_iter().enumerate())
        .map(|(index, item)| (format!("{path}.messaging[{index}]"), item))
        .chain(
            (entry.standby.into_iter().enumerate())
                .map(|(index, item)| (format!("{path}.standby[{index}]"), item)),
        );
    for (path, item) in items {
        match serde_json::from_value::<Messaging>(item) {
            Ok(item) => messaging_item(item, &path, platform, context, batch),
            Err(_) => batch.skip(platform.unmapped()),
        }
    }
}

fn messaging_item(
    item: Messaging,
    path: &str,
    platform: Platform,
    context: &Context,
    batch: &mut Batch,
) {
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
    // Adds an event about the customer whose scoped id is `id`, found in
    // the item's `party` (`sender` or `recipient`).
    let push = |batch: &mut Batch, draft: EventDraft, party: &str, id: &str| {
        let field = format!("{path}.{party}.id");
        batch.push(
            path,
            draft,
            [(platform.identifier_kind(), field, Some(id))],
            context,
        );
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
        let (event_type, direction, party, customer) = if message.is_echo {
            (
                EventType::MessageSent,
                Direction::Outbound,
                "recipient",
                recipient,
            )
        } else {
            (
                EventType::MessageReceived,
                Direction::Inbound,
                "sender",
                sender,
            )
        };
        let summary = match message.text.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(text) => text.to_owned(),
            None => attachment_labels(&message.attachments),
        };
        let mut draft = EventDraft {
            event_id: Some(mid),
            occurred_at: timestamp.and_then(crate::unix_millis),
            summary: bounded(&summary, SUMMARY_CHARS),
            ..draft(source, event_type, direction)
        };
        if let Some(payload) = message.quick_reply.and_then(|q| q.payload) {
            set_attribute(&mut draft, "meta.quick_reply_payload", &payload);
        }
        if let Some(reply_to) = message.reply_to.and_then(|r| r.mid) {
            set_attribute(&mut draft, "meta.reply_to", &reply_to);
        }
        return push(batch, draft, party, customer);
    }

    if let Some(delivery) = item.delivery {
        let watermark = unix_number(delivery.watermark.as_ref());
        let occurred_at = timestamp.or(watermark).and_then(crate::unix_millis);
        let receipt = |event_id: String| EventDraft {
            event_id: Some(event_id),
            occurred_at: occurred_at.clone(),
            ..draft(source, EventType::MessageDelivered, Direction::Outbound)
        };
        if delivery.mids.is_empty() {
            // Older clients confirm by watermark only: "everything before".
            let Some(watermark) = watermark else {
                return batch.skip(platform.unmapped());
            };
            let event_id = format!("delivered:{sender}:{watermark}");
            return push(batch, receipt(event_id), "sender", sender);
        }
        for mid in &delivery.mids {
            push(batch, receipt(format!("{mid}:delivered")), "sender", sender);
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
        let read = EventDraft {
            event_id: Some(event_id),
            occurred_at: timestamp.or(watermark).and_then(crate::unix_millis),
            ..draft(source, EventType::MessageRead, Direction::Outbound)
        };
        return push(batch, read, "sender", sender);
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
            summary: bounded(&format!("[button] {title}"), SUMMARY_CHARS),
            ..draft(source, EventType::MessageReceived, Direction::Inbound)
        };
        if let Some(payload) = postback.payload {
            set_attribute(&mut draft, "meta.postback_payload", &payload);
        }
        return push(batch, draft, "sender", sender);
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
