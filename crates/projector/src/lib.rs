//! The projector: consumes the contact-event topic in batches and folds each
//! batch into PostgreSQL in one transaction together with the consumer's
//! offsets, so every event takes effect exactly once.
//!
//! Kafka's consumer loop is blocking, so it runs on a thread of its own and
//! drives the async store through the runtime's handle. Records that do not
//! decode go to the dead-letter topic before their offsets are stored: the
//! stream never stalls on one bad record, and nothing is skipped silently.

mod metrics;

pub use metrics::register as register_metrics;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use panorama_bus::{
    BatchConsumer, ConsumedRecord, ConsumerSettings, OffsetSource, OutboundRecord, Producer,
};
use panorama_core::{ContactEvent, TraceContext};
use panorama_store::{PartitionOffset, Store};
use tokio::runtime::Handle;
use tracing::Instrument as _;

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
    /// Whether records that cannot be projected are written to the
    /// dead-letter topic. A replay turns this off: the live projector
    /// dead-lettered the same records already.
    pub publish_dead_letters: bool,
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
    member: Arc<AtomicBool>,
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
        let member = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProjectorStats::default());
        let worker = Worker {
            stats: stats.clone(),
            settings,
            store,
            dlq,
            runtime: Handle::current(),
            stop: stop.clone(),
            assigned: assigned.clone(),
            member: member.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("projector".into())
            .spawn(move || worker.run())?;
        Ok(Projector {
            stop,
            assigned,
            member,
            stats,
            thread: Some(thread),
        })
    }

    /// Whether the consumer currently owns partitions of the topic.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::SeqCst)
    }

    /// Whether the consumer holds its place in the group: it was given an
    /// assignment (empty when the group has more members than partitions)
    /// and has not lost it. False while joining and after the broker or the
    /// group coordinator dropped it.
    pub fn is_group_member(&self) -> bool {
        self.member.load(Ordering::SeqCst)
    }

    /// A readiness probe for this projector: `Err` says why it is not ready.
    pub fn readiness(&self) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
        let member = self.member.clone();
        let stop = self.stop.clone();
        move || {
            if stop.load(Ordering::SeqCst) {
                return Err("projector stopped".to_owned());
            }
            if !member.load(Ordering::SeqCst) {
                return Err("projector is not a member of its consumer group".to_owned());
            }
            Ok(())
        }
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
    member: Arc<AtomicBool>,
    stats: Arc<ProjectorStats>,
}

/// How often the consumer-lag gauges are brought up to date.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Lag bookkeeping: the stored next offset of each owned partition.
#[derive(Default)]
struct LagTracker {
    stored: HashMap<i32, i64>,
    reported: Vec<i32>,
    last: Option<Instant>,
}

/// An event that arrived with a trace context, to be joined to its trace
/// once projected.
struct Traced {
    event_id: uuid::Uuid,
    context: TraceContext,
    partition: i32,
    offset: i64,
}

