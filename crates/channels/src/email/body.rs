//! The summary of an email: what the sender wrote, as bounded plain text.

use mail_parser::{Message, PartType};

use super::Envelope;
use crate::text::{SUMMARY_CHARS, excerpt, html_to_text};

/// Body text looked at for the summary; the excerpt is far shorter.
const MAX_BODY_SCAN_BYTES: usize = 256 * 1024;

/// An excerpt of what the sender wrote: the provider's stripped text, else
/// the text bodies, else the HTML bodies as text; quoted replies dropped.
pub(super) fn summary(message: &Message<'_>, envelope: &Envelope) -> Option<String> {
    let text = envelope
        .stripped_text
        .clone()
        .filter(|text| !text.trim().is_empty())
        .or_else(|| body_text(message))?;
    let own_words = strip_quoted(&text);
    let chosen = if own_words.trim().is_empty() {
        text
    } else {
        own_words
    };
    let summary = excerpt(&chosen, SUMMARY_CHARS);
    (!summary.is_empty()).then_some(summary)
}

fn body_text(message: &Message<'_>) -> Option<String> {
    let mut text = String::new();
    for id in &message.text_body {
        match message.parts.get(*id as usize).map(|part| &part.body) {
            Some(PartType::Text(body)) => push_bounded(&mut text, body),
            Some(PartType::Html(body)) => {
                push_bounded(&mut text, &html_to_text(prefix(body, MAX_BODY_SCAN_BYTES)))
            }
            _ => {}
        }
    }
    if text.trim().is_empty() {
        for id in &message.html_body {
            if let Some(PartType::Html(body)) =
                message.parts.get(*id as usize).map(|part| &part.body)
            {
                push_bounded(&mut text, &html_to_text(prefix(body, MAX_BODY_SCAN_BYTES)));
            }
        }
    }
    (!text.trim().is_empty()).then_some(text)
}

fn push_bounded(text: &mut String, more: &str) {
    if text.len() >= MAX_BODY_SCAN_BYTES {
        return;
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(prefix(more, MAX_BODY_SCAN_BYTES - text.len()));
}

/// At most `max_bytes` of `text`, cut on a character boundary.
fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The sender's own words: quoted lines (`>`) dropped, and everything from
/// the usual reply headers (`On ... wrote:`, `-----Original Message-----`)
/// on.
fn strip_quoted(text: &str) -> String {
    let mut own = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim();
        let lower = trimmed.to_lowercase();
        let reply_header = lower.starts_with("-----original message")
            || lower.starts_with("-----ursprüngliche nachricht")
            || lower.starts_with("-----oorspronkelijk bericht")
            || (lower.starts_with("on ") && lower.ends_with("wrote:"))
            || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
            || (lower.starts_with("op ") && lower.ends_with("geschreven:"))
            || (lower.starts_with("le ") && lower.ends_with("a écrit :"));
        if reply_header {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        own.push_str(line);
        own.push('\n');
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_quotes_and_reply_headers() {
        let text = "Thanks, that works.\n\nOn Mon, 2 Mar 2026 at 09:00, Support <s@x.example> wrote:\n> Did it work?\n";
        assert_eq!(strip_quoted(text).trim(), "Thanks, that works.");
        assert_eq!(strip_quoted("> only a quote\n").trim(), "");
        assert_eq!(strip_quoted("top\n> quoted\nbottom\n"), "top\nbottom\n");
    }
}
