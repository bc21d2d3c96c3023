//! Where each consumer group has got to on each partition, stored in the
//! same transaction as the projection, and which consumer may move it.
//!
//! A consumer given a partition claims it ([`Store::claim_partitions`]):
//! the partition's epoch goes up by one, and the consumer stores offsets
//! only under the epoch it claimed. A projector that was frozen past its
//! group session (SIGSTOP, a long GC-like pause, a network partition) and
//! comes back with a batch in hand finds the epoch moved on and commits
//! nothing: the batch belongs to the partition's new owner.

use std::collections::HashMap;

use deadpool_postgres::Transaction;

use crate::{Error, Result, Store};

/// The next offset to consume on one partition, stored with the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of the last processed record plus one.
    pub next_offset: i64,
    /// The claim the batch was read under: the offset is stored only while
    /// it is still the partition's epoch. `None` stores it whatever the
    /// epoch (tools and tests that own the group alone).
    pub epoch: Option<i64>,
}

/// A consumer's claim on a partition: where to start, and the epoch to
/// store offsets under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The stored next offset; 0 for a partition the group never stored.
    pub next_offset: i64,
    /// The partition's epoch, now this consumer's.
    pub epoch: i64,
}

impl Store {
    /// The stored next offsets of `partitions` of `topic` for `group`.
    #[tracing::instrument(skip(self))]
    pub async fn next_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<HashMap<i32, i64>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT partition, next_offset FROM consumer_offsets
                 WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3)",
            )
            .await?;
        let rows = client
            .query(&statement, &[&group, &topic, &partitions])
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Claims `partitions` of `topic` for a consumer of `group` that was just
    /// given them: every earlier claim on them is void from now on. Returns
    /// where each starts and its new epoch.
    #[tracing::instrument(skip(self))]
    pub async fn claim_partitions(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<HashMap<i32, Claim>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO consumer_offsets AS o (consumer_group, topic, partition, next_offset, epoch)
                 SELECT $1, $2, p, 0, 1 FROM unnest($3::int4[]) AS p
                 ON CONFLICT (consumer_group, topic, partition)
                 DO UPDATE SET epoch = o.epoch + 1
                 RETURNING partition, next_offset, epoch",
            )
            .await?;
        let rows = client
            .query(&statement, &[&group, &topic, &partitions])
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    Claim {
                        next_offset: row.get(1),
                        epoch: row.get(2),
                    },
                )
            })
            .collect())
    }

    /// Moves the stored offset of `partition` up to `to` when it lies below:
    /// the operator's explicit acceptance that the records before `to` are
    /// gone from the log and will never be projected. Returns the offset it
    /// had, when it moved.
    #[tracing::instrument(skip(self))]
    pub async fn skip_to_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        to: i64,
    ) -> Result<Option<i64>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "WITH before AS (
                     SELECT next_offset FROM consumer_offsets
                     WHERE consumer_group = $1 AND topic = $2 AND partition = $3
                     FOR UPDATE)
                 INSERT INTO consumer_offsets AS o (consumer_group, topic, partition, next_offset)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (consumer_group, topic, partition)
                 DO UPDATE SET next_offset = $4, updated_at = now()
                 WHERE o.next_offset < $4
                 RETURNING (SELECT next_offset FROM before)",
                &[&group, &topic, &partition, &to],
            )
            .await?;
        Ok(row.map(|row| row.get::<_, Option<i64>>(0).unwrap_or(0)))
    }
}

/// Stores `offsets` for `group`. Offsets under an epoch are stored only
/// while the epoch is still the partition's; when any is not, nothing is
/// stored and the error says which partitions were lost.
pub(crate) async fn store_offsets(
    transaction: &Transaction<'_>,
    group: &str,
    offsets: &[PartitionOffset],
) -> Result<()> {
    let (fenced, free): (Vec<&PartitionOffset>, Vec<&PartitionOffset>) =
        offsets.iter().partition(|offset| offset.epoch.is_some());
    if !fenced.is_empty() {
        let topics: Vec<&str> = fenced.iter().map(|o| o.topic.as_str()).collect();
        let partitions: Vec<i32> = fenced.iter().map(|o| o.partition).collect();
        let next: Vec<i64> = fenced.iter().map(|o| o.next_offset).collect();
        let epochs: Vec<i64> = fenced.iter().filter_map(|o| o.epoch).collect();
        // GREATEST: a retried or late batch never moves the position back.
        let statement = transaction
            .prepare_cached(
                "UPDATE consumer_offsets AS o
                 SET next_offset = GREATEST(o.next_offset, q.next_offset), updated_at = now()
                 FROM unnest($2::text[], $3::int4[], $4::int8[], $5::int8[])
                      AS q (topic, partition, next_offset, epoch)
                 WHERE o.consumer_group = $1 AND o.topic = q.topic
                   AND o.partition = q.partition AND o.epoch = q.epoch
                 RETURNING o.topic, o.partition",
            )
            .await?;
        let stored = transaction
            .query(&statement, &[&group, &topics, &partitions, &next, &epochs])
            .await?;
        if stored.len() < fenced.len() {
            let kept: Vec<(String, i32)> =
                stored.iter().map(|row| (row.get(0), row.get(1))).collect();
            let lost: Vec<&&PartitionOffset> = fenced
                .iter()
                .filter(|o| !kept.iter().any(|(t, p)| *t == o.topic && *p == o.partition))
                .collect();
            return Err(Error::Fenced {
                topic: lost.first().map(|o| o.topic.clone()).unwrap_or_default(),
                partitions: lost.iter().map(|o| o.partition).collect(),
            });
        }
    }
    if !free.is_empty() {
        let topics: Vec<&str> = free.iter().map(|o| o.topic.as_str()).collect();
        let partitions: Vec<i32> = free.iter().map(|o| o.partition).collect();
        let next: Vec<i64> = free.iter().map(|o| o.next_offset).collect();
        let statement = transaction
            .prepare_cached(
                "INSERT INTO consumer_offsets AS o (consumer_group, topic, partition, next_offset)
                 SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::int8[])
                 ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
                     next_offset = GREATEST(o.next_offset, excluded.next_offset),
                     updated_at = now()",
            )
            .await?;
        transaction
            .execute(&statement, &[&group, &topics, &partitions, &next])
            .await?;
    }
    Ok(())
}
