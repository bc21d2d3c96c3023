//! Customer traits: the latest value of each `customer.*` event attribute
//! (Segment `identify` traits arrive as such attributes), with its type.
//!
//! Attributes are strings on the event contract, so a trait's type is
//! recognised from its text, the same way wherever it is read:
//!
//! - `boolean`: exactly `true` or `false`;
//! - `number`: a JSON number (`42`, `-1.5`, `1e3`; not `+1`, `042`, `.5`
//!   or `NaN`) that a double holds: finite, and, written as an integer, at
//!   most 2^53 in magnitude, so account numbers and ids longer than that
//!   stay strings instead of losing digits;
//! - `timestamp`: an RFC 3339 date and time with an offset
//!   (`2024-05-01T10:00:00+02:00`), read as UTC;
//! - `string`: anything else, the text as sent (nothing is trimmed: `" 42"`
//!   is a string).
//!
//! The stored value is the text as the event carried it; the type is a
//! pure function of it, so the projection's folds, merges and recounts
//! (set-based SQL) never disagree with the reads about it.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::limits;

/// Attribute keys with this prefix are traits: `customer.tier` is the trait
/// `tier`.
pub const PREFIX: &str = "customer.";

/// Most traits a customer holds: a new key beyond it is dropped (and
/// counted); the keys held keep taking newer values.
pub const MAX_TRAITS: usize = 100;

/// The largest integer a double holds exactly, and beyond which an integer
/// trait stays a string.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The trait name of an attribute key: the key without [`PREFIX`], when it
/// has the prefix.
pub fn trait_name(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)
}

/// The limit on a trait's value (the value of a `customer.*` attribute).
pub const VALUE: limits::TextLimit = limits::ATTRIBUTE_VALUE;

/// The type of a trait, recognised from its text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TraitType {
    /// Any text that is none of the others.
    String,
    /// A JSON number a double holds.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 date and time.
    Timestamp,
}

impl TraitType {
    /// The name in the API and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            TraitType::String => "string",
            TraitType::Number => "number",
            TraitType::Boolean => "boolean",
            TraitType::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for TraitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trait's value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitValue {
    /// Text.
    String(String),
    /// A finite number.
    Number(f64),
    /// A flag.
    Boolean(bool),
    /// A point in time.
    Timestamp(DateTime<Utc>),
}

impl TraitValue {
    /// The typed value of the text `raw`, by the rules of the module
    /// documentation. Never fails: what is nothing else is a string.
    pub fn recognise(raw: &str) -> TraitValue {
        match raw {
            "true" => return TraitValue::Boolean(true),
            "false" => return TraitValue::Boolean(false),
            _ => {}
        }
        if let Some(number) = json_number(raw) {
            return TraitValue::Number(number);
        }
        if let Some(at) = timestamp(raw) {
            return TraitValue::Timestamp(at);
        }
        TraitValue::String(raw.to_owned())
    }

    /// Its type.
    pub fn kind(&self) -> TraitType {
        match self {
            TraitValue::String(_) => TraitType::String,
            TraitValue::Number(_) => TraitType::Number,
            TraitValue::Boolean(_) => TraitType::Boolean,
            TraitValue::Timestamp(_) => TraitType::Timestamp,
        }
    }

    /// As JSON: a string, a number, a boolean, or for a timestamp its RFC
    /// 3339 text in UTC.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            TraitValue::String(text) => serde_json::Value::String(text.clone()),
            // Whole numbers as integers: `1200`, not `1200.0`.
            TraitValue::Number(number)
                if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER =>
            {
                serde_json::Value::from(*number as i64)
            }
            TraitValue::Number(number) => serde_json::Number::from_f64(*number)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            TraitValue::Boolean(flag) => serde_json::Value::Bool(*flag),
            TraitValue::Timestamp(at) => {
                serde_json::Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
        }
    }
}

