//! Topic administration and watermarks.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::report::Reporting;
use crate::security::redact;
use crate::{Connection, Result};

/// What a topic should be: created so, and checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partitions: the most consumers that share the work.
    pub partitions: i32,
    /// Copies of every record, on different brokers.
    pub replication_factor: i32,
    /// Copies that must have a record before the broker acknowledges it
    /// (with `acks=all`).
    pub min_insync_replicas: i32,
    /// How long records are kept, in milliseconds; -1 keeps them forever.
    pub retention_ms: i64,
}

/// What a topic has, as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReport {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: usize,
    /// The fewest replicas any partition has.
    pub replication_factor: usize,
    /// `min.insync.replicas`, when the broker says.
    pub min_insync_replicas: Option<String>,
    /// `retention.ms`, when the broker says.
    pub retention_ms: Option<String>,
    /// Brokers in the cluster.
    pub brokers: usize,
}

impl TopicReport {
    /// What falls short of `spec`, in words; empty when nothing does.
    pub fn shortfalls(&self, spec: &TopicSpec) -> Vec<String> {
        let mut problems = Vec::new();
        if self.partitions == 0 {
            problems.push("does not exist".to_owned());
            return problems;
        }
        if (self.replication_factor as i64) < i64::from(spec.replication_factor) {
            problems.push(format!(
                "has {} replicas per partition, {} wanted",
                self.replication_factor, spec.replication_factor
            ));
        }
        let min_isr = self
            .min_insync_replicas
            .as_deref()
            .and_then(|value| value.parse::<i32>().ok());
        if min_isr.is_some_and(|min_isr| min_isr < spec.min_insync_replicas) {
            problems.push(format!(
                "min.insync.replicas is {}, {} wanted",
                min_isr.unwrap_or_default(),
                spec.min_insync_replicas
            ));
        }
        problems
    }
}

fn admin_client(connection: &Connection) -> Result<AdminClient<Reporting>> {
    Ok(connection
        .client_config()?
        .create_with_context(Reporting::default())
        .map_err(redact)?)
}

/// `result`, or the connection failure behind it that `admin` reported.
fn explained<T>(admin: &AdminClient<Reporting>, result: Result<T>) -> Result<T> {
    result.map_err(|error| admin.inner().context().report.explain(error))
}

/// Creates each `(name, partitions)` topic that does not exist yet, with
/// one replica and records kept forever: for tests and single-broker tools.
pub async fn create_topics(
    connection: impl Into<Connection>,
    topics: &[(&str, i32)],
) -> Result<()> {
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| TopicSpec {
            name: (*name).to_owned(),
            partitions: *partitions,
            replication_factor: 1,
            min_insync_replicas: 1,
            retention_ms: -1,
        })
        .collect();
    ensure_topics(connection, &specs).await.map(|_| ())
}

