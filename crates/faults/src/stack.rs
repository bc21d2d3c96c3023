//! The stack under test: a durable PostgreSQL, a broker on its SQLite
//! engine and four `panorama serve` processes (`--role all`, `gateway`,
//! `projector`, `api`), each on its own port on 127.0.0.1, with JSON logs
//! in the run directory. The harness kills, crashes, stops and restarts
//! them; a supervisor restarts any that exit on their own.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use panorama_testkit::{
    Broker, Engine, PgCluster, TestDatabase, free_port, kill_when_parent_exits,
};

use crate::error::{Error, Result};
use crate::schedule::{CrashPoint, Service};

/// The probability a crash point is given when armed: the process goes
/// through it a few times before it aborts there.
const CRASH_PROBABILITY: &str = "0.3";

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(100);

/// A process is restarted no sooner than this after its last start, so one
/// that cannot start (its database down, say) does not spin.
const RESPAWN_BACKOFF: Duration = Duration::from_secs(1);

/// How long `/readyz` may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the stack is made of.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The `panorama` binary.
    pub bin: PathBuf,
    /// Where logs go.
    pub run_dir: PathBuf,
    /// Partitions of the event topic.
    pub partitions: u32,
    /// How long the services may take to turn ready at start.
    pub ready_timeout: Duration,
}

/// A serve process exit that the harness did not cause by a kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Which service.
    pub service: Service,
    /// Which start of it (1 for the first).
    pub generation: u64,
    /// The crash point it was started with, if any.
    pub armed: Option<CrashPoint>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    /// Its exit code, when it exited.
    pub code: Option<i32>,
}

impl Exit {
    /// Whether it aborted (SIGABRT), as a crash point makes it.
    pub fn aborted(&self) -> bool {
        self.signal == Some(6)
    }
}

/// One serve process.
#[derive(Debug)]
struct ServeProcess {
    service: Service,
    port: u16,
    child: Option<Child>,
    /// Starts so far.
    generation: u64,
    /// When the current (or last) process was started.
    spawned_at: Instant,
    /// The crash point the current process was started with.
    armed: Option<CrashPoint>,
    /// Held down by a fault: the supervisor leaves it alone.
    held: bool,
    log_path: PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The running stack.
#[derive(Debug)]
pub struct Stack {
    bin: PathBuf,
    run_dir: PathBuf,
    pg: Arc<PgCluster>,
    database: TestDatabase,
    broker: Arc<Mutex<Broker>>,
    bootstrap: String,
    /// The event topic.
    pub topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The projectors' consumer group.
    pub group: String,
    partitions: u32,
    token: String,
    services: Mutex<Vec<ServeProcess>>,
    exits: Mutex<Vec<Exit>>,
    http: reqwest::Client,
}

impl Stack {
    /// Starts PostgreSQL (durable) and the broker (SQLite), runs `panorama
    /// migrate`, `topics` and `token create`, starts the four serve
    /// processes and waits until each answers `/readyz` with 200.
    ///
    /// # Errors
    ///
    /// When any of that fails or times out.
    pub async fn start(options: &StackOptions) -> Result<Stack> {
        if !options.bin.is_file() {
            return Err(Error::Setup(format!(
                "no panorama binary at {} (build it: cargo build --release -p panorama, or pass --panorama-bin)",
                options.bin.display()
            )));
        }
        let bin =
            fs::canonicalize(&options.bin).map_err(Error::io("finding the panorama binary"))?;
        let pg = tokio::task::spawn_blocking(PgCluster::durable)
            .await?
            .map_err(|error| Error::Setup(format!("PostgreSQL: {error:#}")))?;
        let database = pg
            .create_database()
            .map_err(|error| Error::Setup(format!("PostgreSQL: {error:#}")))?;
        let broker = tokio::task::spawn_blocking(|| Broker::start(Engine::TempSqlite))
            .await?
            .map_err(|error| Error::Setup(format!("broker: {error:#}")))?;
        let bootstrap = broker.bootstrap();
        tracing::info!(
            postgres = pg.port(),
            broker = %bootstrap,
            durable = pg.is_durable(),
            "postgres and broker started"
        );
        let mut stack = Stack {
            bin,
            run_dir: options.run_dir.clone(),
            pg: Arc::new(pg),
            database,
            broker: Arc::new(Mutex::new(broker)),
            bootstrap,
            topic: "panorama.contact-events.v1".to_owned(),
            dlq_topic: "panorama.contact-events.dlq.v1".to_owned(),
            group: "panorama-projector".to_owned(),
            partitions: options.partitions,
            token: String::new(),
            services: Mutex::new(Vec::new()),
            exits: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(READY_TIMEOUT)
                .build()
                .map_err(|error| Error::Setup(format!("HTTP client: {error}")))?,
        };
        stack.setup_command(&["migrate"])?;
        stack.setup_command(&["topics"])?;
        let token =
            stack.setup_command(&["token", "create", "--role", "admin", "--name", "faults"])?;
        stack.token = token.trim().to_owned();
        if stack.token.is_empty() {
            return Err(Error::Setup(
                "panorama token create printed no secret".to_owned(),
            ));
        }
        {
            let mut services = stack.lock_services();
            for service in Service::EVERY {
                let port = free_port().map_err(|error| Error::Setup(format!("{error:#}")))?;
                services.push(ServeProcess {
                    service,
                    port,
                    child: None,
                    generation: 0,
                    spawned_at: Instant::now(),
                    armed: None,
                    held: false,
                    log_path: options.run_dir.join(format!("{}.log", service.role())),
                });
            }
            for process in services.iter_mut() {
                stack.spawn(process, None)?;
            }
        }
        stack
            .wait_ready(&Service::EVERY, options.ready_timeout)
            .await
            .map_err(Error::Setup)?;
        Ok(stack)
    }

