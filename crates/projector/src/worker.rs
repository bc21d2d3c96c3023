//! The projector's thread: consume a batch, project it with its offsets in
//! one transaction, and never let one event or one outage stop the stream.
//!
//! A failed write is sorted by [`Failure`]:
//! - transient (connection, pool, deadlock, serialization, a concurrent
//!   writer, timeouts, the broker for dead letters) and systemic (schema,
//!   server) failures are retried with capped backoff; past the retry window
//!   the batch is given up and read again, so the consumer keeps polling,
//!   keeps its group membership and keeps its lag gauges current;
//! - a record failure (PostgreSQL refuses the data of an event) switches to
//!   isolation: the batch is applied part by part inside savepoints,
//!   halving the part that fails until the single event behind it is found;
//!   that event goes to the dead-letter topic and the ledger and the rest is
//!   committed in the same transaction as the offsets;
//! - a fenced batch (another consumer claimed a partition since the batch was
//!   read) is dropped: its records belong to the new owner.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use panorama_bus::{BatchConsumer, OffsetSource, OutboundRecord, Producer};
use panorama_proto::sealed::SubjectSecret;
use panorama_store::{BatchOutcome, BatchTransaction, Claim, Failure, Store};
use tokio::runtime::Handle;
use tracing::Instrument as _;

use crate::batch::Batch;
use crate::dead_letter::Verdict;
use crate::health::Health;
use crate::lag::LagTracker;
use crate::privacy::{Opened, Skipped};
use crate::trace::trace_projected;
use crate::{ProjectorSettings, ProjectorStats, metrics};

/// How long one batch is retried before it is given up and read again.
const RETRY_WINDOW: Duration = Duration::from_secs(10);
/// A unique violation this many times in a row is not a concurrent writer
/// any more but the batch's own data: it is isolated like a refusal.
const CONFLICTS_BEFORE_ISOLATING: u32 = 3;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// PostgreSQL.
    #[error(transparent)]
    Store(#[from] panorama_store::Error),
    /// The broker did not take the dead letters.
    #[error("cannot write to the dead-letter topic: {0}")]
    DeadLetters(panorama_bus::Error),
}

impl WriteError {
    fn failure(&self) -> Failure {
        match self {
            WriteError::Store(error) => error.failure(),
            WriteError::DeadLetters(_) => Failure::Transient("broker"),
        }
    }
}

/// What isolating a batch counts as the fault of a single event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// PostgreSQL's refusals of the data (record failures).
    Refusals,
    /// Those, and unique violations: once they came back too often to be a
    /// concurrent writer's.
    ConflictsToo,
}

/// What a committed batch did.
struct Projected {
    outcome: BatchOutcome,
    /// The records dead-lettered.
    dead: Vec<Verdict>,
    /// Events skipped because of an erasure.
    skipped: Skipped,
    /// Erasure requests applied now.
    erasures: u64,
}

/// What came of one batch.
enum Written {
    /// Committed.
    Committed(Projected),
    /// Given up for now (the label says why); read it again.
    Abandoned(&'static str),
    /// The projector is stopping; nothing was stored.
    Stopped,
}

/// Claims partitions from the store on every assignment.
struct StoredOffsets {
    store: Store,
    group: String,
    runtime: Handle,
}

impl OffsetSource for StoredOffsets {
    fn claim(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<std::collections::HashMap<i32, panorama_bus::Claim>, String> {
        // Called on the consumer thread during a rebalance; a few tries ride
        // out a database hiccup before the consumer gives up its assignment.
        let mut last_error = String::new();
        for attempt in 0..5u32 {
            let (store, group, topic, partitions) = (
                self.store.clone(),
                self.group.clone(),
                topic.to_owned(),
                partitions.to_vec(),
            );
            let claimed = panorama_bus::wait_on(&self.runtime, async move {
                store.claim_partitions(&group, &topic, &partitions).await
            });
            let Some(claimed) = claimed else {
                return Err("the runtime is shutting down".to_owned());
            };
            match claimed {
                Ok(claims) => {
                    return Ok(claims
                        .into_iter()
                        .map(|(partition, Claim { next_offset, epoch })| {
                            (partition, panorama_bus::Claim { next_offset, epoch })
                        })
                        .collect());
                }
                Err(error) => {
                    last_error = error.to_string();
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt + 1)));
                }
            }
        }
        Err(last_error)
    }
}

pub(crate) struct Worker {
    pub(crate) settings: ProjectorSettings,
    pub(crate) store: Store,
    pub(crate) dlq: Producer,
    pub(crate) runtime: Handle,
    pub(crate) health: Arc<Health>,
    pub(crate) stats: Arc<ProjectorStats>,
    /// The subject secret, read from the store by the first batch.
    pub(crate) secret: std::sync::OnceLock<SubjectSecret>,
}

