//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Panorama benchmark: projector, end to end, reads and freshness against
/// a binary COPY and pgbench on the same PostgreSQL; writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "panorama-bench", version)]
pub(crate) struct Cli {
    /// The benchmark's settings.
    #[command(flatten)]
    pub(crate) bench: BenchArgs,
    /// `loadgen`: the HTTP load generator the benchmark runs as a process.
    #[command(subcommand)]
    pub(crate) mode: Option<Mode>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// Post a workload to a gateway and print one JSON report (used by the
    /// benchmark itself; the token comes from PANORAMA_BENCH_TOKEN).
    Loadgen(LoadgenArgs),
}

/// The load generator's arguments.
#[derive(Debug, Args)]
pub(crate) struct LoadgenArgs {
    /// The gateway's base URL.
    #[arg(long)]
    pub(crate) url: String,
    /// The workload, as JSON.
    #[arg(long)]
    pub(crate) workload: String,
    /// Events per POST.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub(crate) clients: usize,
}

/// Which broker engines to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BrokerChoice {
    /// SQLite storage, as `make run` starts the broker.
    Sqlite,
    /// In-memory storage.
    Memory,
    /// SQLite, then memory.
    Both,
}

/// The benchmark's settings.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// The panorama binary (a release build).
    #[arg(long, default_value = "target/release/panorama")]
    pub(crate) panorama_bin: PathBuf,
    /// Broker storage engine(s) [default: both; sqlite with --quick].
    #[arg(long, value_enum)]
    pub(crate) broker: Option<BrokerChoice>,
    /// Interleaved rounds of P, B and E [default: 3; 1 with --quick].
    #[arg(long)]
    pub(crate) rounds: Option<u32>,
    /// Events per P and per E phase [default: 20000; 2000 with --quick].
    #[arg(long)]
    pub(crate) events: Option<u64>,
    /// Events posted for the read dataset [default: 1000000; 20000 with --quick].
    #[arg(long)]
    pub(crate) read_events: Option<u64>,
    /// Customers of the read dataset [default: 100000; 2000 with --quick].
    #[arg(long)]
    pub(crate) read_customers: Option<u64>,
    /// Seconds of each wrk and pgbench run [default: 10; 3 with --quick].
    #[arg(long)]
    pub(crate) read_seconds: Option<u64>,
    /// Single events for freshness [default: 200; 30 with --quick].
    #[arg(long)]
    pub(crate) freshness_samples: Option<u64>,
    /// Seconds of idle CPU measurement [default: 10; 3 with --quick].
    #[arg(long)]
    pub(crate) idle_seconds: Option<u64>,
    /// Load generator connections for the batched phases.
    #[arg(long, default_value_t = 4)]
    pub(crate) clients: usize,
    /// Leave out the read phase.
    #[arg(long)]
    pub(crate) skip_reads: bool,
    /// Leave out P2 (two projectors draining what P drains alone).
    #[arg(long)]
    pub(crate) skip_two_projectors: bool,
    /// A PostgreSQL setting for the bench's server, as NAME=VALUE
    /// (repeatable; `ALTER SYSTEM`, then a reload, or a restart when the
    /// setting needs one). The report's PostgreSQL line shows it.
    #[arg(long = "pg-set", value_name = "NAME=VALUE", value_parser = parse_pg_setting)]
    pub(crate) pg_set: Vec<PgSetting>,
    /// Load `pg_stat_statements` into the bench's server and report, per
    /// broker engine, the statements PostgreSQL spent its time on during
    /// the P phases (the extension's own cost makes the run's throughput
    /// not comparable with a run without it).
    #[arg(long)]
    pub(crate) pg_statements: bool,
    /// Small sizes and one round, to try it in a minute or two.
    #[arg(long)]
    pub(crate) quick: bool,
    /// The wrk binary (scripts/ensure-wrk.sh installs it).
    #[arg(long, default_value = "wrk")]
    pub(crate) wrk: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub(crate) output: PathBuf,
}

/// A PostgreSQL setting given with `--pg-set`: a name PostgreSQL could
/// know (letters, digits, `_` and `.`), and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgSetting {
    /// The setting's name, lowercase.
    pub(crate) name: String,
    /// Its value, as `ALTER SYSTEM` takes it.
    pub(crate) value: String,
}

