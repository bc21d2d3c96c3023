//! The benchmark's run: for each broker engine a fresh stack, the
//! interleaved rounds, freshness, idle CPU and (on the last engine) the
//! reads; then the report.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::options::{BenchArgs, BrokerChoice, PgSetting, Settings};
use crate::phases;
use crate::reads;
use crate::report::{EngineReport, Report};
use crate::stack::{BrokerEngine, Stack};
use crate::statements::{self, Profile};
use crate::workload::Workload;

/// Customer numbers each workload may use before the next one's start.
const CUSTOMER_SPAN: u64 = 250_000;

/// Hands out workloads with their own event ids and customers.
#[derive(Debug, Default)]
struct Workloads {
    issued: u64,
}

impl Workloads {
    fn next(&mut self, count: u64, customers: u64, heavy: u64) -> Workload {
        self.issued += 1;
        Workload {
            namespace: self.issued + u64::from(std::process::id()) * 10_000,
            count,
            customers,
            customer_base: self.issued * CUSTOMER_SPAN,
            heavy,
        }
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `git rev-parse --short HEAD`, with "+dirty" when tracked files changed
/// or untracked ones exist (read without touching the index).
fn commit() -> String {
    let head = command_output("git", &["rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown".to_owned());
    let changed = Command::new("git")
        .args(["diff-index", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|status| !status.success());
    let untracked = command_output("git", &["ls-files", "--others", "--exclude-standard"])
        .is_some_and(|out| !out.is_empty());
    if changed || untracked {
        format!("{head}+dirty")
    } else {
        head
    }
}

fn pgbench_path() -> PathBuf {
    std::env::var_os("PANORAMA_PG_BINDIR")
        .map(|dir| PathBuf::from(dir).join("pgbench"))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("pgbench"))
}

/// Runs the benchmark and writes the report.
pub(crate) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    let bin = std::fs::canonicalize(&args.panorama_bin).with_context(|| {
        format!(
            "no panorama binary at {} (cargo build --release -p panorama)",
            args.panorama_bin.display()
        )
    })?;
    let started = Instant::now();
    let mut pg_set = args.pg_set.clone();
    if args.pg_statements {
        let (name, value) = statements::PRELOAD;
        pg_set.retain(|setting| setting.name != name);
        pg_set.push(PgSetting {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    let mut report = Report {
        commit: commit(),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        cores: command_output("nproc", &[]).unwrap_or_else(|| "unknown".to_owned()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        clients: args.clients,
        pg_set: pg_set.iter().map(|s| s.name.clone()).collect(),
        partitions: crate::stack::PARTITIONS,
        ..Report::default()
    };
    let engines = match settings.broker {
        BrokerChoice::Sqlite => vec![BrokerEngine::Sqlite],
        BrokerChoice::Memory => vec![BrokerEngine::Memory],
        BrokerChoice::Both => vec![BrokerEngine::Sqlite, BrokerEngine::Memory],
    };
    let mut workloads = Workloads::default();
    let mut failed = false;
    for (index, engine) in engines.iter().enumerate() {
        let run_dir = tempfile::Builder::new()
            .prefix("panorama-bench-")
            .tempdir()?;
        eprintln!(
            "panorama-bench: broker on {}: starting PostgreSQL, the broker and panorama serve (logs in {})",
            engine.name(),
            run_dir.path().display()
        );
        let mut stack = Stack::start(*engine, &bin, run_dir.path(), &pg_set).await?;
        if report.pg_settings.is_empty() {
            report.pg_settings = stack.pg_settings(&pg_set).await?;
        }
        let mut engine_report = EngineReport {
            engine: engine.name().to_owned(),
            events: settings.events,
            idle_seconds: settings.idle_seconds,
            ..EngineReport::default()
        };
        let with_reads = !args.skip_reads && index + 1 == engines.len();
        let outcome = measure(
            &mut stack,
            &settings,
            args,
            with_reads,
            &mut workloads,
            &mut engine_report,
        )
        .await;
        if let Err(error) = outcome {
            eprintln!(
                "panorama-bench: broker on {}: {error:#} (logs: {}, broker log {})",
                engine.name(),
                run_dir.path().display(),
                stack.broker_log().display()
            );
            engine_report.failure = Some(format!("{error:#}"));
            failed = true;
        }
        stack.note_peak_rss();
        engine_report.peak_rss_kb = stack
            .peak_rss_kb
            .iter()
            .map(|(role, kb)| (role.name().to_owned(), *kb))
            .collect();
        stack.shutdown().await;
        report.engines.push(engine_report);
        drop(stack);
        if failed {
            // Keep the logs of a failed run.
            let kept = run_dir.keep();
            eprintln!("panorama-bench: logs kept in {}", kept.display());
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    let text = report.render();
    println!("{text}");
    std::fs::write(&args.output, &text)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("panorama-bench: wrote {}", args.output.display());
    if failed {
        anyhow::bail!("a phase failed (see the report)");
    }
    Ok(())
}

async fn measure(
    stack: &mut Stack,
    settings: &Settings,
    args: &BenchArgs,
    with_reads: bool,
    workloads: &mut Workloads,
    out: &mut EngineReport,
) -> anyhow::Result<()> {
    let client: Client = stack.connect().await?;
    let clients = args.clients;
    let mut profile = if args.pg_statements {
        statements::prepare(&client).await?;
        Some(Profile::default())
    } else {
        None
    };
    let engine = stack.engine.name();
    for number in 1..=settings.rounds {
        let customers = (settings.events / 10).max(1);
        let p_load = workloads.next(settings.events, customers, 0);
        let e_load = workloads.next(settings.events, customers, 0);
        let p2_load =
            (!args.skip_two_projectors).then(|| workloads.next(settings.events, customers, 0));
        eprintln!(
            "panorama-bench: {engine}: round {number} of {}: P, B, E{} with {} events each",
            settings.rounds,
            if p2_load.is_some() { ", P2" } else { "" },
            settings.events
        );
        let round = phases::round(
            stack,
            &client,
            (p_load, e_load, p2_load),
            clients,
            profile.as_mut(),
        )
        .await?;
        eprintln!(
            "panorama-bench: {engine}: round {number}: B {:.0} rows/s, P {:.0} events/s, E {:.0} events/s{}",
            round.copy_rows_per_s,
            round.project_events_per_s,
            round.e2e_events_per_s,
            round
                .two_events_per_s
                .map(|p2| format!(", P2 {p2:.0} events/s"))
                .unwrap_or_default()
        );
        out.rounds.push(round);
        out.statements.clone_from(&profile);
    }
    if let Some(profile) = out.statements.as_mut() {
        profile.read_tables(&client).await?;
    }
    if settings.freshness_samples > 0 {
        eprintln!(
            "panorama-bench: {engine}: freshness, {} single events",
            settings.freshness_samples
        );
        let load = workloads.next(
            settings.freshness_samples,
            settings.freshness_samples.div_ceil(4),
            0,
        );
        out.freshness = Some(phases::freshness(stack, &client, load).await?);
    }
    if settings.idle_seconds > 0 {
        eprintln!(
            "panorama-bench: {engine}: idle CPU over {} s",
            settings.idle_seconds
        );
        out.idle = phases::idle_cpu(stack, settings.idle_seconds).await;
    }
    if with_reads && settings.read_events > 0 {
        eprintln!(
            "panorama-bench: {engine}: reads: posting {} events of {} customers, then wrk and pgbench",
            settings.read_events, settings.read_customers
        );
        let load = workloads.next(settings.read_events, settings.read_customers, 3);
        out.reads = Some(
            reads::run(
                stack,
                &client,
                load,
                clients,
                settings.read_seconds,
                (&args.wrk, &pgbench_path()),
            )
            .await?,
        );
    }
    Ok(())
}
