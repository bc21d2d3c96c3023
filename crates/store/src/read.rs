//! Read queries behind the agent API. Profiles come from the aggregates the
//! projector maintains; timelines are keyset pages over one index.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use panorama_core::{Channel, EventType, Identifier};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::view::{CaseView, ContactWindows, FeedbackSummary, Signals};
use crate::{Result, Store};

/// An identifier of a customer, with when it was seen.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentifierView {
    /// Normalised value.
    pub value: String,
    /// The source that first brought it.
    pub source: String,
    /// First event carrying it.
    pub first_seen_at: DateTime<Utc>,
    /// Latest event carrying it, as of when it was linked.
    pub last_seen_at: DateTime<Utc>,
}

/// Contacts through one channel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelSummary {
    /// Channel name.
    pub channel: String,
    /// Events through this channel.
    pub count: i64,
    /// When the latest happened.
    pub last_contact_at: DateTime<Utc>,
    /// Its direction, if known.
    pub last_direction: Option<String>,
}

/// A customer's profile, from precomputed aggregates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerProfile {
    /// Customer id: the survivor of the id asked for.
    pub id: Uuid,
    /// The id asked for: `id` itself, or a customer merged into it.
    pub requested_id: Uuid,
    /// Best-known name.
    pub display_name: Option<String>,
    /// First contact.
    pub first_contact_at: Option<DateTime<Utc>>,
    /// Latest contact.
    pub last_contact_at: Option<DateTime<Utc>>,
    /// Events in the history.
    pub event_count: i64,
    /// Every identifier, grouped by kind, by value within a kind.
    pub identifiers: BTreeMap<String, Vec<IdentifierView>>,
    /// Per channel, busiest first.
    pub channels: Vec<ChannelSummary>,
    /// Contacts in the last 7, 30 and 90 days.
    pub contacts: ContactWindows,
    /// Open cases, newest first.
    pub open_cases: Vec<CaseView>,
    /// Survey answers per metric.
    pub feedback: FeedbackSummary,
    /// Repeat contact, channel hop, unresolved after contact, priority.
    pub signals: Signals,
}

/// One entry of a timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// Event id.
    pub event_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When the gateway received it.
    pub received_at: DateTime<Utc>,
    /// Channel.
    pub channel: String,
    /// Provider.
    pub source: String,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The identifiers the event carried.
    #[schema(value_type = Vec<panorama_core::Identifier>)]
    pub identifiers: Value,
    /// Thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Reason for contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_reason: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Excerpt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i32>,
    /// Outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Sentiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<f32>,
    /// Survey answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<panorama_core::FeedbackDraft>)]
    pub feedback: Option<Value>,
    /// Name as given on this event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Extra values.
    #[schema(value_type = BTreeMap<String, String>)]
    pub attributes: Value,
}

/// Where a timeline page starts: just older than this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineCursor {
    /// occurred_at of the last entry of the previous page.
    pub occurred_at: DateTime<Utc>,
    /// Its event id.
    pub event_id: Uuid,
}

impl TimelineCursor {
    /// The cursor after `entry`.
    pub fn after(entry: &TimelineEntry) -> Self {
        TimelineCursor {
            occurred_at: entry.occurred_at,
            event_id: entry.event_id,
        }
    }

