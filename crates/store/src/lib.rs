//! The only crate that talks to PostgreSQL: schema migrations, the
//! projection writer (one transaction per batch, offsets included) and the
//! read queries behind the agent API, the change log behind live updates,
//! the audit log, and the API tokens.
//!
//! Where to look:
//!
//! - `projection/`: how an event folds into the history. `projection/mod.rs`
//!   lists the steps of a batch in order, and each step is a file beside
//!   it: `events.rs`, `identity/` (resolution, merges, conflicts, locks),
//!   `view/` (aggregates, cases, tasks), `changes.rs` (the change log),
//!   `outbox.rs` (the change feed's outbox);
//!   with the batch transaction, the offsets and the dead letters. Manual
//!   merges and unmerges from the admin API are in
//!   `projection/identity/manual.rs`, beside the steps they reuse.
//! - `read/`: the queries over what the projection wrote: profile,
//!   timeline, identity, the agent's view, the change log's listener, and
//!   the export of everything held about a customer.
//! - `relay.rs`: the change feed relay's lease, claims and recovery.
//! - `migrate.rs`, `replay.rs`, `access.rs`, `audit.rs`: the schema,
//!   rebuilding the projection in a fresh schema, API tokens, the audit log.
//! - `tls/`: TLS to PostgreSQL, as the URL's libpq parameters ask.

mod access;
mod audit;
mod fingerprint;
mod migrate;
mod privacy;
mod projection;
mod read;
mod relay;
mod replay;
mod tls;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use panorama_core::identity::IdentityRules;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use access::{Principal, SECRET_PREFIX, Secret, TokenInfo, looks_like_secret, token_hash};
pub use audit::{AuditCursor, AuditQuery, AuditRecord};
pub use fingerprint::fingerprint;
pub use privacy::{
    ErasureInput, ErasureOutcome, ErasureState, ErasureStatus, KEY_BYTES, RetentionPolicy,
    RetentionReport, Subject, SubjectKeys,
};
pub use projection::{
    BatchOutcome, BatchTransaction, CHANGES_CHANNEL, CUSTOMER_ATTRIBUTE_PREFIX, ChangeKind, Claim,
    ConflictAction, ConflictOutcome, DeadLetter, MergeOutcome, MergeRecord, PartitionOffset,
    TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID, UnmergeOutcome, ViewRules,
};
pub use projection::{ChangeDetail, ChangeIdentifier};
pub use read::{
    CarriedIdentifier, CaseQuery, CaseView, ChangeListener, ChannelSummary, ConflictCursor,
    ConflictQuery, ConflictView, ConsentView, ContactWindows, CustomerChange, CustomerExport,
    CustomerIdentity, CustomerProfile, EXPORT_CHUNK_BYTES, EXPORT_FORMAT, EXPORT_PAGE_ROWS,
    ExportAlias, ExportAttribute, ExportCase, ExportChange, ExportChannel, ExportConflict,
    ExportConsent, ExportCustomer, ExportDailyContacts, ExportDeadLetter, ExportEvent,
    ExportFeedback, ExportHistory, ExportIdentifier, ExportSeparation, ExportStream, ExportTask,
    FeedbackSummary, HistoryEntry, IdentifierView, IdentityIdentifier, IdentityProfile, Insights,
    InsightsQuery, MetricSummary, Signals, TaskQuery, TaskView, TimelineCursor, TimelineEntry,
    TimelineQuery, TimelineRows, TraitView,
};
pub use relay::{OutboxRecord, RelayLease};
pub use replay::{CARRIED_OVER_TABLES, Switched, valid_schema_name};
pub use tls::{SslMode, Transport, check_database_url};
pub use webhooks::{
    AttemptRecord, ChangeToDeliver, DeliveredOutcome, DeliveryQuery, DisablePolicy, DueDelivery,
    NewWebhook, RecordedAttempt, WEBHOOK_SECRET_PREFIX, WebhookAttempt, WebhookDelivery,
    WebhookSecret, WebhookSubscription,
};

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be had from the pool.
    #[error("database unavailable: {}", describe_pool(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    /// The database URL does not parse.
    #[error("invalid database url: {0}")]
    Config(String),
    /// The schema is not in a state this version understands.
    #[error("migration: {0}")]
    Migration(String),
    /// A live token already has this name.
    #[error("a live token named \"{0}\" exists; revoke it first")]
    TokenNameTaken(String),
    /// A token name that cannot be used.
    #[error("invalid token name: {0}")]
    InvalidTokenName(String),
    /// A token source that cannot be used.
    #[error("invalid token source: {0}")]
    InvalidTokenSource(String),
    /// A record could not be written as JSON (a customer export).
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
    /// Concurrent batches kept creating new identifiers of a batch while
    /// it decided its identity, this many rounds in a row.
    #[error("concurrent batches created the batch's new identifiers {0} times in a row")]
    IdentityContended(u32),
    /// Another consumer claimed one of the batch's partitions after the
    /// batch was read: its offsets were not stored and nothing was written.
    #[error("partitions {partitions:?} of {topic} were claimed by another consumer")]
    Fenced {
        /// The topic.
        topic: String,
        /// The partitions whose claim was lost.
        partitions: Vec<i32>,
    },
}

