//! A customer's history: keyset pages over one index, newest first, across
//! every profile merged into the customer. The event columns are mapped in
//! one place ([`timeline_entry`]), shared with the change log.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use panorama_core::{Channel, EventType, IdentifierKind, Trust};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{Result, Store};

mod json;

use json::{JsonText, Stored, column};

/// An identifier as an event carried it, with how far the gateway trusted
/// it: the shape of a timeline entry's `identifiers`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CarriedIdentifier {
    /// Kind.
    pub kind: IdentifierKind,
    /// Normalised value.
    pub value: String,
    /// `verified`, or `claimed`: anyone could have typed it (a web form, a
    /// chat's pre-chat form); a claimed identifier on an event of a known
    /// customer is shown, never linked to anyone.
    pub trust: Trust,
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
    /// The identifiers the event carried, each with its trust.
    #[schema(value_type = Vec<CarriedIdentifier>)]
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
    /// The contact preferences the event stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<panorama_core::Consent>>)]
    pub consent: Option<Value>,
    /// When retention cleared the event's personal fields (identifiers,
    /// texts, name, attributes); absent while it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymised_at: Option<DateTime<Utc>>,
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

/// A page of a customer's timeline as read ([`Store::timeline_page`]),
/// written as JSON straight from its rows: the same bytes as serialising
/// its [`TimelineEntry`]s, without building them (see `timeline/json.rs`).
#[derive(Debug)]
pub struct TimelineRows {
    /// The customer the id asked for leads to.
    customer: Uuid,
    /// The page's events, newest first.
    rows: Vec<Row>,
    /// Whether older entries follow.
    more: bool,
}

impl TimelineRows {
    /// The customer the id asked for leads to (its survivor).
    pub fn customer(&self) -> Uuid {
        self.customer
    }

    /// Entries on the page.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page has no entry.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Where the next (older) page starts; `None` on the last page.
    pub fn next_cursor(&self) -> Option<TimelineCursor> {
        let last = self.rows.last().filter(|_| self.more)?;
        Some(TimelineCursor {
            occurred_at: column(last, 2)?,
            event_id: column(last, 1)?,
        })
    }

    /// Appends the page's entries to `out` as a JSON array: the bytes
    /// `serde_json` writes for the `Vec<TimelineEntry>` of these rows.
    pub fn write_entries(&self, out: &mut Vec<u8>) {
        let mut writer = json::Writer::default();
        // About 48 bytes per column: one allocation for most pages.
        out.reserve(self.rows.iter().map(Row::len).sum::<usize>() * 48);
        out.push(b'[');
        for (index, row) in self.rows.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_entry(out, row, 1, &mut writer);
        }
        out.push(b']');
    }
}

impl Store {
    /// One page of the history of the customer `id` leads to (itself, the
    /// survivor it was merged into, or the customer that took over it as an
    /// alias: see [`Store::survivor_of`]) and of every profile merged into
    /// it, newest first, with that customer's id; `None` when no customer
    /// ever had the id. One statement on one connection: the survivor
    /// lookup is part of it.
    #[tracing::instrument(skip(self))]
    pub async fn timeline_of(
        &self,
        id: Uuid,
        query: &TimelineQuery,
    ) -> Result<Option<(Uuid, Vec<TimelineEntry>)>> {
        let rows = self.timeline_rows(id, query).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let customer = first.get(0);
        // A customer without an event on this page comes as one row whose
        // event columns are NULL.
        let entries = rows
            .iter()
            .filter(|row| row.get::<_, Option<Uuid>>(1).is_some())
            .map(|row| timeline_entry(row, 1))
            .collect();
        Ok(Some((customer, entries)))
    }

    /// One page of [`Store::timeline_of`] (`query.limit` entries at most)
    /// as rows, to be written as JSON without building its entries (see
    /// [`TimelineRows`]); it reads one entry more, to tell whether there
    /// is a next page. `None` when no customer ever had the id.
    #[tracing::instrument(skip(self))]
    pub async fn timeline_page(
        &self,
        id: Uuid,
        query: &TimelineQuery,
    ) -> Result<Option<TimelineRows>> {
        let page = query.limit;
        let mut wanted = query.clone();
        wanted.limit = page.saturating_add(1);
        let mut rows = self.timeline_rows(id, &wanted).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let customer = column(first, 0).unwrap_or_default();
        // A customer without an event on this page comes as one row whose
        // event columns are NULL.
        rows.retain(|row| column::<Uuid>(row, 1).is_some());
        let more = rows.len() > page;
        rows.truncate(page);
        Ok(Some(TimelineRows {
            customer,
            rows,
            more,
        }))
    }

