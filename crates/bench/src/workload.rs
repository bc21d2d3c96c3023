//! The events the benchmark posts: deterministic from a workload's
//! namespace and an index, so the loader (another process) and the
//! benchmark agree on every event id and customer without sharing a file.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Contact reasons, in the customer's words.
const REASONS: [&str; 6] = [
    "my order did not arrive",
    "I was charged twice",
    "how do I return this",
    "change my delivery address",
    "the app will not let me log in",
    "cancel my subscription",
];

/// One batch of work: `count` events of namespace `namespace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Workload {
    /// Distinguishes the event ids of one phase from every other's.
    pub(crate) namespace: u64,
    /// Events.
    pub(crate) count: u64,
    /// Distinct ordinary customers the events spread over.
    pub(crate) customers: u64,
    /// The first customer number (customers of different phases do not
    /// overlap).
    pub(crate) customer_base: u64,
    /// Customers with thousands of events: one event in 100 goes to one
    /// of them (0 for none).
    pub(crate) heavy: u64,
}

/// A mixing function (splitmix64) for spreading indexes over customers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The phone number of customer `number`.
pub(crate) fn phone_of(number: u64) -> String {
    format!("+316{:08}", 10_000_000 + number % 89_999_999)
}

impl Workload {
    /// The event id of event `index`.
    pub(crate) fn event_id(&self, index: u64) -> Uuid {
        Uuid::from_u128((u128::from(self.namespace) << 64) | u128::from(index) | (1 << 127))
    }

    /// Every event id, in order.
    pub(crate) fn event_ids(&self) -> Vec<Uuid> {
        (0..self.count).map(|index| self.event_id(index)).collect()
    }

    /// The customer number of event `index`.
    pub(crate) fn customer_of(&self, index: u64) -> u64 {
        let hash = mix(self.namespace.wrapping_mul(1_000_003) ^ index);
        if self.heavy > 0 && index % 100 == 0 {
            return self.heavy_customer(hash % self.heavy);
        }
        self.customer_base + self.heavy + hash % self.customers.max(1)
    }

    /// The customer number of heavy customer `which`.
    pub(crate) fn heavy_customer(&self, which: u64) -> u64 {
        self.customer_base + which
    }

    /// Event `index` as a JSON body item of `POST /v1/events`.
    pub(crate) fn event(&self, index: u64) -> Value {
        let customer = self.customer_of(index);
        let hash = mix(index ^ 0x5EED);
        let (channel, event_type, source) = match hash % 4 {
            0 => ("phone", "call.ended", "bench.cti"),
            1 => ("email", "email.received", "bench.mail"),
            2 => ("web", "form.submitted", "bench.web"),
            _ => ("chat", "message.received", "bench.chat"),
        };
        let reason = REASONS[(mix(customer) % REASONS.len() as u64) as usize];
        // Spread over a year, so timelines interleave as real ones do.
        let occurred: DateTime<Utc> = DateTime::from_timestamp(1_760_000_000, 0)
            .unwrap_or_default()
            + Duration::seconds(((hash >> 8) % (365 * 24 * 3600)) as i64);
        let mut event = json!({
            "event_id": self.event_id(index).to_string(),
            "occurred_at": occurred.to_rfc3339(),
            "channel": channel,
            "source": source,
            "type": event_type,
            "direction": "inbound",
            "identifiers": [
                {"kind": "phone", "value": phone_of(customer)},
                {"kind": "email", "value": format!("customer{customer}@example.com")}
            ],
            "display_name": format!("Customer {customer}"),
            "contact_reason": reason,
            "summary": format!("{reason}: order {} placed {} days ago, customer asked for an update", hash % 1_000_000, hash % 30),
            "queue": "support",
            "agent_id": format!("agent-{}", hash % 40),
        });
        if channel == "phone" {
            event["duration_seconds"] = json!(30 + hash % 600);
        }
        event
    }

    /// The `POST /v1/events` body of events `first..first + len`.
    pub(crate) fn batch(&self, first: u64, len: u64) -> Value {
        let end = (first + len).min(self.count);
        let events: Vec<Value> = (first..end).map(|index| self.event(index)).collect();
        json!({ "events": events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(namespace: u64) -> Workload {
        Workload {
            namespace,
            count: 10_000,
            customers: 1_000,
            customer_base: 5_000,
            heavy: 3,
        }
    }

    #[test]
    fn event_ids_differ_between_namespaces_and_are_never_nil() {
        let (a, b) = (workload(1), workload(2));
        assert_ne!(a.event_id(0), b.event_id(0));
        assert_ne!(a.event_id(0), a.event_id(1));
        assert!(!workload(0).event_id(0).is_nil());
        assert_eq!(a.event(7)["event_id"], a.event_id(7).to_string());
    }

    #[test]
    fn heavy_customers_get_one_event_in_a_hundred() {
        let load = workload(3);
        let heavy: Vec<u64> = (0..load.count)
            .map(|index| load.customer_of(index))
            .filter(|customer| *customer < load.customer_base + load.heavy)
            .collect();
        assert_eq!(heavy.len(), 100);
        let ordinary = load.customer_of(1);
        assert!(ordinary >= load.customer_base + load.heavy);
        assert!(ordinary < load.customer_base + load.heavy + load.customers);
    }

    #[test]
    fn batches_stop_at_the_end_of_the_workload() {
        let load = workload(4);
        assert_eq!(
            load.batch(0, 100)["events"].as_array().map(Vec::len),
            Some(100)
        );
        assert_eq!(
            load.batch(9_950, 100)["events"].as_array().map(Vec::len),
            Some(50)
        );
    }
}
