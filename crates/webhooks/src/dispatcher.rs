//! The dispatcher: a consumer of the change feed in a group of its own,
//! on a thread of its own (Kafka's consumer loop blocks). Each batch
//! becomes deliveries, queued in one transaction with the group's offsets
//! ([`Store::queue_webhook_deliveries`]), so every change is queued once
//! whatever crashes. It never talks to a receiver: a receiver that is down
//! slows neither it nor the projector.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use panorama_bus::{BatchConsumer, ConsumedRecord, ConsumerSettings, OffsetSource};
use panorama_store::{ChangeToDeliver, PartitionOffset, Store};
use tokio::runtime::Handle;

use crate::{change, metrics};

/// Most records per batch.
const MAX_BATCH: usize = 500;
/// Most bytes of records per batch.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait to fill a batch.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// Claims partitions from the store on every assignment, as the projector
/// does for its own group.
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
    ) -> Result<HashMap<i32, panorama_bus::Claim>, String> {
        let (store, group, topic, partitions) = (
            self.store.clone(),
            self.group.clone(),
            topic.to_owned(),
            partitions.to_vec(),
        );
        let claims = panorama_bus::wait_on(&self.runtime, async move {
            store.claim_partitions(&group, &topic, &partitions).await
        })
        .ok_or_else(|| "the runtime is shutting down".to_owned())?
        .map_err(|error| error.to_string())?;
        Ok(claims
            .into_iter()
            .map(|(partition, claim)| {
                (
                    partition,
                    panorama_bus::Claim {
                        next_offset: claim.next_offset,
                        epoch: claim.epoch,
                    },
                )
            })
            .collect())
    }
}

pub(crate) struct Dispatcher {
    pub(crate) consumer: ConsumerSettings,
    pub(crate) store: Store,
    pub(crate) runtime: Handle,
    pub(crate) stop: Arc<AtomicBool>,
    /// Wakes this process's sender when deliveries were queued.
    pub(crate) queued: Arc<tokio::sync::Notify>,
}

impl Dispatcher {
    pub(crate) fn run(self) {
        while !self.stopping() {
            let offsets = Arc::new(StoredOffsets {
                store: self.store.clone(),
                group: self.consumer.group.clone(),
                runtime: self.runtime.clone(),
            });
            let mut consumer = match BatchConsumer::new(&self.consumer, offsets) {
                Ok(consumer) => consumer,
                Err(error) => {
                    tracing::error!(%error, "webhook dispatcher cannot create its consumer; retrying");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            if let Err(error) = self.consume(&mut consumer) {
                tracing::error!(%error, "webhook dispatcher's consumer failed; rejoining the group");
                self.pause(Duration::from_secs(1));
            }
        }
        tracing::info!("webhook dispatcher stopped");
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits up to `duration`, waking early on stop.
    fn pause(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.stopping() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn consume(&self, consumer: &mut BatchConsumer) -> panorama_bus::Result<()> {
        let mut failures = 0u32;
        while !self.stopping() {
            let records = consumer.next_batch(MAX_BATCH, MAX_BATCH_BYTES, MAX_WAIT)?;
            if records.is_empty() {
                continue;
            }
            let changes = decode_all(&records);
            let (offsets, starts) =
                positions(&records, |partition| consumer.claim_epoch(partition));
            let queued = self.runtime.block_on(self.store.queue_webhook_deliveries(
                &self.consumer.group,
                &changes,
                &offsets,
            ));
            match queued {
                Ok(deliveries) => {
                    failures = 0;
                    if deliveries > 0 {
                        self.queued.notify_one();
                    }
                    metrics::CHANGES
                        .with_label_values(&["dispatched"])
                        .inc_by(changes.len() as u64);
                    tracing::debug!(changes = changes.len(), deliveries, "changes dispatched");
                    let advisory: Vec<(String, i32, i64)> = offsets
                        .iter()
                        .map(|o| (o.topic.clone(), o.partition, o.next_offset))
                        .collect();
                    consumer.commit_advisory(&advisory);
                }
                Err(error) => {
                    // Fenced: the partitions' new owner reads them from the
                    // stored offsets. Otherwise the database is in the way:
                    // read the batch again after a pause.
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, records = records.len(), "changes not queued; reading them again");
                    consumer.rewind(&starts);
                    if error.failure() != panorama_store::Failure::Fenced {
                        self.pause(retry_delay(failures));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The deliveries of `records`, counting each record's outcome; records
/// that are not changes are skipped (logged and counted): they can never
/// be delivered.
fn decode_all(records: &[ConsumedRecord]) -> Vec<ChangeToDeliver> {
    let mut changes = Vec::with_capacity(records.len());
    for record in records {
        match record.payload.as_deref().map(change::decode) {
            Some(Ok(change)) => changes.push(change),
            Some(Err(error)) => {
                metrics::CHANGES.with_label_values(&["undecodable"]).inc();
                tracing::warn!(partition = record.partition, offset = record.offset, %error, "skipping a change that does not decode");
            }
            None => {
                metrics::CHANGES.with_label_values(&["undecodable"]).inc();
                tracing::warn!(
                    partition = record.partition,
                    offset = record.offset,
                    "skipping a change record without a value"
                );
            }
        }
    }
    changes
}

/// The next offset of each partition of `records` (with the claim epoch it
/// is stored under), and where each started (to read it again).
fn positions(
    records: &[ConsumedRecord],
    epoch: impl Fn(i32) -> Option<i64>,
) -> (Vec<PartitionOffset>, Vec<(i32, i64)>) {
    let mut spans: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for record in records {
        let span = spans
            .entry((record.topic.clone(), record.partition))
            .or_insert((record.offset, record.offset));
        span.0 = span.0.min(record.offset);
        span.1 = span.1.max(record.offset);
    }
    let offsets = spans
        .iter()
        .map(|((topic, partition), (_, last))| PartitionOffset {
            topic: topic.clone(),
            partition: *partition,
            next_offset: last + 1,
            epoch: epoch(*partition),
        })
        .collect();
    let starts = spans
        .iter()
        .map(|((_, partition), (first, _))| (*partition, *first))
        .collect();
    (offsets, starts)
}

/// Pause before reading a batch again after `failures` failures in a row:
/// 200 ms doubling, at most 10 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(200u64 << failures.min(6)).min(Duration::from_secs(10))
}
