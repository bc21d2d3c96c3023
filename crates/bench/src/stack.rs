//! The system under measurement: a durable private PostgreSQL (the test
//! kit's, as the dev stack runs it: fsync, synchronous_commit and
//! full_page_writes on), a Nisshi broker, and `panorama serve` as one
//! process per role (gateway, projector, api) on 127.0.0.1, so that each
//! one's CPU and memory can be read from /proc.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use panorama_testkit::{
    Broker, Engine, PgCluster, TestDatabase, free_port, kill_when_parent_exits,
};

use crate::options::PgSetting;
use crate::procstat::{self, Probe};

/// The event topic, consumer group and dead-letter topic (the defaults).
pub(crate) const TOPIC: &str = "panorama.contact-events.v1";
const DLQ_TOPIC: &str = "panorama.contact-events.dlq.v1";
pub(crate) const GROUP: &str = "panorama-projector";
/// Partitions of the event topic: the most projectors that share the work.
pub(crate) const PARTITIONS: i32 = 4;

/// How long a serve process may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The PostgreSQL settings the report prints.
const SHOWN_SETTINGS: [&str; 9] = [
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
    "server_version",
];

/// Which broker storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum BrokerEngine {
    /// SQLite file, as `make run` (scripts/dev-stack.sh) starts it.
    Sqlite,
    /// In memory.
    Memory,
}

impl BrokerEngine {
    /// Its `--storage-engine` scheme.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BrokerEngine::Sqlite => "sqlite",
            BrokerEngine::Memory => "memory",
        }
    }
}

/// A role of `panorama serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Ingest.
    Gateway,
    /// Consume and project.
    Projector,
    /// Agent reads.
    Api,
    /// A second projector in the same group, run only by P2.
    SecondProjector,
}

impl Role {
    /// The roles the stack starts with.
    pub(crate) const ALL: [Role; 3] = [Role::Gateway, Role::Projector, Role::Api];
    /// Every process the stack may run.
    pub(crate) const EVERY: [Role; 4] = [
        Role::Gateway,
        Role::Projector,
        Role::Api,
        Role::SecondProjector,
    ];

    /// Its name in logs and the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::SecondProjector => "projector-2",
            role => role.serve_role(),
        }
    }

    /// Its `--role` value.
    pub(crate) fn serve_role(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Projector | Role::SecondProjector => "projector",
            Role::Api => "api",
        }
    }
}

#[derive(Debug)]
struct ServeProcess {
    port: u16,
    child: Option<Child>,
}

/// The running stack.
#[derive(Debug)]
pub(crate) struct Stack {
    bin: PathBuf,
    run_dir: PathBuf,
    /// The broker engine.
    pub(crate) engine: BrokerEngine,
    /// The database.
    pub(crate) database: TestDatabase,
    /// The broker's bootstrap address.
    pub(crate) bootstrap: String,
    /// An admin token.
    pub(crate) token: String,
    serve: BTreeMap<Role, ServeProcess>,
    /// The highest peak RSS seen of each role's processes, kB.
    pub(crate) peak_rss_kb: BTreeMap<Role, u64>,
    broker_pid: Option<u32>,
    http: reqwest::Client,
    // Dropped last: the broker, then PostgreSQL.
    broker: Broker,
    /// The PostgreSQL cluster.
    pub(crate) pg: PgCluster,
}

impl Stack {
    /// Starts PostgreSQL with `pg_set` applied, the broker, runs `panorama
    /// migrate`, `topics` and `token create`, and starts every role of
    /// [`Role::ALL`].
    pub(crate) async fn start(
        engine: BrokerEngine,
        bin: &Path,
        run_dir: &Path,
        pg_set: &[PgSetting],
    ) -> anyhow::Result<Stack> {
        let settings = pg_set.to_vec();
        let pg = tokio::task::spawn_blocking(move || {
            let pg = PgCluster::durable().context("starting PostgreSQL")?;
            apply_pg_settings(&pg, &settings)?;
            anyhow::Ok(pg)
        })
        .await??;
        let database = pg.create_database().context("creating the database")?;
        let broker_engine = match engine {
            BrokerEngine::Sqlite => Engine::TempSqlite,
            BrokerEngine::Memory => Engine::Memory,
        };
        let broker = tokio::task::spawn_blocking(move || Broker::start(broker_engine))
            .await?
            .context("starting the broker")?;
        let bootstrap = broker.bootstrap();
        let broker_pid = procstat::find_process("nisshi", &format!("127.0.0.1:{}", broker.port()));
        if broker_pid.is_none() {
            eprintln!(
                "panorama-bench: the broker's process was not found: its CPU is not reported"
            );
        }
        let mut stack = Stack {
            bin: bin.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            engine,
            database,
            bootstrap,
            token: String::new(),
            serve: BTreeMap::new(),
            peak_rss_kb: BTreeMap::new(),
            broker_pid,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            broker,
            pg,
        };
        stack.command(&["migrate"])?;
        stack.command(&["topics"])?;
        stack.token = stack
            .command(&["token", "create", "--role", "admin", "--name", "bench"])?
            .trim()
            .to_owned();
        if stack.token.is_empty() {
            bail!("panorama token create printed no secret");
        }
        for role in Role::ALL {
            stack.spawn(role)?;
        }
        for role in Role::ALL {
            stack.wait_ready(role).await?;
        }
        Ok(stack)
    }

