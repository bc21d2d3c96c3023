//! The projector: consumes the contact-event topic in batches and folds each
//! batch into PostgreSQL in one transaction together with the consumer's
//! offsets, so every event takes effect exactly once.
//!
//! Kafka's consumer loop is blocking, so it runs on a thread of its own and
//! drives the async store through the runtime's handle. Records that do not
//! decode go to the dead-letter topic before their offsets are stored: the
//! stream never stalls on one bad record, and nothing is skipped silently.

mod metrics;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use panorama_bus::{
    BatchConsumer, ConsumedRecord, ConsumerSettings, OffsetSource, OutboundRecord, Producer,
};
use panorama_core::ContactEvent;
use panorama_store::{PartitionOffset, Store};
use tokio::runtime::Handle;

/// DLQ header holding why a record was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "panorama-dlq-reason";
/// DLQ header holding the decoder's message.
pub const DLQ_ERROR_HEADER: &str = "panorama-dlq-error";
/// DLQ header holding `topic/partition/offset` of the original record.
pub const DLQ_ORIGIN_HEADER: &str = "panorama-dlq-origin";

/// How the projector consumes and batches.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Consumer settings (brokers, group, topic).
    pub consumer: ConsumerSettings,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Most records per batch.
    pub max_batch: usize,
    /// Longest wait to fill a batch.
    pub max_wait: Duration,
}

/// Counters of one projector instance since it started (the Prometheus
/// metrics add up every instance of the process).
#[derive(Debug, Default)]
pub struct ProjectorStats {
    records: AtomicU64,
    inserted: AtomicU64,
    duplicates: AtomicU64,
    dead_lettered: AtomicU64,
    batches: AtomicU64,
}

impl ProjectorStats {
    /// Records consumed and stored (projected or dead-lettered).
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::SeqCst)
    }
    /// Events inserted for the first time.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::SeqCst)
    }
    /// Events skipped because they were already projected.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::SeqCst)
    }
    /// Records sent to the dead-letter topic.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::SeqCst)
    }
    /// Batches committed.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::SeqCst)
    }
}

/// A running projector thread.
#[derive(Debug)]
pub struct Projector {
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
    stats: Arc<ProjectorStats>,
    thread: Option<JoinHandle<()>>,
}

impl Projector {
    /// Starts a projector on its own thread. Must be called from within a
    /// Tokio runtime, which the thread uses to reach PostgreSQL.
    pub fn spawn(
        settings: ProjectorSettings,
        store: Store,
        dlq: Producer,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProjectorStats::default());
        let worker = Worker {
            stats: stats.clone(),
            settings,
            store,
            dlq,
            runtime: Handle::current(),
            stop: stop.clone(),
            assigned: assigned.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("projector".into())
            .spawn(move || worker.run())?;
        Ok(Projector {
            stop,
            assigned,
            stats,
            thread: Some(thread),
        })
    }

    /// Whether the consumer currently owns partitions of the topic.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::SeqCst)
    }

    /// This instance's counters.
    pub fn stats(&self) -> Arc<ProjectorStats> {
        self.stats.clone()
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Stops after the batch in progress and leaves the consumer group.
    /// Blocking: call it from a blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("projector thread panicked");
            }
        }
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct StoredOffsets {
    store: Store,
    group: String,
    runtime: Handle,
}

impl OffsetSource for StoredOffsets {
    fn next_offsets(&self, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, String> {
        // Called on the consumer thread during a rebalance; a few tries ride
        // out a database hiccup before the consumer gives up its assignment.
        let mut last_error = String::new();
        for attempt in 0..5u32 {
            match self
                .runtime
                .block_on(self.store.next_offsets(&self.group, topic, partitions))
            {
                Ok(offsets) => return Ok(offsets),
                Err(error) => {
                    last_error = error.to_string();
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt + 1)));
                }
            }
        }
        Err(last_error)
    }
}

struct Worker {
    settings: ProjectorSettings,
    store: Store,
    dlq: Producer,
    runtime: Handle,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
    stats: Arc<ProjectorStats>,
}

