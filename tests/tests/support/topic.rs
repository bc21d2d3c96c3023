//! Reading a topic from its start, for tests that check what landed on the
//! dead-letter topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use panorama_bus::{BatchConsumer, Claim, ConsumedRecord, ConsumerSettings, OffsetSource};
use panorama_testkit::{TestApp, WAIT, random_name};

/// Starts every partition at the beginning of the log, unclaimed.
struct FromStart;

impl OffsetSource for FromStart {
    fn claim(&self, _topic: &str, _partitions: &[i32]) -> Result<HashMap<i32, Claim>, String> {
        Ok(HashMap::new())
    }
}

/// An offset source that starts every partition at the beginning of the
/// log, claiming nothing.
#[allow(dead_code)]
pub(crate) fn from_start() -> Arc<dyn OffsetSource> {
    Arc::new(FromStart)
}

/// Reads `topic` of `app`'s broker from the start until it has `count`
/// records (failing after [`WAIT`]), then a moment longer to see that no
/// more come.
#[allow(dead_code)]
pub(crate) async fn read_records(app: &TestApp, topic: &str, count: usize) -> Vec<ConsumedRecord> {
    let settings = ConsumerSettings::new(&app.options.kafka.brokers, random_name("reader"), topic);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut consumer = BatchConsumer::new(&settings, Arc::new(FromStart)).expect("consumer");
        let deadline = Instant::now() + WAIT;
        let mut records = Vec::new();
        let mut settled: Option<Instant> = None;
        loop {
            let batch = consumer
                .next_batch(100, usize::MAX, Duration::from_millis(200))
                .expect("poll");
            records.extend(batch);
            if records.len() >= count {
                // Once there are enough, keep reading a little to catch extras.
                let since = *settled.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(1) {
                    return records;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{topic}: {} of {count} records after {WAIT:?}",
                records.len()
            );
        }
    })
    .await
    .expect("reader")
}
