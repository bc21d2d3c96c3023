//! A blocking batch consumer whose partitions start where the sink says.
//!
//! Offsets live in the sink (PostgreSQL), written in the same transaction as
//! the data. On every assignment the consumer asks the sink for the next
//! offset of each partition and assigns the partitions at those offsets, so
//! Kafka's own committed offsets never decide where processing resumes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use crate::report::ConnectionReport;
use crate::security::redact;
use crate::{Connection, Error, Result, wake};

/// A consumer's claim on a partition, from its sink: where to start, and
/// the epoch under which the sink accepts this consumer's offsets (a later
/// claim by another consumer voids it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The stored next offset to process; 0 for a partition never stored.
    pub next_offset: i64,
    /// The claim's epoch, handed back with every batch's offsets.
    pub epoch: i64,
}

/// Where the sink has got to, and who may move it.
pub trait OffsetSource: Send + Sync + 'static {
    /// Claims `partitions` of `topic` for this consumer, which was just given
    /// them: their stored next offsets, and epochs that void every earlier
    /// claim. A partition missing from the answer starts at the beginning of
    /// the log, unclaimed.
    fn claim(&self, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, Claim>, String>;
}

/// Consumer group settings.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The brokers and how to reach them.
    pub connection: Connection,
    /// Consumer group id.
    pub group: String,
    /// Topic to consume.
    pub topic: String,
    /// Group session timeout: how soon a dead member's partitions move.
    pub session_timeout: Duration,
    /// Longest the broker holds a fetch open waiting for data. Nisshi
    /// looks for new records in rounds while it holds a fetch (at the start,
    /// then halfway through what is left, ...): a record that arrives
    /// during a fetch is found up to half of this later, and every round
    /// reads storage.
    pub fetch_wait: Duration,
    /// How often a consumer with nothing to read looks at the topic again.
    /// A consumer that found nothing for two fetch waits (at least 50 ms)
    /// stops fetching, so an idle process does not keep the broker busy; a
    /// write to the topic by a producer of this process wakes it at once, a
    /// write by another process is found at the next probe. Zero: never
    /// stop fetching.
    pub idle_probe: Duration,
    /// How often the client reports partition high watermarks (for lag).
    pub statistics_interval: Duration,
    /// What to do when a stored offset lies below the start of the log
    /// (retention deleted records the sink never processed): `false` stops
    /// the consumer with [`Error::LogGap`]; `true` starts at the log start
    /// and logs what was skipped.
    pub accept_log_gap: bool,
    /// Most bytes of fetched records the client keeps queued ahead of the
    /// application, bounding its memory.
    pub max_queued_bytes: usize,
}

impl ConsumerSettings {
    /// Defaults (a plain `host:port` list is plaintext): 10 s session
    /// timeout, 20 ms fetch wait, an idle probe every second, watermarks
    /// every 5 s, a gap in the log stops the consumer, 32 MiB queued ahead.
    pub fn new(
        connection: impl Into<Connection>,
        group: impl Into<String>,
        topic: impl Into<String>,
    ) -> Self {
        ConsumerSettings {
            connection: connection.into(),
            group: group.into(),
            topic: topic.into(),
            session_timeout: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(20),
            idle_probe: Duration::from_secs(1),
            statistics_interval: Duration::from_secs(5),
            accept_log_gap: false,
            max_queued_bytes: 32 * 1024 * 1024,
        }
    }
}

/// A record as consumed, owned.
#[derive(Debug, Clone)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ConsumedRecord {
    /// Bytes of key and value.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len)
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }
}

struct SeekingContext {
    offsets: Arc<dyn OffsetSource>,
    /// Bumped on every assignment change; a batch spanning one is dropped.
    epoch: AtomicU64,
    /// Set when stored offsets could not be loaded: the consumer must stop.
    failed: AtomicBool,
    /// Set when a stored offset lies outside the log: the consumer must stop
    /// for good, saying why.
    fatal: Mutex<Option<String>>,
    accept_log_gap: bool,
    /// The epoch of this consumer's claim on each partition it owns.
    claims: Mutex<HashMap<i32, i64>>,
    assigned: AtomicBool,
    /// Set once the group gave this member an assignment, even an empty one
    /// (more members than partitions); cleared when the membership is lost.
    joined: AtomicBool,
    topic: String,
    /// High watermark per partition of `topic`, from the client statistics.
    high_watermarks: Mutex<HashMap<i32, i64>>,
    /// Why the client last failed to connect (TLS, SASL).
    report: ConnectionReport,
}

