//! In-process wake-ups: a producer that got records of a topic
//! acknowledged tells the consumers of that topic in the same process.
//!
//! An idle [`BatchConsumer`](crate::BatchConsumer) stops fetching (a broker
//! such as Nisshi answers a held fetch by re-reading storage in rounds, so
//! an idle fetch loop keeps it busy); a write by this process wakes it at
//! once, and a write by another process is found at the consumer's next
//! probe (`ConsumerSettings::idle_probe`).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The write counter of one topic, and the condition consumers wait on.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    writes: Mutex<u64>,
    changed: Condvar,
}

impl Signal {
    /// How many acknowledged writes this process made to the topic.
    pub(crate) fn writes(&self) -> u64 {
        *self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the count passes `seen`, at most `timeout`; returns the
    /// count then.
    pub(crate) fn wait_past(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        while *writes <= seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            writes = self
                .changed
                .wait_timeout(writes, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *writes
    }

    fn bump(&self) {
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        *writes = writes.wrapping_add(1);
        self.changed.notify_all();
    }
}

fn topics() -> &'static Mutex<HashMap<String, Arc<Signal>>> {
    static TOPICS: OnceLock<Mutex<HashMap<String, Arc<Signal>>>> = OnceLock::new();
    TOPICS.get_or_init(Mutex::default)
}

/// The signal of `topic`, created on first use.
pub(crate) fn signal(topic: &str) -> Arc<Signal> {
    let mut topics = topics().lock().unwrap_or_else(PoisonError::into_inner);
    topics.entry(topic.to_owned()).or_default().clone()
}

/// Records that the broker acknowledged records of `topic` written by this
/// process, waking its consumers here.
pub(crate) fn wrote(topic: &str) {
    let existing = topics()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(topic)
        .cloned();
    // No consumer of the topic in this process: nobody to wake.
    if let Some(signal) = existing {
        signal.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_wakes_a_waiter_and_a_timeout_returns_the_count() {
        let topic = format!("wake-test-{}", std::process::id());
        let signal = signal(&topic);
        let seen = signal.writes();
        assert_eq!(signal.wait_past(seen, Duration::from_millis(1)), seen);
        let waiter = {
            let signal = signal.clone();
            std::thread::spawn(move || signal.wait_past(seen, Duration::from_secs(30)))
        };
        wrote(&topic);
        assert_eq!(waiter.join().expect("waiter"), seen + 1);
        wrote("a topic nobody consumes here");
        assert_eq!(signal.writes(), seen + 1);
    }
}
