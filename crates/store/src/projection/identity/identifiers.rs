//! The customers the resolver created and the identifiers it linked, each
//! joining the profile of the event that brought it, with its trust; the
//! claims it verified or let go; and the last sighting of the identifiers
//! already known.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::{ContactEvent, Identifier, Trust};
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

/// Writes the links the batch ends with: new identifiers linked to the
/// profile each joins, known ones changed (a claim verified, or let go and
/// linked elsewhere) or let go; then moves the last sighting of the `known`
/// ones forward.
pub(crate) async fn link_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    resolution: &Resolution,
    known: &HashMap<Identifier, Uuid>,
) -> Result<()> {
    let mut released: Vec<&Identifier> = Vec::new();
    let mut changed: Vec<(&Identifier, Uuid, Trust)> = Vec::new();
    let mut inserted: Vec<(&Identifier, Uuid, Trust)> = Vec::new();
    for row in &resolution.attribution.links {
        let identifier = &row.identifier;
        match (row.link, row.existed) {
            (None, true) => released.push(identifier),
            (None, false) => {}
            (Some((profile, trust)), true) => changed.push((identifier, profile, trust)),
            (Some((profile, trust)), false) => inserted.push((identifier, profile, trust)),
        }
    }
    release_identifiers(transaction, &released).await?;
    change_identifiers(transaction, &changed).await?;
    insert_identifiers(transaction, events, &inserted).await?;
    touch_identifiers(transaction, events, known).await
}

/// Deletes the links the batch let go: claims of a customer that has
/// verified identifiers now. They stay on their events.
async fn release_identifiers(
    transaction: &Transaction<'_>,
    released: &[&Identifier],
) -> Result<()> {
    if released.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = released.iter().map(|i| i.kind().as_str()).collect();
    let values: Vec<&str> = released.iter().map(|i| i.value()).collect();
    let statement = transaction
        .prepare_cached(
            "DELETE FROM identifiers AS i USING unnest($1::text[], $2::text[]) AS q (kind, value)
             WHERE i.kind = q.kind AND i.value = q.value",
        )
        .await?;
    transaction.execute(&statement, &[&kinds, &values]).await?;
    Ok(())
}

/// Rewrites the profile and trust of known links the batch changed.
async fn change_identifiers(
    transaction: &Transaction<'_>,
    changed: &[(&Identifier, Uuid, Trust)],
) -> Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = changed.iter().map(|(i, _, _)| i.kind().as_str()).collect();
    let values: Vec<&str> = changed.iter().map(|(i, _, _)| i.value()).collect();
    let profiles: Vec<Uuid> = changed.iter().map(|(_, profile, _)| *profile).collect();
    let trusts: Vec<&str> = changed.iter().map(|(_, _, trust)| trust.as_str()).collect();
    let statement = transaction
        .prepare_cached(
            "UPDATE identifiers AS i SET customer_id = q.customer_id, trust = q.trust
             FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[])
                  AS q (kind, value, customer_id, trust)
             WHERE i.kind = q.kind AND i.value = q.value",
        )
        .await?;
    transaction
        .execute(&statement, &[&kinds, &values, &profiles, &trusts])
        .await?;
    Ok(())
}

async fn insert_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    links: &[(&Identifier, Uuid, Trust)],
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    // First and last sighting within this batch, and the source that first
    // brought the identifier.
    let mut seen: HashMap<&Identifier, (DateTime<Utc>, DateTime<Utc>, &str)> = HashMap::new();
    for event in events {
        for identifier in event.plain_identifiers() {
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
    let mut trusts = Vec::with_capacity(links.len());
    for (identifier, customer, trust) in links {
        let Some((first_at, last_at, source)) = seen.get(*identifier) else {
            continue;
        };
        kinds.push(identifier.kind().as_str());
        values.push(identifier.value());
        customers.push(*customer);
        sources.push(*source);
        first.push(*first_at);
        last.push(*last_at);
        trusts.push(trust.as_str());
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO identifiers (kind, value, customer_id, source, first_seen_at, last_seen_at, trust)
             SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &kinds, &values, &customers, &sources, &first, &last, &trusts,
            ],
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
        for identifier in event.plain_identifiers().filter(|i| known.contains_key(*i)) {
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
