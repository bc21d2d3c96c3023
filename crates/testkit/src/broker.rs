//! A Nisshi (Kafka-compatible) broker process on a free port.

use std::env;
use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tempfile::TempDir;

use crate::broker_security::{self, BrokerSecurity, BrokerTls, BrokerUser};
use crate::util::{Deadline, free_port, log_tail, run, shell_quote, spawn_watchdog};

/// The Nisshi version `scripts/ensure-nisshi.sh` installs into the cache.
const NISSHI_VERSION: &str = "0.8.1";

/// How long a broker may take to accept TCP connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many fresh ports the first start tries when another process takes
/// the free port first.
const START_ATTEMPTS: u32 = 3;

/// How long a group's first rebalance waits for more members. Nisshi's
/// default (like Kafka's `group.initial.rebalance.delay.ms`) is 3 s, which
/// every consumer test would pay; Kafka test setups use 0.
const GROUP_INITIAL_REBALANCE_DELAY: &str = "0s";

/// The broker shared by every test in this process (memory engine).
///
/// Started lazily by the first caller (blocking), then reused; killed and
/// its temp dir removed by a watchdog once the test process exits. Tests
/// share it, so each should use its own topics ([`random_name`](crate::random_name))
/// and consumer groups.
///
/// # Panics
///
/// When the broker cannot start (for example when Nisshi is not installed:
/// run `make test`). A failed start is remembered: every later call panics
/// with the same message at once instead of retrying.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    match BROKER.get_or_init(|| Broker::start(Engine::Memory).map_err(|err| format!("{err:#}"))) {
        Ok(broker) => broker,
        Err(err) => panic!("could not start the test Kafka broker (Nisshi): {err}"),
    }
}

/// Where a [`Broker`] keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// In memory (`memory://nisshi/`): fastest; nothing survives a restart.
    Memory,
    /// An SQLite database at this path (created when missing; relative paths
    /// are taken from the current directory). Survives kill -9 and
    /// [`Broker::restart`], and is left in place when the broker is dropped.
    /// The file name must consist of ASCII letters, digits, `.`, `_` and
    /// `-`.
    Sqlite(PathBuf),
    /// An SQLite database in the broker's own temp dir: survives kill -9 and
    /// [`Broker::restart`], removed when the broker is dropped.
    TempSqlite,
}

/// A Nisshi broker process listening on `127.0.0.1` on a free port.
///
/// Dropping it kills the process (and removes its temp dir). The shared
/// broker comes from [`broker()`]; [`Broker::start`] starts a private one.
#[derive(Debug)]
pub struct Broker {
    /// The nisshi binary.
    bin: PathBuf,
    /// Listener port on 127.0.0.1.
    port: u16,
    /// `--storage-engine` URL.
    storage: String,
    /// Working directory of the process (`sqlite://` paths are relative to
    /// it).
    work_dir: PathBuf,
    /// The broker's stdout and stderr, appended across restarts.
    log_path: PathBuf,
    /// The running process, `None` after [`Broker::kill`].
    child: Option<Child>,
    /// `--cert`, `--key`, `--authentication` of a secured broker.
    security_args: Vec<String>,
    /// The certificates of a broker with TLS.
    tls: Option<BrokerTls>,
    /// Holds the log (and the database of [`Engine::TempSqlite`]).
    dir: TempDir,
}