impl ClientContext for SeekingContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.report.record(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let marks: HashMap<i32, i64> = topic
            .partitions
            .values()
            // Partition -1 is librdkafka's internal "unassigned" queue, and a
            // negative watermark means "not known yet".
            .filter(|partition| partition.partition >= 0 && partition.hi_offset >= 0)
            .map(|partition| (partition.partition, partition.hi_offset))
            .collect();
        if let Ok(mut stored) = self.high_watermarks.lock() {
            stored.extend(marks);
        }
    }
}

impl ConsumerContext for SeekingContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(error) = self.seek_to_stored(consumer, partitions) {
                    match error {
                        Error::LogGap(message) => {
                            tracing::error!(error = %message, "stored offsets lie outside the log; stopping");
                            if let Ok(mut fatal) = self.fatal.lock() {
                                *fatal = Some(message);
                            }
                        }
                        other => {
                            tracing::error!(error = %other, "cannot load stored offsets; assigning nothing");
                        }
                    }
                    self.failed.store(true, Ordering::SeqCst);
                    let _ = consumer.unassign();
                    return;
                }
                match consumer.assign(partitions) {
                    Ok(()) => {
                        self.assigned
                            .store(partitions.count() > 0, Ordering::SeqCst);
                        self.joined.store(true, Ordering::SeqCst);
                        tracing::info!(partitions = ?partition_numbers(partitions), "partitions assigned");
                    }
                    Err(error) => {
                        tracing::error!(%error, "assign failed");
                        self.failed.store(true, Ordering::SeqCst);
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(partitions = ?partition_numbers(partitions), "partitions revoked");
                self.assigned.store(false, Ordering::SeqCst);
                if let Ok(mut claims) = self.claims.lock() {
                    claims.clear();
                }
                if consumer.assignment_lost() {
                    self.joined.store(false, Ordering::SeqCst);
                }
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(%error, "unassign failed");
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                self.assigned.store(false, Ordering::SeqCst);
                self.joined.store(false, Ordering::SeqCst);
                let _ = consumer.unassign();
            }
        }
    }
}

/// How long a watermark query may take during an assignment.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

impl SeekingContext {
    /// Claims the assigned partitions from the sink and sets each one's
    /// start offset, refusing offsets that lie outside the log.
    fn seek_to_stored(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &mut TopicPartitionList,
    ) -> Result<()> {
        let mut by_topic: HashMap<String, Vec<i32>> = HashMap::new();
        for element in partitions.elements() {
            by_topic
                .entry(element.topic().to_owned())
                .or_default()
                .push(element.partition());
        }
        let mut epochs = HashMap::new();
        for (topic, numbers) in by_topic {
            let claims = self
                .offsets
                .claim(&topic, &numbers)
                .map_err(Error::Offsets)?;
            for partition in numbers {
                let (low, high) =
                    consumer.fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)?;
                let offset = match claims.get(&partition) {
                    Some(claim) => {
                        epochs.insert(partition, claim.epoch);
                        let start =
                            self.start_offset(&topic, partition, claim.next_offset, low, high)?;
                        Offset::Offset(start)
                    }
                    None => Offset::Beginning,
                };
                partitions.set_partition_offset(&topic, partition, offset)?;
            }
        }
        if let Ok(mut claims) = self.claims.lock() {
            *claims = epochs;
        }
        Ok(())
    }

    /// Where to start a partition whose sink stored `stored`, given the log
    /// spans `low..high`.
    fn start_offset(
        &self,
        topic: &str,
        partition: i32,
        stored: i64,
        low: i64,
        high: i64,
    ) -> Result<i64> {
        if stored > high {
            return Err(Error::LogGap(format!(
                "{topic}/{partition}: the stored offset {stored} lies past the end of the log \
                 ({high}): the topic was recreated or lost records; projecting it would skip or \
                 repeat events, so the projector stops. Check the topic, then replay into a fresh \
                 schema (panorama replay) or set the stored offsets by hand"
            )));
        }
        if stored >= low {
            return Ok(stored);
        }
        let lost = low - stored;
        if self.accept_log_gap {
            tracing::warn!(
                topic,
                partition,
                stored,
                log_start = low,
                lost,
                "the log starts after the stored offset; skipping the records retention deleted"
            );
            return Ok(low);
        }
        Err(Error::LogGap(format!(
            "{topic}/{partition}: the stored offset {stored} lies before the start of the log \
             ({low}): {lost} records were deleted (retention) before they were projected. The \
             projector stops rather than skip them silently. Restore them (replay from a \
             complete copy of the topic), or accept the loss with \
             `panorama offsets --skip-to-log-start`"
        )))
    }
}

