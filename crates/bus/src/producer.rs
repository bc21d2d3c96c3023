//! Idempotent, acks=all publishing that reports success only after the
//! broker acknowledged every record of a call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::report::{ConnectionReport, Reporting};
use crate::security::redact;
use crate::{Connection, Error, Result};

/// How to reach the broker and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// The brokers and how to reach them.
    pub connection: Connection,
    /// How long one publish may wait for every acknowledgement.
    pub timeout: Duration,
    /// How long records wait to fill a batch (`linger.ms`).
    pub linger: Duration,
}

impl ProducerSettings {
    /// Defaults for `connection` (a plain `host:port` list is plaintext):
    /// 5 s timeout, 1 ms linger. The producer ingest publishes with sets
    /// its own linger (`PANORAMA_KAFKA_LINGER_MS`, 0 by default): ingest
    /// answers wait for the broker, so linger is added to each.
    pub fn new(connection: impl Into<Connection>) -> Self {
        ProducerSettings {
            connection: connection.into(),
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
    inner: FutureProducer<Reporting>,
    timeout: Duration,
    report: Arc<ConnectionReport>,
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
        let context = Reporting::default();
        let report = context.report.clone();
        let inner: FutureProducer<Reporting> = settings
            .connection
            .client_config()?
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
            .create_with_context(context)
            .map_err(redact)?;
        Ok(Producer {
            inner,
            timeout: settings.timeout,
            report,
        })
    }

    /// Publishes every record to `topic` and returns once the broker
    /// acknowledged all of them, or fails: then any of them may or may not
    /// have been written, and the caller retries (records are idempotent by
    /// their event id downstream). A timeout that follows a failed TLS
    /// handshake or SASL login is reported as [`Error::Connect`], with the
    /// client's reason.
    pub async fn publish(&self, topic: &str, records: &[OutboundRecord]) -> Result<()> {
        self.publish_all(topic, records)
            .await
            .map_err(|error| self.report.explain(error))?;
        crate::wake::wrote(topic);
        Ok(())
    }

    async fn publish_all(&self, topic: &str, records: &[OutboundRecord]) -> Result<()> {
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
