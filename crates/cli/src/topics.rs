//! `panorama topics`, and what `serve` says about the topics at start: the
//! event and dead-letter topics as durable as the settings ask, or a clear
//! word why not.

use std::time::Duration;

use anyhow::Context as _;
use panorama_bus::{Connection, TopicReport, TopicSpec};

use crate::Options;

/// How long the broker may take to create or describe the topics.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the topics `options` ask for when missing, refusing what the
/// cluster cannot honour, and logs what each has.
pub async fn create(options: &Options) -> anyhow::Result<()> {
    let reports = tokio::time::timeout(
        BROKER_TIMEOUT,
        panorama_bus::ensure_topics(options.kafka.connection()?, &options.topic_specs()),
    )
    .await
    .context("the broker did not answer within 30 s")?
    .context("cannot create topics")?;
    for report in &reports {
        log_report(report, "topic exists");
    }
    Ok(())
}

/// Logs what the topics actually have, once at start, and warns where they
/// fall short of the settings: a topic made by hand, or before the settings
/// changed, may not be what `panorama topics` would make.
pub(crate) async fn log_at_start(connection: Connection, specs: Vec<TopicSpec>) {
    let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let described = tokio::time::timeout(
        BROKER_TIMEOUT,
        panorama_bus::describe_topics(connection, &names),
    )
    .await;
    let reports = match described {
        Ok(Ok(reports)) => reports,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot describe the topics");
            return;
        }
        Err(_) => {
            tracing::warn!("the broker did not describe the topics within 30 s");
            return;
        }
    };
    for (spec, report) in specs.iter().zip(&reports) {
        log_report(report, "topic");
        let shortfalls = report.shortfalls(spec);
        if !shortfalls.is_empty() {
            tracing::warn!(
                topic = %report.name,
                problems = %shortfalls.join("; "),
                "the topic falls short of its settings (PANORAMA_TOPIC_*): acknowledged events are less safe than configured"
            );
        }
    }
}

fn log_report(report: &TopicReport, message: &str) {
    tracing::info!(
        topic = %report.name,
        partitions = report.partitions,
        replication_factor = report.replication_factor,
        min_insync_replicas = report.min_insync_replicas.as_deref().unwrap_or("unknown"),
        retention_ms = report.retention_ms.as_deref().unwrap_or("unknown"),
        brokers = report.brokers,
        "{message}"
    );
}
