//! A customer at a glance: found by an identifier, its profile from the
//! aggregates the projector maintains (never a scan of the history), and
//! the identifier agent actions about it are filed under; and the
//! projection's row totals.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use panorama_core::{ConsentStatus, EventIdentifier, Identifier, Trust};
use serde::Serialize;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::consent::{ConsentView, consent_of};
use super::traits::{TraitView, traits_of};
use super::view::{
    CaseView, ContactWindows, FeedbackSummary, Signals, feedback_of, open_cases_of, windows_of,
};
use crate::projection::stored_identifier;
use crate::{Result, Store};

/// An identifier of a customer, with when it was seen.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentifierView {
    /// Normalised value.
    pub value: String,
    /// `verified`, or `claimed` (anyone could have typed it: the customer
    /// is known by claimed identifiers only, until a verified identifier or
    /// an agent's confirmation reaches it).
    pub trust: Trust,
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
    /// The customer's latest consent statement per channel and purpose, by
    /// channel and purpose.
    pub consent: Vec<ConsentView>,
    /// Per channel a follow-up task can use (`phone`, `email`, `web`,
    /// `chat`, `social`, `sms`), whether the customer allows a service
    /// contact through it: `allowed`, `refused` or `unknown`.
    pub follow_up_consent: BTreeMap<String, ConsentStatus>,
    /// The customer's traits: per `customer.*` event attribute, by its
    /// name without the prefix (`customer.tier` is `tier`), the latest
    /// value (by when the events happened), typed, with when and where it
    /// came from. At most 100.
    pub traits: BTreeMap<String, TraitView>,
    /// Repeat contact, channel hop, unresolved after contact, priority.
    pub signals: Signals,
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
    /// came through), if any. The span names the identifier's kind, never
    /// its value: spans are logged and exported at info level.
    #[tracing::instrument(skip(self, identifier), fields(kind = %identifier.kind()))]
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

    /// The profile of the customer owning `identifier` (the survivor of the
    /// profile it came through), if any: [`Store::lookup`] and
    /// [`Store::profile`] in one round trip, its `requested_id` the
    /// customer found. The span names the identifier's kind, never its
    /// value.
    #[tracing::instrument(skip(self, identifier), fields(kind = %identifier.kind()))]
    pub async fn lookup_profile(&self, identifier: &Identifier) -> Result<Option<CustomerProfile>> {
        let kind = identifier.kind().as_str();
        let value = identifier.value();
        let subject: [&(dyn ToSql + Sync); 2] = [&kind, &value];
        self.read_profile(&BY_IDENTIFIER, &subject, None).await
    }

    /// The profile of the customer `id` leads to (itself, or the survivor
    /// it was merged into), if any.
    #[tracing::instrument(skip(self))]
    pub async fn profile(&self, id: Uuid) -> Result<Option<CustomerProfile>> {
        let subject: [&(dyn ToSql + Sync); 1] = [&id];
        self.read_profile(&BY_ID, &subject, Some(id)).await
    }

    /// The profile `statements` find with `subject`, every statement sent
    /// at once on one connection (one round trip: each finds the survivor
    /// itself, so none waits for another's answer). `requested` is the id
    /// asked for; `None`: the survivor found.
    async fn read_profile(
        &self,
        statements: &ProfileStatements,
        subject: &[&(dyn ToSql + Sync)],
        requested: Option<Uuid>,
    ) -> Result<Option<CustomerProfile>> {
        let client = self.pool.get().await?;
        let head = client.prepare_cached(&statements.head).await?;
        let identifiers = client.prepare_cached(&statements.identifiers).await?;
        let channels = client.prepare_cached(&statements.channels).await?;
        let lists = async {
            futures::try_join!(
                client.query_opt(&head, subject),
                client.query(&identifiers, subject),
                client.query(&channels, subject),
            )
            .map_err(crate::Error::from)
        };
        let ((row, identifiers, channels), view) =
            futures::try_join!(lists, Store::profile_view(&client, statements, subject))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let survivor: Uuid = row.get(0);
        let mut grouped: BTreeMap<String, Vec<IdentifierView>> = BTreeMap::new();
        for row in &identifiers {
            grouped.entry(row.get(0)).or_default().push(IdentifierView {
                value: row.get(1),
                trust: stored_trust(row.get(5)),
                source: row.get(2),
                first_seen_at: row.get(3),
                last_seen_at: row.get(4),
            });
        }
        let signals = self.signals(&view, Utc::now());
        Ok(Some(CustomerProfile {
            id: survivor,
            requested_id: requested.unwrap_or(survivor),
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
            consent: view.consent.statements,
            follow_up_consent: view.consent.follow_up,
            traits: view.traits.traits,
            signals,
        }))
    }

    /// The identifier agent actions about surviving customer `survivor` are
    /// filed under, so the projector attaches them to it, with its trust
    /// (an action about a customer of claims is filed under a claim, which
    /// reaches that customer and verifies nothing): one that came through
    /// the customer's own profile if there is one (it stays with the
    /// customer through any unmerge), verified first, of the highest
    /// priority, then the smallest.
    #[tracing::instrument(skip(self))]
    pub async fn customer_handle(&self, survivor: Uuid) -> Result<Option<EventIdentifier>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT i.kind, i.value, i.trust FROM customers AS c
                 JOIN identifiers AS i ON i.customer_id = c.id
                 WHERE c.survivor_id = $1
                 ORDER BY (c.id = $1) DESC, (i.trust = 'verified') DESC,
                          CASE i.kind WHEN 'account' THEN 3 WHEN 'phone' THEN 2 WHEN 'email' THEN 2
                                      WHEN 'visitor' THEN 0 ELSE 1 END DESC,
                          i.kind, i.value
                 LIMIT 1",
            )
            .await?;
        Ok(client
            .query_opt(&statement, &[&survivor])
            .await?
            .and_then(|row| {
                let identifier = stored_identifier(row.get(0), row.get(1))?;
                Some(EventIdentifier {
                    identifier,
                    trust: stored_trust(row.get(2)),
                })
            }))
    }
}

