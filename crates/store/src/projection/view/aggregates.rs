//! The aggregates a profile is read from, folded from the events inserted
//! now and nothing else, so a duplicate never counts twice: per customer
//! its event count, first and last contact, name and contacts per channel
//! ([`fold_aggregates`]); its survey answers and contacts per day, and the
//! daily roll-ups behind the insights ([`fold_view`]). Each event counts
//! for its customer after the batch's merges. (Traits, the latest
//! `customer.*` attributes, are folded in `traits.rs`.)

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use uuid::Uuid;

use crate::Result;

#[derive(Default)]
struct CustomerDelta<'a> {
    events: i64,
    first_at: Option<DateTime<Utc>>,
    last_at: Option<DateTime<Utc>>,
    name: Option<(&'a str, DateTime<Utc>)>,
}

struct ChannelDelta<'a> {
    events: i64,
    last_at: DateTime<Utc>,
    last_direction: Option<&'a str>,
}

/// Folds the `inserted` events into their customers' rows (event count,
/// first and last contact, name) and per-channel summaries.
pub(crate) async fn fold_aggregates(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<()> {
    if inserted.is_empty() {
        return Ok(());
    }
    // BTreeMaps: rows are locked and updated in key order, the same order in
    // every transaction, so concurrent batches cannot deadlock on them.
    let mut customers: BTreeMap<Uuid, CustomerDelta<'_>> = BTreeMap::new();
    let mut channels: BTreeMap<(Uuid, &str), ChannelDelta<'_>> = BTreeMap::new();
    for (event, customer) in inserted {
        let at = event.occurred_at;
        let delta = customers.entry(*customer).or_default();
        delta.events += 1;
        if let Some(name) = event.display_name.as_deref() {
            if delta.name.is_none_or(|(_, name_at)| at >= name_at) {
                delta.name = Some((name, at));
            }
        }
        // Receipts, automatic replies, bounces and agent actions are in the
        // history but are not contacts with the customer.
        if !event.event_type.is_customer_contact() {
            continue;
        }
        delta.first_at = Some(delta.first_at.map_or(at, |first| first.min(at)));
        delta.last_at = Some(delta.last_at.map_or(at, |last| last.max(at)));
        let direction = event.direction.map(|d| d.as_str());
        channels
            .entry((*customer, event.channel.as_str()))
            .and_modify(|channel| {
                channel.events += 1;
                if at >= channel.last_at {
                    channel.last_at = at;
                    channel.last_direction = direction;
                }
            })
            .or_insert(ChannelDelta {
                events: 1,
                last_at: at,
                last_direction: direction,
            });
    }

    // No lock here: every customer an event counts for is a survivor the
    // batch locked `FOR UPDATE` before resolving identity, or one it
    // created, which no other transaction sees before this one commits.
    let ids: Vec<Uuid> = customers.keys().copied().collect();

    let counts: Vec<i64> = customers.values().map(|d| d.events).collect();
    let firsts: Vec<Option<DateTime<Utc>>> = customers.values().map(|d| d.first_at).collect();
    let lasts: Vec<Option<DateTime<Utc>>> = customers.values().map(|d| d.last_at).collect();
    let names: Vec<Option<&str>> = customers.values().map(|d| d.name.map(|(n, _)| n)).collect();
    let name_ats: Vec<Option<DateTime<Utc>>> = customers
        .values()
        .map(|d| d.name.map(|(_, at)| at))
        .collect();
    let update = transaction
        .prepare_cached(include_str!("../../../sql/update_customers.sql"))
        .await?;
    transaction
        .execute(
            &update,
            &[&ids, &counts, &firsts, &lasts, &names, &name_ats],
        )
        .await?;

    if channels.is_empty() {
        return Ok(());
    }
    let channel_customers: Vec<Uuid> = channels.keys().map(|(c, _)| *c).collect();
    let channel_names: Vec<&str> = channels.keys().map(|(_, ch)| *ch).collect();
    let channel_counts: Vec<i64> = channels.values().map(|d| d.events).collect();
    let channel_lasts: Vec<DateTime<Utc>> = channels.values().map(|d| d.last_at).collect();
    let channel_directions: Vec<Option<&str>> =
        channels.values().map(|d| d.last_direction).collect();
    let upsert = transaction
        .prepare_cached(include_str!("../../../sql/upsert_channels.sql"))
        .await?;
    transaction
        .execute(
            &upsert,
            &[
                &channel_customers,
                &channel_names,
                &channel_counts,
                &channel_lasts,
                &channel_directions,
            ],
        )
        .await?;
    Ok(())
}

/// A batch's answers to one metric by one customer: count, sum, and the
/// latest answer with its time.
#[derive(Debug, Clone, Copy)]
struct Answers {
    count: i64,
    sum: i64,
    latest: i16,
    latest_at: DateTime<Utc>,
}

fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// Folds the inserted events into the per-customer aggregates (feedback,
/// contacts per day) and the daily roll-ups. Rows are
/// written in key order, so concurrent batches cannot deadlock on them.
///
/// Every batch adds to the roll-ups of the day, so their rows would be
/// where concurrent projectors queue: a batch adds to the shard of the
/// key its transaction holds (`rollup_shard()`, migration 0022), which no
/// other open transaction holds, and readers sum the shards.
pub(crate) async fn fold_view(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<()> {
    let mut feedback: BTreeMap<(Uuid, &str), Answers> = BTreeMap::new();
    let mut daily: BTreeMap<(Uuid, NaiveDate), i32> = BTreeMap::new();
    let mut channel_days: BTreeMap<(NaiveDate, &str), i64> = BTreeMap::new();
    let mut feedback_days: BTreeMap<(NaiveDate, &str, &str, i16), i64> = BTreeMap::new();
    for (event, customer) in inserted {
        let at = event.occurred_at;
        if let Some(answer) = &event.feedback {
            let score = i16::try_from(answer.score).unwrap_or_default();
            let entry = feedback
                .entry((*customer, answer.metric.as_str()))
                .or_insert(Answers {
                    count: 0,
                    sum: 0,
                    latest: score,
                    latest_at: at,
                });
            entry.count += 1;
            entry.sum += i64::from(answer.score);
            if at >= entry.latest_at {
                entry.latest = score;
                entry.latest_at = at;
            }
            *feedback_days
                .entry((
                    day_of(at),
                    event.channel.as_str(),
                    answer.metric.as_str(),
                    score,
                ))
                .or_default() += 1;
        }
        if event.event_type.is_customer_contact() {
            *daily.entry((*customer, day_of(at))).or_default() += 1;
            *channel_days
                .entry((day_of(at), event.channel.as_str()))
                .or_default() += 1;
        }
    }
    if !feedback.is_empty() {
        let statement = transaction
            .prepare_cached(include_str!("../../../sql/view/fold_feedback.sql"))
            .await?;
        let customers: Vec<Uuid> = feedback.keys().map(|(c, _)| *c).collect();
        let metrics: Vec<&str> = feedback.keys().map(|(_, m)| *m).collect();
        let responses: Vec<i64> = feedback.values().map(|a| a.count).collect();
        let sums: Vec<i64> = feedback.values().map(|a| a.sum).collect();
        let latest: Vec<i16> = feedback.values().map(|a| a.latest).collect();
        let latest_at: Vec<DateTime<Utc>> = feedback.values().map(|a| a.latest_at).collect();
        transaction
            .execute(
                &statement,
                &[&customers, &metrics, &responses, &sums, &latest, &latest_at],
            )
            .await?;
    }
    if !daily.is_empty() {
        let statement = transaction
            .prepare_cached(
                "INSERT INTO customer_daily_contacts AS d (customer_id, day, contacts)
                 SELECT * FROM unnest($1::uuid[], $2::date[], $3::int4[])
                 ON CONFLICT (customer_id, day) DO UPDATE SET contacts = d.contacts + excluded.contacts",
            )
            .await?;
        let customers: Vec<Uuid> = daily.keys().map(|(c, _)| *c).collect();
        let days: Vec<NaiveDate> = daily.keys().map(|(_, d)| *d).collect();
        let counts: Vec<i32> = daily.values().copied().collect();
        transaction
            .execute(&statement, &[&customers, &days, &counts])
            .await?;
    }
    if !channel_days.is_empty() {
        let statement = transaction
            .prepare_cached(
                "WITH held AS (SELECT rollup_shard() AS shard)
                 INSERT INTO daily_channel_contacts AS d (day, channel, shard, contacts)
                 SELECT r.day, r.channel, held.shard, r.contacts
                 FROM unnest($1::date[], $2::text[], $3::int8[]) AS r (day, channel, contacts), held
                 ON CONFLICT (day, channel, shard) DO UPDATE SET contacts = d.contacts + excluded.contacts",
            )
            .await?;
        let days: Vec<NaiveDate> = channel_days.keys().map(|(d, _)| *d).collect();
        let channels: Vec<&str> = channel_days.keys().map(|(_, c)| *c).collect();
        let counts: Vec<i64> = channel_days.values().copied().collect();
        transaction
            .execute(&statement, &[&days, &channels, &counts])
            .await?;
    }
    if !feedback_days.is_empty() {
        let statement = transaction
            .prepare_cached(
                "WITH held AS (SELECT rollup_shard() AS shard)
                 INSERT INTO daily_feedback AS d (day, channel, metric, score, shard, responses)
                 SELECT r.day, r.channel, r.metric, r.score, held.shard, r.responses
                 FROM unnest($1::date[], $2::text[], $3::text[], $4::int2[], $5::int8[])
                     AS r (day, channel, metric, score, responses), held
                 ON CONFLICT (day, channel, metric, score, shard)
                 DO UPDATE SET responses = d.responses + excluded.responses",
            )
            .await?;
        let days: Vec<NaiveDate> = feedback_days.keys().map(|k| k.0).collect();
        let channels: Vec<&str> = feedback_days.keys().map(|k| k.1).collect();
        let metrics: Vec<&str> = feedback_days.keys().map(|k| k.2).collect();
        let scores: Vec<i16> = feedback_days.keys().map(|k| k.3).collect();
        let counts: Vec<i64> = feedback_days.values().copied().collect();
        transaction
            .execute(&statement, &[&days, &channels, &metrics, &scores, &counts])
            .await?;
    }
    Ok(())
}