    /// Opaque text form for URLs.
    pub fn encode(&self) -> String {
        let raw = format!(
            "{}:{}",
            self.occurred_at.timestamp_micros(),
            self.event_id.simple()
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads the text form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let raw = std::str::from_utf8(&raw).ok()?;
        let (micros, id) = raw.split_once(':')?;
        Some(TimelineCursor {
            occurred_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            event_id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Filters and page position for a timeline read.
#[derive(Debug, Clone, Default)]
pub struct TimelineQuery {
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Only at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only before this time.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this entry.
    pub cursor: Option<TimelineCursor>,
    /// Page size.
    pub limit: usize,
}

/// Row counts of the projection, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Customers, merged ones included.
    pub customers: i64,
    /// Events.
    pub events: i64,
    /// Identifiers.
    pub identifiers: i64,
}

impl Store {
    /// Exact row counts (a full count: for tests and small installations).
    #[tracing::instrument(skip(self))]
    pub async fn totals(&self) -> Result<Totals> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM events),
                        (SELECT count(*) FROM identifiers)",
                &[],
            )
            .await?;
        Ok(Totals {
            customers: row.get(0),
            events: row.get(1),
            identifiers: row.get(2),
        })
    }

    /// The customer owning `identifier` (the survivor of the profile it
    /// came through), if any.
    #[tracing::instrument(skip(self))]
    pub async fn lookup(&self, identifier: &Identifier) -> Result<Option<Uuid>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT c.survivor_id FROM identifiers AS i JOIN customers AS c ON c.id = i.customer_id
                 WHERE i.kind = $1 AND i.value = $2",
            )
            .await?;
        let row = client
            .query_opt(
                &statement,
                &[&identifier.kind().as_str(), &identifier.value()],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// The profile of the customer `id` leads to (itself, or the survivor
    /// it was merged into), if any.
    #[tracing::instrument(skip(self))]
    pub async fn profile(&self, id: Uuid) -> Result<Option<CustomerProfile>> {
        let client = self.pool.get().await?;
        let customer = client
            .prepare_cached(
                "SELECT s.id, s.display_name, s.first_contact_at, s.last_contact_at, s.event_count
                 FROM customers AS asked JOIN customers AS s ON s.id = asked.survivor_id
                 WHERE asked.id = $1",
            )
            .await?;
        let Some(row) = client.query_opt(&customer, &[&id]).await? else {
            return Ok(None);
        };
        let survivor: Uuid = row.get(0);
        let identifiers = client
            .prepare_cached(
                "SELECT i.kind, i.value, i.source, i.first_seen_at, i.last_seen_at
                 FROM customers AS c JOIN identifiers AS i ON i.customer_id = c.id
                 WHERE c.survivor_id = $1 ORDER BY i.kind, i.value",
            )
            .await?;
        let channels = client
            .prepare_cached(
                "SELECT channel, event_count, last_event_at, last_direction
                 FROM customer_channels WHERE customer_id = $1
                 ORDER BY event_count DESC, channel",
            )
            .await?;
        // Pipelined on the one connection: two round trips' worth of latency
        // becomes one.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&survivor];
        let lists = async {
            futures::try_join!(
                client.query(&identifiers, &params),
                client.query(&channels, &params),
            )
            .map_err(crate::Error::from)
        };
        let ((identifiers, channels), view) =
            futures::try_join!(lists, Store::profile_view(&client, survivor))?;
        let mut grouped: BTreeMap<String, Vec<IdentifierView>> = BTreeMap::new();
        for row in &identifiers {
            grouped.entry(row.get(0)).or_default().push(IdentifierView {
                value: row.get(1),
                source: row.get(2),
                first_seen_at: row.get(3),
                last_seen_at: row.get(4),
            });
        }
        let signals = self.signals(&view, Utc::now());
        Ok(Some(CustomerProfile {
            id: survivor,
            requested_id: id,
            display_name: row.get(1),
            first_contact_at: row.get(2),
            last_contact_at: row.get(3),
            event_count: row.get(4),
            identifiers: grouped,
            channels: channels
                .iter()
                .map(|row| ChannelSummary {
                    channel: row.get(0),
                    count: row.get(1),
                    last_contact_at: row.get(2),
                    last_direction: row.get(3),
                })
                .collect(),
            contacts: view.contacts,
            open_cases: view.open_cases,
            feedback: view.feedback,
            signals,
        }))
    }

    /// The identifier agent actions about surviving customer `survivor` are
    /// filed under, so the projector attaches them to it: one that came
    /// through the customer's own profile if there is one (it stays with
    /// the customer through any unmerge), of the highest priority, then the
    /// smallest.
    #[tracing::instrument(skip(self))]
    pub async fn customer_handle(&self, survivor: Uuid) -> Result<Option<Identifier>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT i.kind, i.value FROM customers AS c
                 JOIN identifiers AS i ON i.customer_id = c.id
                 WHERE c.survivor_id = $1
                 ORDER BY (c.id = $1) DESC,
                          CASE i.kind WHEN 'account' THEN 3 WHEN 'phone' THEN 2 WHEN 'email' THEN 2
                                      WHEN 'visitor' THEN 0 ELSE 1 END DESC,
                          i.kind, i.value
                 LIMIT 1",
            )
            .await?;
        Ok(client
            .query_opt(&statement, &[&survivor])
            .await?
            .and_then(|row| crate::identity::stored_identifier(row.get(0), row.get(1))))
    }

    /// One page of the history of surviving customer `id` (see
    /// [`Store::survivor_of`]) and every profile merged into it, newest
    /// first.
    #[tracing::instrument(skip(self))]
    pub async fn timeline(&self, id: Uuid, query: &TimelineQuery) -> Result<Vec<TimelineEntry>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/timeline.sql"))
            .await?;
        // Sentinels inside PostgreSQL's timestamptz range (4713 BC to
        // 294276 AD); events never predate 1970.
        let far_future =
            DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::UNIX_EPOCH);
        let (before_at, before_id) = match query.cursor {
            Some(cursor) => (cursor.occurred_at, cursor.event_id),
            None => (far_future, Uuid::max()),
        };
        let since = query.since.unwrap_or(DateTime::UNIX_EPOCH);
        let until = query.until.unwrap_or(far_future);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[
                    &id,
                    &before_at,
                    &before_id,
                    &since,
                    &until,
                    &query.channel.map(|c| c.as_str()),
                    &query.event_type.map(|t| t.as_str()),
                    &limit,
                ],
            )
            .await?;
        Ok(rows.iter().map(|row| timeline_entry(row, 0)).collect())
    }
}

