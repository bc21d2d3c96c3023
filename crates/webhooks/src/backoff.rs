//! When a failed delivery is tried again: exponential backoff with jitter,
//! capped per step, until the delivery is old enough to give up.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; it doubles after each.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// How long after it was queued a delivery is given up.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    /// 5 s doubling, at most 1 h between attempts, given up after 24 h:
    /// about 35 attempts.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts (1 after the first),
    /// before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// When to try again after `failures` failed attempts, made `now`, at a
    /// delivery queued at `created_at`; `None` to give up. `jitter` in
    /// `[0, 1)` takes up to a fifth off the wait, so receivers coming back
    /// are not hit by every retry at once.
    pub fn next_attempt(
        &self,
        failures: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let delay = self.delay(failures);
        let delay = delay.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 5.0);
        let at = now + chrono::Duration::from_std(delay).ok()?;
        let deadline = created_at + chrono::Duration::from_std(self.give_up_after).ok()?;
        (at <= deadline).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let backoff = Backoff::default();
        let waits: Vec<u64> = (1..=12).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(backoff.delay(1_000), Duration::from_secs(3600));
    }

    #[test]
    fn retries_last_about_a_day_then_give_up() {
        let backoff = Backoff::default();
        let created = Utc::now();
        let mut now = created;
        let mut attempts = 1;
        while let Some(next) = backoff.next_attempt(attempts, created, now, 0.0) {
            now = next;
            attempts += 1;
        }
        assert!((30..40).contains(&attempts), "{attempts} attempts");
        assert!(now - created > chrono::Duration::hours(23));
        assert!(now - created <= chrono::Duration::hours(24));
    }

    #[test]
    fn jitter_only_shortens_a_wait() {
        let backoff = Backoff::default();
        let now = Utc::now();
        let plain = backoff.next_attempt(3, now, now, 0.0).expect("retry");
        let jittered = backoff.next_attempt(3, now, now, 0.99).expect("retry");
        assert!(jittered < plain);
        assert!(plain - jittered <= chrono::Duration::seconds(4));
    }
}