/// Creates each topic of `specs` that does not exist yet, with its
/// replication factor, `min.insync.replicas` and `retention.ms`, after
/// checking the cluster can honour them; then describes every topic.
/// Refuses (creating nothing) when the cluster has fewer brokers than a
/// replication factor asks for, and fails when an existing topic falls
/// short of its spec.
pub async fn ensure_topics(
    connection: impl Into<Connection>,
    specs: &[TopicSpec],
) -> Result<Vec<TopicReport>> {
    let connection = connection.into();
    let cluster = {
        let connection = connection.clone();
        tokio::task::spawn_blocking(move || broker_count(&connection, Duration::from_secs(10)))
            .await
            .map_err(|error| crate::Error::Offsets(error.to_string()))??
    };
    for spec in specs {
        if spec.replication_factor < 1 || spec.min_insync_replicas < 1 {
            return Err(crate::Error::Topic {
                topic: spec.name.clone(),
                problem: "replication factor and min.insync.replicas must be at least 1".into(),
            });
        }
        if spec.min_insync_replicas > spec.replication_factor {
            return Err(crate::Error::Topic {
                topic: spec.name.clone(),
                problem: format!(
                    "min.insync.replicas {} exceeds the replication factor {}: no write could be acknowledged",
                    spec.min_insync_replicas, spec.replication_factor
                ),
            });
        }
        if usize::try_from(spec.replication_factor).unwrap_or(usize::MAX) > cluster {
            return Err(crate::Error::Topic {
                topic: spec.name.clone(),
                problem: format!(
                    "a replication factor of {} needs as many brokers, and the cluster has {cluster}; \
                     set the topic replication factor (and min.insync.replicas) to what the cluster \
                     can honour, e.g. 1 for a single development broker",
                    spec.replication_factor
                ),
            });
        }
    }
    let admin = admin_client(&connection)?;
    let min_isr: Vec<String> = specs
        .iter()
        .map(|spec| spec.min_insync_replicas.to_string())
        .collect();
    let retention: Vec<String> = specs
        .iter()
        .map(|spec| spec.retention_ms.to_string())
        .collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(min_isr.iter().zip(&retention))
        .map(|(spec, (min_isr, retention))| {
            NewTopic::new(
                &spec.name,
                spec.partitions,
                TopicReplication::Fixed(spec.replication_factor),
            )
            .set("min.insync.replicas", min_isr)
            .set("retention.ms", retention)
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let created = explained(
        &admin,
        admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(Into::into),
    )?;
    for result in created {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "topic creation failed");
                return Err(rdkafka::error::KafkaError::AdminOp(code).into());
            }
        }
    }
    let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let reports = describe_topics(&connection, &names).await?;
    for (spec, report) in specs.iter().zip(&reports) {
        let shortfalls = report.shortfalls(spec);
        if !shortfalls.is_empty() {
            return Err(crate::Error::Topic {
                topic: spec.name.clone(),
                problem: format!(
                    "exists but {}; change it on the broker (kafka-configs, \
                     kafka-reassign-partitions) or ask for less",
                    shortfalls.join("; ")
                ),
            });
        }
    }
    Ok(reports)
}

/// What each of `topics` has: partitions and replicas from the metadata,
/// `min.insync.replicas` and `retention.ms` from the broker's configuration
/// (missing where the broker does not describe configurations).
pub async fn describe_topics(
    connection: impl Into<Connection>,
    topics: &[String],
) -> Result<Vec<TopicReport>> {
    let connection = connection.into();
    let layout = {
        let connection = connection.clone();
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || -> Result<Vec<(usize, usize, usize)>> {
            let client = metadata_client(&connection)?;
            let metadata = fetch_metadata(&client, None, Duration::from_secs(10))?;
            let cluster = metadata.brokers().len();
            Ok(topics
                .iter()
                .map(|name| {
                    let found = metadata.topics().iter().find(|t| t.name() == name);
                    let partitions = found.map_or(0, |t| t.partitions().len());
                    let replicas = found
                        .and_then(|t| t.partitions().iter().map(|p| p.replicas().len()).min())
                        .unwrap_or(0);
                    (partitions, replicas, cluster)
                })
                .collect())
        })
        .await
        .map_err(|error| crate::Error::Offsets(error.to_string()))??
    };
    let admin = admin_client(&connection)?;
    let specifiers: Vec<ResourceSpecifier<'_>> = topics
        .iter()
        .map(|name| ResourceSpecifier::Topic(name))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let configs = match admin.describe_configs(&specifiers, &options).await {
        Ok(results) => results,
        Err(error) => {
            tracing::debug!(%error, "the broker does not describe topic configurations");
            Vec::new()
        }
    };
    Ok(topics
        .iter()
        .zip(layout)
        .enumerate()
        .map(|(index, (name, (partitions, replicas, cluster)))| {
            let config = configs.get(index).and_then(|result| result.as_ref().ok());
            let value = |key: &str| {
                config
                    .and_then(|config| config.get(key))
                    .and_then(|entry| entry.value.clone())
            };
            TopicReport {
                name: name.clone(),
                partitions,
                replication_factor: replicas,
                min_insync_replicas: value("min.insync.replicas"),
                retention_ms: value("retention.ms"),
                brokers: cluster,
            }
        })
        .collect())
}