/// What a failed write means for whoever retries it: the projector retries
/// transient and systemic failures, isolates and dead-letters the events
/// behind record failures, and drops a fenced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database, the connection or a concurrent writer was in the way;
    /// the same work may succeed later. The label names the cause, for
    /// metrics: `connection`, `pool`, `serialization`, `deadlock`,
    /// `conflict`, `shutdown`, `timeout`, `resources`.
    Transient(&'static str),
    /// PostgreSQL refused the data of the work (a value out of range, an
    /// index entry too large, a constraint): retrying cannot help.
    Record,
    /// The work's partitions belong to another consumer now.
    Fenced,
    /// The schema, the server or this code is wrong (an undefined table, an
    /// internal error): retrying may help once someone fixes it, and no
    /// event is to blame.
    Systemic,
}

impl Failure {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Transient(cause) => cause,
            Failure::Record => "record",
            Failure::Fenced => "fenced",
            Failure::Systemic => "systemic",
        }
    }
}

impl Error {
    /// How a retrying writer should treat this error; see [`Failure`].
    pub fn failure(&self) -> Failure {
        match self {
            Error::Pool(_) => Failure::Transient("pool"),
            Error::Db(error) => classify(error),
            Error::Fenced { .. } => Failure::Fenced,
            // As a serialization failure, which it is: the batch could not
            // be ordered after the concurrent ones in time.
            Error::IdentityContended(_) => Failure::Transient("serialization"),
            Error::Config(_)
            | Error::Migration(_)
            | Error::TokenNameTaken(_)
            | Error::InvalidTokenName(_)
            | Error::InvalidTokenSource(_)
            | Error::Encode(_) => Failure::Systemic,
        }
    }

    /// Whether retrying the whole transaction may succeed: serialization
    /// failures, deadlocks, lost connections and the like.
    pub fn is_transient(&self) -> bool {
        matches!(self.failure(), Failure::Transient(_))
    }

    /// PostgreSQL's error code (SQLSTATE), when the server answered with one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db(error) => error.code().map(tokio_postgres::error::SqlState::code),
            _ => None,
        }
    }
}

