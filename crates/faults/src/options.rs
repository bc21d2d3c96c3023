//! The command line: a profile (`ci`, the short variant; `long`, the
//! recorded run; `calm`, no faults) and flags that override any of its
//! figures.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::error::{Error, Result};
use crate::schedule::{FaultCounts, FaultDurations};

/// Posts events to a real Panorama stack while crashing its processes,
/// PostgreSQL and the broker, then proves every acknowledged event took
/// effect exactly once. Prints one JSON summary on stdout; exits 1 on any
/// loss, duplicate, unexpected event, aggregate mismatch or failure to
/// settle.
#[derive(Debug, Clone, Parser)]
#[command(name = "panorama-faults", version)]
pub struct Cli {
    /// Figures to start from; the flags below override them.
    #[arg(long, value_enum, default_value_t = Profile::Ci)]
    pub profile: Profile,
    /// Events to send.
    #[arg(long)]
    pub events: Option<u64>,
    /// `kill -9` of serve processes (the all-in-one process, each role on
    /// its own, all four at once, in turn).
    #[arg(long)]
    pub service_kills: Option<u32>,
    /// Aborts at the product's crash points (PANORAMA_CRASH_POINTS).
    #[arg(long)]
    pub crash_points: Option<u32>,
    /// `pg_ctl stop -m immediate` restarts of PostgreSQL.
    #[arg(long)]
    pub pg_restarts: Option<u32>,
    /// `kill -9` of the broker, restarted on the same SQLite file.
    #[arg(long)]
    pub broker_kills: Option<u32>,
    /// `pg_terminate_backend` of the projector's connections.
    #[arg(long)]
    pub backend_kills: Option<u32>,
    /// Exclusive locks on the events table held for --lock-secs.
    #[arg(long)]
    pub pg_locks: Option<u32>,
    /// SIGSTOPs of the projector for --stop-secs, then SIGCONT.
    #[arg(long)]
    pub projector_stops: Option<u32>,
    /// Seed of the schedule and the traffic (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The panorama binary to run.
    #[arg(long, default_value = "target/release/panorama")]
    pub panorama_bin: PathBuf,
    /// Concurrent posting tasks.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// People the events are about (default: one per 8 events).
    #[arg(long)]
    pub persons: Option<u64>,
    /// Most events per second (default: spread the events over the time
    /// the faults need; 0: as fast as the stack answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Cap on the whole run (`90s`, `15m`, `4h`): past it, nothing more is
    /// sent and the run fails.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// How long the stack may go without catching up at the end before it
    /// counts as stuck (a backlog that shrinks is waited for).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub settle_timeout: Duration,
    /// How long services may take to turn ready after a fault.
    #[arg(long, value_parser = parse_duration, default_value = "2m")]
    pub ready_timeout: Duration,
    /// How long a PostgreSQL lock fault holds its lock.
    #[arg(long, default_value_t = 5)]
    pub lock_secs: u64,
    /// How long the projector stays stopped (its group session times out
    /// after 10 s).
    #[arg(long, default_value_t = 15)]
    pub stop_secs: u64,
    /// Partitions of the event topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Where logs, id lists and the fault timeline go (default:
    /// `target/faults/<time>-seed<seed>`).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Also write the summary to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// A set of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// The short variant CI runs: 20,000 events, 3 service kills, one
    /// PostgreSQL restart, one broker kill and one of every other fault.
    Ci,
    /// The recorded run: 1,000,000 events, 20 service kills, 5 PostgreSQL
    /// restarts, 5 broker kills and several of every other fault.
    Long,
    /// No faults: 5,000 events through a healthy stack.
    Calm,
}

impl Profile {
    /// Events, faults and time cap of the profile.
    pub fn figures(self) -> (u64, FaultCounts, Duration) {
        match self {
            Profile::Ci => (
                20_000,
                FaultCounts {
                    service_kills: 3,
                    crash_points: 1,
                    pg_restarts: 1,
                    broker_kills: 1,
                    backend_kills: 1,
                    pg_locks: 1,
                    projector_stops: 1,
                },
                Duration::from_secs(15 * 60),
            ),
            Profile::Long => (
                1_000_000,
                FaultCounts {
                    service_kills: 20,
                    crash_points: 6,
                    pg_restarts: 5,
                    broker_kills: 5,
                    backend_kills: 5,
                    pg_locks: 5,
                    projector_stops: 3,
                },
                Duration::from_secs(4 * 3600),
            ),
            Profile::Calm => (5_000, FaultCounts::default(), Duration::from_secs(10 * 60)),
        }
    }
}

/// A run, every figure decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Events to send.
    pub events: u64,
    /// Faults to inject.
    pub counts: FaultCounts,
    /// Lock and stop durations.
    pub durations: FaultDurations,
    /// The seed.
    pub seed: u64,
    /// The panorama binary.
    pub bin: PathBuf,
    /// Posting tasks.
    pub clients: usize,
    /// People in the pool.
    pub persons: u64,
    /// Events per second: `None` derives it from the schedule, `Some(0)`
    /// is unlimited.
    pub rate: Option<f64>,
    /// Cap on the whole run.
    pub cap: Duration,
    /// Settle timeout.
    pub settle_timeout: Duration,
    /// Ready timeout after each fault.
    pub ready_timeout: Duration,
    /// Partitions.
    pub partitions: u32,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Where to write the summary too.
    pub json_out: Option<PathBuf>,
}

