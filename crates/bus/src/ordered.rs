//! Publishing in a fixed order to chosen partitions, and reading back the
//! last records of partitions: what a relay needs to put an outbox on a
//! topic exactly once (the change feed, `panorama_projector::change_feed`).
//!
//! The producer is idempotent with `enable.gapless.guarantee`: a record
//! that would leave a gap behind records the broker acknowledged makes the
//! producer fail for good. That guarantee does not cover records that
//! expire (`message.timeout.ms`): one can time out while later records of
//! the same partition are written. So the caller never infers from the
//! last record what came before it; it reads back as many records as it
//! may have written ([`last_records`]) and looks for each one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::consumer::owned;
use crate::report::Reporting;
use crate::security::redact;
use crate::{Connection, ConsumedRecord, Error, ProducerSettings, Result};

/// A record for one partition.
#[derive(Debug, Clone)]
pub struct PartitionedRecord {
    /// The partition it goes to.
    pub partition: i32,
    /// Record key.
    pub key: String,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// An idempotent, gapless producer to explicit partitions.
pub struct OrderedProducer {
    inner: FutureProducer<Reporting>,
    timeout: Duration,
}

impl std::fmt::Debug for OrderedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedProducer")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OrderedProducer {
    /// Creates the producer; `settings.timeout` is how long a record may
    /// wait for the broker (`message.timeout.ms`): after it, the record is
    /// never sent.
    pub fn new(settings: &ProducerSettings) -> Result<Self> {
        let timeout_ms = settings.timeout.as_millis().max(1).to_string();
        let inner: FutureProducer<Reporting> = settings
            .connection
            .client_config()?
            .set("enable.idempotence", "true")
            .set("enable.gapless.guarantee", "true")
            .set("acks", "all")
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set("message.timeout.ms", &timeout_ms)
            .set("request.timeout.ms", &timeout_ms)
            .set(
                "socket.connection.setup.timeout.ms",
                settings.timeout.as_millis().max(1000).to_string(),
            )
            .create_with_context(Reporting::default())
            .map_err(redact)?;
        Ok(OrderedProducer {
            inner,
            timeout: settings.timeout,
        })
    }

    /// Sends `records` to `topic` in order and waits for the broker; one
    /// outcome per record. Once one failed, the producer is spent: the
    /// caller makes a new one.
    pub async fn send_all(&self, topic: &str, records: &[PartitionedRecord]) -> Vec<Result<()>> {
        let deadline = Instant::now() + self.timeout;
        let mut deliveries = Vec::with_capacity(records.len());
        let mut refused: Option<Error> = None;
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (name, value) in &record.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            let mut future_record = FutureRecord::to(topic)
                .partition(record.partition)
                .key(record.key.as_str())
                .payload(record.payload.as_slice())
                .headers(headers);
            loop {
                match self.inner.send_result(future_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                        if Instant::now() < deadline =>
                    {
                        future_record = returned;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((error, _)) => {
                        refused = Some(error.into());
                        break;
                    }
                }
            }
            if refused.is_some() {
                break;
            }
        }
        let remaining =
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(500);
        let mut outcomes: Vec<Result<()>> =
            match tokio::time::timeout(remaining, join_all(deliveries)).await {
                Ok(delivered) => delivered
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((error, _))) => Err(error.into()),
                        Err(_canceled) => Err(Error::Timeout(self.timeout)),
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
        if let Some(error) = refused {
            outcomes.push(Err(error));
        }
        while outcomes.len() < records.len() {
            outcomes.push(Err(Error::Timeout(self.timeout)));
        }
        if outcomes.iter().any(Result::is_ok) {
            crate::wake::wrote(topic);
        }
        outcomes
    }
}

/// The last `wanted[partition]` records of each partition of `topic`
/// (fewer when the partition holds fewer; none for a partition not in
/// `wanted`), by partition number and in offset order; the list has an
/// entry for every partition, so its length is the partition count.
/// Blocking: call it from a blocking task.
pub fn last_records(
    connection: impl Into<Connection>,
    topic: &str,
    wanted: &HashMap<i32, usize>,
    timeout: Duration,
) -> Result<Vec<(i32, Vec<ConsumedRecord>)>> {
    let connection = connection.into();
    let consumer: BaseConsumer = connection
        .client_config()?
        .set("group.id", "panorama-tail-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(redact)?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(Error::Topic {
            topic: topic.to_owned(),
            problem: "does not exist".into(),
        });
    }
    let mut tails: Vec<(i32, Vec<ConsumedRecord>)> = Vec::with_capacity(partitions.len());
    let mut assignment = TopicPartitionList::new();
    // Per partition being read: the first offset wanted and the last.
    let mut pending: Vec<(i32, i64, i64)> = Vec::new();
    for &partition in &partitions {
        tails.push((partition, Vec::new()));
        let count = wanted.get(&partition).copied().unwrap_or(0);
        if count == 0 {
            continue;
        }
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let first = high
            .saturating_sub(i64::try_from(count).unwrap_or(i64::MAX))
            .max(low);
        if high > first {
            assignment.add_partition_offset(topic, partition, Offset::Offset(first))?;
            pending.push((partition, first, high - 1));
        }
    }
    if pending.is_empty() {
        return Ok(tails);
    }
    consumer.assign(&assignment)?;
    let ranges = pending.clone();
    let deadline = Instant::now() + timeout;
    while !pending.is_empty() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout(timeout));
        }
        let Some(message) = consumer.poll(remaining.min(Duration::from_millis(200))) else {
            continue;
        };
        let message = message?;
        let (partition, offset) = (message.partition(), message.offset());
        let in_range = ranges
            .iter()
            .any(|&(p, first, last)| p == partition && (first..=last).contains(&offset));
        if in_range {
            if let Some(slot) = tails.iter_mut().find(|(p, _)| *p == partition) {
                slot.1.push(owned(&message));
            }
        }
        // A partition is read once the record at its last offset (or past
        // it: offsets may skip) arrived.
        pending.retain(|&(p, _, last)| !(p == partition && offset >= last));
    }
    Ok(tails)
}
