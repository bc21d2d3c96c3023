//! Reads of the agent's view: cases, tasks, the profile's summaries and
//! signals, and the insights for ops dashboards.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::consent::{self, ProfileConsent, TASK_CONSENT_JOIN, task_consent};
use super::profile::ProfileStatements;
use super::timeline::TimelineCursor;
use super::traits::ProfileTraits;
use crate::{Result, Store};

/// A case as agents see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    /// Case id.
    pub id: Uuid,
    /// The profile it was opened under (this customer or one merged into it).
    pub profile_id: Uuid,
    /// `open` or `resolved`.
    pub status: String,
    /// The reason for contact in the customer's (or the agent's) words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// The agent who opened it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<String>,
    /// First contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact_at: Option<DateTime<Utc>>,
    /// Latest contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_at: Option<DateTime<Utc>>,
    /// Contacts about it.
    pub contact_count: i32,
    /// The channels they came through.
    pub channels: Vec<String>,
    /// When it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The agent's note on resolving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
    /// Resolved with a single contact.
    pub first_contact_resolution: bool,
}

const CASE_COLUMNS: &str = "c.id, c.customer_id, c.status, c.reason, c.opened_at, c.opened_by, \
     c.first_contact_at, c.last_contact_at, c.contact_count, c.channels, c.resolved_at, \
     c.outcome, c.resolution_note";

fn case_view(row: &Row) -> CaseView {
    let status: String = row.get(2);
    let contact_count: i32 = row.get(8);
    CaseView {
        id: row.get(0),
        profile_id: row.get(1),
        first_contact_resolution: status == "resolved" && contact_count == 1,
        status,
        reason: row.get(3),
        opened_at: row.get(4),
        opened_by: row.get(5),
        first_contact_at: row.get(6),
        last_contact_at: row.get(7),
        contact_count,
        channels: row.get(9),
        resolved_at: row.get(10),
        outcome: row.get(11),
        resolution_note: row.get(12),
    }
}

/// Which cases of a customer to list.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// `open` or `resolved`; `None`: both.
    pub status: Option<String>,
    /// Continue after this case (by `opened_at`, then id, newest first).
    pub cursor: Option<TimelineCursor>,
    /// Page size.
    pub limit: usize,
}

/// A follow-up task.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: Uuid,
    /// The customer it is for (the survivor).
    pub customer_id: Uuid,
    /// The case it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<Uuid>,
    /// What to do.
    pub title: String,
    /// Channel to contact the customer through.
    pub channel: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// Who should do it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// `open` or `done`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// By whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// When it was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the customer allows a service contact through `channel` as
    /// things stand now: `refused` flags a follow-up the customer said no
    /// to (see the profile's `consent`).
    pub consent: panorama_core::ConsentStatus,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Only due before this time.
    pub due_before: Option<DateTime<Utc>>,
    /// `open` or `done`; `None`: both.
    pub status: Option<String>,
    /// Only this customer's (a survivor).
    pub customer: Option<Uuid>,
    /// Continue after this task (by due time, then id, soonest first).
    pub cursor: Option<TimelineCursor>,
    /// Page size.
    pub limit: usize,
}

/// Contacts in recent windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ContactWindows {
    /// In the last 7 days, today included.
    pub last_7_days: i64,
    /// In the last 30 days.
    pub last_30_days: i64,
    /// In the last 90 days.
    pub last_90_days: i64,
}

/// One survey metric of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MetricSummary {
    /// Answers given.
    pub responses: i64,
    /// Their average.
    pub average: f64,
    /// The latest answer.
    pub latest: i16,
    /// When it was given.
    pub latest_at: DateTime<Utc>,
}

/// A customer's survey answers, per metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeedbackSummary {
    /// Net promoter score answers (0–10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<MetricSummary>,
    /// Satisfaction answers (1–5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<MetricSummary>,
    /// Effort answers (1–7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ces: Option<MetricSummary>,
}

/// What an agent should notice at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Signals {
    /// Two or more contacts on one open case (contacts within the case
    /// window of each other share a case).
    pub repeat_contact: bool,
    /// An open case touched through two or more channels.
    pub channel_hop: bool,
    /// An open case whose last contact is older than the configured delay.
    pub unresolved_after_contact: bool,
    /// The open cases behind these flags.
    pub cases: Vec<Uuid>,
    /// The tier from the priority rule.
    pub priority: String,
}

