//! One projector transaction: events applied, whole or part by part inside
//! savepoints, dead letters recorded and offsets stored, committed together.

use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;

use super::dead_letters::{DeadLetter, record_dead_letters};
use super::offsets::{PartitionOffset, store_offsets};
use super::{BatchOutcome, apply_events};
use crate::{Error, Result, Store};

/// A transaction of [`Store::in_batch`].
#[derive(Debug)]
pub struct BatchTransaction<'a> {
    pub(crate) transaction: Transaction<'a>,
    pub(crate) store: &'a Store,
    group: &'a str,
}

impl Store {
    /// Runs `work` in one transaction, then stores `offsets` for `group`
    /// (refused with [`Error::Fenced`] when another consumer claimed one of
    /// their partitions since) and commits. Nothing is kept when `work` or
    /// anything after it fails.
    pub async fn in_batch<T, E>(
        &self,
        group: &str,
        offsets: &[PartitionOffset],
        work: impl AsyncFnOnce(&mut BatchTransaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut client = self.pool.get().await.map_err(Error::from)?;
        let transaction = client.transaction().await.map_err(Error::from)?;
        let mut batch = BatchTransaction {
            transaction,
            store: self,
            group,
        };
        let value = work(&mut batch).await?;
        store_offsets(&batch.transaction, group, offsets).await?;
        batch.transaction.commit().await.map_err(Error::from)?;
        Ok(value)
    }

    /// Projects `events` and stores `offsets` for `group` in one transaction.
    /// Events already projected are skipped; aggregates change only for the
    /// events inserted now. The projector uses [`Store::in_batch`], which
    /// can isolate an event PostgreSQL refuses; this is the whole batch or
    /// nothing.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply_batch(
        &self,
        group: &str,
        events: &[ContactEvent],
        offsets: &[PartitionOffset],
    ) -> Result<BatchOutcome> {
        self.in_batch(group, offsets, async |batch| batch.apply(events).await)
            .await
    }
}

impl BatchTransaction<'_> {
    /// Projects `events`. After an error the transaction is aborted: only
    /// [`BatchTransaction::apply_isolated`] can go on after a refusal.
    pub async fn apply(&mut self, events: &[ContactEvent]) -> Result<BatchOutcome> {
        apply_events(&self.transaction, self.store, events).await
    }

    /// Projects `events` inside a savepoint: when PostgreSQL refuses them,
    /// what they wrote is rolled back and the transaction goes on without
    /// them. Each part locks the customers it decides about as it goes, so
    /// the parts of a batch do not lock in one order: against a concurrent
    /// batch that rarely ends in a deadlock, which PostgreSQL breaks with
    /// an error the projector retries as transient.
    pub async fn apply_isolated(&mut self, events: &[ContactEvent]) -> Result<BatchOutcome> {
        let savepoint = self.transaction.savepoint("part").await?;
        match apply_events(&savepoint, self.store, events).await {
            Ok(outcome) => {
                savepoint.commit().await?;
                Ok(outcome)
            }
            Err(error) => {
                // When even the rollback fails the connection is gone, which
                // is what the caller must hear about.
                savepoint.rollback().await?;
                Err(error)
            }
        }
    }

    /// Records dead-lettered records in the ledger.
    pub async fn record_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        record_dead_letters(&self.transaction, self.group, letters).await
    }
}
