//! What the adapter test suites share: fixtures, a fixed context, contract
//! validation of drafts, and a generator of JSON made of an adapter's own
//! field names (arbitrary bytes rarely get past a JSON parser).

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Utc};
use panorama_channels::{Context, Outcome};
use panorama_core::{ContactEvent, EventDraft, ValidationContext};
use proptest::prelude::*;
use serde_json::Value;

/// The bytes of `tests/fixtures/<path>`.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

/// When the test gateway received everything.
pub fn received_at() -> DateTime<Utc> {
    "2026-11-24T18:00:00Z".parse().expect("time")
}

/// A gateway context with the Netherlands as default region.
pub fn context() -> Context {
    Context {
        received_at: received_at(),
        default_region: "NL".parse().ok(),
    }
}

/// The drafts of an outcome that must hold events.
pub fn events(outcome: Outcome) -> Vec<EventDraft> {
    match outcome {
        Outcome::Events { .. } => outcome.into_drafts(),
        Outcome::Ignored { reason, .. } => panic!("expected events, ignored: {reason}"),
    }
}

/// Validates a draft as the gateway does: every adapter draft must hold to
/// the event contract.
pub fn validate(draft: &EventDraft) -> ContactEvent {
    let context = ValidationContext {
        received_at: received_at(),
        default_region: "NL".parse().ok(),
    };
    draft
        .clone()
        .validate(&context)
        .unwrap_or_else(|e| panic!("draft does not validate: {e}\n{draft:#?}"))
}

/// `(kind, value)` pairs of a draft's identifiers.
pub fn identifiers(draft: &EventDraft) -> Vec<(&str, &str)> {
    draft
        .identifiers
        .iter()
        .map(|i| (i.kind.as_str(), i.value.as_str()))
        .collect()
}

/// Attribute `key` of a draft.
pub fn attribute<'a>(draft: &'a EventDraft, key: &str) -> Option<&'a str> {
    draft.attributes.get(key).map(String::as_str)
}

/// JSON values whose object keys come from `keys`, nested a few levels, with
/// leaves of every JSON type (including strings that look like the values
/// adapters read: times, numbers, ids).
pub fn json_with_keys(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "2026-11-24T10:00:00Z",
            "1764000000",
            "1458692752478",
            "+31612345678",
            "16505551234",
            "inbound",
            "outbound",
            "ended",
            "text",
            "image",
            "interactive",
            "button_reply",
            "delivered",
            "read",
            "failed",
            "visitor",
            "agent",
            "form.submitted",
            "chat.message",
            "chat.ended",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..6).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}
