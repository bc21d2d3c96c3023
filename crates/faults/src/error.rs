//! What can stop a run before it reaches a verdict.

/// Errors of the harness itself (a failed check is a finding in the
/// summary, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option makes no sense.
    #[error("invalid option: {0}")]
    Options(String),
    /// The stack could not be set up (PostgreSQL, broker, `panorama`
    /// commands, serve processes).
    #[error("setting up the stack: {0}")]
    Setup(String),
    /// A process of the stack could not be started, signalled or killed.
    #[error("{0}")]
    Process(String),
    /// A query of the harness failed.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The broker did not answer the harness.
    #[error("broker: {0}")]
    Broker(#[from] panorama_bus::Error),
    /// A file of the run directory could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A blocking task of the harness panicked or was cancelled.
    #[error("a harness task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
