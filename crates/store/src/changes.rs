//! The change log behind live updates: every writer that changes what an
//! agent sees of a customer appends rows to `customer_changes` in its own
//! transaction and notifies `panorama_changes`; API processes listen on a
//! dedicated connection and read the rows after a subscriber's last `seq`.
//!
//! **Why a per-customer `seq` is a resume point.** `seq` is drawn from a
//! sequence when the row is inserted, not when the transaction commits, so
//! across customers a smaller `seq` can become visible after a larger one.
//! For one surviving customer it cannot: [`record_changes`] inserts only
//! while its transaction holds a `FOR UPDATE` lock on the survivor's
//! `customers` row (it takes the lock itself, through
//! [`lock_survivors`]), and that lock is held until commit. Any other
//! transaction writing changes for the same survivor waits for that lock
//! before it draws its `seq`, so it draws a larger one and commits later. A
//! reader that has seen every change of a survivor up to `seq` therefore
//! misses nothing by asking for `seq > n` later. That is why streams are
//! per customer and why nothing global (such as `max(seq)` of the table) is
//! ever used as a starting point.
//!
//! A merge brings the merged profiles' older rows into the survivor's tree;
//! those may have a smaller `seq` than what a subscriber of the survivor
//! has seen, and are not replayed. The merge itself records a `profile`
//! change, on which a client reloads the timeline.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use crate::identity::{SURVIVOR_OF, lock_survivors};
use crate::read::{TimelineEntry, timeline_entry};
use crate::{Result, Store};

/// The PostgreSQL notification channel change writers notify.
pub const CHANGES_CHANNEL: &str = "panorama_changes";

/// Most rows deleted per statement when pruning, so that pruning a large
/// backlog never holds one long transaction.
const PRUNE_CHUNK: i64 = 10_000;

/// What changed about a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new entry in the timeline (`event_id` is set).
    Timeline,
    /// The profile (aggregates, identifiers, merges) changed.
    Profile,
    /// A case of the customer changed (`subject_id` is the case id).
    Case,
    /// A kind this build does not know, written by a newer one.
    Other(String),
}

impl ChangeKind {
    /// The name stored in `customer_changes.kind` and used as the SSE event
    /// name.
    pub fn as_str(&self) -> &str {
        match self {
            ChangeKind::Timeline => "timeline",
            ChangeKind::Profile => "profile",
            ChangeKind::Case => "case",
            ChangeKind::Other(name) => name,
        }
    }
}