    /// Base URL of `role`'s process.
    pub(crate) fn url(&self, role: Role) -> String {
        let port = self.serve.get(&role).map_or(0, |process| process.port);
        format!("http://127.0.0.1:{port}")
    }

    /// The pid of `role`'s running process.
    pub(crate) fn pid(&self, role: Role) -> Option<u32> {
        self.serve.get(&role)?.child.as_ref().map(Child::id)
    }

    /// Everything whose CPU is measured: the serve processes, PostgreSQL
    /// (postmaster and backends) and the broker.
    pub(crate) fn probes(&self) -> Vec<(String, Probe)> {
        let mut probes: Vec<(String, Probe)> = Role::EVERY
            .iter()
            .filter_map(|role| Some((role.name().to_owned(), Probe::Process(self.pid(*role)?))))
            .collect();
        if let Some(pid) = self.pg.postmaster_pid() {
            probes.push(("postgres".to_owned(), Probe::Tree(pid)));
        }
        if let Some(pid) = self.broker_pid {
            probes.push(("broker".to_owned(), Probe::Process(pid)));
        }
        probes
    }

    /// Starts `role`'s process (on a fresh port the first time).
    pub(crate) fn spawn(&mut self, role: Role) -> anyhow::Result<()> {
        let port = match self.serve.get(&role) {
            Some(process) => process.port,
            None => free_port()?,
        };
        let log = self.open_log(&format!("{}.log", role.name()))?;
        let mut command = Command::new(&self.bin);
        command
            .args(["serve", "--role", role.serve_role()])
            .current_dir(&self.run_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.environment(&mut command);
        command.env("PANORAMA_HTTP_ADDR", format!("127.0.0.1:{port}"));
        let child = command
            .spawn()
            .with_context(|| format!("starting panorama serve --role {}", role.name()))?;
        kill_when_parent_exits(child.id())?;
        self.serve.insert(
            role,
            ServeProcess {
                port,
                child: Some(child),
            },
        );
        Ok(())
    }

    /// Stops `role`'s process (SIGTERM, SIGKILL after 10 s), keeping its
    /// peak RSS.
    pub(crate) async fn stop(&mut self, role: Role) {
        self.note_peak_rss();
        let Some(mut child) = self
            .serve
            .get_mut(&role)
            .and_then(|process| process.child.take())
        else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Records the peak RSS of every running serve process.
    pub(crate) fn note_peak_rss(&mut self) {
        for role in Role::EVERY {
            if let Some(kb) = self.pid(role).and_then(procstat::peak_rss_kb) {
                let peak = self.peak_rss_kb.entry(role).or_insert(0);
                *peak = (*peak).max(kb);
            }
        }
    }

    /// Waits until `role` answers `/readyz` with 200.
    pub(crate) async fn wait_ready(&mut self, role: Role) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.url(role));
        let started = Instant::now();
        loop {
            if let Some(process) = self.serve.get_mut(&role) {
                if let Some(child) = process.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        bail!(
                            "panorama serve --role {} exited ({status}); see its log",
                            role.name()
                        );
                    }
                }
            }
            let ready = self
                .http
                .get(&url)
                .send()
                .await
                .is_ok_and(|response| response.status() == reqwest::StatusCode::OK);
            if ready {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "panorama serve --role {} not ready after {READY_TIMEOUT:?}",
                    role.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new connection to the database.
    pub(crate) async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.database.url, tokio_postgres::NoTls)
                .await
                .context("connecting to the database")?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The sum of the topic's high watermarks: the log end.
    pub(crate) async fn log_end(&self) -> anyhow::Result<i64> {
        let bootstrap = self.bootstrap.clone();
        let marks = tokio::task::spawn_blocking(move || {
            panorama_bus::high_watermarks(bootstrap.as_str(), TOPIC, Duration::from_secs(10))
        })
        .await??;
        Ok(marks.iter().map(|(_, high)| high).sum())
    }