/// `raw` as a number when it is a JSON number a double holds (see the
/// module documentation).
pub(crate) fn json_number(raw: &str) -> Option<f64> {
    let bytes = raw.as_bytes();
    let mut at = 0;
    if bytes.first() == Some(&b'-') {
        at += 1;
    }
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    };
    let integer_start = at;
    let integer_digits = digits(&mut at);
    if integer_digits == 0 || (integer_digits > 1 && bytes[integer_start] == b'0') {
        return None;
    }
    let mut integer = true;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if digits(&mut at) == 0 {
            return None;
        }
        integer = false;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if digits(&mut at) == 0 {
            return None;
        }
        integer = false;
    }
    if at != bytes.len() {
        return None;
    }
    if integer {
        // Whole digits, compared before any rounding to a double.
        let whole: i64 = raw.parse().ok()?;
        return (whole.unsigned_abs() <= MAX_EXACT_INTEGER as u64).then_some(whole as f64);
    }
    let number: f64 = raw.parse().ok()?;
    number.is_finite().then_some(number)
}

/// `raw` as a point in time when it is an RFC 3339 date and time whose
/// UTC time RFC 3339 can write too (years 0 to 9999).
pub(crate) fn timestamp(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| (0..=9999).contains(&chrono::Datelike::year(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn types_are_recognised_from_the_text() {
        for (raw, kind) in [
            ("gold", TraitType::String),
            ("true", TraitType::Boolean),
            ("false", TraitType::Boolean),
            ("True", TraitType::String),
            ("42", TraitType::Number),
            ("-1.5", TraitType::Number),
            ("1e3", TraitType::Number),
            ("0", TraitType::Number),
            ("-0", TraitType::Number),
            ("9007199254740992", TraitType::Number),
            ("9007199254740993", TraitType::String),
            ("12345678901234567890", TraitType::String),
            ("1e400", TraitType::String),
            ("+1", TraitType::String),
            ("042", TraitType::String),
            (".5", TraitType::String),
            ("5.", TraitType::String),
            ("1e", TraitType::String),
            ("NaN", TraitType::String),
            ("inf", TraitType::String),
            (" 42", TraitType::String),
            ("", TraitType::String),
            ("+31612345678", TraitType::String),
            ("2024-05-01T10:00:00Z", TraitType::Timestamp),
            ("2024-05-01T10:00:00.5+02:00", TraitType::Timestamp),
            ("2024-05-01", TraitType::String),
            ("2024-02-30T10:00:00Z", TraitType::String),
        ] {
            assert_eq!(TraitValue::recognise(raw).kind(), kind, "{raw:?}");
        }
        assert_eq!(TraitValue::recognise("1e3"), TraitValue::Number(1000.0));
        assert_eq!(
            TraitValue::recognise("2024-05-01T12:00:00+02:00").to_json(),
            serde_json::json!("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            TraitValue::recognise("1200").to_json(),
            serde_json::json!(1200)
        );
        assert_eq!(
            TraitValue::recognise("true").to_json(),
            serde_json::json!(true)
        );
        assert_eq!(trait_name("customer.tier"), Some("tier"));
        assert_eq!(trait_name("tier"), None);
    }

    proptest! {
        /// Any text, over all of Unicode: recognised without a panic, and
        /// the JSON of a typed value reads back as the same value.
        #[test]
        fn any_text_is_recognised_and_reads_back(raw in any::<String>()) {
            let value = TraitValue::recognise(&raw);
            let json = value.to_json();
            let again = match &json {
                serde_json::Value::String(text) => TraitValue::recognise(text),
                other => TraitValue::recognise(&other.to_string()),
            };
            match value {
                TraitValue::String(text) => prop_assert_eq!(json, serde_json::Value::String(text)),
                typed => prop_assert_eq!(again, typed),
            }
        }

        /// Every number a double holds reads as that number from its text.
        #[test]
        fn numbers_read_back(number in -1e300f64..1e300) {
            let text = serde_json::Number::from_f64(number).map(|n| n.to_string());
            if let Some(text) = text {
                prop_assert_eq!(TraitValue::recognise(&text), TraitValue::Number(number));
            }
        }
    }
}
