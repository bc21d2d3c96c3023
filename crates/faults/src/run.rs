//! One run: start the stack, send the traffic while injecting the faults,
//! settle, check, stop everything, and sum it up.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::{self, ClientOptions, Progress};
use crate::error::{Error, Result};
use crate::inject::{Injector, InjectorReport};
use crate::options::Config;
use crate::schedule::{self, PlannedFault};
use crate::stack::{Stack, StackOptions};
use crate::summary::{Findings, Millis, Summary};
use crate::verify;

/// The shortest span events are spread over when there are faults.
const MIN_SPAN: Duration = Duration::from_secs(30);

/// How often the run reports progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Runs `config` and returns its summary (also written to
/// `summary.json` in the run directory and to `--json-out`). Ctrl-C or
/// SIGTERM stops the run and every process it started.
///
/// # Errors
///
/// When the harness itself fails (the stack cannot be set up, a process
/// cannot be restarted, a file cannot be written), or is interrupted. A
/// run that finds loss or duplication is not an error: its summary says
/// so.
pub async fn run(config: &Config) -> Result<Summary> {
    let started = Instant::now();
    fs::create_dir_all(&config.run_dir).map_err(Error::io(format!(
        "creating the run directory {}",
        config.run_dir.display()
    )))?;
    let run_dir =
        fs::canonicalize(&config.run_dir).map_err(Error::io("finding the run directory"))?;
    tracing::info!(run_dir = %run_dir.display(), seed = config.seed, "fault run starting; logs in the run directory");
    let schedule = schedule::plan(&config.counts, config.seed);
    let plan = serde_json::to_string_pretty(&schedule).unwrap_or_default();
    fs::write(run_dir.join("schedule.json"), plan).map_err(Error::io("writing schedule.json"))?;
    let rate = events_per_second(config, &schedule);
    tracing::info!(
        events = config.events,
        faults = schedule.len(),
        rate = ?rate,
        "traffic and fault schedule planned"
    );

    let stack_options = StackOptions {
        bin: config.bin.clone(),
        run_dir: run_dir.clone(),
        partitions: config.partitions,
        ready_timeout: config.ready_timeout,
    };
    let stack = tokio::select! {
        stack = Stack::start(&stack_options) => stack?,
        () = interrupted() => return Err(Error::Interrupted),
    };
    tracing::info!(
        gateways = ?stack.gateway_urls(),
        database = %stack.database_url(),
        broker = %stack.bootstrap(),
        setup_ms = started.elapsed().as_millis() as u64,
        "stack ready"
    );
    let outcome = tokio::select! {
        outcome = exercise(config, &stack, schedule, rate, &run_dir) => outcome,
        () = interrupted() => Err(Error::Interrupted),
    };
    stack.shutdown().await;
    drop(stack);
    let mut summary = outcome?;
    summary.run_dir = run_dir.display().to_string();
    summary.duration_s = round(started.elapsed().as_secs_f64());
    let json = serde_json::to_string(&summary).unwrap_or_default();
    fs::write(run_dir.join("summary.json"), &json).map_err(Error::io("writing summary.json"))?;
    if let Some(path) = &config.json_out {
        fs::write(path, &json).map_err(Error::io(format!("writing {}", path.display())))?;
    }
    Ok(summary)
}