/// The profile's summaries beyond identity and channels.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProfileView {
    pub(crate) contacts: ContactWindows,
    pub(crate) open_cases: Vec<CaseView>,
    pub(crate) feedback: FeedbackSummary,
    pub(crate) traits: ProfileTraits,
    pub(crate) consent: ProfileConsent,
}

/// The period and channel of an insights read.
#[derive(Debug, Clone, Default)]
pub struct InsightsQuery {
    /// From this day (inclusive); default: 30 days before `until`.
    pub since: Option<DateTime<Utc>>,
    /// Up to this time (exclusive); default: now.
    pub until: Option<DateTime<Utc>>,
    /// Only this channel.
    pub channel: Option<String>,
}

/// The figures ops dashboards show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Insights {
    /// The period's first day.
    pub since: DateTime<Utc>,
    /// Its end.
    pub until: DateTime<Utc>,
    /// Customer contacts per channel.
    pub contacts_per_channel: BTreeMap<String, i64>,
    /// Cases opened in the period.
    pub cases: i64,
    /// Of those, the share with two or more contacts.
    pub repeat_contact_rate: Option<f64>,
    /// Of those resolved, the share resolved with one contact.
    pub first_contact_resolution_rate: Option<f64>,
    /// Of those, the share touched through two or more channels.
    pub channel_hop_rate: Option<f64>,
    /// Promoters (9–10) minus detractors (0–6), in percent of answers.
    pub nps: Option<f64>,
    /// Share of satisfaction answers of 4 or 5, in percent.
    pub csat: Option<f64>,
    /// Average effort score.
    pub ces: Option<f64>,
    /// Answers per metric.
    pub responses: BTreeMap<String, i64>,
}

/// The contact windows of the customer `survivor` (an SQL expression
/// giving a surviving customer's id) as of the date in parameter `today`.
pub(crate) fn windows_of(survivor: &str, today: &str) -> String {
    format!(
        "SELECT COALESCE(sum(contacts) FILTER (WHERE day > {today}::date - 7), 0)::int8,
                COALESCE(sum(contacts) FILTER (WHERE day > {today}::date - 30), 0)::int8,
                COALESCE(sum(contacts), 0)::int8
         FROM customer_daily_contacts
         WHERE customer_id = {survivor} AND day > {today}::date - 90"
    )
}

/// The open cases of the customer `survivor`, newest first, at most 50.
pub(crate) fn open_cases_of(survivor: &str) -> String {
    format!(
        "SELECT {CASE_COLUMNS} FROM customers AS p JOIN cases AS c ON c.customer_id = p.id
         WHERE p.survivor_id = {survivor} AND c.merged_into IS NULL AND c.status = 'open'
         ORDER BY c.opened_at DESC, c.id DESC LIMIT 50"
    )
}

