//! Crash points for fault testing: named places in the write path where a
//! process can be told to abort, as a crash would end it, with a given
//! probability. The fault harness uses them to crash exactly between two
//! steps (after the broker acknowledged, after the database committed),
//! which a `kill -9` from outside only hits by luck. Off unless configured.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};

/// The crash points of this process: `name=probability` pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrashPoints {
    points: Vec<(String, f64)>,
}

/// The points the write path knows: after the projector wrote a batch and
/// before it commits; after it committed and before the broker hears of it;
/// after the broker acknowledged an ingest request and before the answer;
/// after the change-feed relay claimed outbox rows and before it produced
/// them; after the broker acknowledged them and before they are deleted.
pub const KNOWN_CRASH_POINTS: [&str; 5] = [
    "projector.before_commit",
    "projector.after_commit",
    "gateway.after_publish",
    "change_feed.after_claim",
    "change_feed.after_produce",
];

impl CrashPoints {
    /// No crash points.
    pub fn none() -> Self {
        CrashPoints::default()
    }

    /// Parses `name=probability,...` (probability from 0 to 1), e.g.
    /// `projector.after_commit=0.01`. Names must be [`KNOWN_CRASH_POINTS`].
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut points = Vec::new();
        for item in spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, probability) = item
                .split_once('=')
                .ok_or_else(|| format!("expected name=probability, got {item:?}"))?;
            let name = name.trim();
            if !KNOWN_CRASH_POINTS.contains(&name) {
                return Err(format!(
                    "unknown crash point {name:?}; known: {}",
                    KNOWN_CRASH_POINTS.join(", ")
                ));
            }
            let probability: f64 = probability
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("{name}: probability must be a number from 0 to 1"))?;
            points.push((name.to_owned(), probability));
        }
        Ok(CrashPoints { points })
    }

    /// Whether any point is configured.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Aborts the process when `point` is configured and its dice say so.
    pub fn reach(&self, point: &str) {
        let Some((_, probability)) = self.points.iter().find(|(name, _)| name == point) else {
            return;
        };
        if random_unit() < *probability {
            tracing::error!(point, "crash point reached; aborting");
            std::process::abort();
        }
    }
}

/// The points as the spec [`CrashPoints::parse`] reads back
/// (`name=probability,...`; empty for none).
impl std::fmt::Display for CrashPoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (position, (name, probability)) in self.points.iter().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={probability}")?;
        }
        Ok(())
    }
}

/// A random number in [0, 1): the standard library's per-instance random
/// hash keys are enough for dice that need no seed.
fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let points = CrashPoints::parse("projector.after_commit=0.5, gateway.after_publish=0")
            .expect("valid");
        assert!(!points.is_empty());
        assert!(CrashPoints::parse("").expect("empty").is_empty());
        assert!(
            CrashPoints::parse("nowhere=0.1")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            CrashPoints::parse("projector.after_commit=2")
                .unwrap_err()
                .contains("0 to 1")
        );
        assert!(
            CrashPoints::parse("projector.after_commit")
                .unwrap_err()
                .contains("name=probability")
        );
    }

    #[test]
    fn points_print_as_a_spec_that_reads_back() {
        assert_eq!(CrashPoints::none().to_string(), "");
        for spec in [
            "projector.after_commit=0.01",
            "gateway.after_publish=1,projector.before_commit=0",
        ] {
            let points = CrashPoints::parse(spec).expect("valid");
            assert_eq!(points.to_string(), spec);
            assert_eq!(CrashPoints::parse(&points.to_string()), Ok(points));
        }
    }

    #[test]
    fn a_point_at_zero_never_fires_and_dice_stay_in_range() {
        let points = CrashPoints::parse("projector.after_commit=0").expect("valid");
        for _ in 0..1000 {
            points.reach("projector.after_commit");
            points.reach("gateway.after_publish");
            let roll = random_unit();
            assert!((0.0..1.0).contains(&roll));
        }
    }
}