fn partition_numbers(partitions: &TopicPartitionList) -> Vec<i32> {
    partitions
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// A consumer group member that hands out batches. Blocking: run it on a
/// thread of its own.
pub struct BatchConsumer {
    consumer: BaseConsumer<SeekingContext>,
    topic: String,
    idle: Idle,
}

/// Whether a consumer fetches, and when it stops: see
/// [`ConsumerSettings::idle_probe`].
struct Idle {
    /// Writes to the topic by this process.
    wake: Arc<wake::Signal>,
    /// The count of `wake` when the consumer parked.
    seen: u64,
    /// How long nothing must arrive before the consumer parks.
    park_after: Duration,
    /// [`ConsumerSettings::idle_probe`]; zero never parks.
    probe: Duration,
    /// Since when nothing arrived, while fetching.
    quiet_since: Option<Instant>,
    /// The count of `wake` when the quiet spell began: a write during it
    /// may not have been fetched yet, so it starts the spell again.
    quiet_writes: u64,
    /// Since when the assigned partitions are paused; `None` while fetching.
    parked_at: Option<Instant>,
    /// The assignment epoch the partitions were paused in.
    parked_epoch: u64,
    /// A record the client handed out while the consumer was parked (from
    /// a partition assigned meanwhile), with its assignment epoch: the
    /// first of the next batch.
    carried: Option<(u64, ConsumedRecord)>,
}

/// Longest a parked consumer waits before it serves the client's callbacks
/// (rebalances, statistics) and hands control back to its caller.
const PARKED_TICK: Duration = Duration::from_millis(100);
/// Longest the request that wakes the client's broker thread on resume may
/// take; it is only a nudge, its answer is not used.
const WAKE_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

impl std::fmt::Debug for BatchConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchConsumer")
            .field("topic", &self.topic)
            .finish()
    }
}