impl Worker {
    pub(crate) fn run(self) {
        while !self.health.stopping() {
            let mut consumer = match self.connect() {
                Ok(consumer) => consumer,
                Err(error) => {
                    tracing::error!(%error, "cannot create consumer; retrying");
                    self.health.failed(error.to_string());
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            let mut lag = LagTracker::default();
            let consumed = self.consume(&mut consumer, &mut lag);
            lag.clear(&[]);
            match consumed {
                Ok(()) => {}
                Err(panorama_bus::Error::LogGap(message)) => {
                    // Retrying cannot bring deleted records back: stop, say
                    // why, and let readiness and the alerts tell the operator.
                    tracing::error!(error = %message, "projector stopped: the log has a gap");
                    self.health.ended(message);
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, "consumer failed; rejoining the group");
                    self.health.failed(error.to_string());
                    self.set_member(false);
                    self.health
                        .assigned
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    self.pause(Duration::from_secs(1));
                }
            }
        }
        self.set_member(false);
        tracing::info!("projector stopped");
    }

    fn connect(&self) -> panorama_bus::Result<BatchConsumer> {
        let offsets = Arc::new(StoredOffsets {
            store: self.store.clone(),
            group: self.settings.consumer.group.clone(),
            runtime: self.runtime.clone(),
        });
        BatchConsumer::new(&self.settings.consumer, offsets)
    }

    fn set_member(&self, member: bool) {
        self.health
            .member
            .store(member, std::sync::atomic::Ordering::SeqCst);
        metrics::GROUP_MEMBER.set(i64::from(member));
    }

    /// Waits up to `duration`, waking early on stop; false when stopping.
    fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        while !self.health.stopping() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.health.stopping()
    }

    fn consume(
        &self,
        consumer: &mut BatchConsumer,
        lag: &mut LagTracker,
    ) -> panorama_bus::Result<()> {
        let mut given_up = 0u32;
        while !self.health.stopping() {
            let records = consumer.next_batch(
                self.settings.max_batch,
                self.settings.max_batch_bytes,
                self.settings.max_wait,
            )?;
            self.health.assigned.store(
                consumer.has_assignment(),
                std::sync::atomic::Ordering::SeqCst,
            );
            self.set_member(consumer.is_group_member());
            lag.update(
                consumer,
                &self.store,
                &self.settings.consumer.group,
                &self.runtime,
                &self.health,
            );
            if records.is_empty() {
                continue;
            }
            // A batch read again after it was given up waits first, longer
            // each time, so an outage is not hammered.
            if given_up > 0 && !self.pause(backoff(given_up)) {
                return Ok(());
            }
            metrics::RECORDS_CONSUMED.inc_by(records.len() as u64);
            metrics::BATCH_SIZE.observe(records.len() as f64);
            let count = records.len() as u64;
            let batch = Batch::sort(records, |partition| consumer.claim_epoch(partition));
            let span = tracing::info_span!(
                "projector_batch",
                records = count,
                undecodable = batch.undecodable.len(),
                traced = batch.traced.len()
            );
            match self.runtime.block_on(self.write(&batch).instrument(span)) {
                Written::Committed(projected) => {
                    given_up = 0;
                    self.settings.crash_points.reach("projector.after_commit");
                    self.committed(&batch, &projected, count, lag);
                    let advisory: Vec<(String, i32, i64)> = batch
                        .offsets
                        .iter()
                        .map(|o| (o.topic.clone(), o.partition, o.next_offset))
                        .collect();
                    consumer.commit_advisory(&advisory);
                }
                Written::Abandoned(reason) => {
                    // A fenced batch is not a failure to back off from: the
                    // rebalance that fenced it re-reads from the stored
                    // offsets anyway.
                    if reason != "fenced" {
                        given_up = given_up.saturating_add(1);
                    }
                    tracing::warn!(
                        reason,
                        records = count,
                        attempts = given_up,
                        "batch not stored; reading it again"
                    );
                    consumer.rewind(&batch.starts);
                }
                Written::Stopped => return Ok(()),
            }
        }
        Ok(())
    }