/// The traffic and the faults, then settling and the checks.
async fn exercise(
    config: &Config,
    stack: &Stack,
    schedule: Vec<PlannedFault>,
    rate: Option<f64>,
    run_dir: &std::path::Path,
) -> Result<Summary> {
    let deadline = Instant::now() + config.cap;
    let progress = Progress::new(config.events);
    let client_options = ClientOptions {
        urls: stack.gateway_urls(),
        token: stack.token().to_owned(),
        clients: config.clients,
        rate,
        seed: config.seed,
        events: config.events,
        persons: config.persons,
        deadline,
    };
    let injector = Injector {
        stack,
        schedule,
        durations: config.durations,
        progress: progress.clone(),
        events: config.events,
        ready_timeout: config.ready_timeout,
    };
    let traffic_done = AtomicBool::new(false);
    let traffic = async {
        let report = client::run(client_options, progress.clone(), run_dir).await;
        traffic_done.store(true, Ordering::Relaxed);
        report
    };
    let watch = async {
        let mut last_report = Instant::now();
        while !traffic_done.load(Ordering::Relaxed) {
            stack.supervise()?;
            if last_report.elapsed() >= PROGRESS_EVERY {
                tracing::info!(events_sent = progress.made(), of = config.events, "traffic");
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok::<(), Error>(())
    };
    let (client, injected, ()) = tokio::try_join!(traffic, injector.run(run_dir), watch)?;
    tracing::info!(
        acknowledged = client.acknowledged.len(),
        attempted = client.attempted.len(),
        "traffic over; waiting for the stack to settle"
    );
    let settled = verify::settle(stack, config.settle_timeout).await?;
    tracing::info!(
        settled = settled.settled,
        took_ms = settled.took.as_millis() as u64,
        "checking"
    );
    let checked = verify::check(
        stack.database_url(),
        &client.attempted,
        &client.acknowledged,
        run_dir,
    )
    .await?;
    Ok(summarize(
        config, stack, &client, &injected, &settled, &checked,
    ))
}

/// The summary of a finished run.
fn summarize(
    config: &Config,
    stack: &Stack,
    client: &client::ClientReport,
    injected: &InjectorReport,
    settled: &verify::Settled,
    checked: &verify::Checked,
) -> Summary {
    let unplanned_exits = stack
        .exits()
        .iter()
        .filter(|exit| !(exit.armed.is_some() && exit.aborted()))
        .count();
    let mut summary = Summary {
        seed: config.seed,
        events_attempted: client.attempted.len() as u64,
        events_acknowledged: client.acknowledged.len() as u64,
        requests: client.requests,
        requests_retried: client.retried,
        answers: client.answers.clone(),
        faults: injected.by_kind.clone(),
        fault_targets: injected.by_target.clone(),
        crash_points_not_reached: injected.crash_points_not_reached,
        unplanned_exits: u32::try_from(unplanned_exits).unwrap_or(u32::MAX),
        checked: checked.clone(),
        restart_to_ready_ms: Millis::of(&injected.restarts_ms),
        settle_ms: settled.took.as_millis() as u64,
        events_per_s: round(
            client.acknowledged.len() as f64 / client.elapsed.as_secs_f64().max(0.001),
        ),
        ..Summary::default()
    };
    let findings = Findings {
        lost: checked.lost,
        duplicated: checked.duplicated,
        unexpected: checked.unexpected,
        mismatched_aggregates: checked.mismatched_aggregates,
        offsets_behind: settled.offsets_behind,
        settled: settled.settled,
        unacknowledged: client.unacknowledged,
        rejected_requests: client.rejected,
        wrong_answers: client.wrong_answers,
    };
    let mut other = injected.failures.clone();
    if client.unsent > 0 {
        other.push(format!(
            "{} events never sent: the run reached its --duration cap",
            client.unsent
        ));
    }
    summary.judge(&findings, &other);
    summary
}

/// The client's pace: as given, or the events spread over the time the
/// schedule needs (no limit without faults, or with `--rate 0`).
fn events_per_second(config: &Config, schedule: &[PlannedFault]) -> Option<f64> {
    match config.rate {
        Some(rate) if rate > 0.0 => Some(rate),
        Some(_) => None,
        None if schedule.is_empty() => None,
        None => {
            let span = schedule::span(schedule, &config.durations).max(MIN_SPAN);
            Some(config.events as f64 / span.as_secs_f64())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::warn!("interrupted; stopping every process of the run");
}

/// Two decimals.
fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
