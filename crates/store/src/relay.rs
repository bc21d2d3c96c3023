//! The change feed's outbox, relay side: the lease that lets one relay at a
//! time publish, and the claims, recovery and deletes it makes
//! (docs/event-contract.md, "Change feed"; the writing side is
//! `projection/outbox.rs`).
//!
//! **The lease** is a session advisory lock held on a dedicated connection
//! (not from the pool): it lasts as long as that session, so a relay that
//! crashes or loses PostgreSQL loses it, and another takes over. Every
//! statement of the relay runs on that connection, so a relay that lost
//! its lease can claim and delete nothing.
//!
//! **Claims.** The relay gives unclaimed rows, in `seq` order, the next
//! `relay_seq` values of a counter that never goes back and the partition
//! their key goes to, then produces them in `relay_seq` order and deletes
//! them once acknowledged. The records carry their `relay_seq`, so after a
//! crash the next relay reads back each partition's last records, as many
//! as it may have written there, and knows which claimed rows are on the
//! topic already ([`RelayLease::forget_relayed`]).
//!
//! **Waking.** The lease's session listens on `panorama_outbox`, which a
//! trigger on `change_outbox` notifies at the commit of every insert
//! (migration 0020), so an idle relay waits for rows instead of polling
//! for them ([`RelayLease::wait_for_rows`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{AsyncMessage, Client, Statement};
use uuid::Uuid;

use crate::projection::outbox::ChangeDetail;
use crate::{Result, Store};

/// Advisory lock key of the relay's lease ("panochfd" in ASCII).
const RELAY_LOCK: i64 = 0x7061_6e6f_6368_6664;

/// The notification channel the outbox's trigger notifies on insert.
const OUTBOX_CHANNEL: &str = "panorama_outbox";

/// A change as the relay publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Its row in the outbox.
    pub seq: i64,
    /// Its position among every change relayed, carried as a header.
    pub relay_seq: i64,
    /// The partition it was claimed for.
    pub partition: i32,
    /// Unique per change (`ce_id`).
    pub change_id: Uuid,
    /// `customer.created`, ... (`ce_type`).
    pub change_type: String,
    /// The customer it is about: the record key (`ce_subject`).
    pub customer_id: Uuid,
    /// The contact event that caused it.
    pub event_id: Option<Uuid>,
    /// When it was committed (`ce_time`).
    pub at: DateTime<Utc>,
    /// What changed.
    pub detail: ChangeDetail,
}

/// The relay's lease: a dedicated session holding the relay's advisory
/// lock. Dropping it ends the session, and the lease with it.
pub struct RelayLease {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    /// Notified when rows reached the outbox, and when the session ends.
    woken: Arc<tokio::sync::Notify>,
    /// The relay's statements, prepared once per session.
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl std::fmt::Debug for RelayLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLease")
            .field("closed", &self.client.is_closed())
            .finish()
    }
}

impl Drop for RelayLease {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

const RECORD_COLUMNS: &str =
    "seq, relay_seq, partition, change_id, type, customer_id, event_id, at, detail";

fn record(row: &tokio_postgres::Row) -> Result<OutboxRecord> {
    Ok(OutboxRecord {
        seq: row.get(0),
        relay_seq: row.get(1),
        partition: row.get(2),
        change_id: row.get(3),
        change_type: row.get(4),
        customer_id: row.get(5),
        event_id: row.get(6),
        at: row.get(7),
        detail: serde_json::from_value(row.get(8))?,
    })
}

impl Store {
    /// Takes the relay's lease on a new dedicated connection, or `None`
    /// when another relay holds it.
    #[tracing::instrument(skip(self))]
    pub async fn try_relay_lease(&self) -> Result<Option<RelayLease>> {
        let (client, mut connection) = self.config.connect(self.tls.clone()).await?;
        let woken = Arc::new(tokio::sync::Notify::new());
        let wake = woken.clone();
        let connection = tokio::spawn(async move {
            loop {
                match futures::future::poll_fn(|context| connection.poll_message(context)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "change relay connection failed");
                        break;
                    }
                    None => break,
                }
            }
            // A relay waiting for rows finds out that its lease is gone.
            wake.notify_one();
        });
        let lease = RelayLease {
            client,
            connection,
            woken,
            statements: Mutex::default(),
        };
        let held: bool = lease
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK])
            .await?
            .get(0);
        if !held {
            return Ok(None);
        }
        lease
            .client
            .batch_execute(&format!("LISTEN {OUTBOX_CHANNEL}"))
            .await?;
        Ok(Some(lease))
    }

    /// Rows in the outbox: changes not yet acknowledged by the broker.
    #[tracing::instrument(skip(self))]
    pub async fn outbox_backlog(&self) -> Result<i64> {
        let client = self.pool.get().await?;
        let statement = client.prepare("SELECT count(*) FROM change_outbox").await?;
        Ok(client.query_one(&statement, &[]).await?.get(0))
    }
}

impl RelayLease {
    /// Whether the session (and so the lease) is gone.
    pub fn is_lost(&self) -> bool {
        self.client.is_closed()
    }

