//! Lock waits during a phase, without loading the system: PostgreSQL 15
//! keeps no cumulative lock-wait time, so `pg_stat_activity` is sampled
//! every 20 ms on a connection of its own and the share of samples in
//! which some backend waited on a heavyweight lock (`wait_event_type =
//! 'Lock'`: row locks held by another transaction, advisory locks,
//! relation locks) is reported, by kind. Sampling sees waits longer than
//! a few milliseconds; that is what makes two projectors queue.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// How often `pg_stat_activity` is sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What the samples of one phase saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LockWaits {
    /// Samples taken.
    pub(crate) samples: u64,
    /// Samples in which at least one backend waited on a lock.
    pub(crate) waiting: u64,
    /// Samples in which a backend waited on a lock of this kind
    /// (`wait_event`: `transactionid`, `tuple`, `advisory`, …).
    pub(crate) by_kind: BTreeMap<String, u64>,
}

impl LockWaits {
    /// Adds one sample: the `wait_event` of every backend waiting on a
    /// lock at that moment.
    pub(crate) fn add_sample<'a>(&mut self, kinds: impl IntoIterator<Item = &'a str>) {
        self.samples += 1;
        let mut kinds: Vec<&str> = kinds.into_iter().collect();
        if kinds.is_empty() {
            return;
        }
        self.waiting += 1;
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            *self.by_kind.entry(kind.to_owned()).or_default() += 1;
        }
    }

    /// Adds the samples of another phase.
    pub(crate) fn absorb(&mut self, other: &LockWaits) {
        self.samples += other.samples;
        self.waiting += other.waiting;
        for (kind, count) in &other.by_kind {
            *self.by_kind.entry(kind.clone()).or_default() += count;
        }
    }

    /// The share of samples with a backend waiting on a lock, in percent;
    /// `None` without samples.
    pub(crate) fn waiting_percent(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.waiting as f64 * 100.0 / self.samples as f64)
    }

    /// The kinds waited on, most frequent first, as "kind n%".
    pub(crate) fn kinds_text(&self) -> String {
        let mut kinds: Vec<(&String, &u64)> = self.by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = kinds
            .into_iter()
            .map(|(kind, count)| {
                format!(
                    "{kind} {:.1}%",
                    *count as f64 * 100.0 / self.samples.max(1) as f64
                )
            })
            .collect();
        if shown.is_empty() {
            "none".to_owned()
        } else {
            shown.join(", ")
        }
    }
}

/// Samples lock waits on its own connection until [`LockSampler::finish`].
#[derive(Debug)]
pub(crate) struct LockSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<LockWaits>>,
}

impl LockSampler {
    /// Starts sampling the stack's database.
    pub(crate) async fn start(stack: &Stack) -> anyhow::Result<LockSampler> {
        let client = stack.connect().await?;
        let statement = client
            .prepare(
                "SELECT wait_event FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .await
            .context("preparing the lock-wait sample")?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut waits = LockWaits::default();
            let mut ticks = tokio::time::interval(SAMPLE_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {
                        let rows = client.query(&statement, &[]).await?;
                        waits.add_sample(
                            rows.iter()
                                .map(|row| row.get::<_, Option<&str>>(0).unwrap_or("unknown")),
                        );
                    }
                }
            }
            Ok(waits)
        });
        Ok(LockSampler { stop, task })
    }

    /// Stops sampling and returns what was seen.
    pub(crate) async fn finish(self) -> anyhow::Result<LockWaits> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_count_samples_not_backends() {
        let mut waits = LockWaits::default();
        assert_eq!(waits.waiting_percent(), None);
        waits.add_sample([]);
        waits.add_sample(["transactionid", "transactionid", "advisory"]);
        waits.add_sample(["transactionid"]);
        waits.add_sample(Vec::<&str>::new());
        assert_eq!((waits.samples, waits.waiting), (4, 2));
        assert_eq!(waits.waiting_percent(), Some(50.0));
        assert_eq!(waits.kinds_text(), "transactionid 50.0%, advisory 25.0%");
        assert_eq!(LockWaits::default().kinds_text(), "none");
    }
}