impl PgSetting {
    /// `ALTER SYSTEM SET` for this setting: the name was checked by
    /// [`parse_pg_setting`], the value goes in quoted.
    pub(crate) fn alter_system(&self) -> String {
        format!(
            "ALTER SYSTEM SET {} = '{}'",
            self.name,
            self.value.replace('\'', "''")
        )
    }
}

/// Parses `NAME=VALUE` for `--pg-set`.
pub(crate) fn parse_pg_setting(text: &str) -> Result<PgSetting, String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("expected NAME=VALUE, got {text:?}"));
    };
    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
    let valid = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !valid {
        return Err(format!("{name:?} is not a PostgreSQL setting name"));
    }
    if value.is_empty() {
        return Err(format!("no value for {name}"));
    }
    Ok(PgSetting {
        name,
        value: value.to_owned(),
    })
}

/// The settings with the defaults (or `--quick`'s) filled in.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) broker: BrokerChoice,
    pub(crate) rounds: u32,
    pub(crate) events: u64,
    pub(crate) read_events: u64,
    pub(crate) read_customers: u64,
    pub(crate) read_seconds: u64,
    pub(crate) freshness_samples: u64,
    pub(crate) idle_seconds: u64,
}

impl BenchArgs {
    /// Fills in the defaults.
    pub(crate) fn settings(&self) -> Settings {
        let quick = self.quick;
        let pick = |given: Option<u64>, full: u64, small: u64| {
            given.unwrap_or(if quick { small } else { full })
        };
        Settings {
            broker: self.broker.unwrap_or(if quick {
                BrokerChoice::Sqlite
            } else {
                BrokerChoice::Both
            }),
            rounds: self.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
            events: pick(self.events, 20_000, 2_000).max(BATCH_MIN),
            read_events: pick(self.read_events, 1_000_000, 20_000),
            read_customers: pick(self.read_customers, 100_000, 2_000).max(1),
            read_seconds: pick(self.read_seconds, 10, 3).max(1),
            freshness_samples: pick(self.freshness_samples, 200, 30),
            idle_seconds: pick(self.idle_seconds, 10, 3),
        }
    }
}

/// The smallest phase: one batch.
const BATCH_MIN: u64 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_shrinks_what_was_not_given() {
        let cli = Cli::parse_from(["panorama-bench", "--quick", "--events", "500"]);
        let settings = cli.bench.settings();
        assert_eq!(settings.rounds, 1);
        assert_eq!(settings.events, 500);
        assert_eq!(settings.broker, BrokerChoice::Sqlite);
        let full = Cli::parse_from(["panorama-bench"]).bench.settings();
        assert_eq!(
            (full.rounds, full.read_events, full.read_customers),
            (3, 1_000_000, 100_000)
        );
        assert_eq!(full.broker, BrokerChoice::Both);
        assert!(matches!(
            Cli::parse_from([
                "panorama-bench",
                "loadgen",
                "--url",
                "http://x",
                "--workload",
                "{}"
            ])
            .mode,
            Some(Mode::Loadgen(_))
        ));
    }

    #[test]
    fn pg_settings_are_name_value_pairs_with_safe_names() {
        let cli = Cli::parse_from([
            "panorama-bench",
            "--pg-set",
            "commit_delay=100",
            "--pg-set",
            "Work_Mem = 64MB",
            "--pg-set",
            "search_path='a=b'",
        ]);
        let names: Vec<&str> = cli.bench.pg_set.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["commit_delay", "work_mem", "search_path"]);
        assert_eq!(cli.bench.pg_set[1].value, "64MB");
        assert_eq!(
            cli.bench.pg_set[2].alter_system(),
            "ALTER SYSTEM SET search_path = '''a=b'''"
        );
        for bad in [
            "commit_delay",
            "=1",
            "a b=1",
            "x;drop table t=1",
            "1x=2",
            "fsync=",
        ] {
            assert!(parse_pg_setting(bad).is_err(), "{bad}");
        }
        assert!(Cli::try_parse_from(["panorama-bench", "--pg-set", "no-value"]).is_err());
    }
}
