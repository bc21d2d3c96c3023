//! What every limit is made of: token buckets by key (a rate with a burst)
//! and counts of what each key holds right now (requests in progress,
//! open streams), each bounded in the keys it remembers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most keys a table of buckets remembers. Past it, buckets that have
/// filled up again (which is what a forgotten key starts with) go first.
const MAX_KEYS: usize = 100_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `amount` per period, and at most `amount` at once: the period's whole
/// allowance may come as one burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    per_second: f64,
    capacity: f64,
}

impl Rate {
    /// `amount` per second; `None` (no limit) for 0.
    pub(crate) fn per_second(amount: u32) -> Option<Rate> {
        (amount > 0).then(|| Rate {
            per_second: f64::from(amount),
            capacity: f64::from(amount),
        })
    }

    /// `amount` per minute; `None` (no limit) for 0.
    pub(crate) fn per_minute(amount: u32) -> Option<Rate> {
        (amount > 0).then(|| Rate {
            per_second: f64::from(amount) / 60.0,
            capacity: f64::from(amount),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.capacity)
    }
}

/// A token bucket per key: [`Buckets::take`] spends one, time refills them.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Copy> Buckets<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        Buckets {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one from `key`'s bucket; when it is empty, spends nothing and
    /// says how long until it holds one again.
    pub(crate) fn take(&self, key: K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = lock(&self.buckets);
        self.make_room(&mut buckets, now);
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.rate.capacity,
            at: now,
        });
        let tokens = bucket.refilled(self.rate, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(self.wait(tokens))
        }
    }

    /// How long until `key`'s bucket holds one again; `None` when it does
    /// now. Spends nothing.
    pub(crate) fn empty_for(&self, key: K) -> Option<Duration> {
        self.empty_for_at(key, Instant::now())
    }

    fn empty_for_at(&self, key: K, now: Instant) -> Option<Duration> {
        let buckets = lock(&self.buckets);
        let tokens = buckets.get(&key)?.refilled(self.rate, now);
        (tokens < 1.0).then(|| self.wait(tokens))
    }

    /// Spends one from `key`'s bucket if it holds one: counts something
    /// that already happened (a failed authentication).
    pub(crate) fn charge(&self, key: K) {
        let _ = self.take(key);
    }

    /// Gives back one that [`Buckets::take`] spent for something that
    /// turned out not to count.
    pub(crate) fn refund(&self, key: K) {
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if let Some(bucket) = buckets.get_mut(&key) {
            *bucket = Bucket {
                tokens: (bucket.refilled(self.rate, now) + 1.0).min(self.rate.capacity),
                at: now,
            };
        }
    }

    fn wait(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.rate.per_second).max(0.0))
    }

    /// Keeps the table within [`MAX_KEYS`]: full buckets are forgotten
    /// first (a new key starts full, so nothing is lost), then everything.
    fn make_room(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        if buckets.len() < MAX_KEYS {
            return;
        }
        let rate = self.rate;
        buckets.retain(|_, bucket| bucket.refilled(rate, now) < rate.capacity);
        if buckets.len() >= MAX_KEYS {
            tracing::warn!(keys = buckets.len(), "rate limit table full; starting over");
            buckets.clear();
        }
    }
}

/// How many of something each key holds now, each at most `max`.
#[derive(Debug)]
pub(crate) struct Slots<K: Eq + Hash> {
    max: u32,
    held: Arc<Mutex<HashMap<K, u32>>>,
}

/// One slot of a key, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot<K: Eq + Hash> {
    held: Arc<Mutex<HashMap<K, u32>>>,
    key: K,
}

impl<K: Eq + Hash + Copy> Slots<K> {
    pub(crate) fn new(max: u32) -> Self {
        Slots {
            max,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot of `key`, or `None` when it holds `max` already. The table
    /// only remembers keys that hold something, so it is bounded by what
    /// is in progress.
    pub(crate) fn acquire(&self, key: K) -> Option<Slot<K>> {
        let mut held = lock(&self.held);
        let count = held.entry(key).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                held.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            held: self.held.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Whole seconds a client should wait: what `Retry-After` says, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs_f64().ceil();
    if whole < 1.0 { 1 } else { whole as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let buckets = Buckets::new(Rate::per_second(3).expect("a rate"));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take_at('a', start).is_ok());
        }
        let wait = buckets.take_at('a', start).expect_err("empty");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(buckets.take_at('b', start).is_ok());
        buckets.refund('b');
        assert_eq!(
            lock(&buckets.buckets).get(&'b').map(|bucket| bucket.tokens),
            Some(3.0),
            "a refund never passes the capacity"
        );
        // A third of a second later there is one again.
        let later = start + Duration::from_millis(340);
        assert_eq!(buckets.empty_for_at('a', later), None);
        assert!(buckets.take_at('a', later).is_ok());
        assert!(buckets.take_at('a', later).is_err());
    }

    #[test]
    fn a_per_minute_rate_says_how_long_to_wait_in_seconds() {
        let buckets = Buckets::new(Rate::per_minute(2).expect("a rate"));
        let start = Instant::now();
        assert_eq!(
            buckets.empty_for_at(1, start),
            None,
            "unknown keys are full"
        );
        assert!(buckets.take_at(1, start).is_ok());
        assert!(buckets.take_at(1, start).is_ok());
        let wait = buckets.empty_for_at(1, start).expect("empty");
        assert_eq!(retry_after_secs(wait), 30);
    }

    #[test]
    fn zero_is_no_limit() {
        assert_eq!(Rate::per_second(0), None);
        assert_eq!(Rate::per_minute(0), None);
    }

    #[test]
    fn slots_are_bounded_per_key_and_given_back_on_drop() {
        let slots = Slots::new(2);
        let first = slots.acquire("a").expect("one");
        let second = slots.acquire("a").expect("two");
        assert!(slots.acquire("a").is_none());
        assert!(slots.acquire("b").is_some(), "another key");
        drop(first);
        let third = slots.acquire("a").expect("given back");
        drop((second, third));
        assert!(lock(&slots.held).is_empty(), "nothing held, nothing kept");
        let none = Slots::new(0);
        assert!(none.acquire("a").is_none());
        assert!(lock(&none.held).is_empty());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }
}
