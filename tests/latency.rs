//! Latency figures the benchmarks print: order statistics over measured
//! durations, and one way to show them.

use std::time::Duration;

/// The sample at quantile `p` (0..=1) of `sorted` (ascending), by the
/// nearest index; zero for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[index]
}

/// The median of `samples`, in any order; zero for no samples.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    percentile(&samples, 0.5)
}

/// `duration` in milliseconds with two decimals, e.g. `1.25 ms`.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_by_nearest_index() {
        let samples: Vec<Duration> = (1..=101).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&samples, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&samples, 0.99), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 1.0), Duration::from_millis(101));
        assert_eq!(percentile(&samples, 7.0), Duration::from_millis(101));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(
            median(vec![
                Duration::from_millis(3),
                Duration::from_millis(1),
                Duration::from_millis(2)
            ]),
            Duration::from_millis(2)
        );
        assert_eq!(median(Vec::new()), Duration::ZERO);
        assert_eq!(ms(Duration::from_micros(1250)), "1.25 ms");
    }
}
