//! The customers the resolver created and the identifiers it linked, each
//! joining the profile of the event that brought it, with its trust; the
//! claims it verified or let go; and the last sighting of the identifiers
//! already known.
//!
//! Known identifiers are written under the lock on their tree's survivor.
//! New ones have no tree to lock: their creation is serialised by the
//! primary key of `identifiers` instead ([`create_identifiers`]), and a
//! batch that finds one created meanwhile decides again (`decide.rs`).

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

/// The identifier rows a batch writes, by what happens to them.
#[derive(Debug, Default)]
pub(crate) struct LinkWrites<'a> {
    /// Known links let go: deleted.
    released: Vec<&'a Identifier>,
    /// Known links whose profile or trust changed: rewritten.
    changed: Vec<(&'a Identifier, Uuid, Trust)>,
    /// Identifiers the batch is the first to see: inserted.
    created: Vec<(&'a Identifier, Uuid, Trust)>,
}

impl<'a> LinkWrites<'a> {
    /// The writes for the links `resolution` ends the batch with.
    pub(crate) fn of(resolution: &'a Resolution) -> Self {
        let mut writes = LinkWrites::default();
        for row in &resolution.attribution.links {
            let identifier = &row.identifier;
            match (row.link, row.existed) {
                (None, true) => writes.released.push(identifier),
                (None, false) => {}
                (Some((profile, trust)), true) => {
                    writes.changed.push((identifier, profile, trust));
                }
                (Some((profile, trust)), false) => {
                    writes.created.push((identifier, profile, trust));
                }
            }
        }
        writes
    }

    /// Whether the batch creates identifiers: the only writes a concurrent
    /// batch can get in the way of.
    pub(crate) fn creates(&self) -> bool {
        !self.created.is_empty()
    }
}

/// Writes the known links the batch changed or let go, then moves the last
/// sighting of the known identifiers forward. Every row written belongs to
/// a tree whose survivor the batch holds locked, and every writer of a
/// known identifier locks that survivor first, so nothing else writes
/// these rows before the batch commits.
pub(crate) async fn update_known(
    transaction: &Transaction<'_>,
    writes: &LinkWrites<'_>,
    sightings: &Sightings<'_>,
) -> Result<()> {
    release_identifiers(transaction, &writes.released).await?;
    change_identifiers(transaction, &writes.changed).await?;
    touch_identifiers(transaction, sightings).await
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

/// Inserts the identifiers the batch is the first to see, in (kind, value)
/// order, and returns how many of them another transaction created first.
///
/// The primary key of `identifiers` serialises creation: an insert of a
/// key another open transaction has inserted waits for that transaction's
/// end, and is skipped if it committed. Two batches insert the keys they
/// share in the same order, so neither holds one the other waits for while
/// waiting itself. A count above zero means the batch decided on a stale
/// view and must decide again (see `decide.rs`).
pub(crate) async fn create_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    writes: &LinkWrites<'_>,
) -> Result<usize> {
    let links = &writes.created;
    if links.is_empty() {
        return Ok(0);
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
             SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
                 AS q (kind, value, customer_id, source, first_seen_at, last_seen_at, trust)
             ORDER BY kind, value
             ON CONFLICT (kind, value) DO NOTHING
             RETURNING 1",
        )
        .await?;
    let inserted = transaction
        .query(
            &statement,
            &[
                &kinds, &values, &customers, &sources, &first, &last, &trusts,
            ],
        )
        .await?
        .len();
    Ok(kinds.len().saturating_sub(inserted))
}

/// The latest sighting in a batch of each identifier the batch found
/// linked, for `last_seen_at`.
#[derive(Debug, Default)]
pub(crate) struct Sightings<'a>(BTreeMap<&'a Identifier, DateTime<Utc>>);

impl<'a> Sightings<'a> {
    /// The latest occurrence in `events` of each of their identifiers that
    /// `linked` holds: the links of the trees the batch locked.
    pub(crate) fn of(events: &[&'a ContactEvent], linked: &HashMap<Identifier, Uuid>) -> Self {
        let mut latest: BTreeMap<&Identifier, DateTime<Utc>> = BTreeMap::new();
        for event in events.iter().copied() {
            for identifier in event
                .plain_identifiers()
                .filter(|i| linked.contains_key(*i))
            {
                let at = latest.entry(identifier).or_insert(event.occurred_at);
                *at = (*at).max(event.occurred_at);
            }
        }
        Sightings(latest)
    }
}

/// Moves `last_seen_at` of the batch's known identifiers forward.
async fn touch_identifiers(transaction: &Transaction<'_>, sightings: &Sightings<'_>) -> Result<()> {
    let latest = &sightings.0;
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