impl FromStr for ChangeKind {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match text {
            "timeline" => ChangeKind::Timeline,
            "profile" => ChangeKind::Profile,
            "case" => ChangeKind::Case,
            other => ChangeKind::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to record with [`record_changes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Change {
    /// Any id of the customer: it is recorded under its survivor.
    pub(crate) customer: Uuid,
    /// What changed.
    pub(crate) kind: ChangeKind,
    /// The event, for `timeline`.
    pub(crate) event_id: Option<Uuid>,
    /// The thing that changed, e.g. a case id for `case`.
    pub(crate) subject_id: Option<Uuid>,
}

impl Change {
    /// A new timeline entry `event_id` of `customer`.
    pub(crate) fn timeline(customer: Uuid, event_id: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Timeline,
            event_id: Some(event_id),
            subject_id: None,
        }
    }

    /// A changed profile of `customer`.
    pub(crate) fn profile(customer: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Profile,
            event_id: None,
            subject_id: None,
        }
    }

    /// A changed case `case_id` of `customer`.
    #[allow(dead_code)] // for the case writers
    pub(crate) fn case(customer: Uuid, case_id: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Case,
            event_id: None,
            subject_id: Some(case_id),
        }
    }
}

/// Appends `changes` to the change log in `transaction` and notifies the
/// listeners (delivered at commit, and only then).
///
/// Each change is recorded under the survivor of its customer, which this
/// locks `FOR UPDATE` (a no-op for rows the transaction has locked
/// already), so per survivor `seq` order is commit order (see the module
/// documentation). Unknown customers are skipped, duplicates recorded once,
/// and the order of `changes` is the order of their `seq`.
pub(crate) async fn record_changes(
    transaction: &Transaction<'_>,
    changes: &[Change],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut customers: Vec<Uuid> = changes.iter().map(|change| change.customer).collect();
    customers.sort_unstable();
    customers.dedup();
    let survivors = lock_survivors(transaction, &customers).await?;
    let mut seen = HashSet::with_capacity(changes.len());
    let mut ids = Vec::with_capacity(changes.len());
    let mut kinds = Vec::with_capacity(changes.len());
    let mut events = Vec::with_capacity(changes.len());
    let mut subjects = Vec::with_capacity(changes.len());
    for change in changes {
        let Some(&survivor) = survivors.get(&change.customer) else {
            tracing::debug!(customer = %change.customer, "change of an unknown customer skipped");
            continue;
        };
        if !seen.insert((survivor, &change.kind, change.event_id, change.subject_id)) {
            continue;
        }
        ids.push(survivor);
        kinds.push(change.kind.as_str());
        events.push(change.event_id);
        subjects.push(change.subject_id);
    }
    if ids.is_empty() {
        return Ok(());
    }
    let statement = transaction
        .prepare_cached(include_str!("../sql/record_changes.sql"))
        .await?;
    transaction
        .execute(&statement, &[&ids, &kinds, &events, &subjects])
        .await?;
    Ok(())
}

/// The changes of a projected batch: a `timeline` change per inserted
/// event `(event, customer, received_at)`, then a `profile` change per
/// customer they went to.
pub(crate) fn batch_changes(inserted: &[(Uuid, Uuid, DateTime<Utc>)]) -> Vec<Change> {
    let timeline = inserted
        .iter()
        .map(|(event, customer, _)| Change::timeline(*customer, *event));
    let profiles = inserted
        .iter()
        .map(|(_, customer, _)| Change::profile(*customer));
    timeline.chain(profiles).collect()
}

/// One row of the change log, as a subscriber reads it.
#[derive(Debug, Clone)]
pub struct CustomerChange {
    /// Position in the log: the SSE event id, and where to resume.
    pub seq: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// The profile it was recorded under (its survivor at the time).
    pub customer_id: Uuid,
    /// The event, for `timeline` changes.
    pub event_id: Option<Uuid>,
    /// What else changed, e.g. a case id.
    pub subject_id: Option<Uuid>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The timeline entry, for `timeline` changes whose event exists.
    pub entry: Option<TimelineEntry>,
}

/// A notification connection: yields a signal for every committed change
/// transaction, and `None` once the connection is lost.
#[derive(Debug)]
pub struct ChangeListener {
    _client: tokio_postgres::Client,
    notifications: mpsc::UnboundedReceiver<Option<i64>>,
}

impl ChangeListener {
    /// Waits for the next notification: `Some` with the largest `seq` the
    /// notifying transaction wrote, when the payload says; `None` when the
    /// connection is gone (connect again, then re-read).
    pub async fn next(&mut self) -> Option<Option<i64>> {
        self.notifications.recv().await
    }
}

impl Store {
    /// Opens a dedicated connection (not from the pool) that listens for
    /// change notifications.
    #[tracing::instrument(skip(self))]
    pub async fn listen_changes(&self) -> Result<ChangeListener> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (sender, notifications) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let message =
                    futures::future::poll_fn(|context| connection.poll_message(context)).await;
                match message {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        let seq = notification.payload().parse::<i64>().ok();
                        if sender.send(seq).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "change listener connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await?;
        Ok(ChangeListener {
            _client: client,
            notifications,
        })
    }

    /// The survivor of `customer` (any of its ids) and the largest `seq`
    /// of its merge tree (0 when it has none): where a new subscriber
    /// starts. `None` for an unknown customer.
    #[tracing::instrument(skip(self))]
    pub async fn latest_change(&self, customer: Uuid) -> Result<Option<(Uuid, i64)>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT asked.survivor_id,
                        (SELECT coalesce(max(ch.seq), 0)
                         FROM customers AS c JOIN customer_changes AS ch ON ch.customer_id = c.id
                         WHERE c.survivor_id = asked.survivor_id)
                 FROM customers AS asked WHERE asked.id = $1",
            )
            .await?;
        Ok(client
            .query_opt(&statement, &[&customer])
            .await?
            .map(|row| (row.get(0), row.get(1))))
    }

    /// Up to `limit` changes after `after` of the customer `customer` leads
    /// to now (so a subscriber follows merges), over every profile of its
    /// merge tree, oldest first, with the survivor. `None` for an unknown
    /// customer.
    #[tracing::instrument(skip(self))]
    pub async fn changes_since(
        &self,
        customer: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Option<(Uuid, Vec<CustomerChange>)>> {
        let client = self.pool.get().await?;
        let survivor_of = client.prepare_cached(SURVIVOR_OF).await?;
        let Some(row) = client.query_opt(&survivor_of, &[&customer]).await? else {
            return Ok(None);
        };
        let survivor: Uuid = row.get(0);
        let statement = client
            .prepare_cached(include_str!("../sql/changes_since.sql"))
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&survivor, &after, &limit])
            .await?;
        let changes = rows
            .iter()
            .map(|row| {
                let kind: &str = row.get(1);
                let kind = kind.parse::<ChangeKind>().unwrap_or(ChangeKind::Profile);
                // LEFT JOIN: the event columns are null for other kinds.
                let has_event = matches!(row.try_get::<_, Option<Uuid>>(6), Ok(Some(_)));
                CustomerChange {
                    seq: row.get(0),
                    kind,
                    customer_id: row.get(2),
                    event_id: row.get(3),
                    subject_id: row.get(4),
                    at: row.get(5),
                    entry: has_event.then(|| timeline_entry(row, 6)),
                }
            })
            .collect();
        Ok(Some((survivor, changes)))
    }

    /// Deletes change rows older than `max_age`; returns how many. Resuming
    /// a stream works within that window.
    #[tracing::instrument(skip(self))]
    pub async fn prune_changes(&self, max_age: Duration) -> Result<u64> {
        let cutoff = chrono::Duration::from_std(max_age)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age))
            .unwrap_or(DateTime::UNIX_EPOCH);
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "DELETE FROM customer_changes WHERE seq IN (
                     SELECT seq FROM customer_changes WHERE at < $1 ORDER BY seq LIMIT $2)",
            )
            .await?;
        let mut total = 0;
        loop {
            let deleted = client.execute(&statement, &[&cutoff, &PRUNE_CHUNK]).await?;
            total += deleted;
            if deleted < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_kept() {
        for kind in [ChangeKind::Timeline, ChangeKind::Profile, ChangeKind::Case] {
            assert_eq!(kind.as_str().parse::<ChangeKind>(), Ok(kind.clone()));
        }
        assert_eq!(
            "feedback".parse::<ChangeKind>(),
            Ok(ChangeKind::Other("feedback".into()))
        );
        assert_eq!(ChangeKind::Other("x".into()).to_string(), "x");
    }
}
