//! Identity resolution: which customer an event belongs to, decided from the
//! owners of its identifiers. Pure functions over one batch, so the
//! projector can look up every owner in one query, decide in memory, and
//! write the outcome in set-based statements.
//!
//! [`resolve`] merges the customers an event links into the oldest, guarded
//! by per-kind [`IdentityRules`] (strength and limit) and do-not-merge pairs,
//! and records every refused merge as a [`Conflict`]. [`check_merge`]
//! applies the same limits to a manual merge. [`resolve_trusted`] adds
//! each identifier's trust: claimed identifiers never merge customers and
//! never join one that has verified identifiers.

mod claims;
mod resolve;
mod rules;

use uuid::Uuid;

use crate::ContactEvent;

pub use claims::{EventIdentity, LinkChange, TrustChange};
pub use resolve::{
    Conflict, ConflictReason, Decisions, Merge, Snapshot, check_merge, resolve, resolve_trusted,
};
pub use rules::{IdentityRules, Strength};

/// Namespace of the customer ids derived from the event that created the
/// customer.
const CUSTOMER_NAMESPACE: Uuid = Uuid::from_u128(0x6375_7374_6f6d_6572_7061_6e6f_0000_0001);

/// The id of a customer created by `event`: a UUIDv7 whose time is the
/// event's `occurred_at` and whose other bits come from the event id.
///
/// Derived, not drawn, so that a replay of the topic gives a customer the
/// id it had; and ordered by the time of the first contact, so that "the
/// oldest customer" (the survivor of a merge) means the one whose history
/// starts first, whatever order the projector happened to read events in.
pub fn customer_id_for(event: &ContactEvent) -> Uuid {
    let millis = u64::try_from(event.occurred_at.timestamp_millis()).unwrap_or(0);
    let derived = Uuid::new_v5(&CUSTOMER_NAMESPACE, event.event_id.as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&derived.as_bytes()[6..]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod claims_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod resolve_tests;

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::customer_id_for;
    use crate::event::{EventDraft, IdentifierDraft, ValidationContext};
    use crate::{ContactEvent, IdentifierKind};

    fn epoch() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    fn event(id: &str, seconds: i64) -> ContactEvent {
        EventDraft {
            event_id: Some(id.to_owned()),
            occurred_at: Some((epoch() + Duration::seconds(seconds)).to_rfc3339()),
            channel: Some("email".to_owned()),
            source: Some("test".to_owned()),
            event_type: Some("email.received".to_owned()),
            identifiers: vec![IdentifierDraft::new(IdentifierKind::Email, "a@example.com")],
            ..EventDraft::default()
        }
        .validate(&ValidationContext {
            received_at: epoch() + Duration::days(1),
            default_region: None,
        })
        .expect("valid event")
    }

    #[test]
    fn a_customer_id_is_the_same_for_the_same_event_and_starts_with_its_time() {
        let id = customer_id_for(&event("first", 0));
        assert_eq!(id, customer_id_for(&event("first", 0)));
        assert_eq!(id.get_version_num(), 7);
        let (seconds, nanos) = id.get_timestamp().expect("v7").to_unix();
        assert_eq!(seconds as i64, epoch().timestamp());
        assert_eq!(nanos, 0);
        assert_ne!(id, customer_id_for(&event("second", 0)));
    }

    #[test]
    fn the_customer_of_an_earlier_contact_is_the_older_one() {
        let earlier = customer_id_for(&event("z-late-id", 0));
        let later = customer_id_for(&event("a-early-id", 1));
        assert!(earlier < later);
    }
}
