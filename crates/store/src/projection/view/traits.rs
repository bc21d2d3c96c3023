//! Customer traits, folded from the `customer.*` attributes the inserted
//! events carry: each customer's latest value per key (by `occurred_at`,
//! then event id), with the event, source and channel it came from,
//! whatever order the events arrive in; at most
//! [`panorama_core::traits::MAX_TRAITS`] keys per customer. What a merge
//! and an unmerge do to these rows is here too: a merge keeps the later
//! value per key, an unmerge recounts from the events. Keys over the bound
//! are dropped, counted and logged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use panorama_core::traits::MAX_TRAITS;
use uuid::Uuid;

use super::CUSTOMER_ATTRIBUTE_PREFIX;
use crate::Result;

/// The bound as the statements take it.
fn bound() -> i64 {
    i64::try_from(MAX_TRAITS).unwrap_or(i64::MAX)
}

/// Logs keys dropped at the bound (never their values: traits are
/// personal data).
fn log_dropped(dropped: i64, step: &'static str) {
    if dropped > 0 {
        tracing::warn!(
            dropped,
            step,
            max_traits = MAX_TRAITS,
            "customer traits over the bound dropped"
        );
    }
}

/// The latest value of one key in a batch, and where it came from.
#[derive(Clone, Copy)]
struct Latest<'a> {
    value: &'a str,
    at: DateTime<Utc>,
    event_id: Uuid,
    source: &'a str,
    channel: &'a str,
}

/// Folds the `customer.*` attributes of the `inserted` events (event,
/// customer after the batch's merges, customers locked) into
/// `customer_attributes`, in one statement. Answers how many new keys were
/// dropped at the bound.
pub(crate) async fn fold_traits(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<u64> {
    // Reduced to the latest per customer and key (an upsert may touch a row
    // once), in key order so concurrent batches lock rows in one order.
    let mut latest: BTreeMap<(Uuid, &str), Latest<'_>> = BTreeMap::new();
    for (event, customer) in inserted {
        for (key, value) in &event.attributes {
            if !key.starts_with(CUSTOMER_ATTRIBUTE_PREFIX) {
                continue;
            }
            let candidate = Latest {
                value,
                at: event.occurred_at,
                event_id: event.event_id,
                source: event.source.as_str(),
                channel: event.channel.as_str(),
            };
            latest
                .entry((*customer, key.as_str()))
                .and_modify(|held| {
                    if (candidate.at, candidate.event_id) > (held.at, held.event_id) {
                        *held = candidate;
                    }
                })
                .or_insert(candidate);
        }
    }
    if latest.is_empty() {
        return Ok(0);
    }
    let customers: Vec<Uuid> = latest.keys().map(|(c, _)| *c).collect();
    let keys: Vec<&str> = latest.keys().map(|(_, k)| *k).collect();
    let values: Vec<&str> = latest.values().map(|l| l.value).collect();
    let ats: Vec<DateTime<Utc>> = latest.values().map(|l| l.at).collect();
    let events: Vec<Uuid> = latest.values().map(|l| l.event_id).collect();
    let sources: Vec<&str> = latest.values().map(|l| l.source).collect();
    let channels: Vec<&str> = latest.values().map(|l| l.channel).collect();
    let statement = transaction
        .prepare_cached(include_str!("../../../sql/view/fold_traits.sql"))
        .await?;
    let dropped: i64 = transaction
        .query_one(
            &statement,
            &[
                &customers,
                &keys,
                &values,
                &ats,
                &events,
                &sources,
                &channels,
                &bound(),
            ],
        )
        .await?
        .get(0);
    log_dropped(dropped, "batch");
    Ok(u64::try_from(dropped).unwrap_or_default())
}

/// Moves a merged customer's ($2) traits onto its survivor ($1): per key
/// the later value by (at, event_id); keys only the merged customer held
/// are admitted in (at, event_id, key) order while the survivor has slots
/// left. Answers how many were dropped; the caller deletes the merged
/// customer's rows.
const FOLD_INTO: &str = "WITH fresh AS (
         SELECT m.key, row_number() OVER (ORDER BY m.at, m.event_id, m.key) AS rank
         FROM customer_attributes AS m
         WHERE m.customer_id = $2
           AND NOT EXISTS (SELECT 1 FROM customer_attributes AS s
                           WHERE s.customer_id = $1 AND s.key = m.key)
     ), held AS (
         SELECT count(*) AS keys FROM customer_attributes WHERE customer_id = $1
     ), dropped AS (
         SELECT f.key FROM fresh AS f CROSS JOIN held AS h WHERE h.keys + f.rank > $3
     ), written AS (
         INSERT INTO customer_attributes AS a (customer_id, key, value, at, event_id, source, channel)
         SELECT $1, m.key, m.value, m.at, m.event_id, m.source, m.channel
         FROM customer_attributes AS m
         WHERE m.customer_id = $2 AND m.key NOT IN (SELECT key FROM dropped)
         ON CONFLICT (customer_id, key) DO UPDATE SET
             value    = excluded.value,
             at       = excluded.at,
             event_id = excluded.event_id,
             source   = excluded.source,
             channel  = excluded.channel
         WHERE (excluded.at, excluded.event_id) > (a.at, a.event_id)
     )
     SELECT count(*) FROM dropped";

/// Rebuilds a surviving customer's ($1) traits from the events of its
/// whole merge tree: the latest value per key ($2: the prefix), the first
/// $3 keys in (at, event_id, key) order. Answers how many were dropped.
const RECOUNT: &str = "WITH latest AS (
         SELECT DISTINCT ON (kv.key) kv.key, kv.value, e.occurred_at AS at, e.event_id,
                e.source, e.channel
         FROM customers AS c JOIN events AS e ON e.customer_id = c.id
         CROSS JOIN LATERAL jsonb_each_text(e.attributes) AS kv
         WHERE c.survivor_id = $1 AND starts_with(kv.key, $2)
         ORDER BY kv.key, e.occurred_at DESC, e.event_id DESC
     ), written AS (
         INSERT INTO customer_attributes (customer_id, key, value, at, event_id, source, channel)
         SELECT $1, l.key, l.value, l.at, l.event_id, l.source, l.channel
         FROM latest AS l ORDER BY l.at, l.event_id, l.key LIMIT $3
         RETURNING 1
     )
     SELECT (SELECT count(*) FROM latest) - (SELECT count(*) FROM written)";

/// Folds the merged customer's traits into the survivor's (the merged
/// customer's rows are left for the caller to delete).
pub(crate) async fn fold_traits_into(
    transaction: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
) -> Result<()> {
    let statement = transaction.prepare_cached(FOLD_INTO).await?;
    let dropped: i64 = transaction
        .query_one(&statement, &[&survivor, &merged, &bound()])
        .await?
        .get(0);
    log_dropped(dropped, "merge");
    Ok(())
}

/// Recounts a surviving customer's traits from its events (its rows were
/// deleted by the caller).
pub(crate) async fn recount_traits(transaction: &Transaction<'_>, survivor: Uuid) -> Result<()> {
    let statement = transaction.prepare_cached(RECOUNT).await?;
    let dropped: i64 = transaction
        .query_one(
            &statement,
            &[&survivor, &CUSTOMER_ATTRIBUTE_PREFIX, &bound()],
        )
        .await?
        .get(0);
    log_dropped(dropped, "recount");
    Ok(())
}
