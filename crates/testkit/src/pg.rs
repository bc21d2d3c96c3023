//! A private PostgreSQL cluster: initdb into a temp dir, trust auth on
//! 127.0.0.1, a free port.

use std::env;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context as _, bail};
use tempfile::TempDir;

use crate::pg_tls::{self, CLIENT_CERT_USER, PgTls};
use crate::util::{is_root, log_tail, random_name, run, shell_quote, spawn_watchdog};

/// How many fresh ports the first start tries when another process takes
/// the free port first.
const START_ATTEMPTS: u32 = 3;

/// Seconds `pg_ctl -w` waits for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// The PostgreSQL cluster shared by every test in this process.
///
/// Started lazily by the first caller (blocking, about a second or two:
/// initdb plus start), then reused; stopped and removed by a watchdog once
/// the test process exits. Each test should take its own database with
/// [`PgCluster::create_database`].
///
/// # Panics
///
/// When the cluster cannot start (for example when PostgreSQL is not
/// installed: run `make test`). A failed start is remembered: every later
/// call panics with the same message at once instead of retrying.
pub fn postgres() -> &'static PgCluster {
    static CLUSTER: OnceLock<Result<PgCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| PgCluster::private().map_err(|err| format!("{err:#}"))) {
        Ok(cluster) => cluster,
        Err(err) => panic!("could not start the test PostgreSQL cluster: {err}"),
    }
}

/// The TLS-only PostgreSQL cluster shared by every test in this process
/// that asks for one ([`PgCluster::with_tls`]), started lazily like
/// [`postgres()`]. The plain [`postgres()`] cluster stays without TLS.
///
/// # Panics
///
/// When the cluster cannot start; every later call panics the same way.
pub fn postgres_tls() -> &'static PgCluster {
    static CLUSTER: OnceLock<Result<PgCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| PgCluster::with_tls().map_err(|err| format!("{err:#}"))) {
        Ok(cluster) => cluster,
        Err(err) => panic!("could not start the TLS test PostgreSQL cluster: {err}"),
    }
}

/// A private PostgreSQL cluster: its own data dir in a temp dir, listening on
/// 127.0.0.1 on a free port, trust authentication for the superuser
/// `postgres`, durability turned off for speed (or on, from
/// [`PgCluster::durable`]).
///
/// The shared one comes from [`postgres()`]; [`PgCluster::private`] starts
/// one for a single test (for example to [`stop`](PgCluster::stop) it without
/// disturbing the others). Dropping a `PgCluster` stops its server and
/// removes its files.
#[derive(Debug)]
pub struct PgCluster {
    /// Directory of initdb, pg_ctl, postgres and psql.
    bindir: PathBuf,
    /// The server's major version (15 for 15.14), 0 when unknown.
    major: u32,
    /// Whether the server tools run as the `postgres` user (this process
    /// runs as root, which PostgreSQL refuses).
    as_postgres: bool,
    /// TCP port on 127.0.0.1.
    port: u16,
    /// Whether the server runs with fsync, synchronous_commit and
    /// full_page_writes on.
    durable: bool,
    /// The certificates, when TCP connections must use TLS.
    tls: Option<PgTls>,
    /// The cluster's data dir (also its unix socket directory).
    data_dir: PathBuf,
    /// The server log.
    log_path: PathBuf,
    /// Holds the data dir and the log; removed on drop.
    dir: TempDir,
}

/// A database created for one test by [`PgCluster::create_database`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDatabase {
    /// The database name (random, lowercase, safe unquoted).
    pub name: String,
    /// Connection URL: `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub url: String,
}

impl PgCluster {
    /// Starts a new private cluster (initdb, then start on a free port) and
    /// waits until it accepts connections.
    ///
    /// Most tests want the shared cluster from [`postgres()`] instead; this
    /// one is for tests that stop or restart the server.
    ///
    /// # Errors
    ///
    /// When the PostgreSQL server binaries are missing, or initdb or the
    /// server fails (the error includes the end of the server log).
    pub fn private() -> anyhow::Result<PgCluster> {
        PgCluster::start_private(false, false)
    }