    /// Bookkeeping after a commit: counters, metrics, lag, traces.
    fn committed(&self, batch: &Batch, projected: &Projected, count: u64, lag: &mut LagTracker) {
        use std::sync::atomic::Ordering::SeqCst;
        let Projected {
            outcome,
            dead,
            skipped,
            erasures,
        } = projected;
        metrics::ERASED_RECORDS
            .with_label_values(&["erased"])
            .inc_by(skipped.erased);
        metrics::ERASED_RECORDS
            .with_label_values(&["suppressed"])
            .inc_by(skipped.suppressed);
        metrics::ERASURES_APPLIED.inc_by(*erasures);
        self.health.committed();
        let now = Utc::now();
        for (_, _, received_at) in &outcome.inserted {
            let latency = (now - *received_at).to_std().unwrap_or_default();
            metrics::EVENT_TO_VISIBLE.observe(latency.as_secs_f64());
        }
        trace_projected(&batch.traced, outcome, now);
        for verdict in dead.iter() {
            metrics::DLQ_RECORDS
                .with_label_values(&[verdict.reason])
                .inc();
        }
        metrics::EVENTS_PROJECTED
            .with_label_values(&["inserted"])
            .inc_by(outcome.inserted.len() as u64);
        metrics::EVENTS_PROJECTED
            .with_label_values(&["duplicate"])
            .inc_by(outcome.duplicates as u64);
        metrics::IDEMPOTENCY_CONFLICTS.inc_by(outcome.idempotency_conflicts as u64);
        if outcome.idempotency_conflicts > 0 {
            tracing::warn!(
                conflicts = outcome.idempotency_conflicts,
                "event ids reused with another payload; the first projected stays"
            );
        }
        metrics::TRAITS_DROPPED.inc_by(outcome.traits_dropped);
        metrics::IDENTITY_DECISIONS
            .with_label_values(&["merged"])
            .inc_by(outcome.merges as u64);
        metrics::IDENTITY_DECISIONS
            .with_label_values(&["conflict"])
            .inc_by(outcome.conflicts as u64);
        for offset in &batch.offsets {
            lag.stored(offset.partition, offset.next_offset);
        }
        self.stats.records.fetch_add(count, SeqCst);
        self.stats
            .inserted
            .fetch_add(outcome.inserted.len() as u64, SeqCst);
        self.stats
            .duplicates
            .fetch_add(outcome.duplicates as u64, SeqCst);
        self.stats
            .dead_lettered
            .fetch_add(dead.len() as u64, SeqCst);
        self.stats.batches.fetch_add(1, SeqCst);
    }

    /// Projects one batch, retrying within [`RETRY_WINDOW`].
    async fn write(&self, batch: &Batch) -> Written {
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut conflicts = 0u32;
        let mut isolate = false;
        loop {
            if self.health.stopping() {
                return Written::Stopped;
            }
            let isolation = isolate.then_some(if conflicts >= CONFLICTS_BEFORE_ISOLATING {
                Isolation::ConflictsToo
            } else {
                Isolation::Refusals
            });
            let written = self.project(batch, isolation).await;
            let error = match written {
                Ok(projected) => {
                    let Projected { outcome, dead, .. } = &projected;
                    metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
                    tracing::debug!(
                        write_ms = started.elapsed().as_secs_f64() * 1e3,
                        inserted = outcome.inserted.len(),
                        duplicates = outcome.duplicates,
                        merges = outcome.merges,
                        conflicts = outcome.conflicts,
                        dead = dead.len(),
                        isolated = isolate,
                        "batch projected"
                    );
                    return Written::Committed(projected);
                }
                Err(error) => error,
            };
            let failure = error.failure();
            metrics::BATCH_RETRIES
                .with_label_values(&[failure.label()])
                .inc();
            self.health.failed(error.to_string());
            match failure {
                Failure::Fenced => {
                    tracing::warn!(%error, "batch fenced off: another projector owns its partitions now");
                    return Written::Abandoned("fenced");
                }
                Failure::Record if !isolate => {
                    tracing::warn!(%error, "PostgreSQL refused the batch; isolating the event behind it");
                    isolate = true;
                    continue;
                }
                Failure::Transient("conflict") => {
                    conflicts += 1;
                    if conflicts >= CONFLICTS_BEFORE_ISOLATING && !isolate {
                        tracing::warn!(%error, "the batch keeps conflicting; isolating the event behind it");
                        isolate = true;
                        continue;
                    }
                    tracing::debug!(%error, "batch met a concurrent writer; retrying");
                }
                Failure::Transient(_) => tracing::warn!(%error, "batch failed; retrying"),
                Failure::Record | Failure::Systemic => {
                    tracing::error!(%error, "batch failed; retrying");
                }
            }
            attempt += 1;
            if started.elapsed() >= RETRY_WINDOW {
                return Written::Abandoned(failure.label());
            }
            if !self.sleep(retry_delay(attempt)).await {
                return Written::Stopped;
            }
        }
    }

