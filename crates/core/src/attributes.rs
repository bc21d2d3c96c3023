//! Event attributes: extra string values the contract has no field for, and
//! the names of those the projection reads (follow-up tasks). Values the
//! projection indexes have tighter limits than the rest.

use std::collections::BTreeMap;

use crate::event::FieldError;
use crate::limits::{self, TextLimit};
use crate::text::has_control_chars;

/// Event attribute: a follow-up task's id (a UUID).
pub const TASK_ID: &str = "task.id";
/// Event attribute: when a follow-up task is due (RFC 3339).
pub const TASK_DUE_AT: &str = "task.due_at";
/// Event attribute: who should do a follow-up task. Indexed
/// (`tasks_by_assignee`), so a short name.
pub const TASK_ASSIGNEE: &str = "task.assignee";
/// Event attribute: the channel to contact the customer through for a
/// follow-up task.
pub const TASK_CHANNEL: &str = "task.channel";

/// The limit on the value of attribute `key`: a short name for the task's
/// assignee and channel, [`crate::traits::VALUE`] for a customer trait
/// (`customer.*`), [`limits::ATTRIBUTE_VALUE`] for every other key.
pub fn value_limit(key: &str) -> TextLimit {
    match key {
        TASK_ASSIGNEE | TASK_CHANNEL => limits::SHORT_TEXT,
        _ if key.starts_with(crate::traits::PREFIX) => crate::traits::VALUE,
        _ => limits::ATTRIBUTE_VALUE,
    }
}

/// Checks the attributes of an event: how many, their keys, their values.
/// Nothing is trimmed or changed, so checking again gives the same map.
pub(crate) fn parse_attributes(
    attributes: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FieldError> {
    if attributes.len() > limits::MAX_ATTRIBUTES {
        return Err(FieldError::new(
            "attributes",
            format!("at most {} attributes", limits::MAX_ATTRIBUTES),
        ));
    }
    for (key, value) in &attributes {
        let key_ok =
            !key.is_empty() && limits::ATTRIBUTE_KEY.admits(key) && !has_control_chars(key);
        if !key_ok {
            return Err(FieldError::new(
                "attributes",
                format!(
                    "keys must be 1 to {} printable characters",
                    limits::ATTRIBUTE_KEY.chars
                ),
            ));
        }
        let field = || format!("attributes.{key}");
        let limit = value_limit(key);
        if !limit.admits(value) {
            return Err(FieldError::new(field(), format!("must be {limit}")));
        }
        if has_control_chars(value) {
            return Err(FieldError::new(
                field(),
                "must not contain control characters",
            ));
        }
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str, value: String) -> FieldError {
        parse_attributes(BTreeMap::from([(key.to_owned(), value)])).expect_err("refused")
    }

    #[test]
    fn task_names_are_short_and_other_values_long() {
        let name = "\u{20000}".repeat(200);
        assert!(parse_attributes(BTreeMap::from([(TASK_ASSIGNEE.to_owned(), name)])).is_ok());
        let error = refused(TASK_ASSIGNEE, "x".repeat(201));
        assert_eq!(error.field, "attributes.task.assignee");
        assert_eq!(error.message, "must be at most 200 characters");
        assert_eq!(
            refused(TASK_CHANNEL, "x".repeat(201)).field,
            "attributes.task.channel"
        );
        let value = "\u{20000}".repeat(1024);
        assert!(parse_attributes(BTreeMap::from([("note".to_owned(), value)])).is_ok());
        assert_eq!(
            refused("note", "x".repeat(1025)).message,
            "must be at most 1024 characters"
        );
        let error = refused("customer.tier", "x".repeat(crate::traits::VALUE.chars + 1));
        assert_eq!(error.field, "attributes.customer.tier");
        assert_eq!(
            refused("note", "a\u{0}b".to_owned()).message,
            "must not contain control characters"
        );
    }

    #[test]
    fn keys_are_bounded_and_printable() {
        for key in [String::new(), "k".repeat(65), "a\u{7}b".to_owned()] {
            assert_eq!(refused(&key, "v".to_owned()).field, "attributes");
        }
        let too_many: BTreeMap<String, String> = (0..=limits::MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        assert!(parse_attributes(too_many).is_err());
    }
}
