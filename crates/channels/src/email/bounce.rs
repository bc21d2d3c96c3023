//! Delivery status reports (RFC 3464 `multipart/report`, and the plain
//! bounces of MTAs that do not send one): who could not be reached, why, and
//! which thread the failed message belonged to.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::{first_address_string, raw_header, thread_of};

/// What a delivery status report says about the failed delivery.
#[derive(Debug, Default)]
pub(super) struct BounceReport {
    /// The address that could not be reached (the customer).
    pub(super) recipient: Option<String>,
    /// `failed`, `delayed`, ...
    pub(super) action: Option<String>,
    /// Enhanced status code, e.g. `5.1.1`.
    pub(super) status: Option<String>,
    /// The remote server's words.
    pub(super) diagnostic: Option<String>,
    /// The thread root of the message that bounced.
    pub(super) original_thread: Option<String>,
}

impl BounceReport {
    pub(super) fn of(message: &Message<'_>) -> Self {
        let mut report = BounceReport::default();
        let mut original_to = None;
        for part in &message.parts {
            let Some(content_type) = part.content_type() else {
                continue;
            };
            let ctype = content_type.ctype().to_ascii_lowercase();
            let subtype = content_type.subtype().unwrap_or("").to_ascii_lowercase();
            match (ctype.as_str(), subtype.as_str(), &part.body) {
                ("message", subtype, _) if subtype.ends_with("delivery-status") => {
                    report.read_status_fields(&String::from_utf8_lossy(part.contents()));
                }
                (_, _, PartType::Message(original)) => {
                    report.original_thread = report
                        .original_thread
                        .take()
                        .or_else(|| thread_of(original));
                    original_to = original_to.or_else(|| first_address_string(original.to()));
                }
                ("text", "rfc822-headers", _) => {
                    if let Some(original) = MessageParser::default().parse_headers(part.contents())
                    {
                        report.original_thread = report
                            .original_thread
                            .take()
                            .or_else(|| thread_of(&original));
                        original_to = original_to.or_else(|| first_address_string(original.to()));
                    }
                }
                _ => {}
            }
        }
        let failed_header = raw_header(message, "X-Failed-Recipients").and_then(|value| {
            value
                .split(',')
                .map(str::trim)
                .find(|value| !value.is_empty())
                .map(str::to_owned)
        });
        report.recipient = report.recipient.take().or(failed_header).or(original_to);
        report
    }

    /// Reads the first recipient's fields of a `message/delivery-status`
    /// body (RFC 3464: per-message fields, then per-recipient blocks).
    fn read_status_fields(&mut self, body: &str) {
        let mut final_recipient = None;
        let mut original_recipient = None;
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in body.lines() {
            match fields.last_mut() {
                Some((_, value)) if line.starts_with([' ', '\t']) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                _ => {
                    if let Some((name, value)) = line.split_once(':') {
                        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
            }
        }
        // The address after the type, e.g. `rfc822; anna@example.com`.
        let address = |value: &str| {
            value
                .split_once(';')
                .map_or(value, |(_, address)| address)
                .trim()
                .to_owned()
        };
        for (name, value) in fields {
            match name.as_str() {
                "final-recipient" if final_recipient.is_none() => {
                    final_recipient = Some(address(&value))
                }
                "original-recipient" if original_recipient.is_none() => {
                    original_recipient = Some(address(&value))
                }
                "action" if self.action.is_none() => self.action = Some(value.to_ascii_lowercase()),
                "status" if self.status.is_none() => self.status = Some(value),
                "diagnostic-code" if self.diagnostic.is_none() => {
                    self.diagnostic = Some(address(&value))
                }
                _ => {}
            }
        }
        self.recipient = self
            .recipient
            .take()
            .or(final_recipient)
            .or(original_recipient);
    }
}
