//! The only crate that talks to Kafka. A producer that answers only once the
//! broker acknowledged every record, a batch consumer that starts each
//! assigned partition at the offset stored by its sink, and topic admin.

mod admin;
mod consumer;
mod producer;

pub use admin::{create_topics, group_member_count, high_watermarks, topic_partition_count};
pub use consumer::{BatchConsumer, ConsumedRecord, ConsumerSettings, OffsetSource};
pub use producer::{OutboundRecord, Producer, ProducerSettings};

/// What can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker did not acknowledge in time, or is unreachable.
    #[error("broker did not acknowledge within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker refused a record or an operation.
    #[error("broker error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The sink could not say where to resume a partition.
    #[error("cannot load stored offsets: {0}")]
    Offsets(String),
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