    /// The rows of `sql/timeline.sql` for `id` and `query`, at most
    /// `query.limit` events.
    async fn timeline_rows(&self, id: Uuid, query: &TimelineQuery) -> Result<Vec<Row>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../../sql/timeline.sql"))
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
        Ok(rows)
    }

    /// One page of the history of surviving customer `id` (see
    /// [`Store::survivor_of`]) and every profile merged into it, newest
    /// first.
    #[tracing::instrument(skip(self))]
    pub async fn timeline(&self, id: Uuid, query: &TimelineQuery) -> Result<Vec<TimelineEntry>> {
        Ok(self
            .timeline_of(id, query)
            .await?
            .map(|(_, entries)| entries)
            .unwrap_or_default())
    }
}

/// Maps the event columns of a row, in the order of `sql/timeline.sql`
/// (event_id through anonymised_at, from its second column), starting at
/// column `first`; shared by the
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
        identifiers: with_trust(row.get(column(7))),
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
        consent: row.get(column(22)),
        anonymised_at: row.get(column(23)),
    }
}

/// Appends the entry [`timeline_entry`] maps from `row` (its columns from
/// `first` on) to `out`, as the bytes `serde_json` writes for that
/// [`TimelineEntry`]: its fields in order, the same ones left out.
fn write_entry(out: &mut Vec<u8>, row: &Row, first: usize, writer: &mut json::Writer) {
    let at = |offset: usize| first + offset;
    let text = |offset: usize| column::<&str>(row, at(offset));
    let time = |offset: usize| column::<DateTime<Utc>>(row, at(offset));
    out.extend_from_slice(b"{\"event_id\":");
    json::Writer::serialized(out, &column::<Uuid>(row, at(0)));
    field(out, "occurred_at", &time(1));
    field(out, "received_at", &time(2));
    field(out, "channel", &text(3));
    field(out, "source", &text(4));
    field(out, "type", &text(5));
    optional(out, "direction", text(6));
    name(out, "identifiers");
    jsonb(out, writer, column(row, at(7)), Stored::Identifiers);
    for (offset, key) in [
        (8, "conversation_id"),
        (9, "contact_reason"),
        (10, "subject"),
        (11, "summary"),
        (12, "agent_id"),
        (13, "queue"),
    ] {
        optional(out, key, text(offset));
    }
    optional(out, "duration_seconds", column::<i32>(row, at(14)));
    optional(out, "outcome", text(15));
    optional(out, "sentiment", column::<f32>(row, at(16)));
    if let Some(metric) = text(17) {
        // As the `json!` object of `timeline_entry`: its keys in order.
        name(out, "feedback");
        out.extend_from_slice(b"{\"comment\":");
        json::Writer::serialized(out, &text(19));
        out.extend_from_slice(b",\"metric\":");
        json::Writer::serialized(out, metric);
        out.extend_from_slice(b",\"score\":");
        json::Writer::serialized(out, &column::<i16>(row, at(18)));
        out.push(b'}');
    }
    optional(out, "display_name", text(20));
    name(out, "attributes");
    jsonb(out, writer, column(row, at(21)), Stored::AsIs);
    if let Some(consent) = column::<JsonText<'_>>(row, at(22)) {
        name(out, "consent");
        writer.jsonb(out, consent, Stored::AsIs);
    }
    optional(out, "anonymised_at", time(23));
    out.push(b'}');
}

/// Appends `,"key":`.
fn name(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `,"key":value`.
fn field(out: &mut Vec<u8>, key: &str, value: &impl Serialize) {
    name(out, key);
    json::Writer::serialized(out, value);
}

/// Appends `,"key":value` when there is a value.
fn optional(out: &mut Vec<u8>, key: &str, value: Option<impl Serialize>) {
    if let Some(value) = value {
        field(out, key, &value);
    }
}

/// Appends a `jsonb` column; `null` when it is NULL, as a `Value` reads it.
fn jsonb(
    out: &mut Vec<u8>,
    writer: &mut json::Writer,
    value: Option<JsonText<'_>>,
    stored: Stored,
) {
    match value {
        Some(value) => writer.jsonb(out, value, stored),
        None => out.extend_from_slice(b"null"),
    }
}

/// An event's stored identifiers, each with its trust: events projected
/// before trust existed carry none, and were verified.
fn with_trust(mut identifiers: Value) -> Value {
    if let Value::Array(items) = &mut identifiers {
        for item in items {
            if let Value::Object(item) = item {
                item.entry("trust")
                    .or_insert_with(|| Value::from(Trust::Verified.as_str()));
            }
        }
    }
    identifiers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_stored_without_trust_read_as_verified() {
        let stored = serde_json::json!([
            {"kind": "email", "value": "a@example.com"},
            {"kind": "phone", "value": "+31612345678", "trust": "claimed"}
        ]);
        assert_eq!(
            with_trust(stored),
            serde_json::json!([
                {"kind": "email", "value": "a@example.com", "trust": "verified"},
                {"kind": "phone", "value": "+31612345678", "trust": "claimed"}
            ])
        );
    }

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
