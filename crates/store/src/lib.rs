//! The only crate that talks to PostgreSQL: schema migrations, the
//! projection writer (one transaction per batch, offsets included) and the
//! read queries behind the agent API, the change log behind live updates,
//! the audit log, and the API tokens.

mod access;
mod audit;
mod changes;
mod identity;
mod migrate;
mod projection;
mod read;
mod replay;
mod view;

use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use panorama_core::identity::IdentityRules;
use tokio_postgres::NoTls;

pub use access::{Principal, SECRET_PREFIX, Secret, TokenInfo, token_hash};
pub use audit::{AuditCursor, AuditQuery, AuditRecord};
pub use changes::{CHANGES_CHANNEL, ChangeKind, ChangeListener, CustomerChange};
pub use identity::{
    ConflictAction, ConflictCursor, ConflictOutcome, ConflictQuery, ConflictView, CustomerIdentity,
    HistoryEntry, IdentityIdentifier, IdentityProfile, MergeOutcome, MergeRecord, UnmergeOutcome,
};
pub use projection::{BatchOutcome, PartitionOffset};
pub use read::{
    ChannelSummary, CustomerProfile, IdentifierView, TimelineCursor, TimelineEntry, TimelineQuery,
};
pub use replay::{CARRIED_OVER_TABLES, Switched, valid_schema_name};
pub use view::{
    CUSTOMER_ATTRIBUTE_PREFIX, CaseQuery, CaseView, ContactWindows, FeedbackSummary, Insights,
    InsightsQuery, MetricSummary, Signals, TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID,
    TaskQuery, TaskView, ViewRules,
};

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be had from the pool.
    #[error("database unavailable: {0}")]
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
}

impl Error {
    /// Whether retrying the whole transaction may succeed: serialization
    /// failures, deadlocks, and lost connections.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Pool(_) => true,
            Error::Db(error) => {
                error.is_closed()
                    || error.code().is_some_and(|code| {
                        code == &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                            || code == &tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                            // An event a concurrent projector inserted after
                            // this batch filtered out existing ones.
                            || code == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                            || code.code().starts_with("08")
                            || code.code().starts_with("57P")
                    })
            }
            Error::Config(_)
            | Error::Migration(_)
            | Error::TokenNameTaken(_)
            | Error::InvalidTokenName(_) => false,
        }
    }
}

impl Error {
    /// Whether PostgreSQL aborted the transaction for a deadlock or a
    /// serialization failure: running it again is the remedy.
    pub fn is_lock_conflict(&self) -> bool {
        matches!(self, Error::Db(error) if error.code().is_some_and(|code| {
            code == &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                || code == &tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
        }))
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

/// tokio-postgres prints server errors as just "db error"; the server's
/// message and code are what an operator needs.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
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
    /// Strength and per-customer limit of each identifier kind, for the
    /// projector's merges and for manual ones.
    rules: Arc<IdentityRules>,
    /// Case grouping, signal thresholds and the priority rule.
    view: Arc<ViewRules>,
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

impl Store {
    /// A pool for `url` (`postgres://user@host:port/db`) of at most
    /// `max_connections`. Connects lazily.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self> {
        Store::connect_in_schema(url, max_connections, None)
    }

    /// Like [`Store::connect`], with every connection's `search_path` set to
    /// `schema` (a replay's fresh schema) when one is given.
    pub fn connect_in_schema(
        url: &str,
        max_connections: usize,
        schema: Option<&str>,
    ) -> Result<Self> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(schema) = schema {
            if !valid_schema_name(schema) {
                return Err(Error::Config(format!("invalid schema name {schema:?}")));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Store {
            pool,
            config: Arc::new(config),
            rules: Arc::new(IdentityRules::default()),
            view: Arc::new(ViewRules::default()),
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