impl Cli {
    /// The run these options describe, `random_seed` standing in for a
    /// seed not given.
    ///
    /// # Errors
    ///
    /// When a figure makes no sense (no events, fewer than 3 partitions,
    /// no clients).
    pub fn config(&self, random_seed: u64) -> Result<Config> {
        let (events, profile, cap) = self.profile.figures();
        let events = self.events.unwrap_or(events);
        if events == 0 {
            return Err(Error::Options("--events must be at least 1".to_owned()));
        }
        if self.partitions < 3 {
            return Err(Error::Options("--partitions must be at least 3".to_owned()));
        }
        if self.clients == 0 {
            return Err(Error::Options("--clients must be at least 1".to_owned()));
        }
        if self
            .rate
            .is_some_and(|rate| !rate.is_finite() || rate < 0.0)
        {
            return Err(Error::Options("--rate must be 0 or more".to_owned()));
        }
        let counts = FaultCounts {
            service_kills: self.service_kills.unwrap_or(profile.service_kills),
            crash_points: self.crash_points.unwrap_or(profile.crash_points),
            pg_restarts: self.pg_restarts.unwrap_or(profile.pg_restarts),
            broker_kills: self.broker_kills.unwrap_or(profile.broker_kills),
            backend_kills: self.backend_kills.unwrap_or(profile.backend_kills),
            pg_locks: self.pg_locks.unwrap_or(profile.pg_locks),
            projector_stops: self.projector_stops.unwrap_or(profile.projector_stops),
        };
        let seed = self.seed.unwrap_or(random_seed);
        let run_dir = self.run_dir.clone().unwrap_or_else(|| {
            PathBuf::from("target").join("faults").join(format!(
                "{}-seed{seed}",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ))
        });
        Ok(Config {
            events,
            counts,
            durations: FaultDurations {
                lock: Duration::from_secs(self.lock_secs),
                stop: Duration::from_secs(self.stop_secs),
            },
            seed,
            bin: self.panorama_bin.clone(),
            clients: self.clients,
            persons: self.persons.unwrap_or((events / 8).max(50)),
            rate: self.rate,
            cap: self.duration.unwrap_or(cap),
            settle_timeout: self.settle_timeout,
            ready_timeout: self.ready_timeout,
            partitions: self.partitions,
            run_dir,
            json_out: self.json_out.clone(),
        })
    }
}

/// Parses `90s`, `15m`, `4h` or a number of seconds.
///
/// # Errors
///
/// When the text is none of these.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and s, m or h, such as 90s or 15m"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["panorama-faults"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("options")
            .config(99)
            .expect("config")
    }

    #[test]
    fn durations_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_ci_profile_is_the_short_variant() {
        let config = parse(&[]);
        assert_eq!(config.events, 20_000);
        assert_eq!(config.counts.service_kills, 3);
        assert_eq!(config.counts.pg_restarts, 1);
        assert_eq!(config.counts.broker_kills, 1);
        for other in [
            config.counts.crash_points,
            config.counts.backend_kills,
            config.counts.pg_locks,
            config.counts.projector_stops,
        ] {
            assert_eq!(other, 1);
        }
        assert_eq!(config.seed, 99);
        assert_eq!(config.bin, PathBuf::from("target/release/panorama"));
        assert_eq!(config.persons, 2_500);
    }

    #[test]
    fn the_long_profile_meets_the_recorded_run_s_minimums() {
        let config = parse(&["--profile", "long"]);
        assert!(config.events >= 1_000_000);
        assert!(config.counts.service_kills >= 20);
        assert!(config.counts.pg_restarts >= 5);
        assert!(config.counts.broker_kills >= 5);
    }

    #[test]
    fn flags_override_the_profile() {
        let config = parse(&[
            "--profile",
            "long",
            "--events",
            "500",
            "--service-kills",
            "2",
            "--pg-restarts",
            "0",
            "--seed",
            "7",
            "--duration",
            "10m",
            "--panorama-bin",
            "target/debug/panorama",
        ]);
        assert_eq!(config.events, 500);
        assert_eq!(config.counts.service_kills, 2);
        assert_eq!(config.counts.pg_restarts, 0);
        assert_eq!(config.counts.broker_kills, 5);
        assert_eq!(config.seed, 7);
        assert_eq!(config.cap, Duration::from_secs(600));
        assert_eq!(config.bin, PathBuf::from("target/debug/panorama"));
        assert!(
            config.run_dir.ends_with("-seed7")
                || config.run_dir.to_string_lossy().ends_with("-seed7")
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for args in [
            &["--events", "0"][..],
            &["--partitions", "2"],
            &["--clients", "0"],
            &["--rate=-1"],
        ] {
            let mut argv = vec!["panorama-faults"];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).expect("parses");
            assert!(cli.config(1).is_err(), "{args:?}");
        }
    }
}
