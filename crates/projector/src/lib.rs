//! The projector: consumes the contact-event topic in batches and folds each
//! batch into PostgreSQL in one transaction together with the consumer's
//! offsets, so every event takes effect exactly once.
//!
//! Kafka's consumer loop is blocking, so it runs on a thread of its own
//! ([`worker`]) and drives the async store through the runtime's handle. A
//! record that does not decode, or an event PostgreSQL refuses, goes to the
//! dead-letter topic ([`dead_letter`]) and the ledger before the offsets move
//! past it: the stream never stalls on one bad record, and nothing is
//! skipped silently. A projector that stops making progress, or whose
//! thread died, turns unready ([`health`]). The projector role also runs
//! the retention job ([`spawn_retention`]) and the change-feed relay
//! ([`spawn_change_feed`]).
//!
//! This crate is only the loop around the rules. How an event folds into a
//! customer's history (identity resolution, merges, the agent view, cases,
//! tasks, the change log) is `panorama_store::projection`, one file per
//! step, and the pure rules under it are in `panorama_core` (`identity`,
//! `cases`, `priority`).

mod batch;
mod change_feed;
mod dead_letter;
mod health;
mod lag;
mod metrics;
mod privacy;
mod retention;
mod trace;
mod worker;

pub use change_feed::{
    CE_SOURCE, ChangeFeedSettings, RELAY_SEQ_HEADER, partition_for, spawn_change_feed,
};
pub use dead_letter::{
    DLQ_AT_HEADER, DLQ_ERROR_HEADER, DLQ_EVENT_ID_HEADER, DLQ_OFFSET_HEADER, DLQ_ORIGIN_HEADER,
    DLQ_PARTITION_HEADER, DLQ_REASON_HEADER, DLQ_SQLSTATE_HEADER, DLQ_TOPIC_HEADER,
};
pub use metrics::register as register_metrics;
pub use retention::{RetentionSettings, spawn_retention};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use panorama_bus::{ConsumerSettings, Producer};
use panorama_core::CrashPoints;
use panorama_store::Store;
use tokio::runtime::Handle;

use crate::health::Health;
use crate::worker::Worker;

/// How the projector consumes and batches.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Consumer settings (brokers, group, topic).
    pub consumer: ConsumerSettings,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Most records per batch.
    pub max_batch: usize,
    /// Most bytes of records per batch (the first record is taken whatever
    /// its size), bounding the projector's memory.
    pub max_batch_bytes: usize,
    /// Longest wait to fill a batch.
    pub max_wait: Duration,
    /// Whether records that cannot be projected are written to the
    /// dead-letter topic. A replay turns this off: the live projector
    /// dead-lettered the same records already. The ledger is kept either way.
    pub publish_dead_letters: bool,
    /// How long records may wait without a batch being committed before the
    /// projector reports itself unready.
    pub stall_after: Duration,
    /// Where to crash on purpose, for fault testing.
    pub crash_points: CrashPoints,
}

/// Counters of one projector instance since it started (the Prometheus
/// metrics add up every instance of the process).
#[derive(Debug, Default)]
pub struct ProjectorStats {
    records: AtomicU64,
    inserted: AtomicU64,
    duplicates: AtomicU64,
    dead_lettered: AtomicU64,
    batches: AtomicU64,
}

impl ProjectorStats {
    /// Records consumed and stored (projected or dead-lettered).
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::SeqCst)
    }
    /// Events inserted for the first time.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::SeqCst)
    }
    /// Events skipped because they were already projected.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::SeqCst)
    }
    /// Records sent to the dead-letter topic.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::SeqCst)
    }
    /// Batches committed.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::SeqCst)
    }
}

/// A running projector thread.
#[derive(Debug)]
pub struct Projector {
    health: Arc<Health>,
    stats: Arc<ProjectorStats>,
    stall_after: Duration,
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the thread ends, so stopping can wait for it with
    /// a bound.
    ended: std::sync::mpsc::Receiver<()>,
    gauges: tokio::task::JoinHandle<()>,
}

/// Longest [`Projector::stop`] (and dropping a projector) waits for the
/// thread to finish its batch; a thread still busy after it (stuck on a
/// runtime that shut down) is left to end with the process.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

impl Projector {
    /// Starts a projector on its own thread. Must be called from within a
    /// Tokio runtime, which the thread uses to reach PostgreSQL.
    pub fn spawn(
        settings: ProjectorSettings,
        store: Store,
        dlq: Producer,
    ) -> std::io::Result<Self> {
        let health = Arc::new(Health::new());
        let stats = Arc::new(ProjectorStats::default());
        let stall_after = settings.stall_after;
        let worker = Worker {
            stats: stats.clone(),
            settings,
            store,
            dlq,
            runtime: Handle::current(),
            health: health.clone(),
            secret: std::sync::OnceLock::new(),
        };
        let thread_health = health.clone();
        let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("projector".into())
            .spawn(move || {
                // Dropped when the thread ends, even by a panic.
                let _ended = ended_tx;
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()));
                if let Err(panic) = ran {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    tracing::error!(panic = %message, "projector thread panicked");
                    thread_health.ended(format!("its thread panicked: {message}"));
                }
                thread_health.exited();
                metrics::GROUP_MEMBER.set(0);
            })?;
        let gauges = tokio::spawn(keep_gauges(health.clone()));
        Ok(Projector {
            health,
            stats,
            stall_after,
            thread: Some(thread),
            ended,
            gauges,
        })
    }

    /// Whether the consumer currently owns partitions of the topic.
    pub fn is_assigned(&self) -> bool {
        self.health.assigned.load(Ordering::SeqCst)
    }

    /// Whether the consumer holds its place in the group: it was given an
    /// assignment (empty when the group has more members than partitions)
    /// and has not lost it. False while joining and after the broker or the
    /// group coordinator dropped it.
    pub fn is_group_member(&self) -> bool {
        self.health.member.load(Ordering::SeqCst)
    }

    /// A readiness probe for this projector: `Err` says why it is not ready
    /// (stopped, its thread gone, out of its group, or no batch committed for
    /// `stall_after` while records wait).
    pub fn readiness(&self) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
        let health = self.health.clone();
        let stall_after = self.stall_after;
        move || health.readiness(stall_after)
    }

    /// This instance's counters.
    pub fn stats(&self) -> Arc<ProjectorStats> {
        self.stats.clone()
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Stops after the batch in progress and leaves the consumer group,
    /// waiting at most 15 s for the thread. Blocking: call it from a
    /// blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.health.stop.store(true, Ordering::SeqCst);
        self.gauges.abort();
        let Some(thread) = self.thread.take() else {
            return;
        };
        match self.ended.recv_timeout(STOP_TIMEOUT) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    waited_ms = STOP_TIMEOUT.as_millis() as u64,
                    "projector thread did not stop; leaving it"
                );
            }
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::error!("projector thread panicked");
                }
            }
        }
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Keeps `panorama_projector_seconds_since_progress` current, every second,
/// from the runtime rather than the worker thread: it goes on growing when
/// the thread is stuck or gone, which is when it matters.
async fn keep_gauges(health: Arc<Health>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        metrics::SECONDS_SINCE_PROGRESS.set(health.since_progress().as_secs_f64());
    }
}
