//! The event contract's limits, in one place. Text is bounded in characters
//! (what people count) and, where PostgreSQL indexes the value, in UTF-8
//! bytes too: an index entry holds at most about 2,700 bytes (2,704 for a
//! btree, 2,712 for a GIN index), so 998 characters of four-byte text would
//! pass a character limit and then be refused by the projection forever.
//! Whatever the contract accepts, the projection can write.

use chrono::{DateTime, Utc};

/// Most UTF-8 bytes of a text the projection indexes: well under
/// PostgreSQL's index entry limit, leaving room for the other columns of a
/// composite key and for the entry's header.
pub const MAX_INDEXED_BYTES: usize = 2000;

/// How long a text may be: in characters (Unicode scalar values) and, for
/// text that ends up in an index, in UTF-8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimit {
    /// Most characters.
    pub chars: usize,
    /// Most UTF-8 bytes; `None` when the character limit is the only bound
    /// (the text is not indexed, or is short enough that four bytes a
    /// character stay under [`MAX_INDEXED_BYTES`]).
    pub bytes: Option<usize>,
}

impl TextLimit {
    /// A limit in characters only.
    pub const fn chars(chars: usize) -> Self {
        TextLimit { chars, bytes: None }
    }

    /// A limit in characters and bytes, for indexed text.
    pub const fn indexed(chars: usize) -> Self {
        TextLimit {
            chars,
            bytes: Some(MAX_INDEXED_BYTES),
        }
    }

    /// Whether `text` is within the limit. Counts characters only as far as
    /// needed, so a huge input costs no more than the limit.
    pub fn admits(self, text: &str) -> bool {
        self.bytes.is_none_or(|bytes| text.len() <= bytes) && text.chars().nth(self.chars).is_none()
    }

    /// The longest prefix of `text` within the limit, cut at a character
    /// boundary: for producers that shorten rather than refuse.
    pub fn cut(self, text: &str) -> &str {
        let bytes = self.bytes.unwrap_or(usize::MAX);
        let end = text
            .char_indices()
            .map(|(at, c)| at + c.len_utf8())
            .take(self.chars)
            .take_while(|&end| end <= bytes)
            .last()
            .unwrap_or(0);
        &text[..end]
    }
}

impl std::fmt::Display for TextLimit {
    /// `at most 998 characters and 2000 bytes`, for error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at most {} characters", self.chars)?;
        if let Some(bytes) = self.bytes {
            write!(f, " and {bytes} bytes")?;
        }
        Ok(())
    }
}

/// `conversation_id`: cases keep every conversation of their contacts in a
/// GIN index (`cases_by_conversation`).
pub const CONVERSATION_ID: TextLimit = TextLimit::indexed(998);
/// `contact_reason`.
pub const CONTACT_REASON: TextLimit = TextLimit::chars(500);
/// `subject` (the RFC 5322 line limit); also a task's title.
pub const SUBJECT: TextLimit = TextLimit::chars(998);
/// `summary`.
pub const SUMMARY: TextLimit = TextLimit::chars(4000);
/// `agent_id`, `queue`, `outcome`, `display_name`, and the short task
/// attributes: names, at most 800 bytes.
pub const SHORT_TEXT: TextLimit = TextLimit::chars(200);
/// `feedback.comment`.
pub const COMMENT: TextLimit = TextLimit::chars(2000);
/// A provider id given as `event_id` (it only feeds the derived UUID).
pub const PROVIDER_EVENT_ID: TextLimit = TextLimit::chars(512);
/// Most attributes on one event.
pub const MAX_ATTRIBUTES: usize = 64;
/// An attribute key: `customer.*` keys are part of the primary key of
/// `customer_attributes`, at most 256 bytes.
pub const ATTRIBUTE_KEY: TextLimit = TextLimit::chars(64);
/// An attribute value, unless its key has a tighter limit (see
/// [`crate::attributes`]).
pub const ATTRIBUTE_VALUE: TextLimit = TextLimit::chars(1024);
/// Most identifiers on one event.
pub const MAX_IDENTIFIERS: usize = 20;
/// A raw phone number, before normalisation to E.164.
pub const PHONE_INPUT: TextLimit = TextLimit::chars(40);
/// A normalised email address (RFC 5321), at most 1,016 bytes: part of the
/// primary key of `identifiers`.
pub const EMAIL: TextLimit = TextLimit::chars(254);
/// The local part of a normalised email address (RFC 5321).
pub const EMAIL_LOCAL_PART: TextLimit = TextLimit::chars(64);
/// A normalised account number, platform user id, X handle or visitor id,
/// at most 512 bytes: part of the primary key of `identifiers`.
pub const PLATFORM_ID: TextLimit = TextLimit::chars(128);

/// The earliest `occurred_at` or `received_at`: 1970-01-01T00:00:00Z.
pub const EARLIEST_EVENT_TIME: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// The latest `occurred_at` or `received_at`: the last instant of year
/// 9999, the last one RFC 3339 can write, and far inside PostgreSQL's
/// `timestamptz` range (4713 BC to 294276 AD).
pub const LATEST_EVENT_TIME: DateTime<Utc> =
    DateTime::from_timestamp(253_402_300_799, 999_999_999).expect("9999-12-31T23:59:59.999999999Z");

/// Whether `at` lies within [`EARLIEST_EVENT_TIME`] and
/// [`LATEST_EVENT_TIME`].
pub fn event_time_in_range(at: DateTime<Utc>) -> bool {
    (EARLIEST_EVENT_TIME..=LATEST_EVENT_TIME).contains(&at)
}

/// Why a time outside the range was refused, in words.
pub const EVENT_TIME_RANGE: &str =
    "must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_and_indexed_bytes() {
        let four_byte = "\u{20000}";
        assert!(CONVERSATION_ID.admits(&four_byte.repeat(500)));
        assert!(!CONVERSATION_ID.admits(&four_byte.repeat(501)));
        assert!(CONVERSATION_ID.admits(&"a".repeat(998)));
        assert!(!CONVERSATION_ID.admits(&"a".repeat(999)));
        assert!(SUBJECT.admits(&four_byte.repeat(998)));
        assert_eq!(
            CONVERSATION_ID.to_string(),
            "at most 998 characters and 2000 bytes"
        );
        assert_eq!(SHORT_TEXT.to_string(), "at most 200 characters");
    }

    #[test]
    fn cutting_keeps_whole_characters_within_the_limit() {
        let mixed = format!("{}{}", "é".repeat(999), "\u{20000}".repeat(10));
        let cut = CONVERSATION_ID.cut(&mixed);
        assert!(CONVERSATION_ID.admits(cut));
        assert_eq!(cut.len(), 1996, "998 two-byte characters");
        let wide = "\u{20000}".repeat(600);
        assert_eq!(CONVERSATION_ID.cut(&wide).chars().count(), 500);
        assert_eq!(SHORT_TEXT.cut("short"), "short");
        assert_eq!(TextLimit::indexed(0).cut("x"), "");
    }

    #[test]
    fn event_times_stay_within_what_rfc_3339_and_postgresql_can_hold() {
        assert_eq!(
            LATEST_EVENT_TIME.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert!(event_time_in_range(EARLIEST_EVENT_TIME));
        assert!(event_time_in_range(LATEST_EVENT_TIME));
        assert!(!event_time_in_range(
            EARLIEST_EVENT_TIME - chrono::Duration::nanoseconds(1)
        ));
        assert!(!event_time_in_range(DateTime::<Utc>::MAX_UTC));
        assert!(!event_time_in_range(DateTime::<Utc>::MIN_UTC));
    }
}