    /// The admin token's secret.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The database URL.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// The broker's bootstrap address.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The PostgreSQL cluster.
    pub fn pg(&self) -> Arc<PgCluster> {
        Arc::clone(&self.pg)
    }

    /// The broker.
    pub fn broker(&self) -> Arc<Mutex<Broker>> {
        Arc::clone(&self.broker)
    }

    /// Base URLs of the services that take events: the all-in-one
    /// process, then the gateway.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.lock_services()
            .iter()
            .filter(|process| process.service.is_gateway())
            .map(|process| format!("http://127.0.0.1:{}", process.port))
            .collect()
    }

    /// The pid of `service`'s running process.
    pub fn pid(&self, service: Service) -> Option<u32> {
        self.lock_services()
            .iter()
            .find(|process| process.service == service)
            .and_then(|process| process.child.as_ref().map(Child::id))
    }

    /// Kills `services` with SIGKILL and holds them down (the supervisor
    /// does not restart them) until [`Stack::restart`].
    pub fn kill(&self, services: &[Service]) {
        let mut processes = self.lock_services();
        for process in processes
            .iter_mut()
            .filter(|process| services.contains(&process.service))
        {
            process.held = true;
            if let Some(mut child) = process.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts `services` again (after [`Stack::kill`]), with crash point
    /// `armed` when given, and lets the supervisor watch them again.
    /// Returns when they were started.
    ///
    /// # Errors
    ///
    /// When a process cannot be started.
    pub fn restart(&self, services: &[Service], armed: Option<CrashPoint>) -> Result<Instant> {
        let mut processes = self.lock_services();
        for process in processes
            .iter_mut()
            .filter(|process| services.contains(&process.service))
        {
            if let Some(mut child) = process.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            self.spawn(process, armed)?;
            process.held = false;
        }
        Ok(Instant::now())
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`) to `service`'s process.
    ///
    /// # Errors
    ///
    /// When it is not running or `kill` fails.
    pub fn signal(&self, service: Service, signal: &str) -> Result<()> {
        let pid = self
            .pid(service)
            .ok_or_else(|| Error::Process(format!("{service} is not running")))?;
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .status()
            .map_err(|error| Error::Process(format!("kill -s {signal} {pid}: {error}")))?;
        if !status.success() {
            return Err(Error::Process(format!(
                "kill -s {signal} {pid} failed ({status})"
            )));
        }
        Ok(())
    }

    /// Restarts every serve process that exited on its own (a crash point,
    /// or a crash of the product), and returns those exits. Processes held
    /// down by a fault are left alone.
    ///
    /// # Errors
    ///
    /// When a process cannot be started again.
    pub fn supervise(&self) -> Result<Vec<Exit>> {
        let mut new_exits = Vec::new();
        let mut processes = self.lock_services();
        for process in processes.iter_mut().filter(|process| !process.held) {
            if let Some(child) = &mut process.child {
                let status = child.try_wait().map_err(|error| {
                    Error::Process(format!("checking {}: {error}", process.service))
                })?;
                let Some(status) = status else {
                    continue;
                };
                let exit = Exit {
                    service: process.service,
                    generation: process.generation,
                    armed: process.armed,
                    signal: status.signal(),
                    code: status.code(),
                };
                tracing::warn!(
                    service = %process.service,
                    generation = exit.generation,
                    signal = ?exit.signal,
                    code = ?exit.code,
                    armed = ?exit.armed.map(CrashPoint::name),
                    "serve process exited; restarting it"
                );
                process.child = None;
                new_exits.push(exit);
            }
            if process.child.is_none() && process.spawned_at.elapsed() >= RESPAWN_BACKOFF {
                self.spawn(process, None)?;
            }
        }
        drop(processes);
        self.lock_exits().extend(new_exits.iter().cloned());
        Ok(new_exits)
    }

    /// Every exit the supervisor saw so far.
    pub fn exits(&self) -> Vec<Exit> {
        self.lock_exits().clone()
    }

    /// When `service`'s current process was started, and which start it is.
    pub fn started(&self, service: Service) -> (Instant, u64) {
        self.lock_services()
            .iter()
            .find(|process| process.service == service)
            .map_or((Instant::now(), 0), |process| {
                (process.spawned_at, process.generation)
            })
    }

    /// Whether `service` answers `/readyz` with 200.
    pub async fn is_ready(&self, service: Service) -> bool {
        let port = self
            .lock_services()
            .iter()
            .find(|process| process.service == service && process.child.is_some())
            .map(|process| process.port);
        let Some(port) = port else {
            return false;
        };
        self.http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == reqwest::StatusCode::OK)
    }

    /// Waits until every one of `services` answers `/readyz` with 200,
    /// restarting crashed processes meanwhile, and returns how long that
    /// took.
    ///
    /// # Errors
    ///
    /// Names the services not ready when `timeout` passes.
    pub async fn wait_ready(
        &self,
        services: &[Service],
        timeout: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if let Err(error) = self.supervise() {
                return Err(error.to_string());
            }
            let mut waiting = Vec::new();
            for service in services {
                if !self.is_ready(*service).await {
                    waiting.push(service.role());
                }
            }
            if waiting.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                return Err(format!(
                    "{} not ready {} s after the restart",
                    waiting.join(", "),
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops every serve process (SIGTERM, then SIGKILL after 10 s) and
    /// copies the PostgreSQL and broker logs into the run directory. The
    /// database and broker stop when the stack is dropped.
    pub async fn shutdown(&self) {
        for service in Service::EVERY {
            // A stopped process takes no SIGTERM until it continues.
            let _ = self.signal(service, "CONT");
            let _ = self.signal(service, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running = self
                .lock_services()
                .iter_mut()
                .filter_map(|process| process.child.as_mut())
                .map(|child| matches!(child.try_wait(), Ok(None)))
                .filter(|running| *running)
                .count();
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.kill(&Service::EVERY);
        for (from, name) in [
            (self.pg.log_path().to_path_buf(), "postgres.log"),
            (self.lock_broker().log_path().to_path_buf(), "broker.log"),
        ] {
            if let Err(error) = fs::copy(&from, self.run_dir.join(name)) {
                tracing::warn!(from = %from.display(), %error, "could not copy a log");
            }
        }
    }

    /// Runs `panorama ARGS` with the stack's environment, logging its
    /// output to `setup.log`, and returns its standard output.
    fn setup_command(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.run_dir)
            .stdin(Stdio::null());
        self.environment(&mut command);
        let output = command.output().map_err(|error| {
            Error::Setup(format!("running panorama {}: {error}", args.join(" ")))
        })?;
        let mut log = self.open_log(&self.run_dir.join("setup.log"))?;
        let _ = writeln!(log, "$ panorama {}", args.join(" "));
        let _ = log.write_all(&output.stderr);
        if !output.status.success() {
            return Err(Error::Setup(format!(
                "panorama {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The environment of every `panorama` command: the stack's settings,
    /// and none of this shell's other `PANORAMA_*` variables.
    fn environment(&self, command: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PANORAMA_") {
                command.env_remove(key);
            }
        }
        command
            .env("PANORAMA_DATABASE_URL", &self.database.url)
            .env("PANORAMA_KAFKA_BROKERS", &self.bootstrap)
            .env("PANORAMA_TOPIC", &self.topic)
            .env("PANORAMA_DLQ_TOPIC", &self.dlq_topic)
            .env("PANORAMA_CONSUMER_GROUP", &self.group)
            .env("PANORAMA_TOPIC_PARTITIONS", self.partitions.to_string())
            // One local broker: no replicas to wait for.
            .env("PANORAMA_TOPIC_REPLICATION_FACTOR", "1")
            .env("PANORAMA_TOPIC_MIN_INSYNC_REPLICAS", "1")
            .env("PANORAMA_LOG_FORMAT", "json")
            .env("PANORAMA_LOG", "info")
            .env("PANORAMA_DB_POOL_SIZE", "8")
            // Background reads of the API would only add noise.
            .env("PANORAMA_INSIGHTS_REFRESH_SECS", "0");
    }

    /// Starts `process` (its log appended to), armed with `armed`.
    fn spawn(&self, process: &mut ServeProcess, armed: Option<CrashPoint>) -> Result<()> {
        let mut log = self.open_log(&process.log_path)?;
        let mut command = Command::new(&self.bin);
        command
            .args(["serve", "--role", process.service.role()])
            .current_dir(&self.run_dir)
            .stdin(Stdio::null());
        self.environment(&mut command);
        command.env("PANORAMA_HTTP_ADDR", format!("127.0.0.1:{}", process.port));
        if let Some(point) = armed {
            command.env(
                "PANORAMA_CRASH_POINTS",
                format!("{}={CRASH_PROBABILITY}", point.name()),
            );
        }
        let stderr = log
            .try_clone()
            .map_err(Error::io(format!("opening {}", process.log_path.display())))?;
        let stdout = log
            .try_clone()
            .map_err(Error::io(format!("opening {}", process.log_path.display())))?;
        command.stdout(stdout).stderr(stderr);
        let child = command.spawn().map_err(|error| {
            Error::Process(format!(
                "starting panorama serve --role {}: {error}",
                process.service
            ))
        })?;
        let pid = child.id();
        kill_when_parent_exits(pid).map_err(|error| Error::Process(format!("{error:#}")))?;
        process.generation += 1;
        process.spawned_at = Instant::now();
        process.armed = armed;
        process.child = Some(child);
        // A line of the harness's own between the process's JSON lines,
        // itself JSON, so the log stays one JSON object per line.
        let marker = serde_json::json!({
            "harness": "started",
            "service": process.service.role(),
            "generation": process.generation,
            "pid": pid,
            "crash_points": armed.map(CrashPoint::name),
            "timestamp": chrono::Utc::now().to_rfc3339(),
        });
        let _ = writeln!(log, "{marker}");
        tracing::info!(
            service = %process.service,
            pid,
            generation = process.generation,
            armed = ?armed.map(CrashPoint::name),
            "serve process started"
        );
        Ok(())
    }

    fn open_log(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io(format!("opening {}", path.display())))
    }

    fn lock_services(&self) -> MutexGuard<'_, Vec<ServeProcess>> {
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_exits(&self) -> MutexGuard<'_, Vec<Exit>> {
        self.exits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_broker(&self) -> MutexGuard<'_, Broker> {
        self.broker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
