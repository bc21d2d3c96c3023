//! Idempotent, acks=all publishing that reports success only after the
//! broker acknowledged every record of a call.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::{Error, Result};

/// How to reach the broker and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// `host:port[,host:port]`.
    pub brokers: String,
    /// How long one publish may wait for every acknowledgement.
    pub timeout: Duration,
    /// How long records wait to fill a batch (`linger.ms`).
    pub linger: Duration,
}

impl ProducerSettings {
    /// Defaults for `brokers`: 5 s timeout, 1 ms linger (ingest answers
    /// wait for the broker, so linger is added to every answer's latency;
    /// large requests fill batches without it).
    pub fn new(brokers: impl Into<String>) -> Self {
        ProducerSettings {
            brokers: brokers.into(),
            timeout: Duration::from_secs(5),
            linger: Duration::from_millis(1),
        }
    }
}

/// A record to publish.
#[derive(Debug, Clone)]
pub struct OutboundRecord {
    /// Partitioning key.
    pub key: String,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A shared, cheap-to-clone idempotent producer.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Producer {
    /// Creates the producer; it connects lazily.
    pub fn new(settings: &ProducerSettings) -> Result<Self> {
        let inner: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                settings.timeout.as_millis().max(1).to_string(),
            )
            .set(
                "socket.connection.setup.timeout.ms",
                settings.timeout.as_millis().max(1000).to_string(),
            )
            .set("queue.buffering.max.messages", "200000")
            .create()?;
        Ok(Producer {
            inner,
            timeout: settings.timeout,
        })
    }

    /// Publishes every record to `topic` and returns once the broker
    /// acknowledged all of them, or fails: then any of them may or may not
    /// have been written, and the caller retries (records are idempotent by
    /// their event id downstream).
    pub async fn publish(&self, topic: &str, records: &[OutboundRecord]) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (name, value) in &record.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            let mut future_record = FutureRecord::to(topic)
                .key(record.key.as_str())
                .payload(record.payload.as_slice())
                .headers(headers);
            loop {
                match self.inner.send_result(future_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        // The local queue drains as the broker acknowledges.
                        if Instant::now() >= deadline {
                            return Err(Error::Timeout(self.timeout));
                        }
                        future_record = returned;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((error, _)) => return Err(error.into()),
                }
            }
        }
        let remaining =
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(500);
        let outcomes = tokio::time::timeout(remaining, join_all(deliveries))
            .await
            .map_err(|_| Error::Timeout(self.timeout))?;
        for outcome in outcomes {
            match outcome {
                Ok(Ok(_delivery)) => {}
                Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) => {
                    return Err(Error::Timeout(self.timeout));
                }
                Ok(Err((error, _message))) => return Err(error.into()),
                Err(_canceled) => return Err(Error::Timeout(self.timeout)),
            }
        }
        Ok(())
    }

    /// Records waiting in the local queue for the broker.
    pub fn queue_depth(&self) -> i32 {
        self.inner.in_flight_count()
    }

    /// Waits up to `timeout` for queued records to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        Ok(self.inner.flush(timeout)?)
    }
}
