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

mod messaging;
mod whatsapp;

use panorama_core::{Channel, Direction, EventDraft, EventType};
use serde::Deserialize;
use serde_json::Value;

use crate::signature::{hmac_sha256_hex, secrets_equal, verify_hmac_sha256_hex};
use crate::{Candidate, ChannelError, Context, Found, Outcome, Result, Warning};
use messaging::Platform;

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

/// The `X-Hub-Signature-256` header Meta would send with `body`: what
/// [`verify`] checks, for simulators and tests that play Meta.
pub fn sign(body: &[u8], app_secret: &str) -> String {
    format!("sha256={}", hmac_sha256_hex(app_secret.as_bytes(), body))
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
    let platform = match notification.object.as_str() {
        "whatsapp_business_account" => None,
        "page" => Some(Platform::Messenger),
        "instagram" => Some(Platform::Instagram),
        _ => return Ok(Outcome::ignored("meta.unmapped_object")),
    };
    for (index, entry) in notification.entry.into_iter().enumerate() {
        let path = format!("entry[{index}]");
        match platform {
            None => whatsapp::entry(entry, &path, context, &mut batch),
            Some(platform) => messaging::entry(entry, &path, platform, context, &mut batch),
        }
    }
    Ok(batch.finish())
}

/// The events found so far, each with its JSON path in the notification,
/// the identifiers that did not parse, and why something was skipped.
#[derive(Debug, Default)]
struct Batch {
    events: Vec<Found>,
    warnings: Vec<Warning>,
    skipped: Option<&'static str>,
}

impl Batch {
    fn skip(&mut self, reason: &'static str) {
        self.skipped.get_or_insert(reason);
    }

    /// Adds the event made of the item at `path`, with `identifiers` read
    /// into it (see [`crate::identify`]).
    fn push<'a>(
        &mut self,
        path: &str,
        mut draft: EventDraft,
        identifiers: impl IntoIterator<Item = Candidate<'a>>,
        context: &Context,
    ) {
        for warning in crate::identify(&mut draft, identifiers, context) {
            // Receipts for several messages share one sender: one warning.
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        self.events.push(Found {
            path: path.to_owned(),
            draft,
        });
    }

    fn finish(self) -> Outcome {
        match (self.events.is_empty(), self.skipped) {
            (true, Some(reason)) => Outcome::Ignored {
                reason,
                warnings: self.warnings,
            },
            (true, None) => Outcome::Ignored {
                reason: "meta.empty",
                warnings: self.warnings,
            },
            (false, _) => crate::events_or_ignored(self.events, self.warnings),
        }
    }
}

/// A draft with what every Meta event shares.
fn draft(source: &str, event_type: EventType, direction: Direction) -> EventDraft {
    crate::draft(Channel::Social, source, event_type, direction)
}

/// A unix time Meta sends as a number or a numeric string.
fn unix_number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_sign_produces_verify_accepts() {
        let header = sign(b"{}", "secret");
        assert!(verify(b"{}", Some(&header), "secret").is_ok());
        assert!(verify(b"{ }", Some(&header), "secret").is_err());
    }

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
}
