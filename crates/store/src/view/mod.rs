//! The agent's view in the projection: cases, feedback, recent contacts,
//! customer attributes, follow-up tasks, and the daily roll-ups behind the
//! insights. Folded in the batch transaction, for inserted events only.

mod cases;
mod merge;
mod read;
mod tasks;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use uuid::Uuid;

use crate::Result;

pub(crate) use cases::project_cases;
pub(crate) use merge::{fold_into, recount, split_cases};
pub use read::{
    CaseQuery, CaseView, ContactWindows, FeedbackSummary, Insights, InsightsQuery, MetricSummary,
    Signals, TaskQuery, TaskView,
};
pub(crate) use tasks::project_tasks;
pub use tasks::{TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID};

/// How the agent's view is derived: case grouping, when an open case counts
/// as unresolved after contact, and the priority rule.
#[derive(Debug, Clone)]
pub struct ViewRules {
    /// Case grouping.
    pub cases: panorama_core::cases::CaseRules,
    /// An open case whose last contact is older than this raises
    /// `unresolved_after_contact`.
    pub unresolved_after: chrono::Duration,
    /// The priority tiers.
    pub priority: panorama_core::priority::PriorityRules,
}

impl Default for ViewRules {
    fn default() -> Self {
        ViewRules {
            cases: panorama_core::cases::CaseRules::default(),
            unresolved_after: chrono::Duration::days(3),
            priority: panorama_core::priority::PriorityRules::default(),
        }
    }
}

/// Attribute keys with this prefix describe the customer (e.g.
/// `customer.tier`); their latest values are kept for the priority rule.
pub const CUSTOMER_ATTRIBUTE_PREFIX: &str = "customer.";

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
/// contacts per day, customer attributes) and the daily roll-ups. Rows are
/// written in key order, so concurrent batches cannot deadlock on them.
pub(crate) async fn fold_view(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<()> {
    let mut feedback: BTreeMap<(Uuid, &str), Answers> = BTreeMap::new();
    let mut daily: BTreeMap<(Uuid, NaiveDate), i32> = BTreeMap::new();
    let mut attributes: BTreeMap<(Uuid, &str), (&str, DateTime<Utc>)> = BTreeMap::new();
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
        for (key, value) in &event.attributes {
            if key.starts_with(CUSTOMER_ATTRIBUTE_PREFIX) {
                let entry = attributes
                    .entry((*customer, key.as_str()))
                    .or_insert((value.as_str(), at));
                if at >= entry.1 {
                    *entry = (value.as_str(), at);
                }
            }
        }
    }
    if !feedback.is_empty() {
        let statement = transaction
            .prepare_cached(include_str!("../../sql/view/fold_feedback.sql"))
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
    if !attributes.is_empty() {
        let statement = transaction
            .prepare_cached(
                "INSERT INTO customer_attributes AS a (customer_id, key, value, at)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
                 ON CONFLICT (customer_id, key) DO UPDATE SET
                     value = CASE WHEN excluded.at >= a.at THEN excluded.value ELSE a.value END,
                     at = GREATEST(a.at, excluded.at)",
            )
            .await?;
        let customers: Vec<Uuid> = attributes.keys().map(|(c, _)| *c).collect();
        let keys: Vec<&str> = attributes.keys().map(|(_, k)| *k).collect();
        let values: Vec<&str> = attributes.values().map(|(v, _)| *v).collect();
        let ats: Vec<DateTime<Utc>> = attributes.values().map(|(_, at)| *at).collect();
        transaction
            .execute(&statement, &[&customers, &keys, &values, &ats])
            .await?;
    }
    if !channel_days.is_empty() {
        let statement = transaction
            .prepare_cached(
                "INSERT INTO daily_channel_contacts AS d (day, channel, contacts)
                 SELECT * FROM unnest($1::date[], $2::text[], $3::int8[])
                 ON CONFLICT (day, channel) DO UPDATE SET contacts = d.contacts + excluded.contacts",
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
                "INSERT INTO daily_feedback AS d (day, channel, metric, score, responses)
                 SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::int2[], $5::int8[])
                 ON CONFLICT (day, channel, metric, score)
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
