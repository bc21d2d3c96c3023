//! Consumer lag: high watermark minus stored offset, for the partitions this
//! member owns, exported per partition and kept as a total for readiness.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use panorama_bus::BatchConsumer;
use panorama_store::Store;
use tokio::runtime::Handle;

use crate::health::Health;
use crate::metrics;

/// How often the consumer-lag gauges are brought up to date.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Lag bookkeeping: the stored next offset of each owned partition.
#[derive(Debug, Default)]
pub(crate) struct LagTracker {
    stored: HashMap<i32, i64>,
    reported: Vec<i32>,
    last: Option<Instant>,
}

impl LagTracker {
    /// Remembers a partition's stored offset after a commit.
    pub(crate) fn stored(&mut self, partition: i32, next_offset: i64) {
        self.stored.insert(partition, next_offset);
        metrics::STORED_OFFSET
            .with_label_values(&[partition.to_string()])
            .set(next_offset);
    }

    /// Brings the lag gauges up to date, at most once per [`LAG_INTERVAL`]:
    /// high watermark (from the client's statistics) minus stored offset,
    /// for the partitions this member owns.
    pub(crate) fn update(
        &mut self,
        consumer: &BatchConsumer,
        store: &Store,
        group: &str,
        runtime: &Handle,
        health: &Health,
    ) {
        if self.last.is_some_and(|last| last.elapsed() < LAG_INTERVAL) {
            return;
        }
        self.last = Some(Instant::now());
        let owned = consumer.assigned_partitions();
        self.stored.retain(|partition, _| owned.contains(partition));
        let unknown: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|partition| !self.stored.contains_key(partition))
            .collect();
        if !unknown.is_empty() {
            match runtime.block_on(store.next_offsets(group, consumer.topic(), &unknown)) {
                Ok(offsets) => {
                    for partition in unknown {
                        self.stored
                            .insert(partition, offsets.get(&partition).copied().unwrap_or(0));
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot load stored offsets for lag"),
            }
        }
        let marks = consumer.high_watermarks();
        let mut total = 0;
        let mut known = true;
        for partition in &owned {
            let (Some(high), Some(stored)) = (marks.get(partition), self.stored.get(partition))
            else {
                known = false;
                continue;
            };
            let lag = (high - stored).max(0);
            total += lag;
            metrics::CONSUMER_LAG
                .with_label_values(&[partition.to_string()])
                .set(lag);
        }
        // Unknown watermarks count as waiting records only once they are
        // known; an idle member with no partitions has nothing waiting.
        if known || total > 0 {
            health.set_lag(total);
        }
        self.clear(&owned);
    }

    /// Removes the lag and offset gauges of partitions this member no longer
    /// owns, so a moved partition is reported by its new owner only.
    pub(crate) fn clear(&mut self, owned: &[i32]) {
        for partition in self
            .reported
            .iter()
            .filter(|partition| !owned.contains(partition))
        {
            let label = partition.to_string();
            let _ = metrics::CONSUMER_LAG.remove_label_values(&[label.as_str()]);
            let _ = metrics::STORED_OFFSET.remove_label_values(&[label.as_str()]);
        }
        self.reported = owned.to_vec();
    }
}
