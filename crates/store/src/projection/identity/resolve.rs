//! Who each event of a batch is about. The profiles the batch's known
//! identifiers came through are read, their surviving customers locked and
//! their merge trees loaded (`lock.rs`); the resolver
//! (`panorama_core::identity::resolve`) then decides in memory, and each
//! event and each new identifier is attributed to a profile
//! (`attribution.rs`). Nothing is written here.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use panorama_core::identity::{
    Decisions, EventIdentity, IdentityRules, customer_id_for, resolve_trusted,
};
use panorama_core::{ContactEvent, Identifier, IdentifierKind};
use uuid::Uuid;

use super::attribution::{Attribution, attribute};
use super::lock::{Trees, lock_survivors};
use crate::Result;

/// The profile each already known identifier of `events` came through.
pub(crate) async fn identifier_profiles(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
) -> Result<HashMap<Identifier, Uuid>> {
    let mut wanted: HashMap<(IdentifierKind, &str), &Identifier> = HashMap::new();
    for identifier in events.iter().flat_map(|event| event.plain_identifiers()) {
        wanted.insert((identifier.kind(), identifier.value()), identifier);
    }
    let kinds: Vec<&str> = wanted.keys().map(|(kind, _)| kind.as_str()).collect();
    let values: Vec<&str> = wanted.keys().map(|(_, value)| *value).collect();
    let statement = transaction
        .prepare_cached(
            "SELECT i.kind, i.value, i.customer_id
             FROM unnest($1::text[], $2::text[]) AS q (kind, value)
             JOIN identifiers AS i USING (kind, value)",
        )
        .await?;
    let rows = transaction.query(&statement, &[&kinds, &values]).await?;
    let mut owners = HashMap::with_capacity(rows.len());
    for row in rows {
        let kind: &str = row.get(0);
        let value: &str = row.get(1);
        let Ok(kind) = kind.parse::<IdentifierKind>() else {
            continue;
        };
        if let Some(identifier) = wanted.get(&(kind, value)) {
            owners.insert((*identifier).clone(), row.get(2));
        }
    }
    Ok(owners)
}

/// Locks the surviving customers of the profiles the `known` identifiers
/// came through; returns those survivors, in id order.
pub(crate) async fn lock_customers(
    transaction: &Transaction<'_>,
    known: &HashMap<Identifier, Uuid>,
) -> Result<Vec<Uuid>> {
    let mut profiles: Vec<Uuid> = known.values().copied().collect();
    profiles.sort_unstable();
    profiles.dedup();
    let survivors = lock_survivors(transaction, &profiles).await?;
    let mut roots: Vec<Uuid> = survivors.values().copied().collect();
    roots.sort_unstable();
    roots.dedup();
    Ok(roots)
}

/// What the resolver decided for a batch, and where each event goes.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// Customers to create, identifiers to link, merges and conflicts.
    pub(crate) decisions: Decisions,
    /// The profile of each event and of each new identifier.
    pub(crate) attribution: Attribution,
    /// The customer of each event after the batch's merges, in batch order.
    pub(crate) customers: Vec<Uuid>,
}

/// Decides who each of `events` is about, given the `trees` of the
/// customers their known identifiers lead to. Pure: nothing is written.
pub(crate) fn resolve_events(
    events: &[&ContactEvent],
    trees: Trees,
    rules: &IdentityRules,
) -> Resolution {
    let identities: Vec<EventIdentity<'_>> = events
        .iter()
        .map(|event| EventIdentity::of(event))
        .collect();
    let mut snapshot = trees.snapshot;
    let claimed = snapshot.claimed.clone();
    let decisions = resolve_trusted(&mut snapshot, &identities, rules, |index| {
        customer_id_for(events[index])
    });
    let attribution = attribute(
        &identities,
        &decisions,
        trees.profiles,
        &claimed,
        trees.survivors,
    );
    let customers = attribution
        .event_profiles
        .iter()
        .map(|profile| {
            attribution
                .survivors
                .get(profile)
                .copied()
                .unwrap_or(*profile)
        })
        .collect();
    Resolution {
        decisions,
        attribution,
        customers,
    }
}

impl Resolution {
    /// Each of `events` with its customer after the batch's merges: what the
    /// aggregates count.
    pub(crate) fn by_customer<'a>(
        &self,
        events: &[&'a ContactEvent],
    ) -> Vec<(&'a ContactEvent, Uuid)> {
        events
            .iter()
            .copied()
            .zip(self.customers.iter().copied())
            .collect()
    }

    /// Each of `events` with the profile it came through: what its task
    /// belongs to.
    pub(crate) fn by_profile<'a>(
        &self,
        events: &[&'a ContactEvent],
    ) -> Vec<(&'a ContactEvent, Uuid)> {
        events
            .iter()
            .copied()
            .zip(self.attribution.event_profiles.iter().copied())
            .collect()
    }
}
