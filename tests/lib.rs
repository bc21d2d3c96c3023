//! Panorama's end-to-end suite: every test in `tests/` runs the real
//! application against a real PostgreSQL cluster and a real Kafka-protocol
//! broker (started by `panorama-testkit`). This library holds the event
//! builders the tests share.

pub mod latency;
pub mod prometheus;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// A phone number unique to customer `index` (a valid Dutch mobile number).
pub fn phone_of(index: usize) -> String {
    format!("+316{:08}", 10_000_000 + index)
}

/// An email address unique to customer `index`.
pub fn email_of(index: usize) -> String {
    format!("customer{index}@example.com")
}

/// A contact event of customer `index`, as a JSON body for `POST /v1/events`.
pub fn contact(index: usize, event_id: &str, occurred_at: DateTime<Utc>, channel: &str) -> Value {
    let event_type = match channel {
        "phone" => "call.ended",
        "email" => "email.received",
        "web" => "form.submitted",
        _ => "message.received",
    };
    json!({
        "event_id": event_id,
        "occurred_at": occurred_at.to_rfc3339(),
        "channel": channel,
        "source": "e2e",
        "type": event_type,
        "direction": "inbound",
        "identifiers": [
            {"kind": "phone", "value": phone_of(index)},
            {"kind": "email", "value": email_of(index)}
        ],
        "display_name": format!("Customer {index}"),
        "contact_reason": "my order did not arrive"
    })
}

/// A fixed point in time the tests count from.
pub fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

/// `epoch()` plus `minutes`.
pub fn at_minute(minutes: i64) -> DateTime<Utc> {
    epoch() + Duration::minutes(minutes)
}

/// A contact through `channel` carrying exactly `identifiers` (kind, value),
/// as a JSON body for `POST /v1/events`.
pub fn contact_with(
    event_id: &str,
    occurred_at: DateTime<Utc>,
    channel: &str,
    identifiers: &[(&str, &str)],
) -> Value {
    let mut event = contact(0, event_id, occurred_at, channel);
    event["identifiers"] = identifiers
        .iter()
        .map(|(kind, value)| json!({ "kind": kind, "value": value }))
        .collect();
    event["display_name"] = Value::Null;
    event
}