impl Broker {
    /// Starts a private broker with the given storage engine on a free port
    /// and waits until it accepts TCP connections.
    ///
    /// # Errors
    ///
    /// When the nisshi binary is missing, or the broker exits or does not
    /// accept connections within 30 s (the error includes the end of its
    /// log).
    pub fn start(engine: Engine) -> anyhow::Result<Broker> {
        let started = Instant::now();
        let bin = find_nisshi()?;
        let dir = tempfile::Builder::new()
            .prefix("panorama-nisshi-")
            .tempdir()
            .context("creating a temp dir for the broker")?;
        let (work_dir, storage) = match &engine {
            Engine::Memory => (dir.path().to_path_buf(), "memory://nisshi/".to_owned()),
            Engine::TempSqlite => (dir.path().to_path_buf(), "sqlite:///nisshi.db".to_owned()),
            Engine::Sqlite(path) => sqlite_location(path)?,
        };
        let mut broker = Broker {
            bin,
            port: 0,
            storage,
            work_dir,
            log_path: dir.path().join("nisshi.log"),
            child: None,
            security_args: Vec::new(),
            tls: None,
            dir,
        };
        for attempt in 1..=START_ATTEMPTS {
            broker.port = free_port()?;
            let log_len = fs::metadata(&broker.log_path).map_or(0, |m| m.len());
            match broker.spawn() {
                Ok(()) => break,
                Err(err) if attempt < START_ATTEMPTS && broker.port_was_taken(log_len) => {
                    tracing::warn!(
                        port = broker.port,
                        "port taken before the broker bound it, retrying: {err:#}"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        tracing::info!(
            bootstrap = %broker.bootstrap(),
            storage = %broker.storage,
            elapsed = ?started.elapsed(),
            "test Kafka broker (Nisshi) started"
        );
        Ok(broker)
    }

    /// Starts a private broker (on [`Engine::TempSqlite`], where the users'
    /// credentials live) that asks what `security` says of its clients:
    /// TLS with a test CA's certificate ([`Broker::tls`]), and a SASL/SCRAM
    /// login as one of `security.users`.
    ///
    /// The users are made while the broker still takes plaintext without
    /// a login (`nisshi user create`), then it restarts secured. Nisshi's
    /// own tools cannot reach it after that: create topics with a Kafka
    /// client (`panorama_bus::create_topics`), not [`Broker::create_topic`].
    ///
    /// # Errors
    ///
    /// As [`Broker::start`], or when a user or the certificates cannot be
    /// made.
    pub fn start_secured(security: &BrokerSecurity) -> anyhow::Result<Broker> {
        let mut broker = Broker::start(Engine::TempSqlite)?;
        for user in &security.users {
            broker.create_user(user)?;
        }
        if security.tls {
            let tls = broker_security::certificates(broker.dir.path())?;
            broker.security_args.extend([
                "--cert".to_owned(),
                tls.server_cert.display().to_string(),
                "--key".to_owned(),
                tls.server_key.display().to_string(),
            ]);
            broker.tls = Some(tls);
        }
        if !security.users.is_empty() {
            broker.security_args.push("--authentication".to_owned());
        }
        broker.restart()?;
        tracing::info!(
            bootstrap = %broker.bootstrap(),
            tls = security.tls,
            users = security.users.len(),
            "test Kafka broker secured"
        );
        Ok(broker)
    }

    /// The certificates of a broker started with TLS.
    pub fn tls(&self) -> Option<&BrokerTls> {
        self.tls.as_ref()
    }

    /// Stores `user`'s SCRAM credential with `nisshi user create`; the
    /// broker must take plaintext without a login.
    fn create_user(&self, user: &BrokerUser) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["user", "create", "--broker"])
            .arg(self.listener_url())
            .arg("--mechanism")
            .arg(user.mechanism.nisshi_name())
            .arg(&user.name)
            .arg(&user.password)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("SCHEMA_REGISTRY");
        run(
            &mut cmd,
            &format!("creating user {} on broker {}", user.name, self.bootstrap()),
        )?;
        Ok(())
    }

    /// The bootstrap address for Kafka clients: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port the broker listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates topic `name` with `partitions` partitions, with
    /// `nisshi topic create`.
    ///
    /// # Errors
    ///
    /// When the command fails, for example because the topic exists or the
    /// broker is down.
    pub fn create_topic(&self, name: &str, partitions: u32) -> anyhow::Result<()> {
        let partitions = i32::try_from(partitions).context("partition count too large")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["topic", "create", "--broker"])
            .arg(self.listener_url())
            .arg("--partitions")
            .arg(partitions.to_string())
            .arg(name)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("SCHEMA_REGISTRY");
        run(
            &mut cmd,
            &format!("creating topic {name} on broker {}", self.bootstrap()),
        )?;
        Ok(())
    }

    /// Kills the broker process with SIGKILL (as a crash would) and waits
    /// for it to exit. Does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same storage
    /// (killing it first when it is still running), and waits until it
    /// accepts TCP connections. With [`Engine::Memory`] it comes back empty.
    ///
    /// # Errors
    ///
    /// As [`Broker::start`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let started = Instant::now();
        self.spawn()?;
        tracing::info!(bootstrap = %self.bootstrap(), elapsed = ?started.elapsed(), "test Kafka broker restarted");
        Ok(())
    }