    /// Waits until rows were added to the outbox since the last wait, or
    /// the session ended, at most `timeout`; true when woken before it.
    pub async fn wait_for_rows(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.woken.notified())
            .await
            .is_ok()
    }

    /// `sql` prepared on the lease's session, once.
    async fn statement(&self, sql: &'static str) -> Result<Statement> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql, statement.clone());
        Ok(statement)
    }

    /// The rows a relay claimed and did not delete, in `relay_seq` order.
    pub async fn claimed(&self) -> Result<Vec<OutboxRecord>> {
        let statement = self
            .client
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM change_outbox
                 WHERE relay_seq IS NOT NULL ORDER BY relay_seq"
            ))
            .await?;
        self.client
            .query(&statement, &[])
            .await?
            .iter()
            .map(record)
            .collect()
    }

    /// How long until every claimed row's claim is older than `in_flight`
    /// (by the database's clock): once it is, no record of an earlier relay
    /// can still reach the broker.
    pub async fn claims_settle_in(&self, in_flight: Duration) -> Result<Duration> {
        let statement = self
            .client
            .prepare(
                "SELECT extract(epoch FROM max(claimed_at) - now())::float8
                 FROM change_outbox WHERE relay_seq IS NOT NULL",
            )
            .await?;
        // No claims: nothing to wait for.
        let Some(ahead) = self
            .client
            .query_one(&statement, &[])
            .await?
            .get::<_, Option<f64>>(0)
        else {
            return Ok(Duration::ZERO);
        };
        let wait = ahead + in_flight.as_secs_f64();
        Ok(Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or_default())
    }

    /// Deletes the claimed rows already on the topic: those whose
    /// `relay_seq` is in `relay_seqs` (read back from the records). Returns
    /// how many.
    pub async fn forget_relayed(&self, relay_seqs: &[i64]) -> Result<u64> {
        let statement = self
            .client
            .prepare(
                "DELETE FROM change_outbox
                 WHERE relay_seq IS NOT NULL AND relay_seq = ANY($1)",
            )
            .await?;
        Ok(self.client.execute(&statement, &[&relay_seqs]).await?)
    }

    /// Marks every claimed row as claimed now: a relay about to produce
    /// them again.
    pub async fn renew_claims(&self) -> Result<()> {
        let statement = self
            .client
            .prepare("UPDATE change_outbox SET claimed_at = now() WHERE relay_seq IS NOT NULL")
            .await?;
        self.client.execute(&statement, &[]).await?;
        Ok(())
    }

    /// Claims up to `limit` unclaimed rows in `seq` order: each gets the
    /// next `relay_seq` and the partition `partition_of` gives its key.
    pub async fn claim(
        &mut self,
        limit: i64,
        partition_of: impl Fn(&Uuid) -> i32,
    ) -> Result<Vec<OutboxRecord>> {
        let pick = self.statement(PICK).await?;
        let counter = self.statement(COUNTER).await?;
        let mark = self.statement(MARK).await?;
        let transaction = self.client.transaction().await?;
        let rows = transaction.query(&pick, &[&limit]).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        let partitions: Vec<i32> = rows
            .iter()
            .map(|row| partition_of(&row.get::<_, Uuid>(1)))
            .collect();
        let count = i64::try_from(seqs.len()).unwrap_or(i64::MAX);
        let base: i64 = transaction.query_one(&counter, &[&count]).await?.get(0);
        let relay_seqs: Vec<i64> = (1..=count).map(|n| base + n).collect();
        let mut claimed: Vec<OutboxRecord> = transaction
            .query(&mark, &[&seqs, &relay_seqs, &partitions])
            .await?
            .iter()
            .map(record)
            .collect::<Result<_>>()?;
        transaction.commit().await?;
        claimed.sort_by_key(|record| record.relay_seq);
        Ok(claimed)
    }

    /// Deletes the claimed rows with these `seq` (the records' own, not
    /// their `relay_seq`): acknowledged by the broker.
    pub async fn delete(&self, seqs: &[i64]) -> Result<u64> {
        let statement = self.statement(DELETE).await?;
        Ok(self.client.execute(&statement, &[&seqs]).await?)
    }
}

/// The unclaimed rows a claim takes, oldest first.
const PICK: &str = "SELECT seq, customer_id FROM change_outbox WHERE relay_seq IS NULL
    ORDER BY seq LIMIT $1 FOR UPDATE";
/// Draws a claim's `relay_seq`s from the counter.
const COUNTER: &str = "UPDATE change_relay SET last_relay_seq = last_relay_seq + $1
    RETURNING last_relay_seq - $1";
/// Marks the picked rows claimed; returns them as [`RECORD_COLUMNS`].
const MARK: &str = "UPDATE change_outbox AS o
    SET relay_seq = q.relay_seq, partition = q.partition, claimed_at = now()
    FROM unnest($1::int8[], $2::int8[], $3::int4[]) AS q (seq, relay_seq, partition)
    WHERE o.seq = q.seq
    RETURNING o.seq, o.relay_seq, o.partition, o.change_id, o.type, o.customer_id, o.event_id,
        o.at, o.detail";
/// Deletes rows the broker acknowledged, by their primary key (`relay_seq`
/// has no index: setting it is a heap-only update, see migration 0023).
const DELETE: &str = "DELETE FROM change_outbox WHERE seq = ANY($1) AND relay_seq IS NOT NULL";