    /// Projects the batch, its dead letters and its offsets in one
    /// transaction: the whole batch at once (the fast path), or, `isolating`,
    /// part by part (see [`Worker::isolate`]).
    async fn project(
        &self,
        batch: &Batch,
        isolating: Option<Isolation>,
    ) -> Result<Projected, WriteError> {
        let secret = self.secret().await?;
        self.store
            .in_batch(
                &self.settings.consumer.group,
                &batch.offsets,
                async |transaction: &mut BatchTransaction<'_>| {
                    let opened = crate::privacy::open(transaction, batch, &secret).await?;
                    let (outcome, dead) = match isolating {
                        None => (
                            transaction.apply(&opened.events).await?,
                            opened.undecodable.clone(),
                        ),
                        Some(isolation) => {
                            self.isolate(transaction, batch, &opened, isolation).await?
                        }
                    };
                    let erasures =
                        crate::privacy::apply_erasures(transaction, batch, &secret).await?;
                    self.dead_letter(transaction, batch, &dead).await?;
                    self.settings.crash_points.reach("projector.before_commit");
                    Ok(Projected {
                        outcome,
                        dead,
                        skipped: opened.skipped,
                        erasures: erasures.iter().filter(|e| e.applied).count() as u64,
                    })
                },
            )
            .await
    }

    /// The subject secret, read from the store once.
    async fn secret(&self) -> Result<SubjectSecret, WriteError> {
        if let Some(secret) = self.secret.get() {
            return Ok(secret.clone());
        }
        let bytes = self.store.subject_secret().await?;
        Ok(self
            .secret
            .get_or_init(|| SubjectSecret::new(&bytes))
            .clone())
    }

    /// Applies the batch part by part inside savepoints, halving each part
    /// PostgreSQL refuses until the single events behind the refusals are
    /// found; returns what the rest changed, and the refused events (with
    /// the undecodable records) as dead letters.
    async fn isolate(
        &self,
        transaction: &mut BatchTransaction<'_>,
        batch: &Batch,
        opened: &Opened,
        isolation: Isolation,
    ) -> Result<(BatchOutcome, Vec<Verdict>), WriteError> {
        let mut outcome = BatchOutcome::default();
        let mut dead = opened.undecodable.clone();
        let mut parts: VecDeque<Range<usize>> = VecDeque::new();
        parts.push_back(0..opened.events.len());
        while let Some(part) = parts.pop_front() {
            if part.is_empty() {
                continue;
            }
            let error = match transaction
                .apply_isolated(&opened.events[part.clone()])
                .await
            {
                Ok(applied) => {
                    outcome.absorb(applied);
                    continue;
                }
                Err(error) => error,
            };
            let refused = match error.failure() {
                Failure::Record => true,
                Failure::Transient("conflict") => isolation == Isolation::ConflictsToo,
                _ => false,
            };
            if !refused {
                return Err(error.into());
            }
            if part.len() > 1 {
                let middle = part.start + part.len() / 2;
                parts.push_front(middle..part.end);
                parts.push_front(part.start..middle);
                continue;
            }
            let event = &opened.events[part.start];
            let record = opened.event_records[part.start];
            tracing::warn!(
                event_id = %event.event_id,
                partition = batch.records[record].partition,
                offset = batch.records[record].offset,
                sqlstate = error.sqlstate(),
                %error,
                "PostgreSQL refused an event; dead-lettering it"
            );
            dead.push(Verdict {
                record,
                event_id: Some(event.event_id),
                reason: "rejected",
                sqlstate: error.sqlstate().map(str::to_owned),
                error: error.to_string(),
            });
        }
        dead.sort_by_key(|verdict| verdict.record);
        Ok((outcome, dead))
    }

    /// Publishes `dead` to the dead-letter topic (waiting for the broker)
    /// and records them in the ledger, inside the batch's transaction, so the
    /// offsets never move past a record that is in neither.
    async fn dead_letter(
        &self,
        transaction: &mut BatchTransaction<'_>,
        batch: &Batch,
        dead: &[Verdict],
    ) -> Result<(), WriteError> {
        if dead.is_empty() {
            return Ok(());
        }
        if self.settings.publish_dead_letters {
            let records: Vec<OutboundRecord> = dead
                .iter()
                .map(|verdict| verdict.outbound(&batch.records[verdict.record]))
                .collect();
            self.dlq
                .publish(&self.settings.dlq_topic, &records)
                .await
                .map_err(WriteError::DeadLetters)?;
        }
        let ledger: Vec<panorama_store::DeadLetter> = dead
            .iter()
            .map(|verdict| verdict.ledger_entry(&batch.records[verdict.record]))
            .collect();
        transaction.record_dead_letters(&ledger).await?;
        Ok(())
    }

    /// Sleeps `delay`, waking early on stop; false when stopping.
    async fn sleep(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            if self.health.stopping() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        !self.health.stopping()
    }
}

/// Pause before retry `attempt` of a batch: 50 ms doubling, at most 2 s.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(2))
}

/// Pause before reading a given-up batch again, the `times`th time in a
/// row: 1 s doubling, at most 30 s.
fn backoff(times: u32) -> Duration {
    Duration::from_secs(1u64 << times.min(5).saturating_sub(1)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(retry_delay(1), Duration::from_millis(100));
        assert_eq!(retry_delay(30), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(100), Duration::from_secs(16));
    }
}
