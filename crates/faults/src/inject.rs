//! The fault injector: goes through the schedule while the client runs,
//! each fault when the client has sent its share of the events, waits for
//! the stack to recover from it, and lets the client go on to the next.
//! Every fault is written to `faults.jsonl` in the run directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::Progress;
use crate::error::{Error, Result};
use crate::schedule::{CrashPoint, Fault, FaultDurations, PlannedFault, Service};
use crate::stack::Stack;

/// How far past a fault's point the client may always go while the fault
/// is under way, as a share of the run's events: every fault meets
/// traffic, even when the client had already reached the next fault's
/// point.
const OVERLAP: f64 = 0.02;

/// How long an armed crash point may take to be reached.
const CRASH_POINT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often waits check on the processes.
const TICK: Duration = Duration::from_millis(100);

/// What the injector needs.
#[derive(Debug)]
pub struct Injector<'a> {
    /// The stack.
    pub stack: &'a Stack,
    /// The faults, in order.
    pub schedule: Vec<PlannedFault>,
    /// Lock and stop durations.
    pub durations: FaultDurations,
    /// The client's progress.
    pub progress: Progress,
    /// Events the client sends in all.
    pub events: u64,
    /// How long services may take to turn ready after a fault.
    pub ready_timeout: Duration,
}

/// One injected fault, as `faults.jsonl` records it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// Its place in the schedule.
    pub index: usize,
    /// Kind and target.
    pub fault: String,
    /// Wall-clock time it started.
    pub at: String,
    /// Events the client had sent by then.
    pub events_sent: u64,
    /// Processes it hit.
    pub pids: Vec<u32>,
    /// What happened, in words.
    pub detail: String,
    /// From the restart to every affected service ready, when the fault
    /// restarted something and it recovered.
    pub restart_to_ready_ms: Option<u64>,
    /// Whether the fault was carried out as planned.
    pub injected: bool,
    /// Why the stack did not recover, when it did not.
    pub failure: Option<String>,
}

/// What the injector did.
#[derive(Debug, Default)]
pub struct InjectorReport {
    /// Every fault, in order.
    pub records: Vec<FaultRecord>,
    /// Faults injected, by kind.
    pub by_kind: BTreeMap<String, u32>,
    /// Faults injected, by kind and target.
    pub by_target: BTreeMap<String, u32>,
    /// Restart-to-ready times, in milliseconds.
    pub restarts_ms: Vec<u64>,
    /// Crash points armed but not reached in time.
    pub crash_points_not_reached: u32,
    /// Recoveries that did not happen in time.
    pub failures: Vec<String>,
}