/// The survey summaries of the customer `survivor`.
pub(crate) fn feedback_of(survivor: &str) -> String {
    format!(
        "SELECT metric, responses, score_sum, latest_score, latest_at
         FROM customer_feedback WHERE customer_id = {survivor}"
    )
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Store {
    /// Summaries for the profile of the customer `statements` find with
    /// `subject` (the parameters of its survivor expression), read on the
    /// caller's connection (a second one per request could starve the pool
    /// under load), pipelined with whatever the caller runs beside it.
    pub(crate) async fn profile_view(
        client: &deadpool_postgres::Client,
        statements: &ProfileStatements,
        subject: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<ProfileView> {
        let today = Utc::now().date_naive();
        let windows = client.prepare_cached(&statements.windows).await?;
        let cases = client.prepare_cached(&statements.open_cases).await?;
        let feedback = client.prepare_cached(&statements.feedback).await?;
        let traits = client.prepare_cached(&statements.traits).await?;
        let consent = client.prepare_cached(&statements.consent).await?;
        let mut window_params = subject.to_vec();
        window_params.push(&today);
        let (windows, cases, feedback, traits, consent) = futures::try_join!(
            client.query_one(&windows, &window_params),
            client.query(&cases, subject),
            client.query(&feedback, subject),
            client.query(&traits, subject),
            client.query(&consent, subject),
        )?;
        let mut summary = FeedbackSummary::default();
        for row in &feedback {
            let metric: &str = row.get(0);
            let responses: i64 = row.get(1);
            let sum: i64 = row.get(2);
            let value = Some(MetricSummary {
                responses,
                average: ratio(sum, responses).unwrap_or_default(),
                latest: row.get(3),
                latest_at: row.get(4),
            });
            match metric {
                "nps" => summary.nps = value,
                "csat" => summary.csat = value,
                "ces" => summary.ces = value,
                _ => {}
            }
        }
        Ok(ProfileView {
            contacts: ContactWindows {
                last_7_days: windows.get(0),
                last_30_days: windows.get(1),
                last_90_days: windows.get(2),
            },
            open_cases: cases.iter().map(case_view).collect(),
            feedback: summary,
            traits: ProfileTraits::from_rows(&traits),
            consent: consent::profile_consent(&consent),
        })
    }

    /// The signals for a profile's open cases and traits.
    pub(crate) fn signals(&self, view: &ProfileView, now: DateTime<Utc>) -> Signals {
        let mut signals = Signals {
            priority: self.view.priority.tier(&view.traits.attributes).to_owned(),
            ..Signals::default()
        };
        for case in &view.open_cases {
            let repeat = case.contact_count >= 2;
            let hop = case.channels.len() >= 2;
            let stale = case
                .last_contact_at
                .is_some_and(|last| now - last > self.view.unresolved_after);
            signals.repeat_contact |= repeat;
            signals.channel_hop |= hop;
            signals.unresolved_after_contact |= stale;
            if repeat || hop || stale {
                signals.cases.push(case.id);
            }
        }
        signals
    }

    /// One page of the cases of surviving customer `survivor`, newest
    /// first.
    #[tracing::instrument(skip(self))]
    pub async fn cases(&self, survivor: Uuid, query: &CaseQuery) -> Result<Vec<CaseView>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {CASE_COLUMNS} FROM customers AS p JOIN cases AS c ON c.customer_id = p.id
                 WHERE p.survivor_id = $1 AND c.merged_into IS NULL
                   AND ($2::text IS NULL OR c.status = $2)
                   AND (c.opened_at, c.id) < ($3, $4)
                 ORDER BY c.opened_at DESC, c.id DESC LIMIT $5"
            ))
            .await?;
        let (before_at, before_id) = match query.cursor {
            Some(cursor) => (cursor.occurred_at, cursor.event_id),
            None => (far_future(), Uuid::max()),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[&survivor, &query.status, &before_at, &before_id, &limit],
            )
            .await?;
        Ok(rows.iter().map(case_view).collect())
    }

    /// A case and the survivor of the customer it belongs to; a case merged
    /// into another leads to that one.
    #[tracing::instrument(skip(self))]
    pub async fn case(&self, id: Uuid) -> Result<Option<(CaseView, Uuid)>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH RECURSIVE chain (id, depth) AS (
                     SELECT $1::uuid, 0
                     UNION ALL
                     SELECT c.merged_into, chain.depth + 1 FROM cases AS c
                     JOIN chain ON c.id = chain.id
                     WHERE c.merged_into IS NOT NULL AND chain.depth < 100
                 )
                 SELECT {CASE_COLUMNS}, p.survivor_id
                 FROM cases AS c JOIN customers AS p ON p.id = c.customer_id
                 WHERE c.id = (SELECT id FROM chain ORDER BY depth DESC LIMIT 1)"
            ))
            .await?;
        Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| (case_view(&row), row.get(13))))
    }

    /// One page of tasks, soonest due first.
    #[tracing::instrument(skip(self))]
    pub async fn tasks(&self, query: &TaskQuery) -> Result<Vec<TaskView>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS}
                 FROM tasks AS t JOIN customers AS p ON p.id = t.customer_id
                 {TASK_CONSENT_JOIN}
                 WHERE ($1::text IS NULL OR t.assignee = $1)
                   AND ($2::timestamptz IS NULL OR t.due_at < $2)
                   AND ($3::text IS NULL OR t.status = $3)
                   AND ($4::uuid IS NULL OR p.survivor_id = $4)
                   AND (t.due_at, t.id) > ($5, $6)
                 ORDER BY t.due_at, t.id LIMIT $7"
            ))
            .await?;
        let (after_at, after_id) = match query.cursor {
            Some(cursor) => (cursor.occurred_at, cursor.event_id),
            None => (DateTime::UNIX_EPOCH, Uuid::nil()),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[
                    &query.assignee,
                    &query.due_before,
                    &query.status,
                    &query.customer,
                    &after_at,
                    &after_id,
                    &limit,
                ],
            )
            .await?;
        Ok(rows.iter().map(task_view).collect())
    }

    /// One task.
    #[tracing::instrument(skip(self))]
    pub async fn task(&self, id: Uuid) -> Result<Option<TaskView>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS}
                 FROM tasks AS t JOIN customers AS p ON p.id = t.customer_id
                 {TASK_CONSENT_JOIN}
                 WHERE t.id = $1"
            ))
            .await?;
        Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| task_view(&row)))
    }

    /// The insights for a period, from the daily roll-ups and the cases
    /// opened in it.
    #[tracing::instrument(skip(self))]
    pub async fn insights(&self, query: &InsightsQuery) -> Result<Insights> {
        let until = query.until.unwrap_or_else(Utc::now);
        let since = query.since.unwrap_or(until - Duration::days(30));
        let (first_day, last_day) = (since.date_naive(), until.date_naive());
        let client = self.pool.get().await?;
        let contacts = client
            .prepare_cached(
                "SELECT channel, sum(contacts)::int8 FROM daily_channel_contacts
                 WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR channel = $3)
                 GROUP BY channel",
            )
            .await?;
        let cases = client
            .prepare_cached(
                "SELECT count(*),
                        count(*) FILTER (WHERE contact_count >= 2),
                        count(*) FILTER (WHERE status = 'resolved'),
                        count(*) FILTER (WHERE status = 'resolved' AND contact_count = 1),
                        count(*) FILTER (WHERE cardinality(channels) >= 2)
                 FROM cases
                 WHERE merged_into IS NULL AND opened_at >= $1 AND opened_at < $2
                   AND contact_count > 0
                   AND ($3::text IS NULL OR $3 = ANY(channels))",
            )
            .await?;
        let feedback = client
            .prepare_cached(
                "SELECT metric, score, sum(responses)::int8 FROM daily_feedback
                 WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR channel = $3)
                 GROUP BY metric, score",
            )
            .await?;
        let day_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&first_day, &last_day, &query.channel];
        let case_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&since, &until, &query.channel];
        let (contacts, cases, feedback) = futures::try_join!(
            client.query(&contacts, &day_params),
            client.query_one(&cases, &case_params),
            client.query(&feedback, &day_params),
        )?;
        let mut insights = Insights {
            since,
            until,
            contacts_per_channel: contacts
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect(),
            ..Insights::default()
        };
        let (total, repeated, resolved, first_contact, hopped): (i64, i64, i64, i64, i64) = (
            cases.get(0),
            cases.get(1),
            cases.get(2),
            cases.get(3),
            cases.get(4),
        );
        insights.cases = total;
        insights.repeat_contact_rate = ratio(repeated, total);
        insights.first_contact_resolution_rate = ratio(first_contact, resolved);
        insights.channel_hop_rate = ratio(hopped, total);
        let mut scores: BTreeMap<&str, Vec<(i16, i64)>> = BTreeMap::new();
        for row in &feedback {
            scores
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), row.get(2)));
        }
        for (metric, answers) in &scores {
            let responses: i64 = answers.iter().map(|(_, n)| n).sum();
            insights.responses.insert((*metric).to_owned(), responses);
            let share = |keep: &dyn Fn(i16) -> bool| {
                let kept: i64 = answers
                    .iter()
                    .filter(|(s, _)| keep(*s))
                    .map(|(_, n)| n)
                    .sum();
                ratio(kept, responses).map(|r| r * 100.0)
            };
            match *metric {
                "nps" => {
                    insights.nps = share(&|s| s >= 9)
                        .zip(share(&|s| s <= 6))
                        .map(|(promoters, detractors)| promoters - detractors);
                }
                "csat" => insights.csat = share(&|s| s >= 4),
                "ces" => {
                    let sum: i64 = answers.iter().map(|(s, n)| i64::from(*s) * n).sum();
                    insights.ces = ratio(sum, responses);
                }
                _ => {}
            }
        }
        Ok(insights)
    }
}

/// The columns [`task_view`] reads, then the arrays of
/// [`TASK_CONSENT_JOIN`].
const TASK_COLUMNS: &str = "t.id, p.survivor_id, t.case_id, t.title, t.channel, t.due_at, \
     t.assignee, t.status, t.created_at, t.created_by, t.completed_at, \
     k.channels, k.granted, k.ats";

fn task_view(row: &Row) -> TaskView {
    let channel: String = row.get(4);
    TaskView {
        consent: task_consent(row, 11, &channel),
        id: row.get(0),
        customer_id: row.get(1),
        case_id: row.get(2),
        title: row.get(3),
        channel,
        due_at: row.get(5),
        assignee: row.get(6),
        status: row.get(7),
        created_at: row.get(8),
        created_by: row.get(9),
        completed_at: row.get(10),
    }
}

/// A sentinel later than any event, inside PostgreSQL's timestamp range.
pub(crate) fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::UNIX_EPOCH)
}
