//! The driver: runs a target's property over its seed corpus, then over
//! generated inputs until the time budget is spent, in rounds of a few dozen
//! cases, each round with its own seed so that a failure can be replayed
//! (`PANORAMA_FUZZ_SEED`). Panics are caught and count as failures; proptest
//! shrinks a failing input before it is reported.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Generated cases per round: small, so a run ends close to its budget.
const ROUND_CASES: u32 = 32;

/// The environment variable that fixes the first round's seed.
pub const SEED_VARIABLE: &str = "PANORAMA_FUZZ_SEED";

/// How long one target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Generated inputs stop once this much time has passed (a round that
    /// has started is finished, and the seeds always all run).
    pub time: Duration,
}

impl Budget {
    /// The run inside `cargo test`: short, so the suite stays quick.
    pub fn short() -> Self {
        Budget {
            time: Duration::from_millis(1200),
        }
    }

    /// A run of `seconds` seconds.
    pub fn seconds(seconds: u64) -> Self {
        Budget {
            time: Duration::from_secs(seconds),
        }
    }
}

/// A property that does not hold, or a panic, with what is needed to see it
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The target.
    pub target: &'static str,
    /// Where the input came from: a seed file, or the round seed that
    /// generated it (run again with `PANORAMA_FUZZ_SEED=<seed>`).
    pub origin: String,
    /// What went wrong (the panic message or the broken property).
    pub reason: String,
    /// The (shrunk) input, as Rust debug text.
    pub input: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fuzz target {} failed ({}): {}\ninput: {}",
            self.target, self.origin, self.reason, self.input
        )
    }
}

impl std::error::Error for Failure {}

/// One target's run: its budget, its seed, and how many inputs it tried.
#[derive(Debug)]
pub struct Session {
    target: &'static str,
    budget: Budget,
    seed: u64,
    cases: u64,
}

impl Session {
    /// A run of `target` within `budget`, seeded from `PANORAMA_FUZZ_SEED`
    /// when set, else from the clock.
    pub fn new(target: &'static str, budget: Budget) -> Self {
        let seed = std::env::var(SEED_VARIABLE)
            .ok()
            .and_then(|seed| seed.trim().parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos() as u64)
                    ^ name_hash(target)
            });
        Session {
            target,
            budget,
            seed,
            cases: 0,
        }
    }

    /// A run of `target` within `budget` that tries the same inputs every
    /// time (seeded from the target's name unless `PANORAMA_FUZZ_SEED` is
    /// set): the short run inside `cargo test` is a regression check that
    /// must not fail by chance, while `make fuzz` explores.
    pub fn repeatable(target: &'static str, budget: Budget) -> Self {
        let seed = std::env::var(SEED_VARIABLE)
            .ok()
            .and_then(|seed| seed.trim().parse().ok())
            .unwrap_or_else(|| name_hash(target));
        Session {
            target,
            budget,
            seed,
            cases: 0,
        }
    }

    /// How many inputs the session has tried so far.
    pub fn cases(&self) -> u64 {
        self.cases
    }

    /// The seed inputs of the target: every file of `corpus/<target>/`,
    /// by name, with their names.
    pub fn corpus(&self) -> Vec<(String, Vec<u8>)> {
        corpus(self.target)
    }

    /// Runs `property` on each of `seeds` (named inputs), stopping at the
    /// first that fails or panics.
    pub fn replay<T: fmt::Debug>(
        &mut self,
        seeds: &[(String, T)],
        property: impl Fn(&T) -> Result<(), String>,
    ) -> Result<(), Failure> {
        for (name, input) in seeds {
            self.cases += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| property(input)));
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(reason)) => reason,
                Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            };
            return Err(Failure {
                target: self.target,
                origin: format!("seed {name}"),
                reason,
                input: format!("{input:?}"),
            });
        }
        Ok(())
    }

    /// Runs `property` on inputs drawn from `strategy` until the budget is
    /// spent; the first failure is shrunk and returned.
    pub fn check<S: Strategy>(
        &mut self,
        strategy: S,
        property: impl Fn(S::Value) -> Result<(), String>,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let mut round_seed = self.seed;
        loop {
            let config = Config {
                cases: ROUND_CASES,
                failure_persistence: None,
                // A shrink that takes longer than this reports what it has.
                max_shrink_time: 30_000,
                ..Config::default()
            };
            let mut seed_bytes = [0u8; 32];
            seed_bytes[..8].copy_from_slice(&round_seed.to_le_bytes());
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
            let mut runner = TestRunner::new_with_rng(config, rng);
            let result = runner.run(&strategy, |input| {
                property(input).map_err(TestCaseError::fail)
            });
            self.cases += u64::from(ROUND_CASES);
            match result {
                Ok(()) => {}
                Err(TestError::Fail(reason, input)) => {
                    return Err(Failure {
                        target: self.target,
                        origin: format!("{SEED_VARIABLE}={round_seed}"),
                        reason: reason.to_string(),
                        input: format!("{input:?}"),
                    });
                }
                Err(TestError::Abort(reason)) => {
                    return Err(Failure {
                        target: self.target,
                        origin: format!("{SEED_VARIABLE}={round_seed}"),
                        reason: format!("aborted: {reason}"),
                        input: String::new(),
                    });
                }
            }
            if started.elapsed() >= self.budget.time {
                return Ok(());
            }
            round_seed = next_seed(round_seed);
        }
    }
}

/// The directory of a target's seed inputs.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Every file of `corpus/<target>/` by name, with its name; none when the
/// directory is missing.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .filter_map(|entry| {
            let bytes = std::fs::read(entry.path()).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), bytes))
        })
        .collect();
    seeds.sort();
    seeds
}

/// The next round's seed (splitmix64: every round differs, and the sequence
/// from any seed is the same on every machine).
fn next_seed(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable hash of a target name (FNV-1a), so that targets started in the
/// same nanosecond still draw different inputs.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_panic_is_a_failure_with_a_shrunk_input() {
        let mut session = Session::new("driver", Budget::seconds(5));
        let failure = session
            .check(any::<u32>(), |n| {
                assert!(n < 1000, "too big");
                Ok(())
            })
            .expect_err("fails");
        assert!(failure.reason.contains("too big"), "{failure}");
        assert_eq!(failure.input, "1000");
    }

    #[test]
    fn a_broken_property_in_a_seed_names_the_seed() {
        let mut session = Session::new("driver", Budget::short());
        let seeds = vec![("fine".to_owned(), 1), ("bad".to_owned(), 2)];
        let failure = session
            .replay(&seeds, |&n| if n == 2 { Err("two".into()) } else { Ok(()) })
            .expect_err("fails");
        assert_eq!(failure.origin, "seed bad");
        assert_eq!(failure.reason, "two");
    }

    #[test]
    fn round_seeds_differ() {
        assert_ne!(next_seed(0), next_seed(1));
        assert_ne!(next_seed(next_seed(7)), next_seed(7));
    }
}
