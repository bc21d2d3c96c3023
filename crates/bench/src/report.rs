//! The report: the same Markdown printed and written to BENCHMARKS.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::lockwaits::LockWaits;
use crate::phases::{Freshness, Round};
use crate::reads::Reads;
use crate::statements::Profile;
use crate::stats::Spread;

/// Everything measured on one broker engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineReport {
    /// `sqlite` or `memory`.
    pub(crate) engine: String,
    /// Events per P and per E phase.
    pub(crate) events: u64,
    /// The rounds, in order.
    pub(crate) rounds: Vec<Round>,
    /// Single-event figures.
    pub(crate) freshness: Option<Freshness>,
    /// Seconds idle CPU was measured over.
    pub(crate) idle_seconds: u64,
    /// Idle CPU, % of a core, by process.
    pub(crate) idle: BTreeMap<String, f64>,
    /// Peak RSS by serve role, kB.
    pub(crate) peak_rss_kb: BTreeMap<String, u64>,
    /// The read routes, when measured on this engine's stack.
    pub(crate) reads: Option<Reads>,
    /// The statements PostgreSQL ran during P, with `--pg-statements`.
    pub(crate) statements: Option<Profile>,
    /// What failed, if something did.
    pub(crate) failure: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// `git rev-parse --short HEAD`, "+dirty" when the tree has changes.
    pub(crate) commit: String,
    /// When it ran (UTC, RFC 3339).
    pub(crate) date: String,
    /// `nproc`.
    pub(crate) cores: String,
    /// The command line.
    pub(crate) command: String,
    /// PostgreSQL settings, name and value.
    pub(crate) pg_settings: Vec<(String, String)>,
    /// The names of the settings given with `--pg-set`.
    pub(crate) pg_set: Vec<String>,
    /// Partitions of the event topic.
    pub(crate) partitions: i32,
    /// Load generator connections.
    pub(crate) clients: usize,
    /// Per broker engine.
    pub(crate) engines: Vec<EngineReport>,
    /// How long the run took, seconds.
    pub(crate) seconds: f64,
}

fn spread_row(out: &mut String, label: &str, values: &[f64], unit: &str, digits: usize) {
    let Some(spread) = Spread::of(values) else {
        return;
    };
    let _ = writeln!(
        out,
        "| {label} | {:.digits$} | {:.digits$} | {:.digits$} | {unit} |",
        spread.median, spread.min, spread.max
    );
}

fn cpu_table(out: &mut String, rounds: &[Round]) {
    let names: BTreeSet<&String> = rounds
        .iter()
        .flat_map(|round| round.project_cpu.keys().chain(round.e2e_cpu.keys()))
        .collect();
    let _ = writeln!(out, "| process | P: µs CPU / event | E: µs CPU / event |");
    let _ = writeln!(out, "| --- | ---: | ---: |");
    let (mut p_total, mut e_total) = (0.0, 0.0);
    for name in names {
        let median = |pick: &dyn Fn(&Round) -> Option<f64>| -> Option<f64> {
            let values: Vec<f64> = rounds.iter().filter_map(pick).collect();
            Spread::of(&values).map(|spread| spread.median)
        };
        let p = median(&|round| round.project_cpu.get(name).copied());
        let e = median(&|round| round.e2e_cpu.get(name).copied());
        p_total += p.unwrap_or(0.0);
        e_total += e.unwrap_or(0.0);
        let shown =
            |value: Option<f64>| value.map_or("–".to_owned(), |value| format!("{value:.1}"));
        let _ = writeln!(out, "| {name} | {} | {} |", shown(p), shown(e));
    }
    let _ = writeln!(out, "| **all** | **{p_total:.1}** | **{e_total:.1}** |");
}