    /// The broker's log (stdout and stderr of every run), for diagnostics.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `tcp://127.0.0.1:PORT`.
    fn listener_url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Starts the process on `self.port`, with its watchdog, and waits until
    /// it accepts connections.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log
            .try_clone()
            .context("duplicating the broker log handle")?;
        let url = self.listener_url();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg(&self.storage)
            .arg("--group-initial-rebalance-delay")
            .arg(GROUP_INITIAL_REBALANCE_DELAY)
            .args(&self.security_args)
            // Also keeps nisshi's dotenv from reading the checkout's `.env`.
            .current_dir(&self.work_dir)
            .env(
                "RUST_LOG",
                env::var("PANORAMA_NISSHI_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env("NO_COLOR", "1")
            // Read by the broker when set; the test broker wants neither.
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("CLUSTER_ID")
            .env_remove("GROUP_POLL_INTERVAL")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the broker: {cmd:?}"))?;
        let pid = child.id();
        self.child = Some(child);
        self.spawn_watchdog(pid)?;
        self.wait_ready()
    }

    /// Starts the watchdog that kills process `pid` once this process
    /// exits, and then removes the temp dir. It ends early, without removing
    /// anything, when the broker process ends first (killed for a restart,
    /// or dropped).
    fn spawn_watchdog(&self, pid: u32) -> anyhow::Result<()> {
        let parent = std::process::id();
        let script = format!(
            "cd /; \
             while kill -0 {parent} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             kill -9 {pid} 2>/dev/null; \
             if ! kill -0 {parent} 2>/dev/null; then rm -rf {dir}; fi",
            dir = shell_quote(self.dir.path()),
        );
        spawn_watchdog(&script)
    }

    /// Polls the port until it accepts a TCP connection, failing when the
    /// process exits or 30 s pass.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Deadline::after(READY_TIMEOUT);
        loop {
            if let Some(status) = self.exited()? {
                self.child = None;
                bail!(
                    "the broker on port {} exited ({status}) before accepting connections\n{}",
                    self.port,
                    log_tail(&self.log_path)
                );
            }
            let timeout = deadline
                .remaining()
                .clamp(Duration::from_millis(1), Duration::from_millis(500));
            if TcpStream::connect_timeout(&addr, timeout).is_ok() {
                // Someone else may hold the port (the broker then exits
                // with "in use"): only a live broker counts.
                if self.exited()?.is_none() {
                    return Ok(());
                }
                continue;
            }
            if deadline.passed() {
                self.kill();
                bail!(
                    "the broker did not accept connections on {addr} within {READY_TIMEOUT:?}\n{}",
                    log_tail(&self.log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status when the process has exited.
    fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match &mut self.child {
            Some(child) => child.try_wait().context("checking the broker process"),
            None => bail!("the broker process is not running"),
        }
    }

    /// Whether the log written since byte `since` says the port was in use.
    fn port_was_taken(&self, since: u64) -> bool {
        let Ok(log) = fs::read(&self.log_path) else {
            return false;
        };
        let since = usize::try_from(since).unwrap_or(0).min(log.len());
        let new = String::from_utf8_lossy(&log[since..]).to_lowercase();
        new.contains("in use") || new.contains("listenerinuse")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The working directory and `--storage-engine` URL for an SQLite database
/// at `path`. Nisshi resolves `sqlite://` paths relative to its working
/// directory, so it runs in the file's directory.
fn sqlite_location(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path =
        std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))?;
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .with_context(|| {
            format!(
                "SQLite path {}: the file name must be ASCII letters, digits, `.`, `_` or `-`",
                path.display()
            )
        })?
        .to_owned();
    let dir = path
        .parent()
        .with_context(|| format!("SQLite path {} has no parent directory", path.display()))?
        .to_path_buf();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok((dir, format!("sqlite:///{name}")))
}

/// The nisshi binary: `PANORAMA_NISSHI_BIN`, else the cache that
/// `scripts/ensure-nisshi.sh` installs into, else `nisshi` on `PATH`.
fn find_nisshi() -> anyhow::Result<PathBuf> {
    if let Some(bin) = non_empty_var("PANORAMA_NISSHI_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("PANORAMA_NISSHI_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }

    let cached = cache_dir().map(|cache| {
        cache
            .join(format!("nisshi-{NISSHI_VERSION}"))
            .join("bin")
            .join("nisshi")
    });
    if let Some(bin) = cached.as_ref().filter(|bin| bin.is_file()) {
        return Ok(bin.clone());
    }

    if let Some(bin) = env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join("nisshi"))
        .find(|bin| bin.is_file())
    {
        return Ok(bin);
    }

    bail!(
        "the Nisshi broker binary was not found (looked at PANORAMA_NISSHI_BIN, {}, and PATH): \
         run `make test`, which installs it (scripts/ensure-nisshi.sh)",
        cached.map_or_else(
            || "the cache dir".to_owned(),
            |bin| bin.display().to_string()
        )
    )
}

/// `${PANORAMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/panorama}`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = non_empty_var("PANORAMA_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = non_empty_var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_var("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("panorama"))
}

/// An environment variable, treating an empty value as unset (as the
/// shell's `${VAR:-default}` does).
fn non_empty_var(name: &str) -> Option<std::ffi::OsString> {
    env::var_os(name).filter(|value| !value.is_empty())
}