/// Records of one batch, sorted into what to project and what to dead-letter.
struct Sorted {
    events: Vec<ContactEvent>,
    dead: Vec<OutboundRecord>,
    /// Why each of `dead` was dead-lettered, in the same order.
    dead_reasons: Vec<&'static str>,
    offsets: Vec<PartitionOffset>,
    /// Events whose sender asked for tracing (sampled `traceparent`).
    traced: Vec<Traced>,
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
            let mut lag = LagTracker::default();
            let consumed = self.consume(&mut consumer, &mut lag);
            clear_lag(&mut lag, &[]);
            if let Err(error) = consumed {
                tracing::error!(%error, "consumer failed; rejoining the group");
                self.assigned.store(false, Ordering::SeqCst);
                self.set_member(false);
                self.pause(Duration::from_secs(1));
            }
        }
        self.assigned.store(false, Ordering::SeqCst);
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
        self.member.store(member, Ordering::SeqCst);
        metrics::GROUP_MEMBER.set(i64::from(member));
    }

    /// Brings the lag gauges up to date, at most once per [`LAG_INTERVAL`]:
    /// high watermark (from the client's statistics) minus stored offset,
    /// for the partitions this member owns.
    fn update_lag(&self, consumer: &BatchConsumer, lag: &mut LagTracker) {
        if lag.last.is_some_and(|last| last.elapsed() < LAG_INTERVAL) {
            return;
        }
        lag.last = Some(Instant::now());
        let owned = consumer.assigned_partitions();
        lag.stored.retain(|partition, _| owned.contains(partition));
        let unknown: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|partition| !lag.stored.contains_key(partition))
            .collect();
        if !unknown.is_empty() {
            let loaded = self.runtime.block_on(self.store.next_offsets(
                &self.settings.consumer.group,
                consumer.topic(),
                &unknown,
            ));
            match loaded {
                Ok(offsets) => {
                    for partition in unknown {
                        lag.stored
                            .insert(partition, offsets.get(&partition).copied().unwrap_or(0));
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot load stored offsets for lag"),
            }
        }
        let marks = consumer.high_watermarks();
        for partition in &owned {
            let (Some(high), Some(stored)) = (marks.get(partition), lag.stored.get(partition))
            else {
                continue;
            };
            metrics::CONSUMER_LAG
                .with_label_values(&[partition.to_string()])
                .set((high - stored).max(0));
        }
        clear_lag(lag, &owned);
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

    fn consume(
        &self,
        consumer: &mut BatchConsumer,
        lag: &mut LagTracker,
    ) -> panorama_bus::Result<()> {
        while !self.stopping() {
            let records = consumer.next_batch(self.settings.max_batch, self.settings.max_wait)?;
            self.assigned
                .store(consumer.has_assignment(), Ordering::SeqCst);
            self.set_member(consumer.is_group_member());
            self.update_lag(consumer, lag);
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
            let span = tracing::info_span!(
                "projector_batch",
                records = count,
                dead = sorted.dead.len(),
                traced = sorted.traced.len()
            );
            if !self
                .runtime
                .block_on(self.write(&sorted).instrument(span.clone()))
            {
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
            for offset in &sorted.offsets {
                lag.stored.insert(offset.partition, offset.next_offset);
            }
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
        if !batch.dead.is_empty() && self.settings.publish_dead_letters {
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
                    trace_projected(batch, &outcome, now);
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

/// Opens one span per traced event, a child of the gateway's span through
/// the event's `traceparent`, so the event can be followed end to end.
fn trace_projected(
    batch: &Sorted,
    outcome: &panorama_store::BatchOutcome,
    now: chrono::DateTime<Utc>,
) {
    if batch.traced.is_empty() {
        return;
    }
    let inserted: HashMap<uuid::Uuid, (uuid::Uuid, chrono::DateTime<Utc>)> = outcome
        .inserted
        .iter()
        .map(|(event, customer, received)| (*event, (*customer, *received)))
        .collect();
    for traced in &batch.traced {
        let own = traced.context.child();
        let (customer, visible_ms) = match inserted.get(&traced.event_id) {
            Some((customer, received)) => (
                Some(customer.to_string()),
                Some((now - *received).num_milliseconds()),
            ),
            None => (None, None),
        };
        let span = tracing::info_span!(
            "project_event",
            event_id = %traced.event_id,
            trace_id = %traced.context.trace_id(),
            parent_span_id = %traced.context.span_id(),
            span_id = %own.span_id(),
            partition = traced.partition,
            offset = traced.offset,
            customer_id = customer.as_deref(),
            duplicate = customer.is_none(),
            visible_ms,
        );
        panorama_core::link_span(&span, &traced.context);
        span.in_scope(|| tracing::debug!("event projected"));
    }
}

/// The trace context of a record: its `traceparent` header, else the one
/// inside the event; only sampled contexts are followed.
fn trace_context(record: &ConsumedRecord, event: &ContactEvent) -> Option<TraceContext> {
    let from_header = record
        .header("traceparent")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(TraceContext::parse);
    from_header
        .or_else(|| event.traceparent.as_deref().and_then(TraceContext::parse))
        .filter(TraceContext::sampled)
}

/// Removes the lag and offset gauges of partitions this member no longer
/// owns, so a moved partition is reported by its new owner only.
fn clear_lag(lag: &mut LagTracker, owned: &[i32]) {
    for partition in lag
        .reported
        .iter()
        .filter(|partition| !owned.contains(partition))
    {
        let label = partition.to_string();
        let _ = metrics::CONSUMER_LAG.remove_label_values(&[label.as_str()]);
        let _ = metrics::STORED_OFFSET.remove_label_values(&[label.as_str()]);
    }
    lag.reported = owned.to_vec();
}

fn sort(records: Vec<ConsumedRecord>) -> Sorted {
    let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut events = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    let mut dead_reasons = Vec::new();
    let mut traced = Vec::new();
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
            Ok(event) => {
                if let Some(context) = trace_context(&record, &event) {
                    traced.push(Traced {
                        event_id: event.event_id,
                        context,
                        partition: record.partition,
                        offset: record.offset,
                    });
                }
                events.push(event);
            }
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
        traced,
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
