//! SendGrid Inbound Parse (`POST /v1/channels/sendgrid/inbound`,
//! `multipart/form-data`), source `sendgrid`, in both of its modes:
//!
//! - raw ("POST the raw, full MIME message"): the message is the `email`
//!   field and takes the same path as a `message/rfc822` upload;
//! - parsed (the default): `headers` (the raw header block), `from`, `to`,
//!   `subject`, `text`, `html`, `envelope`, `charsets`, `attachments`,
//!   `attachment-info`, `SPF`, `dkim`, `sender_ip`, `spam_score`, and one
//!   file part per attachment. The header block and the bodies are
//!   reassembled into a message, so threading headers (Message-ID,
//!   In-Reply-To, References) and auto-reply headers (Auto-Submitted, ...)
//!   are read exactly as for raw messages.
//!
//! `text`, `html` and `subject` arrive in the charset that `charsets` names
//! per field (e.g. `{"text":"iso-8859-1"}`) and are decoded to UTF-8 here.
//! The sender is verified when `SPF` passed for the `envelope`'s sender or
//! `dkim` passed for a domain aligned with the From address.
//! Inbound Parse signs nothing: the gateway authenticates the request (basic
//! auth or a token in the configured URL) before calling [`parse`].

use std::collections::HashMap;

use mail_parser::decoders::charsets::map::charset_decoder;
use serde_json::Value;

use crate::email::{self, Authenticated, BODY_STRUCTURE_HEADERS, Envelope, SenderCheck};
use crate::multipart::{self, Part};
use crate::{ChannelError, Context, Outcome, Result};

/// The source name of SendGrid events.
pub const SOURCE: &str = "sendgrid";

/// Maps one Inbound Parse POST to its event.
pub fn parse(content_type: &str, body: &[u8], context: &Context) -> Result<Outcome> {
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ChannelError::malformed(
            "content-type",
            "SendGrid Inbound Parse posts multipart/form-data",
        ));
    }
    let fields = Fields {
        parts: multipart::parse(content_type, body)?,
    };
    let envelope = fields.envelope();

    if let Some(raw) = fields.get("email") {
        return email::parse_raw(&raw.data, SOURCE, &envelope, context);
    }
    if fields.get("headers").is_none() && fields.get("from").is_none() {
        return Err(ChannelError::malformed_body(
            "neither a raw `email` field nor parsed `headers` / `from` fields",
        ));
    }

    let charsets = fields.charsets();
    let decoded = |name: &str| {
        fields
            .get(name)
            .map(|part| decode(&part.data, charsets.get(name).map(String::as_str)))
            .filter(|value| !value.trim().is_empty())
    };
    let subject = decoded("subject");
    let mut dropped = BODY_STRUCTURE_HEADERS.to_vec();
    if subject.is_some() {
        // The field is decoded with its declared charset; the header may be
        // raw 8-bit text in an unknown one.
        dropped.push("Subject");
    }
    let mut headers = email::header_block_without(
        fields.get("headers").map_or(&[][..], |part| &part.data),
        &dropped,
    );
    if let Some(subject) = &subject {
        email::push_header(&mut headers, "Subject", subject);
    }
    for (field, header) in [("from", "From"), ("to", "To")] {
        if has_header(&headers, header) {
            continue;
        }
        if let Some(value) = decoded(field) {
            email::push_header(&mut headers, header, &value);
        }
    }
    let raw = email::assemble(
        &headers,
        decoded("text").as_deref(),
        decoded("html").as_deref(),
    );
    email::parse_raw(&raw, SOURCE, &envelope, context)
}

/// The text fields of the POST (attachments are file parts and left out).
struct Fields {
    parts: Vec<Part>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Part> {
        self.parts
            .iter()
            .find(|part| part.name == name && part.filename.is_none())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|part| part.text().trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn json(&self, name: &str) -> Option<Value> {
        // SendGrid's auxiliary JSON is not always JSON (`dkim` is
        // `{@example.com : pass}`): a field that does not parse is skipped,
        // never a reason to drop the customer's email.
        serde_json::from_slice(&self.get(name)?.data).ok()
    }

    /// Field name → charset, from the `charsets` field.
    fn charsets(&self) -> HashMap<String, String> {
        let Some(Value::Object(map)) = self.json("charsets") else {
            return HashMap::new();
        };
        map.into_iter()
            .filter_map(|(field, charset)| Some((field, charset.as_str()?.to_owned())))
            .collect()
    }

    fn envelope(&self) -> Envelope {
        let smtp = self.json("envelope");
        let recipient = smtp.as_ref().and_then(|smtp| match smtp.get("to")? {
            Value::Array(to) => to.iter().find_map(Value::as_str).map(str::to_owned),
            Value::String(to) => Some(to.clone()),
            _ => None,
        });
        let sender = smtp
            .as_ref()
            .and_then(|smtp| smtp.get("from")?.as_str().map(str::to_owned));
        let attachments = self
            .text("attachments")
            .and_then(|count| count.parse::<usize>().ok())
            .or_else(|| match self.json("attachment-info") {
                Some(Value::Object(info)) => Some(info.len()),
                _ => None,
            });
        let attributes = [
            ("spf", "SPF"),
            ("dkim", "dkim"),
            ("sender_ip", "sender_ip"),
            ("spam_score", "spam_score"),
        ]
        .into_iter()
        .filter_map(|(key, field)| Some((key, self.text(field)?)))
        .collect();
        let sender_check = SenderCheck::Reported(Authenticated::sendgrid(
            self.text("SPF").as_deref(),
            sender.as_deref(),
            self.text("dkim").as_deref(),
        ));
        Envelope {
            recipient,
            sender,
            sender_check,
            stripped_text: None,
            // Raw mode carries the attachments inside the message itself.
            attachments: if self.get("email").is_some() {
                None
            } else {
                attachments
            },
            attributes,
        }
    }
}

/// `bytes` in `charset` as UTF-8; unknown charsets and invalid UTF-8 are
/// decoded leniently (replacement characters), never refused.
fn decode(bytes: &[u8], charset: Option<&str>) -> String {
    let charset = charset.map(str::trim).unwrap_or("");
    let is_utf8 = charset.is_empty()
        || charset.eq_ignore_ascii_case("utf-8")
        || charset.eq_ignore_ascii_case("utf8");
    match charset_decoder(charset.as_bytes()) {
        Some(decoder) if !is_utf8 => decoder(bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Whether a header block (as built by [`email::header_block_without`]) has
/// a field `name`.
fn has_header(block: &[u8], name: &str) -> bool {
    block.split(|&b| b == b'\n').any(|line| {
        line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_declared_charsets() {
        assert_eq!(decode(b"caf\xe9", Some("iso-8859-1")), "café");
        assert_eq!(decode(b"ESP\x92s\x85", Some("windows-1252")), "ESP’s…");
        assert_eq!(decode(b"pidi\xa2", Some("cp850")), "pidió");
        assert_eq!(decode("café".as_bytes(), Some("UTF-8")), "café");
        assert_eq!(decode(b"caf\xe9", Some("x-unknown")), "caf\u{fffd}");
        assert_eq!(decode(b"plain", None), "plain");
    }

    #[test]
    fn finds_header_names_exactly() {
        let block = b"From: a@b.example\r\nX-From-Id: 1\r\n";
        assert!(has_header(block, "from"));
        assert!(!has_header(block, "To"));
        assert!(!has_header(b"Fromage: 1\r\n", "From"));
    }
}