/// Maps the event columns of a row, in the order of `sql/timeline.sql`
/// (event_id through attributes), starting at column `first`; shared by the
/// timeline and the change log (`sql/changes_since.sql`).
pub(crate) fn timeline_entry(row: &Row, first: usize) -> TimelineEntry {
    let column = |offset: usize| first + offset;
    let metric: Option<String> = row.get(column(17));
    let score: Option<i16> = row.get(column(18));
    let comment: Option<String> = row.get(column(19));
    let feedback = metric
        .map(|metric| serde_json::json!({ "metric": metric, "score": score, "comment": comment }));
    TimelineEntry {
        event_id: row.get(column(0)),
        occurred_at: row.get(column(1)),
        received_at: row.get(column(2)),
        channel: row.get(column(3)),
        source: row.get(column(4)),
        event_type: row.get(column(5)),
        direction: row.get(column(6)),
        identifiers: row.get(column(7)),
        conversation_id: row.get(column(8)),
        contact_reason: row.get(column(9)),
        subject: row.get(column(10)),
        summary: row.get(column(11)),
        agent_id: row.get(column(12)),
        queue: row.get(column(13)),
        duration_seconds: row.get(column(14)),
        outcome: row.get(column(15)),
        sentiment: row.get(column(16)),
        feedback,
        display_name: row.get(column(20)),
        attributes: row.get(column(21)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = TimelineCursor {
            occurred_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).expect("time"),
            event_id: Uuid::now_v7(),
        };
        assert_eq!(TimelineCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(TimelineCursor::decode("not a cursor"), None);
        assert_eq!(TimelineCursor::decode(""), None);
        assert_eq!(
            TimelineCursor::decode(&URL_SAFE_NO_PAD.encode("12:zz")),
            None
        );
    }
}