impl Injector<'_> {
    /// Runs the schedule, logging each fault to `faults.jsonl` in
    /// `run_dir`.
    ///
    /// # Errors
    ///
    /// When the harness cannot act on the stack (a process that cannot be
    /// started, PostgreSQL or the broker that cannot be restarted, a log
    /// that cannot be written).
    pub async fn run(self, run_dir: &Path) -> Result<InjectorReport> {
        let mut log = File::create(run_dir.join("faults.jsonl"))
            .map(BufWriter::new)
            .map_err(Error::io("creating faults.jsonl"))?;
        let mut report = InjectorReport::default();
        for (position, planned) in self.schedule.iter().enumerate() {
            self.progress.allow(self.allowance(position));
            let due = self.share(planned.at);
            self.until(self.progress.reached(due)).await?;
            self.keep_traffic_going(position);
            tracing::info!(
                fault = %planned.fault.label(),
                index = planned.index,
                events_sent = self.progress.made(),
                "injecting fault"
            );
            let record = self.inject(planned).await?;
            if let Some(failure) = &record.failure {
                tracing::error!(fault = %record.fault, %failure, "the stack did not recover");
                report.failures.push(format!("{}: {failure}", record.fault));
            } else {
                tracing::info!(fault = %record.fault, ready_ms = ?record.restart_to_ready_ms, detail = %record.detail, "fault over");
            }
            if record.injected {
                *report
                    .by_kind
                    .entry(planned.fault.kind().to_owned())
                    .or_default() += 1;
                *report.by_target.entry(planned.fault.label()).or_default() += 1;
            } else if matches!(planned.fault, Fault::CrashPoint(_)) {
                report.crash_points_not_reached += 1;
            }
            report.restarts_ms.extend(record.restart_to_ready_ms);
            let line = serde_json::to_string(&record).unwrap_or_default();
            writeln!(log, "{line}")
                .and_then(|()| log.flush())
                .map_err(Error::io("writing faults.jsonl"))?;
            report.records.push(record);
        }
        self.progress.allow(self.events);
        Ok(report)
    }

    /// Events the client may send while fault `position` is pending or
    /// recovering: up to the next fault's point, so traffic goes on through
    /// every fault but never runs past a fault that has not happened.
    fn allowance(&self, position: usize) -> u64 {
        self.schedule
            .get(position + 1)
            .map_or(self.events, |next| self.share(next.at))
    }

    /// Lets the client go on during fault `position`: up to the next
    /// fault's point, and at least a little past where it is now.
    fn keep_traffic_going(&self, position: usize) {
        let ahead = self.progress.made() + self.share(OVERLAP);
        self.progress
            .allow(self.allowance(position).max(ahead).min(self.events));
    }

    /// `fraction` of the run's events.
    fn share(&self, fraction: f64) -> u64 {
        ((self.events as f64) * fraction.clamp(0.0, 1.0)).ceil() as u64
    }

    /// Awaits `future`, restarting crashed services meanwhile.
    async fn until<F: Future>(&self, future: F) -> Result<F::Output> {
        let mut future = std::pin::pin!(future);
        loop {
            match tokio::time::timeout(TICK, &mut future).await {
                Ok(output) => return Ok(output),
                Err(_) => {
                    self.stack.supervise()?;
                }
            }
        }
    }

    /// Sleeps `duration` (pacing a fault), restarting crashed services
    /// meanwhile.
    async fn pause(&self, duration: Duration) -> Result<()> {
        self.until(tokio::time::sleep(duration)).await
    }

    /// Injects one fault and waits for the stack to recover.
    async fn inject(&self, planned: &PlannedFault) -> Result<FaultRecord> {
        let mut record = FaultRecord {
            index: planned.index,
            fault: planned.fault.label(),
            at: chrono::Utc::now().to_rfc3339(),
            events_sent: self.progress.made(),
            pids: Vec::new(),
            detail: String::new(),
            restart_to_ready_ms: None,
            injected: true,
            failure: None,
        };
        let down = Duration::from_millis(planned.down_ms);
        let affected: Vec<Service> = match planned.fault {
            Fault::ServiceKill(target) => {
                let services = target.services();
                record.pids = services.iter().filter_map(|s| self.stack.pid(*s)).collect();
                self.stack.kill(&services);
                self.pause(down).await?;
                self.stack.restart(&services, None)?;
                record.detail = format!("kill -9, restarted after {} ms", planned.down_ms);
                services
            }
            Fault::CrashPoint(point) => {
                self.crash_point(point, &mut record).await?;
                vec![point.service()]
            }
            Fault::PgRestart => {
                record.pids.extend(self.stack.pg().postmaster_pid());
                let pg = self.stack.pg();
                tokio::task::spawn_blocking(move || pg.stop_immediate())
                    .await?
                    .map_err(|error| Error::Process(format!("{error:#}")))?;
                self.pause(down).await?;
                let pg = self.stack.pg();
                let started = Instant::now();
                tokio::task::spawn_blocking(move || pg.start())
                    .await?
                    .map_err(|error| Error::Process(format!("{error:#}")))?;
                record.detail = format!(
                    "pg_ctl stop -m immediate, down {} ms, crash recovery took {} ms",
                    planned.down_ms,
                    started.elapsed().as_millis()
                );
                Service::EVERY.to_vec()
            }
            Fault::BrokerKill => {
                let broker = self.stack.broker();
                tokio::task::spawn_blocking(move || {
                    broker
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .kill();
                })
                .await?;
                self.pause(down).await?;
                let broker = self.stack.broker();
                tokio::task::spawn_blocking(move || {
                    broker
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .restart()
                })
                .await?
                .map_err(|error| Error::Process(format!("{error:#}")))?;
                record.detail = format!(
                    "kill -9 of the broker, restarted after {} ms",
                    planned.down_ms
                );
                Service::EVERY.to_vec()
            }
            Fault::BackendKill => {
                let terminated = self.terminate_projector_backends().await?;
                record.pids.extend(self.stack.pid(Service::Projector));
                record.detail = format!("{terminated} backends of the projector terminated");
                Service::EVERY.to_vec()
            }
            Fault::PgLock => {
                self.hold_lock().await?;
                record.detail = format!(
                    "LOCK TABLE events IN ACCESS EXCLUSIVE MODE held {} ms",
                    self.durations.lock.as_millis()
                );
                Service::EVERY.to_vec()
            }
            Fault::ProjectorStop => {
                record.pids.extend(self.stack.pid(Service::Projector));
                self.stack.signal(Service::Projector, "STOP")?;
                self.pause(self.durations.stop).await?;
                self.stack.signal(Service::Projector, "CONT")?;
                record.detail = format!(
                    "SIGSTOP for {} ms, then SIGCONT",
                    self.durations.stop.as_millis()
                );
                Service::EVERY.to_vec()
            }
        };
        match self.stack.wait_ready(&affected, self.ready_timeout).await {
            Ok(took) => {
                let took = match planned.fault {
                    // From the restart after the abort.
                    Fault::CrashPoint(point) => self.stack.started(point.service()).0.elapsed(),
                    _ => took,
                };
                record.restart_to_ready_ms = Some(took.as_millis() as u64);
            }
            Err(failure) => record.failure = Some(failure),
        }
        Ok(record)
    }

    /// Restarts the crash point's service with the point armed, waits for
    /// it to abort there (the supervisor then restarts it unarmed), or
    /// kills it and restarts it unarmed when it does not in time.
    async fn crash_point(&self, point: CrashPoint, record: &mut FaultRecord) -> Result<()> {
        let service = point.service();
        self.stack.kill(&[service]);
        self.stack.restart(&[service], Some(point))?;
        let (_, generation) = self.stack.started(service);
        record.pids.extend(self.stack.pid(service));
        let deadline = Instant::now() + CRASH_POINT_TIMEOUT;
        loop {
            self.stack.supervise()?;
            // The point is only reached through traffic.
            self.keep_traffic_going(record.index);
            let exit = self
                .stack
                .exits()
                .into_iter()
                .find(|exit| exit.service == service && exit.generation == generation);
            if let Some(exit) = exit {
                record.injected = exit.aborted();
                record.detail = if exit.aborted() {
                    format!(
                        "aborted at {} (armed with PANORAMA_CRASH_POINTS)",
                        point.name()
                    )
                } else {
                    format!(
                        "armed with {}, exited otherwise (signal {:?}, code {:?})",
                        point.name(),
                        exit.signal,
                        exit.code
                    )
                };
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stack.kill(&[service]);
                self.stack.restart(&[service], None)?;
                record.injected = false;
                record.detail = format!(
                    "armed with {}, not reached within {} s: killed and restarted without it",
                    point.name(),
                    CRASH_POINT_TIMEOUT.as_secs()
                );
                return Ok(());
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// Terminates the projector process's PostgreSQL connections, which
    /// carry `application_name` `panorama-projector`.
    async fn terminate_projector_backends(&self) -> Result<u64> {
        let client = crate::verify::connect(self.stack.database_url()).await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND application_name = 'panorama-projector'",
                &[],
            )
            .await?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Holds an exclusive lock on `events` for the lock duration.
    async fn hold_lock(&self) -> Result<()> {
        let mut client = crate::verify::connect(self.stack.database_url()).await?;
        let transaction = client.transaction().await?;
        transaction
            .batch_execute(
                "SET LOCAL lock_timeout = '10s'; LOCK TABLE events IN ACCESS EXCLUSIVE MODE",
            )
            .await?;
        self.pause(self.durations.lock).await?;
        transaction.rollback().await?;
        Ok(())
    }
}
