//! The simulator's randomness: a ChaCha8 stream from the seed, and the few
//! draws the plan needs built on its raw output, so a seed gives the same
//! run whatever `rand` version is compiled in (its distributions may change
//! between versions; ChaCha8's output does not).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore as _, SeedableRng as _};

/// A seeded source of draws.
#[derive(Debug, Clone)]
pub(crate) struct Dice {
    rng: ChaCha8Rng,
}

impl Dice {
    /// The stream of `seed`.
    pub(crate) fn new(seed: u64) -> Dice {
        Dice {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// 64 random bits.
    pub(crate) fn bits(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A number in `0..n` (0 when `n` is 0), without modulo bias.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let value = self.bits();
            if value < zone {
                return value % n;
            }
        }
    }

    /// A number in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.bits() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn by weight; `None` when every weight is 0.
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
        if total <= 0.0 {
            return None;
        }
        let mut target = self.unit() * total;
        let mut last = None;
        for (index, weight) in weights.iter().enumerate() {
            if *weight <= 0.0 {
                continue;
            }
            last = Some(index);
            if target < *weight {
                return Some(index);
            }
            target -= weight;
        }
        last
    }

    /// An exponentially distributed wait with the given mean (seconds).
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// `n` random bytes as lower-case hex.
    pub(crate) fn hex(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes * 2);
        while out.len() < bytes * 2 {
            out.push_str(&format!("{:016x}", self.bits()));
        }
        out.truncate(bytes * 2);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_stream_forever() {
        // Pinned: a change here means old seeds no longer replay old runs.
        let mut dice = Dice::new(42);
        let mut dice_again = Dice::new(42);
        let first: Vec<u64> = (0..3).map(|_| dice.below(1000)).collect();
        let again: Vec<u64> = (0..3).map(|_| dice_again.below(1000)).collect();
        assert_eq!(first, again);
        assert_eq!(first, [737, 312, 20]);
        assert_ne!(Dice::new(1).bits(), Dice::new(2).bits());
    }

    #[test]
    fn draws_stay_in_range() {
        let mut dice = Dice::new(7);
        for _ in 0..1000 {
            assert!(dice.below(3) < 3);
            assert!((5..=9).contains(&dice.between(5, 9)));
            let unit = dice.unit();
            assert!((0.0..1.0).contains(&unit));
            assert!(dice.exponential(2.0) >= 0.0);
        }
        assert_eq!(dice.weighted(&[0.0, 0.0]), None);
        assert_eq!(dice.weighted(&[0.0, 1.0]), Some(1));
        assert_eq!(dice.hex(16).len(), 32);
    }
}
