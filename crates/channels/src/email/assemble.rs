//! Parsed-mode webhooks (SendGrid's default mode, Mailgun's forwards) post
//! a header block or header list and the decoded bodies, not a message:
//! these helpers put them back together as one RFC 5322 message, so the
//! mapping in [`crate::email`] reads every provider the same way.

use sha2::{Digest, Sha256};

/// Appends `Name: value` to a header block, folding any line breaks in the
/// value (so a provider field can never inject a header).
pub(crate) fn push_header(block: &mut Vec<u8>, name: &str, value: &str) {
    let value: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    block.extend_from_slice(name.as_bytes());
    block.extend_from_slice(b": ");
    block.extend_from_slice(value.trim().as_bytes());
    block.extend_from_slice(b"\r\n");
}

/// The header fields of `raw` (a header block as a provider posts it) other
/// than those named in `dropped` (case-insensitive), continuation lines kept
/// with their field; blank and non-header lines are left out.
pub(crate) fn header_block_without(raw: &[u8], dropped: &[&str]) -> Vec<u8> {
    let mut block = Vec::with_capacity(raw.len());
    let mut keep = false;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if keep {
                block.extend_from_slice(line);
                block.extend_from_slice(b"\r\n");
            }
            continue;
        }
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map(|colon| &line[..colon]);
        keep = match name {
            Some(name) if !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic()) => {
                !dropped
                    .iter()
                    .any(|dropped| name.eq_ignore_ascii_case(dropped.as_bytes()))
            }
            _ => false,
        };
        if keep {
            block.extend_from_slice(line);
            block.extend_from_slice(b"\r\n");
        }
    }
    block
}

/// Header fields that describe the original body's structure: left out when
/// a parsed-mode webhook's bodies are reassembled into a new message.
pub(crate) const BODY_STRUCTURE_HEADERS: &[&str] =
    &["Content-Type", "Content-Transfer-Encoding", "MIME-Version"];

/// A message from a header block (without body-structure fields) and the
/// text and HTML bodies a parsed-mode webhook posts, both as UTF-8.
pub(crate) fn assemble(header_block: &[u8], text: Option<&str>, html: Option<&str>) -> Vec<u8> {
    let mut message = header_block.to_vec();
    message.extend_from_slice(b"MIME-Version: 1.0\r\n");
    match (text, html) {
        (Some(text), Some(html)) => {
            // A boundary derived from the bodies cannot occur in them.
            let digest = Sha256::new()
                .chain_update(text)
                .chain_update([0])
                .chain_update(html)
                .finalize();
            let boundary = format!("=_panorama_{}", &hex::encode(digest)[..32]);
            message.extend_from_slice(
                format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n")
                    .as_bytes(),
            );
            for (subtype, body) in [("plain", text), ("html", html)] {
                message.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    )
                    .as_bytes(),
                );
                message.extend_from_slice(body.as_bytes());
                message.extend_from_slice(b"\r\n");
            }
            message.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
        (text, html) => {
            let (subtype, body) = match (text, html) {
                (None, Some(html)) => ("html", html),
                (text, _) => ("plain", text.unwrap_or("")),
            };
            message.extend_from_slice(
                format!("Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
                    .as_bytes(),
            );
            message.extend_from_slice(body.as_bytes());
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, PartType};

    #[test]
    fn header_blocks_drop_body_structure_and_keep_continuations() {
        let raw = b"Received: by x\n\tfor y\nContent-Type: multipart/mixed;\n boundary=\"abc\"\nSubject: Hi\n\nnot a header\n";
        let block = header_block_without(raw, BODY_STRUCTURE_HEADERS);
        assert_eq!(block, b"Received: by x\r\n\tfor y\r\nSubject: Hi\r\n");
        let mut block = Vec::new();
        push_header(&mut block, "Subject", "a\r\nBcc: evil@x.example");
        assert_eq!(block, b"Subject: a  Bcc: evil@x.example\r\n");
    }

    #[test]
    fn assembled_messages_parse_back() {
        let mut headers = Vec::new();
        push_header(&mut headers, "From", "Anna <anna@example.com>");
        let raw = assemble(&headers, Some("plain ü"), Some("<p>html ü</p>"));
        let message = MessageParser::default().parse(&raw).expect("message");
        assert_eq!(message.body_text(0).as_deref(), Some("plain ü"));
        assert_eq!(message.body_html(0).as_deref(), Some("<p>html ü</p>"));
        let html_only = assemble(&headers, None, Some("<p>only</p>"));
        let message = MessageParser::default().parse(&html_only).expect("message");
        assert_eq!(message.text_body_count(), 1);
        assert!(matches!(message.parts[0].body, PartType::Html(_)));
    }
}