impl BatchConsumer {
    /// Joins the group and subscribes to the topic.
    pub fn new(settings: &ConsumerSettings, offsets: Arc<dyn OffsetSource>) -> Result<Self> {
        let context = SeekingContext {
            offsets,
            epoch: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            fatal: Mutex::new(None),
            accept_log_gap: settings.accept_log_gap,
            claims: Mutex::new(HashMap::new()),
            assigned: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            topic: settings.topic.clone(),
            high_watermarks: Mutex::new(HashMap::new()),
            report: ConnectionReport::default(),
        };
        let session_ms = settings.session_timeout.as_millis().max(1000);
        let consumer: BaseConsumer<SeekingContext> = settings
            .connection
            .client_config()?
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Every partition starts at an offset the sink stored; one that
            // is out of range is an error to report, never a silent jump.
            .set("auto.offset.reset", "error")
            .set(
                "queued.max.messages.kbytes",
                (settings.max_queued_bytes / 1024).max(1).to_string(),
            )
            // Eager protocol: every assignment is complete, so the rebalance
            // callback can assign the whole set at the stored offsets.
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", (session_ms / 5).to_string())
            .set(
                "fetch.wait.max.ms",
                settings.fetch_wait.as_millis().to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set(
                "statistics.interval.ms",
                settings
                    .statistics_interval
                    .as_millis()
                    .max(100)
                    .to_string(),
            )
            .create_with_context(context)
            .map_err(redact)?;
        consumer.subscribe(&[&settings.topic])?;
        let wake = wake::signal(&settings.topic);
        Ok(BatchConsumer {
            consumer,
            topic: settings.topic.clone(),
            idle: Idle {
                seen: wake.writes(),
                wake,
                park_after: (settings.fetch_wait * 2).max(Duration::from_millis(50)),
                probe: settings.idle_probe,
                quiet_since: None,
                quiet_writes: 0,
                parked_at: None,
                parked_epoch: 0,
                carried: None,
            },
        })
    }

    /// Collects up to `max_records` records of at most `max_bytes` (keys and
    /// values; the first record is taken whatever its size): waits at most
    /// `max_wait` for the first one, then takes what the client has already
    /// fetched, without waiting for more. A consumer that is parked (see
    /// [`ConsumerSettings::idle_probe`]) may return nothing sooner, or wait
    /// up to a tenth of a second longer. Records from before a rebalance
    /// that happened while collecting are dropped: the new assignment
    /// starts again from the stored offsets.
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<Vec<ConsumedRecord>> {
        let mut deadline = Instant::now() + max_wait;
        if self.idle.parked_at.is_some() {
            if !self.wait_parked()? {
                return Ok(Vec::new());
            }
            deadline = Instant::now() + max_wait;
        }
        let context = self.consumer.context();
        let mut epoch = context.epoch.load(Ordering::SeqCst);
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        if let Some((carried_epoch, record)) = self.idle.carried.take() {
            if carried_epoch == epoch {
                bytes += record.size();
                batch.push(record);
            }
        }
        while batch.len() < max_records && (batch.is_empty() || bytes < max_bytes) {
            // Once a record is in hand, only what is already fetched joins
            // it: waiting to fill the batch would delay every record in it.
            let remaining = if batch.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if remaining.is_zero() && batch.is_empty() {
                break;
            }
            let polled = self.consumer.poll(remaining);
            if let Some(message) = context.fatal.lock().ok().and_then(|fatal| fatal.clone()) {
                return Err(Error::LogGap(message));
            }
            if context.failed.load(Ordering::SeqCst) {
                return Err(Error::Offsets(
                    "stored offsets could not be loaded on assignment".into(),
                ));
            }
            let now_epoch = context.epoch.load(Ordering::SeqCst);
            if now_epoch != epoch {
                batch.clear();
                bytes = 0;
                epoch = now_epoch;
            }
            match polled {
                None => break,
                Some(Ok(message)) => {
                    let record = owned(&message);
                    bytes += record.size();
                    batch.push(record);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) if is_out_of_range(&error) => {
                    return Err(Error::LogGap(format!(
                        "{error}: the consumer's position lies outside the log (records deleted \
                         by retention before they were projected, or the topic was recreated)"
                    )));
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer error");
                    if is_fatal(&error) {
                        return Err(error.into());
                    }
                }
            }
        }
        self.after_poll(!batch.is_empty());
        Ok(batch)
    }

    /// Parks the consumer once nothing arrived for
    /// [`Idle::park_after`]: pauses its partitions, so the client stops
    /// fetching. The client resumes each from the last record handed out
    /// (or from where a rewind put it), so nothing is skipped.
    fn after_poll(&mut self, received: bool) {
        if received || self.idle.probe.is_zero() {
            self.idle.quiet_since = None;
            return;
        }
        let now = Instant::now();
        // A record acknowledged before the spell began was fetched within
        // it (a fetch wait and a round trip, less than `park_after`), or it
        // would have ended the spell; one acknowledged since may not have
        // been, and must not be left to the next probe: it starts the
        // spell again.
        let writes = self.idle.wake.writes();
        let quiet_since = match self.idle.quiet_since {
            Some(since) if writes == self.idle.quiet_writes => since,
            _ => {
                self.idle.quiet_since = Some(now);
                self.idle.quiet_writes = writes;
                return;
            }
        };
        if now.duration_since(quiet_since) < self.idle.park_after || !self.has_assignment() {
            return;
        }
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        // A write from here on wakes the consumer.
        self.idle.seen = writes;
        if let Err(error) = self.consumer.pause(&assignment) {
            tracing::debug!(%error, "cannot pause an idle consumer");
            return;
        }
        self.idle.parked_at = Some(now);
        self.idle.parked_epoch = self.consumer.context().epoch.load(Ordering::SeqCst);
        tracing::trace!(topic = %self.topic, "consumer idle; fetching paused");
    }

    /// Waits, parked, for a write by this process, the next probe or an
    /// assignment change, at most [`PARKED_TICK`]; serves the client's
    /// callbacks; resumes fetching and returns true when it is time to.
    fn wait_parked(&mut self) -> Result<bool> {
        let Some(parked_at) = self.idle.parked_at else {
            return Ok(true);
        };
        let probe_at = parked_at + self.idle.probe;
        let tick = probe_at
            .saturating_duration_since(Instant::now())
            .min(PARKED_TICK);
        let writes = self.idle.wake.wait_past(self.idle.seen, tick);
        // Rebalance callbacks, statistics and errors arrive through poll; a
        // paused consumer has no records to hand out.
        let polled = self.consumer.poll(Duration::ZERO);
        let context = self.consumer.context();
        if let Some(message) = context.fatal.lock().ok().and_then(|fatal| fatal.clone()) {
            return Err(Error::LogGap(message));
        }
        if context.failed.load(Ordering::SeqCst) {
            return Err(Error::Offsets(
                "stored offsets could not be loaded on assignment".into(),
            ));
        }
        let carried = match polled {
            Some(Ok(message)) => Some(owned(&message)),
            Some(Err(error)) if is_fatal(&error) => return Err(error.into()),
            _ => None,
        };
        let has_carried = carried.is_some();
        if let Some(record) = carried {
            self.idle.carried = Some((context.epoch.load(Ordering::SeqCst), record));
        }
        let woken = has_carried
            || writes > self.idle.seen
            || Instant::now() >= probe_at
            || context.epoch.load(Ordering::SeqCst) != self.idle.parked_epoch;
        if !woken {
            return Ok(false);
        }
        self.unpark();
        Ok(true)
    }

    /// Resumes fetching every assigned partition.
    fn unpark(&mut self) {
        self.idle.parked_at = None;
        // The spell starts again at the next empty poll, counting the
        // writes that woke the consumer as new.
        self.idle.quiet_since = None;
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        if let Err(error) = self.consumer.resume(&assignment) {
            tracing::warn!(%error, "cannot resume an idle consumer");
            return;
        }
        // librdkafka's broker thread learns of a resume only when it next
        // wakes (up to a second later); a request to the broker wakes it,
        // and it fetches at once.
        if let Some(element) = assignment.elements().first() {
            let _ = self.consumer.fetch_watermarks(
                element.topic(),
                element.partition(),
                WAKE_REQUEST_TIMEOUT,
            );
        }
    }

    /// The epoch of this consumer's claim on `partition`, while it owns it.
    pub fn claim_epoch(&self, partition: i32) -> Option<i64> {
        self.consumer
            .context()
            .claims
            .lock()
            .ok()
            .and_then(|claims| claims.get(&partition).copied())
    }

    /// Moves each `(partition, offset)` of the topic back to `offset`, so the
    /// records from there are consumed again (a batch that could not be
    /// stored). Partitions this member no longer owns are skipped: their new
    /// owner starts from the stored offsets anyway.
    pub fn rewind(&self, positions: &[(i32, i64)]) {
        for (partition, offset) in positions {
            if let Err(error) = self.consumer.seek(
                &self.topic,
                *partition,
                Offset::Offset(*offset),
                Duration::from_secs(1),
            ) {
                tracing::debug!(%error, partition, offset, "cannot rewind partition");
            }
        }
    }

    /// Tells Kafka how far we got, for tools that watch the group; where
    /// processing resumes is decided by the stored offsets, not by this.
    pub fn commit_advisory(&self, next_offsets: &[(String, i32, i64)]) {
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in next_offsets {
            if list
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                return;
            }
        }
        if let Err(error) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::debug!(%error, "advisory commit failed");
        }
    }

    /// Whether this member currently owns partitions.
    pub fn has_assignment(&self) -> bool {
        self.consumer.context().assigned.load(Ordering::SeqCst)
    }

    /// Whether this member holds its place in the group: it received an
    /// assignment (possibly empty, when the group has more members than
    /// partitions) and has not lost it since.
    pub fn is_group_member(&self) -> bool {
        self.consumer.context().joined.load(Ordering::SeqCst)
    }

    /// The partitions of the topic this member owns now.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        self.consumer
            .assignment()
            .map(|list| partition_numbers(&list))
            .unwrap_or_default()
    }

    /// The latest known high watermark (next offset to be written) of each
    /// partition, as last reported by the client's statistics; partitions
    /// not reported yet are missing.
    pub fn high_watermarks(&self) -> HashMap<i32, i64> {
        self.consumer
            .context()
            .high_watermarks
            .lock()
            .map(|marks| marks.clone())
            .unwrap_or_default()
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Runs `future` on `runtime` and waits for it from this blocking thread
/// (a consumer's, for [`OffsetSource::claim`]); `None` when the runtime
/// shut down first. `Handle::block_on` would wait forever there: the
/// database connection it needs is a task of the dead runtime.
pub fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    future: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = done.send(future.await);
    });
    // A runtime that shuts down drops the task, and the sender with it.
    outcome.recv().ok()
}

fn is_out_of_range(error: &KafkaError) -> bool {
    error
        .rdkafka_error_code()
        .is_some_and(|code| code == rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange)
}

fn is_fatal(error: &KafkaError) -> bool {
    error
        .rdkafka_error_code()
        .is_some_and(|code| code == rdkafka::types::RDKafkaErrorCode::Fatal)
}

/// The owned copy of a consumed message.
pub(crate) fn owned(message: &rdkafka::message::BorrowedMessage<'_>) -> ConsumedRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    (
                        header.key.to_owned(),
                        header.value.unwrap_or_default().to_vec(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}