/// Deletes the records of each `(partition, offset)` of `topic` below
/// `offset`, as retention would: the log then starts at `offset`.
pub async fn delete_records_before(
    connection: impl Into<Connection>,
    topic: &str,
    positions: &[(i32, i64)],
) -> Result<()> {
    let admin = admin_client(&connection.into())?;
    let mut list = rdkafka::TopicPartitionList::new();
    for (partition, offset) in positions {
        list.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset))?;
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = explained(
        &admin,
        admin
            .delete_records(&list, &options)
            .await
            .map_err(Into::into),
    )?;
    for element in deleted.elements() {
        element.error()?;
    }
    Ok(())
}

/// How many brokers the cluster has.
pub fn broker_count(connection: impl Into<Connection>, timeout: Duration) -> Result<usize> {
    let client = metadata_client(&connection.into())?;
    Ok(fetch_metadata(&client, None, timeout)?.brokers().len())
}

/// A client for metadata, watermarks and groups. A producer, though it
/// produces nothing: polling it hands the client's errors to
/// [`Reporting`] with their reasons, where a consumer's poll would keep
/// only their codes. Unlike a producer's, its metadata requests never
/// create the topic they ask about.
fn metadata_client(connection: &Connection) -> Result<BaseProducer<Reporting>> {
    Ok(connection
        .client_config()?
        .set("allow.auto.create.topics", "false")
        .create_with_context(Reporting::default())
        .map_err(redact)?)
}

/// How long a failed metadata client is polled for the errors it reported.
const ERROR_POLL: Duration = Duration::from_millis(50);

/// `result`, or the connection failure behind it that `client` reported.
fn explained_by<T>(
    client: &BaseProducer<Reporting>,
    result: rdkafka::error::KafkaResult<T>,
) -> Result<T> {
    result.map_err(|error| {
        client.poll(ERROR_POLL);
        client.context().report.explain(error.into())
    })
}

/// The cluster's metadata (of `topic` alone, when given); a timeout after
/// a failed TLS handshake or SASL login says so.
fn fetch_metadata(
    client: &BaseProducer<Reporting>,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<rdkafka::metadata::Metadata> {
    explained_by(client, client.client().fetch_metadata(topic, timeout))
}

/// The number of partitions of `topic`.
pub fn topic_partition_count(
    connection: impl Into<Connection>,
    topic: &str,
    timeout: Duration,
) -> Result<usize> {
    let client = metadata_client(&connection.into())?;
    let metadata = fetch_metadata(&client, Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()))
}

/// The high watermark (next offset to be written) of every partition of
/// `topic`, by partition number.
pub fn high_watermarks(
    connection: impl Into<Connection>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64)>> {
    Ok(watermarks(connection, topic, timeout)?
        .into_iter()
        .map(|(partition, _low, high)| (partition, high))
        .collect())
}

/// `(partition, low, high)` of every partition of `topic`: the log holds
/// offsets `low..high` (low is above 0 once retention deleted records).
pub fn watermarks(
    connection: impl Into<Connection>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>> {
    let client = metadata_client(&connection.into())?;
    let metadata = fetch_metadata(&client, Some(topic), timeout)?;
    let mut marks = Vec::new();
    for topic_metadata in metadata.topics().iter().filter(|t| t.name() == topic) {
        for partition in topic_metadata.partitions() {
            let (low, high) = explained_by(
                &client,
                client
                    .client()
                    .fetch_watermarks(topic, partition.id(), timeout),
            )?;
            marks.push((partition.id(), low, high));
        }
    }
    marks.sort_unstable();
    Ok(marks)
}

/// How many members the consumer group `group` has now, as the broker's
/// group coordinator reports it; 0 for a group that does not exist or is
/// empty.
pub fn group_member_count(
    connection: impl Into<Connection>,
    group: &str,
    timeout: Duration,
) -> Result<usize> {
    let client = metadata_client(&connection.into())?;
    let groups = explained_by(
        &client,
        client.client().fetch_group_list(Some(group), timeout),
    )?;
    Ok(groups
        .groups()
        .iter()
        .filter(|info| info.name() == group)
        .map(|info| info.members().len())
        .sum())
}
