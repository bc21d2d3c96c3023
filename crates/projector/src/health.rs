//! Whether a projector is doing its job: its worker thread alive, its
//! consumer in the group, and progress made whenever records wait. Read by
//! the readiness check and exported as gauges.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Shared between the worker thread, the readiness check and the gauge
/// ticker.
#[derive(Debug)]
pub(crate) struct Health {
    /// Asked to stop.
    pub(crate) stop: AtomicBool,
    /// The consumer holds its place in the group.
    pub(crate) member: AtomicBool,
    /// The consumer owns partitions.
    pub(crate) assigned: AtomicBool,
    /// The worker thread runs.
    alive: AtomicBool,
    /// Why the worker ended by itself: a panic, or a gap in the log.
    ended: Mutex<Option<String>>,
    /// Last committed batch, or last time nothing was waiting.
    progress: Mutex<Instant>,
    /// Records waiting on the partitions this consumer owns; -1 unknown.
    lag: AtomicI64,
    /// The last failure, while the projector retries.
    last_failure: Mutex<Option<String>>,
}

impl Health {
    pub(crate) fn new() -> Self {
        Health {
            stop: AtomicBool::new(false),
            member: AtomicBool::new(false),
            assigned: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            ended: Mutex::new(None),
            progress: Mutex::new(Instant::now()),
            lag: AtomicI64::new(-1),
            last_failure: Mutex::new(None),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// A batch was committed.
    pub(crate) fn committed(&self) {
        self.progressed();
        if let Ok(mut failure) = self.last_failure.lock() {
            *failure = None;
        }
    }

    fn progressed(&self) {
        if let Ok(mut progress) = self.progress.lock() {
            *progress = Instant::now();
        }
    }

    /// The lag of the owned partitions is known to be `lag`.
    pub(crate) fn set_lag(&self, lag: i64) {
        self.lag.store(lag, Ordering::SeqCst);
        if lag == 0 {
            // Caught up: waiting for records is not being stuck.
            self.progressed();
        }
    }

    pub(crate) fn failed(&self, failure: String) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(failure);
        }
    }

    /// The worker ended by itself, for `reason`.
    pub(crate) fn ended(&self, reason: String) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert(reason);
        }
    }

    /// The worker thread is gone.
    pub(crate) fn exited(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.member.store(false, Ordering::SeqCst);
        self.assigned.store(false, Ordering::SeqCst);
    }

    /// Time since the last committed batch or the last time it was caught
    /// up.
    pub(crate) fn since_progress(&self) -> Duration {
        self.progress
            .lock()
            .map(|progress| progress.elapsed())
            .unwrap_or_default()
    }

    /// `Err` says why the projector is not ready: stopped, its worker gone,
    /// out of its group, or no progress for `stall_after` while records
    /// wait.
    pub(crate) fn readiness(&self, stall_after: Duration) -> Result<(), String> {
        if self.stopping() {
            return Err("projector stopped".to_owned());
        }
        if !self.alive.load(Ordering::SeqCst) {
            let reason = self
                .ended
                .lock()
                .ok()
                .and_then(|ended| ended.clone())
                .unwrap_or_else(|| "unknown reason".to_owned());
            return Err(format!("projector stopped by itself: {reason}"));
        }
        if !self.member.load(Ordering::SeqCst) {
            return Err("projector is not a member of its consumer group".to_owned());
        }
        let lag = self.lag.load(Ordering::SeqCst);
        let since = self.since_progress();
        if lag > 0 && since > stall_after {
            let failure = self
                .last_failure
                .lock()
                .ok()
                .and_then(|failure| failure.clone())
                .map(|failure| format!("; last failure: {failure}"))
                .unwrap_or_default();
            return Err(format!(
                "projector made no progress for {} s while {lag} records wait{failure}",
                since.as_secs()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_records_without_progress_make_it_unready() {
        let health = Health::new();
        health.member.store(true, Ordering::SeqCst);
        health.set_lag(5);
        assert!(health.readiness(Duration::from_secs(60)).is_ok());
        health.failed("database unavailable".into());
        let error = health.readiness(Duration::ZERO).expect_err("stalled");
        assert!(error.contains("5 records wait"), "{error}");
        assert!(error.contains("database unavailable"), "{error}");
        health.committed();
        health.set_lag(0);
        assert!(
            health.readiness(Duration::ZERO).is_ok(),
            "caught up is not stalled"
        );
    }

    #[test]
    fn a_dead_worker_says_why() {
        let health = Health::new();
        health.member.store(true, Ordering::SeqCst);
        health.ended("the worker panicked: boom".into());
        health.exited();
        let error = health.readiness(Duration::from_secs(60)).expect_err("dead");
        assert!(error.contains("boom"), "{error}");
    }
}