    /// The PostgreSQL settings the report shows: [`SHOWN_SETTINGS`] and
    /// the names of `extra`.
    pub(crate) async fn pg_settings(
        &self,
        extra: &[PgSetting],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let client = self.connect().await?;
        let names: Vec<String> = SHOWN_SETTINGS
            .iter()
            .map(|name| (*name).to_owned())
            .chain(extra.iter().map(|setting| setting.name.clone()))
            .collect();
        let rows = client
            .query(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY($1) ORDER BY name",
                &[&names],
            )
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// The directory logs go to.
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Stops every serve process.
    pub(crate) async fn shutdown(&mut self) {
        for role in Role::EVERY {
            self.stop(role).await;
        }
    }

    fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.run_dir)
            .stdin(Stdio::null());
        self.environment(&mut command);
        let output = command
            .output()
            .with_context(|| format!("running panorama {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "panorama {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The environment of every `panorama` command: the dev stack's
    /// settings (scripts/dev-stack.sh), and none of this shell's other
    /// `PANORAMA_*` variables.
    fn environment(&self, command: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PANORAMA_") {
                command.env_remove(key);
            }
        }
        command
            .env("PANORAMA_DATABASE_URL", &self.database.url)
            .env("PANORAMA_KAFKA_BROKERS", &self.bootstrap)
            .env("PANORAMA_TOPIC", TOPIC)
            .env("PANORAMA_DLQ_TOPIC", DLQ_TOPIC)
            .env("PANORAMA_CONSUMER_GROUP", GROUP)
            .env("PANORAMA_TOPIC_PARTITIONS", PARTITIONS.to_string())
            .env("PANORAMA_TOPIC_REPLICATION_FACTOR", "1")
            .env("PANORAMA_TOPIC_MIN_INSYNC_REPLICAS", "1")
            .env("PANORAMA_DEFAULT_REGION", "NL")
            .env("PANORAMA_LOG_FORMAT", "json")
            .env("PANORAMA_LOG", "info,panorama::http=warn")
            // One token drives every request here: its per-token quota
            // (1,000 requests/s by default) would be what the read phase
            // measures, not the routes.
            .env("PANORAMA_TOKEN_RATE", "0")
            .env("PANORAMA_TOKEN_CONCURRENCY", "0");
    }

    fn open_log(&self, name: &str) -> anyhow::Result<File> {
        let path = self.run_dir.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    /// The broker's log, for a failure's explanation.
    pub(crate) fn broker_log(&self) -> &Path {
        self.broker.log_path()
    }
}

/// Applies `settings` with `ALTER SYSTEM`, then reloads the server's
/// configuration, or restarts the server when one of them takes effect
/// only at start; fails when one does not take effect (the test kit gives
/// some on the server's command line, which wins over `ALTER SYSTEM`).
fn apply_pg_settings(pg: &PgCluster, settings: &[PgSetting]) -> anyhow::Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    for setting in settings {
        pg.psql("postgres", &setting.alter_system())
            .with_context(|| format!("--pg-set {}={}", setting.name, setting.value))?;
    }
    // The names are checked by `parse_pg_setting`: letters, digits, `_`, `.`.
    let names: Vec<String> = settings
        .iter()
        .map(|setting| format!("'{}'", setting.name))
        .collect();
    let names = names.join(", ");
    let needs_restart = pg.psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_settings WHERE name IN ({names}) AND context = 'postmaster'"
        ),
    )?;
    if needs_restart.trim() == "0" {
        pg.psql("postgres", "SELECT pg_reload_conf()")?;
    } else {
        pg.stop()?;
        pg.start()?;
    }
    // A reload is a signal: new sessions see it once the server handled it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pending = pg.psql(
            "postgres",
            &format!(
                "SELECT string_agg(name || ' (' || source || ')', ', ') FROM pg_settings
                 WHERE name IN ({names}) AND source <> 'configuration file'"
            ),
        )?;
        let pending = pending.trim();
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("--pg-set did not take effect for {pending}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