    /// Starts a new private cluster like [`PgCluster::private`] that takes
    /// TCP connections over TLS only (`hostssl` in pg_hba.conf: a plaintext
    /// connection is refused), with a server certificate for 127.0.0.1 and
    /// localhost signed by a test CA; [`PgCluster::tls`] gives the CA and a
    /// client certificate for [`CLIENT_CERT_USER`](crate::CLIENT_CERT_USER).
    /// Most tests want the shared one from [`postgres_tls()`].
    ///
    /// # Errors
    ///
    /// As [`PgCluster::private`], and when the certificates cannot be made.
    pub fn with_tls() -> anyhow::Result<PgCluster> {
        PgCluster::start_private(false, true)
    }

    /// Starts a new private cluster like [`PgCluster::private`], but durable:
    /// fsync, synchronous_commit and full_page_writes on, as a production
    /// server runs. For crash tests ([`PgCluster::restart_immediate`]),
    /// where a commit the server acknowledged must survive the crash.
    ///
    /// # Errors
    ///
    /// As [`PgCluster::private`].
    pub fn durable() -> anyhow::Result<PgCluster> {
        PgCluster::start_private(true, false)
    }

    /// Starts a private cluster, durable or not, TLS-only or not.
    fn start_private(durable: bool, tls: bool) -> anyhow::Result<PgCluster> {
        let started = Instant::now();
        let bindir = find_bindir()?;
        let as_postgres = is_root();

        // When the server runs as `postgres`, everything it touches must be
        // reachable by that user: a dir directly under /tmp (not under a
        // TMPDIR that may live in root's home), owned by postgres.
        let mut builder = tempfile::Builder::new();
        builder.prefix("panorama-pg-");
        let dir = if as_postgres {
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir()
        }
        .context("creating a temp dir for the PostgreSQL cluster")?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 755 {}", dir.path().display()))?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("postgres.log");
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        if as_postgres {
            fs::create_dir(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(dir.path()),
                "giving the cluster's temp dir to the postgres user (this process runs as root)",
            )?;
        }

        let major = server_major(&bindir);
        let mut cluster = PgCluster {
            bindir,
            major,
            as_postgres,
            port: 0,
            durable,
            tls: None,
            data_dir,
            log_path,
            dir,
        };
        cluster.initdb()?;
        if tls {
            let client_dir = cluster.dir.path().join("tls");
            cluster.tls = Some(pg_tls::install(
                &cluster.data_dir,
                &client_dir,
                as_postgres,
            )?);
        }
        // Before the server starts, so that it is stopped even if this
        // process dies while waiting for it.
        cluster.spawn_watchdog()?;

        for attempt in 1..=START_ATTEMPTS {
            cluster.port = crate::util::free_port()?;
            let log_len = fs::metadata(&cluster.log_path).map_or(0, |m| m.len());
            match cluster.start() {
                Ok(()) => break,
                Err(err) if attempt < START_ATTEMPTS && cluster.port_was_taken(log_len) => {
                    tracing::warn!(
                        port = cluster.port,
                        "port taken before PostgreSQL bound it, retrying: {err:#}"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        if cluster.tls.is_some() {
            cluster
                .psql("postgres", &format!("CREATE ROLE {CLIENT_CERT_USER} LOGIN"))
                .context("creating the client certificate's role")?;
        }

        tracing::info!(
            port = cluster.port,
            durable,
            dir = %cluster.dir.path().display(),
            tls,
            elapsed = ?started.elapsed(),
            "test PostgreSQL cluster started"
        );
        Ok(cluster)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL of `database` as the superuser:
    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new empty database with a random name (`panorama_` + 10
    /// random characters), owned by `postgres`.
    ///
    /// On PostgreSQL 15 and later it copies the template with
    /// `STRATEGY = FILE_COPY`, about twice as fast as the default here
    /// (durability is off, so the checkpoints it takes are cheap).
    ///
    /// # Errors
    ///
    /// When psql cannot run or `CREATE DATABASE` fails.
    pub fn create_database(&self) -> anyhow::Result<TestDatabase> {
        let name = random_name("panorama");
        let strategy = if self.major >= 15 {
            " STRATEGY = FILE_COPY"
        } else {
            ""
        };
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\"{strategy}"))
            .with_context(|| format!("creating test database {name}"))?;
        let url = self.url(&name);
        Ok(TestDatabase { name, url })
    }

    /// Runs `sql` in `database` with psql (`-X -A -t`, stop on the first
    /// error) and returns its standard output: unaligned rows, `|`
    /// between columns, no headers.
    ///
    /// # Errors
    ///
    /// When psql cannot run or exits with an error (the error includes its
    /// output).
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let mut cmd = Command::new(self.bindir.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .args(["-U", "postgres", "-d", database, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGOPTIONS")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGPASSFILE");
        if let Some(tls) = &self.tls {
            cmd.env("PGSSLMODE", "verify-ca")
                .env("PGSSLROOTCERT", &tls.root_cert);
        }
        let out = run(
            &mut cmd,
            &format!("psql on database {database} at port {}", self.port),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server (`pg_ctl stop -m fast`, waiting until it is down).
    /// The port and data are kept for [`start`](PgCluster::start).
    ///
    /// Stopping the shared cluster from [`postgres()`] breaks every other
    /// test running at the same time: use [`PgCluster::private`] for that.
    ///
    /// # Errors
    ///
    /// When pg_ctl fails, for example because the server is not running.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECS,
            "-s",
            "stop",
        ]);
        run(&mut cmd, "stopping the test PostgreSQL cluster")
            .map_err(|err| err.context(log_tail(&self.log_path)))?;
        Ok(())
    }

    /// Starts the server (again) on the same port and data dir, waiting
    /// until it accepts connections (`pg_ctl start -w`).
    ///
    /// # Errors
    ///
    /// When the server does not come up (the error includes the end of the
    /// server log), for example because it is already running or another
    /// process took the port.
    pub fn start(&self) -> anyhow::Result<()> {
        let durability = if self.durable { "on" } else { "off" };
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={socket_dir} \
             -c fsync={durability} -c synchronous_commit={durability} \
             -c full_page_writes={durability} \
             -c max_connections=300 -c shared_buffers=128MB -c max_locks_per_transaction=256",
            port = self.port,
            socket_dir = shell_quote(&self.data_dir),
        );
        if self.tls.is_some() {
            options.push(' ');
            options.push_str(pg_tls::SERVER_OPTIONS);
        }
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_path)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-s", "-o"])
            .arg(options)
            .arg("start");
        run(
            &mut cmd,
            &format!("starting the test PostgreSQL cluster on port {}", self.port),
        )
        .map_err(|err| err.context(log_tail(&self.log_path)))?;
        Ok(())
    }

    /// Crashes the server: `pg_ctl stop -m immediate` (every server process
    /// quits at once, without a checkpoint, as after a power cut of the
    /// process tree), waiting until it is down. The next
    /// [`start`](PgCluster::start) runs crash recovery from the WAL.
    ///
    /// # Errors
    ///
    /// When pg_ctl fails, for example because the server is not running.
    pub fn stop_immediate(&self) -> anyhow::Result<()> {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECS,
            "-s",
            "stop",
        ]);
        run(&mut cmd, "stopping the test PostgreSQL cluster immediately")
            .map_err(|err| err.context(log_tail(&self.log_path)))?;
        Ok(())
    }

