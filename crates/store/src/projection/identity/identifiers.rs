//! The customers the resolver created and the identifiers it linked, each
//! joining the profile of the event that brought it; and the last sighting
//! of the identifiers already known.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::{ContactEvent, Identifier};
use uuid::Uuid;

use super::resolve::Resolution;
use crate::Result;

/// Inserts the customers the resolver created, each its own survivor.
pub(crate) async fn insert_customers(
    transaction: &Transaction<'_>,
    customers: &[Uuid],
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO customers (id, survivor_id) SELECT id, id FROM unnest($1::uuid[]) AS q (id)",
        )
        .await?;
    transaction.execute(&statement, &[&customers]).await?;
    Ok(())
}

/// Links the batch's new identifiers to the profile each joins, and moves
/// the last sighting of the `known` ones forward.
pub(crate) async fn link_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    resolution: &Resolution,
    known: &HashMap<Identifier, Uuid>,
) -> Result<()> {
    let links: Vec<(&Identifier, Uuid)> = resolution
        .decisions
        .new_links
        .iter()
        .zip(&resolution.attribution.link_profiles)
        .map(|((identifier, _), profile)| (identifier, *profile))
        .collect();
    insert_identifiers(transaction, events, &links).await?;
    touch_identifiers(transaction, events, known).await
}

async fn insert_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    links: &[(&Identifier, Uuid)],
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    // First and last sighting within this batch, and the source that first
    // brought the identifier.
    let mut seen: HashMap<&Identifier, (DateTime<Utc>, DateTime<Utc>, &str)> = HashMap::new();
    for event in events {
        for identifier in &event.identifiers {
            let entry = seen.entry(identifier).or_insert((
                event.occurred_at,
                event.occurred_at,
                event.source.as_str(),
            ));
            if event.occurred_at < entry.0 {
                entry.0 = event.occurred_at;
                entry.2 = event.source.as_str();
            }
            entry.1 = entry.1.max(event.occurred_at);
        }
    }
    let mut kinds = Vec::with_capacity(links.len());
    let mut values = Vec::with_capacity(links.len());
    let mut customers = Vec::with_capacity(links.len());
    let mut sources = Vec::with_capacity(links.len());
    let mut first = Vec::with_capacity(links.len());
    let mut last = Vec::with_capacity(links.len());
    for (identifier, customer) in links {
        let Some((first_at, last_at, source)) = seen.get(*identifier) else {
            continue;
        };
        kinds.push(identifier.kind().as_str());
        values.push(identifier.value());
        customers.push(*customer);
        sources.push(*source);
        first.push(*first_at);
        last.push(*last_at);
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO identifiers (kind, value, customer_id, source, first_seen_at, last_seen_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[])",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[&kinds, &values, &customers, &sources, &first, &last],
        )
        .await?;
    Ok(())
}

/// Moves `last_seen_at` of the batch's already known identifiers forward.
/// The batch holds their stripe locks, so no other transaction updates these
/// rows meanwhile.
async fn touch_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    known: &HashMap<Identifier, Uuid>,
) -> Result<()> {
    let mut latest: BTreeMap<&Identifier, DateTime<Utc>> = BTreeMap::new();
    for event in events {
        for identifier in event.identifiers.iter().filter(|i| known.contains_key(*i)) {
            let at = latest.entry(identifier).or_insert(event.occurred_at);
            *at = (*at).max(event.occurred_at);
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = latest.keys().map(|i| i.kind().as_str()).collect();
    let values: Vec<&str> = latest.keys().map(|i| i.value()).collect();
    let ats: Vec<DateTime<Utc>> = latest.values().copied().collect();
    let statement = transaction
        .prepare_cached(
            "UPDATE identifiers AS i SET last_seen_at = q.at
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS q (kind, value, at)
             WHERE i.kind = q.kind AND i.value = q.value AND q.at > i.last_seen_at",
        )
        .await?;
    transaction
        .execute(&statement, &[&kinds, &values, &ats])
        .await?;
    Ok(())
}