/// Records of one batch, sorted into what to project and what to dead-letter.
struct Sorted {
    events: Vec<ContactEvent>,
    dead: Vec<OutboundRecord>,
    /// Why each of `dead` was dead-lettered, in the same order.
    dead_reasons: Vec<&'static str>,
    offsets: Vec<PartitionOffset>,
}

impl Worker {
    fn run(self) {
        while !self.stopping() {
            let mut consumer = match self.connect() {
                Ok(consumer) => consumer,
                Err(error) => {
                    tracing::error!(%error, "cannot create consumer; retrying");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            if let Err(error) = self.consume(&mut consumer) {
                tracing::error!(%error, "consumer failed; rejoining the group");
                self.assigned.store(false, Ordering::SeqCst);
                self.pause(Duration::from_secs(1));
            }
        }
        self.assigned.store(false, Ordering::SeqCst);
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
        while !self.stopping() {
            let records = consumer.next_batch(self.settings.max_batch, self.settings.max_wait)?;
            self.assigned
                .store(consumer.has_assignment(), Ordering::SeqCst);
            if records.is_empty() {
                continue;
            }
            metrics::RECORDS_CONSUMED.inc_by(records.len() as u64);
            metrics::BATCH_SIZE.observe(records.len() as f64);
            let count = records.len() as u64;
            let decode_started = Instant::now();
            let sorted = sort(records);
            tracing::debug!(
                records = count,
                decode_ms = decode_started.elapsed().as_secs_f64() * 1e3,
                "batch decoded"
            );
            if !self.runtime.block_on(self.write(&sorted)) {
                // Stopped while retrying: nothing was stored, so the next
                // owner of these partitions starts again from the stored offsets.
                return Ok(());
            }
            let advisory: Vec<(String, i32, i64)> = sorted
                .offsets
                .iter()
                .map(|o| (o.topic.clone(), o.partition, o.next_offset))
                .collect();
            consumer.commit_advisory(&advisory);
            self.stats.records.fetch_add(count, Ordering::SeqCst);
            self.stats
                .dead_lettered
                .fetch_add(sorted.dead.len() as u64, Ordering::SeqCst);
            self.stats.batches.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Dead-letters and projects one batch, retrying until it sticks or the
    /// projector stops. Returns whether the batch was stored.
    async fn write(&self, batch: &Sorted) -> bool {
        let started = Instant::now();
        if !batch.dead.is_empty() {
            let mut attempt = 0u32;
            while let Err(error) = self
                .dlq
                .publish(&self.settings.dlq_topic, &batch.dead)
                .await
            {
                tracing::error!(%error, records = batch.dead.len(), "cannot write to the dead-letter topic; retrying");
                attempt += 1;
                if !self.backoff(attempt).await {
                    return false;
                }
            }
            for reason in &batch.dead_reasons {
                metrics::DLQ_RECORDS.with_label_values(&[*reason]).inc();
            }
        }
        let mut attempt = 0u32;
        loop {
            match self
                .store
                .apply_batch(&self.settings.consumer.group, &batch.events, &batch.offsets)
                .await
            {
                Ok(outcome) => {
                    let now = Utc::now();
                    for (_, _, received_at) in &outcome.inserted {
                        let latency = (now - *received_at).to_std().unwrap_or_default();
                        metrics::EVENT_TO_VISIBLE.observe(latency.as_secs_f64());
                    }
                    self.stats
                        .inserted
                        .fetch_add(outcome.inserted.len() as u64, Ordering::SeqCst);
                    self.stats
                        .duplicates
                        .fetch_add(outcome.duplicates as u64, Ordering::SeqCst);
                    metrics::EVENTS_PROJECTED
                        .with_label_values(&["inserted"])
                        .inc_by(outcome.inserted.len() as u64);
                    metrics::EVENTS_PROJECTED
                        .with_label_values(&["duplicate"])
                        .inc_by(outcome.duplicates as u64);
                    metrics::IDENTITY_DECISIONS
                        .with_label_values(&["merged"])
                        .inc_by(outcome.merges as u64);
                    metrics::IDENTITY_DECISIONS
                        .with_label_values(&["conflict"])
                        .inc_by(outcome.conflicts as u64);
                    metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
                    for offset in &batch.offsets {
                        metrics::STORED_OFFSET
                            .with_label_values(&[offset.partition.to_string()])
                            .set(offset.next_offset);
                    }
                    tracing::debug!(
                        write_ms = started.elapsed().as_secs_f64() * 1e3,
                        inserted = outcome.inserted.len(),
                        duplicates = outcome.duplicates,
                        merges = outcome.merges,
                        conflicts = outcome.conflicts,
                        dead = batch.dead.len(),
                        "batch projected"
                    );
                    return true;
                }
                Err(error) => {
                    metrics::BATCH_RETRIES.inc();
                    if error.is_transient() {
                        tracing::warn!(%error, "batch failed; retrying");
                    } else {
                        tracing::error!(%error, "batch failed; retrying");
                    }
                    attempt += 1;
                    if !self.backoff(attempt).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Exponential backoff capped at 5 s; false when the projector stops.
    async fn backoff(&self, attempt: u32) -> bool {
        let delay = Duration::from_millis(50u64.saturating_mul(1 << attempt.min(7)))
            .min(Duration::from_secs(5));
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            if self.stopping() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        !self.stopping()
    }
}

fn sort(records: Vec<ConsumedRecord>) -> Sorted {
    let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut events = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    let mut dead_reasons = Vec::new();
    for record in records {
        let next = next_offsets
            .entry((record.topic.clone(), record.partition))
            .or_insert(record.offset + 1);
        *next = (*next).max(record.offset + 1);
        let decoded = match record.payload.as_deref() {
            Some(payload) => {
                panorama_proto::decode(payload).map_err(|e| (e.reason(), e.to_string()))
            }
            None => Err(("undecodable", "record has no value".to_owned())),
        };
        match decoded {
            Ok(event) => events.push(event),
            Err((reason, message)) => {
                tracing::warn!(
                    partition = record.partition,
                    offset = record.offset,
                    reason,
                    "dead-lettering record"
                );
                dead.push(dead_letter(&record, reason, &message));
                dead_reasons.push(reason);
            }
        }
    }
    let offsets = next_offsets
        .into_iter()
        .map(|((topic, partition), next_offset)| PartitionOffset {
            topic,
            partition,
            next_offset,
        })
        .collect();
    Sorted {
        events,
        dead,
        dead_reasons,
        offsets,
    }
}

fn dead_letter(record: &ConsumedRecord, reason: &str, message: &str) -> OutboundRecord {
    let mut headers = record.headers.clone();
    headers.push((DLQ_REASON_HEADER.to_owned(), reason.as_bytes().to_vec()));
    headers.push((
        DLQ_ERROR_HEADER.to_owned(),
        message.chars().take(500).collect::<String>().into_bytes(),
    ));
    headers.push((
        DLQ_ORIGIN_HEADER.to_owned(),
        format!("{}/{}/{}", record.topic, record.partition, record.offset).into_bytes(),
    ));
    OutboundRecord {
        key: record
            .key
            .as_deref()
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .unwrap_or_default(),
        payload: record.payload.clone().unwrap_or_default(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, payload: &[u8]) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition,
            offset,
            key: Some(b"k".to_vec()),
            payload: Some(payload.to_vec()),
            headers: vec![],
        }
    }

    #[test]
    fn garbage_is_dead_lettered_and_offsets_move_past_it() {
        let sorted = sort(vec![
            record(0, 7, b"garbage"),
            record(1, 3, b"\x08\x01"),
            record(0, 8, b"junk"),
        ]);
        assert!(sorted.events.is_empty());
        assert_eq!(sorted.dead.len(), 3);
        assert_eq!(sorted.dead_reasons, ["undecodable"; 3]);
        assert_eq!(
            sorted.offsets,
            vec![
                PartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    next_offset: 9
                },
                PartitionOffset {
                    topic: "t".into(),
                    partition: 1,
                    next_offset: 4
                },
            ]
        );
        let first = &sorted.dead[0];
        assert!(
            first
                .headers
                .iter()
                .any(|(n, v)| n == DLQ_REASON_HEADER && v == b"undecodable")
        );
        assert!(
            first
                .headers
                .iter()
                .any(|(n, v)| n == DLQ_ORIGIN_HEADER && v == b"t/0/7")
        );
        assert_eq!(first.payload, b"garbage");
    }
}