impl Report {
    /// The report as Markdown.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `make bench` (crates/bench); the figures of one run on one host, every process on 127.0.0.1. \
             Absolute numbers move between machines: read the ratios, measured side by side in the same run. \
             What the figures mean, where the time goes, what was tried and the targets they are held to: \
             [docs/performance.md](docs/performance.md).\n"
        );
        let _ = writeln!(out, "- commit: `{}`", self.commit);
        let _ = writeln!(out, "- date: {}", self.date);
        let _ = writeln!(out, "- cores (`nproc`): {}", self.cores);
        let _ = writeln!(out, "- command: `{}`", self.command);
        let _ = writeln!(out, "- run time: {:.0} s", self.seconds);
        let durable = self
            .pg_settings
            .iter()
            .filter(|(name, _)| {
                ["fsync", "synchronous_commit", "full_page_writes"].contains(&name.as_str())
            })
            .all(|(_, value)| value == "on");
        let settings: Vec<String> = self
            .pg_settings
            .iter()
            .map(|(name, value)| {
                if self.pg_set.contains(name) {
                    format!("**{name}={value}** (`--pg-set`)")
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "- PostgreSQL: {} ({})",
            settings.join(", "),
            if durable {
                "durable: the dev stack's settings"
            } else {
                "**NOT durable: fsync or synchronous commit off**"
            }
        );
        let _ = writeln!(
            out,
            "- processes: `panorama serve --role gateway`, `--role projector`, `--role api` (release build, the dev stack's settings, per-token request limits off), \
             a Nisshi broker, PostgreSQL; the event topic has {} partitions; the HTTP load generator is another process \
             (`panorama-bench loadgen`, {} connections, batches of 100 events)\n",
            self.partitions, self.clients
        );
        let _ = writeln!(
            out,
            "Phases, interleaved in every round: **P** the projector alone draining a topic the gateway filled while it was \
             stopped (from its partition claim until its stored offsets reach the log end); **B** a binary `COPY` \
             (`copy_in`) of exactly the `events` rows P wrote, same ids, customers and columns, into a table \
             `LIKE events INCLUDING ALL`; **E** batched POSTs to the gateway until every record is projected; **P2** \
             (unless `--skip-two-projectors`) as P, with two projector processes of the same group sharing the \
             partitions, from the first partition claim (the rebalance when the second joins included). Completion \
             is one query over `consumer_offsets` every 10 ms. CPU is utime+stime from /proc (PostgreSQL: the \
             postmaster, its backends and the backends that exited). Lock waits: `pg_stat_activity` sampled every \
             20 ms on a connection of its own during P and P2, the share of samples in which a backend waited on a \
             lock (`wait_event_type = 'Lock'`): ≈ 0 when the projectors do not queue on each other.\n"
        );
        crate::targets::render(&self.engines, &mut out);
        for engine in &self.engines {
            self.render_engine(&mut out, engine);
        }
        out
    }

    fn render_engine(&self, out: &mut String, engine: &EngineReport) {
        let dev = if engine.engine == "sqlite" {
            " (what `make run` uses)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "## Broker on its {} engine{dev}: {} events per phase, {} round(s)\n",
            engine.engine,
            engine.events,
            engine.rounds.len()
        );
        if let Some(failure) = &engine.failure {
            let _ = writeln!(out, "**Failed:** {failure}\n");
        }
        let rounds = &engine.rounds;
        if !rounds.is_empty() {
            let pick = |f: fn(&Round) -> f64| -> Vec<f64> { rounds.iter().map(f).collect() };
            let _ = writeln!(out, "| figure | median | min | max | unit |");
            let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- |");
            spread_row(
                out,
                "B binary COPY of the projector's rows",
                &pick(|r| r.copy_rows_per_s),
                "rows/s",
                0,
            );
            spread_row(
                out,
                "P projector alone",
                &pick(|r| r.project_events_per_s),
                "events/s",
                0,
            );
            spread_row(
                out,
                "P projector start to partition claim",
                &pick(|r| r.project_startup_s),
                "s",
                2,
            );
            let picked = |f: fn(&Round) -> Option<f64>| -> Vec<f64> {
                rounds.iter().filter_map(f).collect()
            };
            spread_row(
                out,
                "P2 two projectors, one group",
                &picked(|r| r.two_events_per_s),
                "events/s",
                0,
            );
            spread_row(
                out,
                "E end to end (POST → projected)",
                &pick(|r| r.e2e_events_per_s),
                "events/s",
                0,
            );
            spread_row(
                out,
                "E acknowledged by the gateway",
                &pick(|r| r.e2e_ack_events_per_s),
                "events/s",
                0,
            );
            spread_row(out, "E batch ack p50", &pick(|r| r.e2e_ack_ms.0), "ms", 1);
            spread_row(out, "E batch ack p99", &pick(|r| r.e2e_ack_ms.1), "ms", 1);
            spread_row(
                out,
                "**P / B**",
                &pick(|r| r.project_events_per_s / r.copy_rows_per_s.max(1e-9)),
                "ratio",
                3,
            );
            spread_row(
                out,
                "**E / B**",
                &pick(|r| r.e2e_events_per_s / r.copy_rows_per_s.max(1e-9)),
                "ratio",
                3,
            );
            spread_row(
                out,
                "**P2 / P**",
                &picked(|r| {
                    r.two_events_per_s
                        .map(|p2| p2 / r.project_events_per_s.max(1e-9))
                }),
                "ratio",
                3,
            );
            spread_row(
                out,
                "P: samples with a lock wait",
                &picked(|r| r.project_locks.waiting_percent()),
                "%",
                1,
            );
            spread_row(
                out,
                "P2: samples with a lock wait",
                &picked(|r| r.two_locks.as_ref().and_then(LockWaits::waiting_percent)),
                "%",
                1,
            );
            let _ = writeln!(
                out,
                "\nRatios are per round (each against that round's COPY; P2 against its P), then the median.\n"
            );
            let mut p_locks = LockWaits::default();
            let mut p2_locks = LockWaits::default();
            for round in rounds {
                p_locks.absorb(&round.project_locks);
                if let Some(locks) = &round.two_locks {
                    p2_locks.absorb(locks);
                }
            }
            if p_locks.samples + p2_locks.samples > 0 {
                let _ = writeln!(
                    out,
                    "Lock waits by kind (`wait_event`), share of all samples: P {}; P2 {}.\n",
                    p_locks.kinds_text(),
                    p2_locks.kinds_text()
                );
            }
            let _ = writeln!(out, "CPU per event (median over rounds):\n");
            cpu_table(out, rounds);
            let _ = writeln!(out);
        }
        if let Some(profile) = &engine.statements {
            profile.render(out);
        }
        if let Some(fresh) = &engine.freshness {
            let _ = writeln!(
                out,
                "Single events, one at a time on an idle system (after a `CHECKPOINT`, with no autovacuum running; {} samples): POST → 202 p50 **{:.2} ms**, p99 **{:.2} ms**; \
                 POST → visible (the projector's commit notifying `panorama_changes`, received on a LISTEN connection, \
                 the event then found stored) p50 **{:.2} ms**, p99 **{:.2} ms**.\n",
                fresh.samples,
                fresh.ack_ms.0,
                fresh.ack_ms.1,
                fresh.visible_ms.0,
                fresh.visible_ms.1
            );
        }
        if !engine.idle.is_empty() {
            let idle: Vec<String> = engine
                .idle
                .iter()
                .map(|(name, pct)| format!("{name} {pct:.1}%"))
                .collect();
            let _ = writeln!(
                out,
                "Idle CPU over {} s with no traffic, % of one core: {}.\n",
                engine.idle_seconds,
                idle.join(", ")
            );
        }
        if !engine.peak_rss_kb.is_empty() {
            let rss: Vec<String> = engine
                .peak_rss_kb
                .iter()
                .map(|(name, kb)| format!("{name} {:.1} MiB", *kb as f64 / 1024.0))
                .collect();
            let _ = writeln!(
                out,
                "Peak RSS (VmHWM) of the Panorama processes: {}.\n",
                rss.join(", ")
            );
        }
        if let Some(reads) = &engine.reads {
            reads.render(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(copy: f64, project: f64, e2e: f64) -> Round {
        Round {
            copy_rows_per_s: copy,
            project_events_per_s: project,
            e2e_events_per_s: e2e,
            e2e_ack_events_per_s: e2e * 2.0,
            e2e_ack_ms: (10.0, 20.0),
            project_cpu: BTreeMap::from([
                ("projector".to_owned(), 100.0),
                ("postgres".to_owned(), 50.0),
            ]),
            e2e_cpu: BTreeMap::from([
                ("gateway".to_owned(), 30.0),
                ("projector".to_owned(), 110.0),
            ]),
            two_events_per_s: Some(project * 1.5),
            project_locks: LockWaits {
                samples: 100,
                ..LockWaits::default()
            },
            two_locks: Some(LockWaits {
                samples: 100,
                waiting: 2,
                by_kind: BTreeMap::from([("transactionid".to_owned(), 2)]),
            }),
            ..Round::default()
        }
    }

    #[test]
    fn the_report_shows_medians_ratios_settings_and_cpu() {
        let report = Report {
            commit: "abc1234+dirty".to_owned(),
            date: "2026-01-01T00:00:00Z".to_owned(),
            cores: "2".to_owned(),
            command: "panorama-bench --quick".to_owned(),
            pg_settings: vec![
                ("fsync".to_owned(), "on".to_owned()),
                ("synchronous_commit".to_owned(), "on".to_owned()),
                ("full_page_writes".to_owned(), "on".to_owned()),
                ("commit_delay".to_owned(), "100".to_owned()),
            ],
            pg_set: vec!["commit_delay".to_owned()],
            partitions: 4,
            clients: 4,
            engines: vec![EngineReport {
                engine: "sqlite".to_owned(),
                events: 1000,
                rounds: vec![
                    round(40_000.0, 2_000.0, 1_000.0),
                    round(50_000.0, 3_000.0, 2_000.0),
                    round(45_000.0, 2_500.0, 1_500.0),
                ],
                idle: BTreeMap::from([("broker".to_owned(), 55.0)]),
                idle_seconds: 10,
                peak_rss_kb: BTreeMap::from([("projector".to_owned(), 40_960)]),
                ..EngineReport::default()
            }],
            seconds: 60.0,
        };
        let text = report.render();
        assert!(text.contains("commit: `abc1234+dirty`"), "{text}");
        assert!(text.contains("cores (`nproc`): 2"), "{text}");
        assert!(text.contains("fsync=on"), "{text}");
        assert!(text.contains("durable: the dev stack's settings"), "{text}");
        assert!(
            text.contains("| P projector alone | 2500 | 2000 | 3000 | events/s |"),
            "{text}"
        );
        assert!(
            text.contains("| **P / B** | 0.056 | 0.050 | 0.060 | ratio |"),
            "{text}"
        );
        assert!(text.contains("| projector | 100.0 | 110.0 |"), "{text}");
        assert!(text.contains("broker 55.0%"), "{text}");
        assert!(text.contains("projector 40.0 MiB"), "{text}");
        assert!(text.contains("what `make run` uses"), "{text}");
        assert!(text.contains("**commit_delay=100** (`--pg-set`)"), "{text}");
        assert!(text.contains("the event topic has 4 partitions"), "{text}");
        assert!(
            text.contains("| P2 two projectors, one group | 3750 | 3000 | 4500 | events/s |"),
            "{text}"
        );
        assert!(
            text.contains("| **P2 / P** | 1.500 | 1.500 | 1.500 | ratio |"),
            "{text}"
        );
        assert!(
            text.contains("| P: samples with a lock wait | 0.0 | 0.0 | 0.0 | % |"),
            "{text}"
        );
        assert!(
            text.contains("| P2: samples with a lock wait | 2.0 | 2.0 | 2.0 | % |"),
            "{text}"
        );
        assert!(text.contains("P none; P2 transactionid 2.0%"), "{text}");
    }

    #[test]
    fn fsync_off_is_said_out_loud() {
        let report = Report {
            pg_settings: vec![("fsync".to_owned(), "off".to_owned())],
            ..Report::default()
        };
        assert!(report.render().contains("NOT durable"));
    }
}
