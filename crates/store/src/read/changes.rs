//! The change log's reading side, in the API processes: a dedicated
//! connection listens for the writers' notifications, a new subscriber
//! starts after its customer's latest row, and each reads the changes after
//! the last one it saw. A row holds the changes of one customer from one
//! transaction; a subscriber's place is a change, not a row (its row's
//! `seq` and its index in the row, packed into one id), so a page may end
//! inside a row and the next one picks up after it. Why a per-customer
//! `seq` is a safe resume point is told where the rows are written, in
//! `projection/changes.rs`.
//!
//! Pruning is here too: the API process runs it, and the retention it
//! keeps is the window within which a stream can resume.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::identity::SURVIVOR_OF;
use super::timeline::{TimelineEntry, timeline_entry};
use crate::projection::{CHANGES_CHANNEL, ChangeId, ChangeKind};
use crate::{Result, Store};

/// Most rows deleted per statement when pruning, so that pruning a large
/// backlog never holds one long transaction.
const PRUNE_CHUNK: i64 = 10_000;

/// One change of the log (an entry of a row), as a subscriber reads it.
#[derive(Debug, Clone)]
pub struct CustomerChange {
    /// Position in the log, packed (`seq · 2^20 + index`): the SSE event
    /// id, and where to resume. Grows along a customer's changes.
    pub id: i64,
    /// The row it is in.
    pub seq: i64,
    /// Its position in the row, from 0.
    pub index: u32,
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
        let (client, mut connection) = self.config.connect(self.tls.clone()).await?;
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

    /// The survivor of `customer` (any of its ids) and the id after every
    /// change of its merge tree's latest row (after row 0 when it has
    /// none): where a new subscriber starts, and the largest id its stream
    /// can have sent. `None` for an unknown customer.
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
            .map(|row| (row.get(0), ChangeId::end_of_row(row.get(1)).pack())))
    }

    /// Up to `limit` changes after the change `after` (a packed id, as
    /// [`CustomerChange::id`]) of the customer `customer` leads to now (so a
    /// subscriber follows merges), over every profile of its merge tree,
    /// oldest first, with the survivor. `None` for an unknown customer.
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
            .prepare_cached(include_str!("../../sql/changes_since.sql"))
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // No id is negative (the API refuses one); read as the start.
        let after = ChangeId::unpack(after).unwrap_or_default();
        let rows = client
            .query(
                &statement,
                &[&survivor, &after.seq(), &i64::from(after.index()), &limit],
            )
            .await?;
        let changes = rows
            .iter()
            .filter_map(|row| {
                let seq: i64 = row.get(0);
                let index: i64 = row.get(1);
                // Rows hold at most 2^20 entries and seq stays far below
                // 2^43: anything else cannot be named by an id, so it is
                // left out rather than sent with a wrong one.
                let Some(id) = u32::try_from(index)
                    .ok()
                    .and_then(|index| ChangeId::new(seq, index))
                else {
                    tracing::warn!(seq, index, "change log entry past the id range skipped");
                    return None;
                };
                let kind: &str = row.get(2);
                let kind = kind.parse::<ChangeKind>().unwrap_or(ChangeKind::Profile);
                // LEFT JOIN: the event columns are null for other kinds.
                let has_event = matches!(row.try_get::<_, Option<Uuid>>(7), Ok(Some(_)));
                Some(CustomerChange {
                    id: id.pack(),
                    seq,
                    index: id.index(),
                    kind,
                    customer_id: row.get(3),
                    event_id: row.get(4),
                    subject_id: row.get(5),
                    at: row.get(6),
                    entry: has_event.then(|| timeline_entry(row, 7)),
                })
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