    /// A crash and a restart: [`stop_immediate`](PgCluster::stop_immediate),
    /// then [`start`](PgCluster::start) on the same port, which returns once
    /// crash recovery is done and the server accepts connections.
    ///
    /// # Errors
    ///
    /// As `stop_immediate` and `start`.
    pub fn restart_immediate(&self) -> anyhow::Result<()> {
        self.stop_immediate()?;
        self.start()
    }

    /// The certificates of a TLS-only cluster ([`PgCluster::with_tls`]);
    /// `None` for the others.
    pub fn tls(&self) -> Option<&PgTls> {
        self.tls.as_ref()
    }

    /// Whether this cluster runs with fsync, synchronous_commit and
    /// full_page_writes on ([`PgCluster::durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The pid of the running postmaster (the server's parent process),
    /// from `postmaster.pid` in the data dir; `None` when the server is
    /// not running.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        // A server killed outright leaves its pid file behind.
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log (every start and stop appends to it).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Runs initdb into the data dir.
    fn initdb(&self) -> anyhow::Result<()> {
        let mut cmd = self.pg_command("initdb");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(&mut cmd, "initdb for the test PostgreSQL cluster")?;
        Ok(())
    }

    /// A command running the server tool `tool` from the bin dir, as the
    /// `postgres` user when this process runs as root, from the temp dir (so
    /// that the working directory is reachable by that user).
    fn pg_command(&self, tool: &str) -> Command {
        let path = self.bindir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// The shell words of `pg_command(tool)`, for the watchdog script.
    fn pg_shell_command(&self, tool: &str) -> String {
        let path = shell_quote(self.bindir.join(tool));
        if self.as_postgres {
            format!("runuser -u postgres -- {path}")
        } else {
            path
        }
    }

    /// Starts the watchdog that stops the server (`-m immediate`) and removes
    /// the temp dir once this process exits. It also ends, doing nothing,
    /// when the data dir disappears (the cluster was dropped).
    fn spawn_watchdog(&self) -> anyhow::Result<()> {
        let data = shell_quote(&self.data_dir);
        let dir = shell_quote(self.dir.path());
        let script = format!(
            "cd /; \
             while kill -0 {parent} 2>/dev/null && [ -d {data} ]; do sleep 0.5; done; \
             if [ -d {data} ]; then {pg_ctl} -D {data} -m immediate -w -s stop; rm -rf {dir}; fi",
            parent = std::process::id(),
            pg_ctl = self.pg_shell_command("pg_ctl"),
        );
        spawn_watchdog(&script)
    }

    /// Whether the server log written since byte `since` says the port was
    /// already in use.
    fn port_was_taken(&self, since: u64) -> bool {
        let Ok(log) = fs::read(&self.log_path) else {
            return false;
        };
        let since = usize::try_from(since).unwrap_or(0).min(log.len());
        let new = String::from_utf8_lossy(&log[since..]);
        new.contains("could not bind") || new.contains("already in use")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-s", "stop"]);
        // Fails harmlessly when the server is already stopped.
        let _ = cmd.stdin(std::process::Stdio::null()).output();
    }
}

/// The directory of the PostgreSQL server binaries: `PANORAMA_PG_BINDIR`,
/// else `pg_config --bindir` when it holds initdb, else the newest
/// `/usr/lib/postgresql/<major>/bin`.
fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = env::var_os("PANORAMA_PG_BINDIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        if !has_server_tools(&dir) {
            bail!(
                "PANORAMA_PG_BINDIR={} does not hold the PostgreSQL server binaries (initdb, pg_ctl, psql); run `make test`, which installs PostgreSQL and sets it",
                dir.display()
            );
        }
        return Ok(dir);
    }

    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_tools(&dir) {
                return Ok(dir);
            }
        }
    }

    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = major_version(&entry.file_name())?;
            let bin = entry.path().join("bin");
            has_server_tools(&bin).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    if let Some((_, bin)) = newest {
        return Ok(bin);
    }

    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: not in PANORAMA_PG_BINDIR, \
         `pg_config --bindir` or /usr/lib/postgresql/*/bin. Run `make test`, which installs PostgreSQL, \
         or set PANORAMA_PG_BINDIR"
    )
}

/// The major version of the server tools in `bindir`, from
/// `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.14 (Debian ...)"); 0 when it
/// cannot be read.
fn server_major(bindir: &Path) -> u32 {
    let Ok(out) = Command::new(bindir.join("pg_ctl"))
        .arg("--version")
        .output()
    else {
        return 0;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_once("(PostgreSQL) ")
        .and_then(|(_, version)| {
            let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

/// Whether `dir` holds initdb, pg_ctl and psql.
fn has_server_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "psql"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// The major version a `/usr/lib/postgresql` entry names ("15", "9.6").
fn major_version(name: &OsStr) -> Option<(u32, u32)> {
    let name = name.to_str()?;
    let (major, minor) = name.split_once('.').unwrap_or((name, "0"));
    Some((major.parse().ok()?, minor.parse().ok()?))
}
