//! The fingerprint of an event: what makes an event id an idempotency key
//! that refuses a reused id with a different payload. Stored with each
//! event (`events.fingerprint`); the gateway compares a posted event's with
//! the stored one before publishing, and the projection counts an id that
//! arrives again with another.

use std::collections::HashMap;

use panorama_core::ContactEvent;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Result, Store};

/// SHA-256 of the event as validated, without what differs between retries
/// of the same payload: the receipt time, an `occurred_at` that defaulted to
/// it (the sender gave none), and the trace context. The JSON form of a
/// validated event is canonical: normalised fields in declaration order,
/// attributes in a sorted map.
pub fn fingerprint(event: &ContactEvent) -> [u8; 32] {
    let mut stable = event.clone();
    if stable.occurred_at == stable.received_at {
        stable.occurred_at = chrono::DateTime::UNIX_EPOCH;
    }
    stable.received_at = chrono::DateTime::UNIX_EPOCH;
    stable.traceparent = None;
    let encoded = serde_json::to_vec(&stable).unwrap_or_default();
    Sha256::digest(&encoded).into()
}

impl Store {
    /// The stored fingerprints of those of `ids` projected already (an
    /// event projected before fingerprints were kept has none, and is left
    /// out). One probe of the primary key per id.
    #[tracing::instrument(skip(self, ids), fields(ids = ids.len()))]
    pub async fn event_fingerprints(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<u8>>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT e.event_id, e.fingerprint FROM unnest($1::uuid[]) AS q (id)
                 JOIN events AS e ON e.event_id = q.id
                 WHERE e.fingerprint IS NOT NULL",
            )
            .await?;
        Ok(client
            .query(&statement, &[&ids])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use panorama_core::{EventDraft, IdentifierDraft, IdentifierKind, ValidationContext};

    use super::*;

    fn event(received_at: &str, occurred_at: Option<&str>, summary: &str) -> ContactEvent {
        let received_at: DateTime<Utc> = received_at.parse().expect("timestamp");
        EventDraft {
            event_id: Some("0190f0a0-0000-7000-8000-000000000001".into()),
            occurred_at: occurred_at.map(str::to_owned),
            channel: Some("phone".into()),
            source: Some("crm".into()),
            event_type: Some("call.ended".into()),
            summary: Some(summary.into()),
            identifiers: vec![IdentifierDraft::new(IdentifierKind::Phone, "+31612345678")],
            traceparent: Some(format!(
                "00-{:032x}-00f067aa0ba902b7-01",
                received_at.timestamp()
            )),
            ..EventDraft::default()
        }
        .validate(&ValidationContext {
            received_at,
            ..ValidationContext::now(None)
        })
        .expect("valid")
    }

    #[test]
    fn retries_of_the_same_payload_have_one_fingerprint() {
        let first = event("2026-11-23T10:00:00Z", Some("2026-11-23T09:00:00Z"), "hi");
        let retry = event(
            "2026-11-23T10:05:00.123Z",
            Some("2026-11-23T09:00:00Z"),
            "hi",
        );
        assert_ne!(first.received_at, retry.received_at);
        assert_ne!(first.traceparent, retry.traceparent);
        assert_eq!(fingerprint(&first), fingerprint(&retry));
        // No `occurred_at`: it defaults to the receipt time, which differs.
        let first = event("2026-11-23T10:00:00Z", None, "hi");
        let retry = event("2026-11-23T10:05:00Z", None, "hi");
        assert_eq!(fingerprint(&first), fingerprint(&retry));
    }

    #[test]
    fn a_changed_field_changes_the_fingerprint() {
        let first = event("2026-11-23T10:00:00Z", Some("2026-11-23T09:00:00Z"), "hi");
        let changed = event(
            "2026-11-23T10:00:00Z",
            Some("2026-11-23T09:00:00Z"),
            "hello",
        );
        assert_ne!(fingerprint(&first), fingerprint(&changed));
        let later = event("2026-11-23T10:00:00Z", Some("2026-11-23T09:00:01Z"), "hi");
        assert_ne!(fingerprint(&first), fingerprint(&later));
    }
}