/// The statements of a profile read, each finding the surviving customer
/// itself from the same parameters (an id, or an identifier's kind and
/// value), so that all of them go out at once.
#[derive(Debug)]
pub(crate) struct ProfileStatements {
    /// The survivor's row: id, display name, first and last contact, event
    /// count; no row when nobody is found.
    head: String,
    /// Identifiers of every profile of the tree, by kind then value.
    identifiers: String,
    /// Per channel, busiest first.
    channels: String,
    /// Contacts in the 7, 30 and 90 days to the date in the parameter
    /// after the subject's.
    pub(crate) windows: String,
    /// Open cases, newest first.
    pub(crate) open_cases: String,
    /// Survey summaries.
    pub(crate) feedback: String,
    /// Traits.
    pub(crate) traits: String,
    /// Consent statements.
    pub(crate) consent: String,
}

impl ProfileStatements {
    /// The statements for a profile found by `head`, whose first column is
    /// the survivor, with `survivor` the expression giving the survivor's
    /// id from the same `parameters` (how many the subject takes).
    fn new(head: &str, survivor: &str, parameters: usize) -> Self {
        ProfileStatements {
            head: head.to_owned(),
            identifiers: format!(
                "SELECT i.kind, i.value, i.source, i.first_seen_at, i.last_seen_at, i.trust
                 FROM customers AS c JOIN identifiers AS i ON i.customer_id = c.id
                 WHERE c.survivor_id = {survivor} ORDER BY i.kind, i.value"
            ),
            channels: format!(
                "SELECT channel, event_count, last_event_at, last_direction
                 FROM customer_channels WHERE customer_id = {survivor}
                 ORDER BY event_count DESC, channel"
            ),
            windows: windows_of(survivor, &format!("${}", parameters + 1)),
            open_cases: open_cases_of(survivor),
            feedback: feedback_of(survivor),
            traits: traits_of(survivor),
            consent: consent_of(survivor),
        }
    }
}

/// A profile by customer id (`$1`): the survivor of that customer.
static BY_ID: LazyLock<ProfileStatements> = LazyLock::new(|| {
    ProfileStatements::new(
        "SELECT s.id, s.display_name, s.first_contact_at, s.last_contact_at, s.event_count
         FROM customers AS asked JOIN customers AS s ON s.id = asked.survivor_id
         WHERE asked.id = $1",
        "(SELECT survivor_id FROM customers WHERE id = $1)",
        1,
    )
});

/// A profile by identifier (`$1` kind, `$2` value): the survivor of the
/// profile that has it.
static BY_IDENTIFIER: LazyLock<ProfileStatements> = LazyLock::new(|| {
    ProfileStatements::new(
        "SELECT s.id, s.display_name, s.first_contact_at, s.last_contact_at, s.event_count
         FROM identifiers AS i JOIN customers AS asked ON asked.id = i.customer_id
         JOIN customers AS s ON s.id = asked.survivor_id
         WHERE i.kind = $1 AND i.value = $2",
        "(SELECT c.survivor_id FROM identifiers AS i JOIN customers AS c ON c.id = i.customer_id
          WHERE i.kind = $1 AND i.value = $2)",
        2,
    )
});

/// A stored trust; anything but `claimed` (the column's check allows only
/// the two) reads as verified, as rows from before trust existed were.
pub(crate) fn stored_trust(raw: &str) -> Trust {
    raw.parse().unwrap_or(Trust::Verified)
}
