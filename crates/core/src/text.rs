//! Small shared helpers for bounded, trimmed text.

/// Trims `raw`; `None` when nothing is left.
pub(crate) fn non_empty_trimmed(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// Whether `text` contains a control character other than tab, CR and LF.
pub(crate) fn has_control_chars(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

/// Counts characters, stopping early once past `limit`.
pub(crate) fn longer_than(text: &str, limit: usize) -> bool {
    text.chars().nth(limit).is_some()
}
