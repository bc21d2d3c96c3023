//! Topic administration and watermarks.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::Result;

/// Creates each `(name, partitions)` topic that does not exist yet.
pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "topic creation failed");
                return Err(rdkafka::error::KafkaError::AdminOp(code).into());
            }
        }
    }
    Ok(())
}

fn metadata_client(brokers: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?)
}

/// The number of partitions of `topic`.
pub fn topic_partition_count(brokers: &str, topic: &str, timeout: Duration) -> Result<usize> {
    let client = metadata_client(brokers)?;
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()))
}

/// The high watermark (next offset to be written) of every partition of
/// `topic`, by partition number.
pub fn high_watermarks(brokers: &str, topic: &str, timeout: Duration) -> Result<Vec<(i32, i64)>> {
    let client = metadata_client(brokers)?;
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let mut marks = Vec::new();
    for topic_metadata in metadata.topics().iter().filter(|t| t.name() == topic) {
        for partition in topic_metadata.partitions() {
            let (_low, high) = client.fetch_watermarks(topic, partition.id(), timeout)?;
            marks.push((partition.id(), high));
        }
    }
    marks.sort_unstable();
    Ok(marks)
}

/// How many members the consumer group `group` has now, as the broker's
/// group coordinator reports it; 0 for a group that does not exist or is
/// empty.
pub fn group_member_count(brokers: &str, group: &str, timeout: Duration) -> Result<usize> {
    let client = metadata_client(brokers)?;
    let groups = client.fetch_group_list(Some(group), timeout)?;
    Ok(groups
        .groups()
        .iter()
        .filter(|info| info.name() == group)
        .map(|info| info.members().len())
        .sum())
}
