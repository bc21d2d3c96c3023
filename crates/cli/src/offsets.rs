//! `panorama offsets`: where the projector's consumer group stands on each
//! partition, beside the log's start and end, and the operator's one way
//! past a gap that retention left (`--skip-to-log-start`).

use std::time::Duration;

use anyhow::Context as _;
use panorama_store::Store;

use crate::Options;

/// Where one partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The group never stored an offset and the log starts at 0.
    NotStarted,
    /// Records wait.
    Behind,
    /// Everything in the log is projected.
    CaughtUp,
    /// The stored offset lies before the log's start: records were deleted
    /// before they were projected.
    Gap,
    /// The stored offset lies past the log's end: the topic was recreated
    /// or lost records.
    PastTheEnd,
}

impl Standing {
    /// Where a partition stands with `stored` (none if never stored) and the
    /// log spanning `low..high`.
    pub fn of(stored: Option<i64>, low: i64, high: i64) -> Standing {
        match stored {
            None if low > 0 => Standing::Gap,
            None if high == 0 => Standing::CaughtUp,
            None => Standing::NotStarted,
            Some(stored) if stored < low => Standing::Gap,
            Some(stored) if stored > high => Standing::PastTheEnd,
            Some(stored) if stored == high => Standing::CaughtUp,
            Some(_) => Standing::Behind,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Standing::NotStarted => "not started",
            Standing::Behind => "behind",
            Standing::CaughtUp => "caught up",
            Standing::Gap => "GAP: records deleted before they were projected",
            Standing::PastTheEnd => "PAST THE END: topic recreated or records lost",
        }
    }
}

/// `(partition, low, high)` of every partition of the event topic: the log
/// holds offsets `low..high`.
pub(crate) async fn watermarks(options: &Options) -> anyhow::Result<Vec<(i32, i64, i64)>> {
    let connection = options.kafka.connection()?;
    let topic = options.kafka.topic.clone();
    tokio::task::spawn_blocking(move || {
        panorama_bus::watermarks(connection, &topic, Duration::from_secs(10))
    })
    .await?
    .context("cannot read the topic's watermarks")
}

/// Prints each partition's standing; with `skip_to_log_start`, moves the
/// stored offsets of partitions with a gap up to the log's start.
pub async fn run(options: &Options, skip_to_log_start: bool) -> anyhow::Result<()> {
    let store = Store::connect(&options.database.url, 1).context("invalid database url")?;
    let marks = watermarks(options).await?;
    anyhow::ensure!(
        !marks.is_empty(),
        "topic {} has no partitions: run `panorama topics`",
        options.kafka.topic
    );
    let partitions: Vec<i32> = marks.iter().map(|(partition, _, _)| *partition).collect();
    let stored = store
        .next_offsets(
            &options.kafka.consumer_group,
            &options.kafka.topic,
            &partitions,
        )
        .await?;
    println!(
        "{:>9} {:>12} {:>12} {:>12} {:>10}  standing",
        "partition", "stored", "log start", "log end", "waiting"
    );
    for (partition, low, high) in marks {
        let offset = stored.get(&partition).copied();
        let standing = Standing::of(offset, low, high);
        let waiting = high - offset.unwrap_or(0).max(low);
        println!(
            "{partition:>9} {:>12} {low:>12} {high:>12} {:>10}  {}",
            offset.map_or_else(|| "-".to_owned(), |offset| offset.to_string()),
            waiting.max(0),
            standing.as_str()
        );
        if skip_to_log_start && standing == Standing::Gap {
            let moved = store
                .skip_to_offset(
                    &options.kafka.consumer_group,
                    &options.kafka.topic,
                    partition,
                    low,
                )
                .await?;
            let from = moved.unwrap_or_else(|| offset.unwrap_or(0));
            tracing::warn!(
                partition,
                from,
                to = low,
                skipped = low - from,
                "stored offset moved to the log start: the skipped records will never be projected"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standings_follow_the_log() {
        assert_eq!(Standing::of(None, 0, 0), Standing::CaughtUp);
        assert_eq!(Standing::of(None, 0, 5), Standing::NotStarted);
        assert_eq!(Standing::of(None, 3, 5), Standing::Gap);
        assert_eq!(Standing::of(Some(2), 3, 5), Standing::Gap);
        assert_eq!(Standing::of(Some(3), 3, 5), Standing::Behind);
        assert_eq!(Standing::of(Some(5), 3, 5), Standing::CaughtUp);
        assert_eq!(Standing::of(Some(9), 3, 5), Standing::PastTheEnd);
    }
}
