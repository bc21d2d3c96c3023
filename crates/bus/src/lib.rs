//! The only crate that talks to Kafka. A producer that answers only once the
//! broker acknowledged every record, a batch consumer that starts each
//! assigned partition at the offset stored by its sink, and topic admin;
//! all of them reach the brokers through one [`Connection`] (TLS, SASL).

mod admin;
mod consumer;
mod ordered;
mod producer;
mod report;
mod security;
mod wake;

pub use admin::{
    TopicReport, TopicSpec, broker_count, create_topics, delete_records_before, describe_topics,
    ensure_topics, group_member_count, high_watermarks, topic_partition_count, watermarks,
};
pub use consumer::{BatchConsumer, Claim, ConsumedRecord, ConsumerSettings, OffsetSource, wait_on};
pub use ordered::{OrderedProducer, PartitionedRecord, last_records};
pub use producer::{OutboundRecord, Producer, ProducerSettings};
pub use security::{
    Connection, OidcClient, PasswordMechanism, Sasl, Secret, Security, Tls, refused_property,
};

/// What can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker did not acknowledge in time, or is unreachable.
    #[error("broker did not acknowledge within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker refused a record or an operation.
    #[error("broker error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The client cannot connect: the TLS handshake, the broker's
    /// certificate or the SASL login failed, as the client last reported.
    #[error("cannot connect to the broker: {0}")]
    Connect(String),
    /// The connection settings are not usable.
    #[error("kafka settings: {0}")]
    Config(String),
    /// The sink could not say where to resume a partition.
    #[error("cannot load stored offsets: {0}")]
    Offsets(String),
    /// A stored offset lies outside the log: records were deleted before
    /// they were processed, or the topic was recreated. Not retried.
    #[error("{0}")]
    LogGap(String),
    /// A topic is not, or cannot be, what the settings ask for.
    #[error("topic {topic}: {problem}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong.
        problem: String,
    },
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