/// Sorts a tokio-postgres error by its SQLSTATE class.
fn classify(error: &tokio_postgres::Error) -> Failure {
    let Some(code) = error.code() else {
        if error.is_closed() || io_error(error) {
            return Failure::Transient("connection");
        }
        // A value the client could not encode for its column type is the
        // data's fault; any other client-side error is this code's.
        if error.to_string().starts_with("error serializing parameter") {
            return Failure::Record;
        }
        return Failure::Systemic;
    };
    let code = code.code();
    match code {
        "40001" => Failure::Transient("serialization"),
        "40P01" => Failure::Transient("deadlock"),
        // An event a concurrent projector inserted after this batch
        // filtered out the existing ones.
        "23505" => Failure::Transient("conflict"),
        // Admin shutdown, crash shutdown, cannot connect now.
        "57P01" | "57P02" | "57P03" => Failure::Transient("shutdown"),
        // Statement timeout or cancel, idle-in-transaction timeout, lock
        // timeout.
        "57014" | "25P03" | "55P03" => Failure::Transient("timeout"),
        _ if code.starts_with("08") => Failure::Transient("connection"),
        // Disk full, out of memory, too many connections; I/O errors.
        _ if code.starts_with("53") || code.starts_with("58") => Failure::Transient("resources"),
        // Data exceptions, integrity constraints, program limits (index row
        // size), cardinality, and errors raised by triggers or functions.
        _ if code.starts_with("22")
            || code.starts_with("23")
            || code.starts_with("54")
            || code.starts_with("21")
            || code.starts_with("2F")
            || code.starts_with("39")
            || code == "P0001" =>
        {
            Failure::Record
        }
        _ => Failure::Systemic,
    }
}

/// Whether an I/O error lies behind `error` (a reset or timed-out socket).
fn io_error(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl Error {
    /// Whether PostgreSQL aborted the transaction for a deadlock or a
    /// serialization failure: running it again is the remedy.
    pub fn is_lock_conflict(&self) -> bool {
        matches!(
            self.failure(),
            Failure::Transient("serialization" | "deadlock")
        )
    }
}

/// Runs a transaction again, a few times with a short pause, while
/// PostgreSQL aborts it for a deadlock or a serialization failure. For
/// requests an agent waits on; the projector retries whole batches itself.
pub(crate) async fn retry_lock_conflicts<T>(mut run: impl AsyncFnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0u32;
    loop {
        match run().await {
            Err(error) if attempt < 4 && error.is_lock_conflict() => {
                attempt += 1;
                tracing::debug!(%error, attempt, "transaction aborted by a lock conflict, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// The names of the event types that are contacts with the customer
/// ([`panorama_core::EventType::is_customer_contact`]), for queries that
/// count or match contacts in SQL.
pub(crate) fn contact_types() -> Vec<&'static str> {
    panorama_core::EventType::ALL
        .iter()
        .filter(|event_type| event_type.is_customer_contact())
        .map(|event_type| event_type.as_str())
        .collect()
}

/// tokio-postgres prints server errors as just "db error", and others
/// without their cause ("error performing TLS handshake"); the server's
/// message and code, or the causes, are what an operator needs.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A pool's failure to open a connection, described as [`describe`] does
/// (deadpool prints the connection error without its cause).
fn describe_pool(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => {
            format!("cannot connect: {}", describe(error))
        }
        other => other.to_string(),
    }
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pool of connections to Panorama's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Where the pool connects, for connections outside it (the change
    /// listener).
    config: Arc<tokio_postgres::Config>,
    /// TLS as the URL's `sslmode` and certificate parameters ask, for the
    /// pool's connections and the others alike.
    tls: MakeRustlsConnect,
    /// Strength and per-customer limit of each identifier kind, for the
    /// projector's merges and for manual ones.
    rules: Arc<IdentityRules>,
    /// Case grouping, signal thresholds and the priority rule.
    view: Arc<ViewRules>,
    /// Days an erasure suppresses the erased subjects (0: until lifted).
    suppression_days: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("Store")
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

/// Connection pool figures, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    /// Most connections the pool will open.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open and idle.
    pub available: usize,
    /// Callers waiting for one.
    pub waiting: usize,
}

/// How the connections of a [`Store`] behave.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// Most connections the pool opens (at least 1).
    pub max_connections: usize,
    /// Every connection's `search_path` (a replay's fresh schema).
    pub schema: Option<String>,
    /// `application_name`, so operators (and `pg_terminate_backend`) can
    /// tell which process a connection belongs to.
    pub application_name: Option<String>,
    /// `statement_timeout`: no statement (lock waits included) runs longer.
    pub statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout`: the server ends a session that
    /// sits in an open transaction this long, so a stopped or frozen process
    /// cannot hold its locks forever.
    pub idle_in_transaction_timeout: Option<Duration>,
}

impl ConnectSettings {
    /// A pool of at most `max_connections` with no timeouts.
    pub fn new(max_connections: usize) -> Self {
        ConnectSettings {
            max_connections,
            ..ConnectSettings::default()
        }
    }
}

/// TCP keepalives and a user timeout, unless the URL sets its own: a
/// half-open connection (a peer that vanished without a reset) is noticed
/// within about a minute instead of hanging a query for hours.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVES_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// A pool for `url` (`postgres://user@host:port/db`, or libpq's
    /// `key=value` form) of at most `max_connections`, over TLS as the URL's
    /// `sslmode` and `sslrootcert` say ([`SslMode`]). Connects lazily.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self> {
        Store::connect_with(url, &ConnectSettings::new(max_connections))
    }

    /// Like [`Store::connect`], with every connection's `search_path` set to
    /// `schema` (a replay's fresh schema) when one is given.
    pub fn connect_in_schema(
        url: &str,
        max_connections: usize,
        schema: Option<&str>,
    ) -> Result<Self> {
        Store::connect_with(
            url,
            &ConnectSettings {
                schema: schema.map(str::to_owned),
                ..ConnectSettings::new(max_connections)
            },
        )
    }

    /// A pool for `url` whose connections behave as `settings` say. Settings
    /// given in the URL's own `options` win over these.
    pub fn connect_with(url: &str, settings: &ConnectSettings) -> Result<Self> {
        let (mut config, tls) = tls::configure(url)?;
        let mut options = Vec::new();
        if let Some(schema) = &settings.schema {
            if !valid_schema_name(schema) {
                return Err(Error::Config(format!("invalid schema name {schema:?}")));
            }
            options.push(format!("-c search_path={schema}"));
        }
        if let Some(timeout) = settings.statement_timeout {
            options.push(format!("-c statement_timeout={}", timeout.as_millis()));
        }
        if let Some(timeout) = settings.idle_in_transaction_timeout {
            options.push(format!(
                "-c idle_in_transaction_session_timeout={}",
                timeout.as_millis()
            ));
        }
        if let Some(given) = config.get_options().filter(|given| !given.is_empty()) {
            options.push(given.to_owned());
        }
        if !options.is_empty() {
            config.options(options.join(" "));
        }
        if let (Some(name), None) = (&settings.application_name, config.get_application_name()) {
            config.application_name(name);
        }
        if config.get_keepalives() && config.get_keepalives_interval().is_none() {
            config
                .keepalives(true)
                .keepalives_idle(KEEPALIVES_IDLE)
                .keepalives_interval(KEEPALIVES_INTERVAL)
                .keepalives_retries(KEEPALIVES_RETRIES);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Store {
            pool,
            config: Arc::new(config),
            tls,
            rules: Arc::new(IdentityRules::default()),
            view: Arc::new(ViewRules::default()),
            suppression_days: 0,
        })
    }

    /// This store with `rules` for identity resolution (default:
    /// [`IdentityRules::default`]).
    #[must_use]
    pub fn with_identity_rules(mut self, rules: IdentityRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// This store with `rules` for the agent's view (default:
    /// [`ViewRules::default`]).
    #[must_use]
    pub fn with_view_rules(mut self, rules: ViewRules) -> Self {
        self.view = Arc::new(rules);
        self
    }

    /// This store with erasures suppressing the erased subjects for `days`
    /// (default 0: until an admin lifts the suppression).
    #[must_use]
    pub fn with_suppression_days(mut self, days: u32) -> Self {
        self.suppression_days = days;
        self
    }

    /// The identity rules in force.
    pub fn identity_rules(&self) -> &IdentityRules {
        &self.rules
    }

    /// Checks that the database answers.
    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Pool figures.
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}
