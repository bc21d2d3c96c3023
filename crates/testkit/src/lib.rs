//! Panorama test kit: real services for integration tests, no mocks.
//!
//! - [`postgres()`]: a private PostgreSQL cluster shared by every test in the
//!   process (initdb into a temp dir, free port, trust auth on 127.0.0.1);
//!   [`PgCluster::create_database`] gives each test its own database.
//!   [`postgres_tls()`] is another that takes TLS connections only, with a
//!   test CA's certificates ([`PgTls`]), for the transport tests.
//! - [`broker()`]: a Nisshi (Kafka-compatible) broker shared by every test in
//!   the process, memory engine; [`Broker::start`] starts a private one (for
//!   example on SQLite storage, for restart tests);
//!   [`Broker::start_secured`] one that takes TLS and SASL/SCRAM logins
//!   only ([`BrokerSecurity`]), for the Kafka transport tests.
//! - [`random_name`] for unique database and topic names, and [`eventually`]
//!   to wait on a condition without fixed sleeps.
//! - [`PgCluster::durable`] and [`PgCluster::restart_immediate`], a broker on
//!   [`Engine::TempSqlite`] with [`Broker::kill`] and [`Broker::restart`],
//!   and [`kill_when_parent_exits`], for crash tests and the fault harness
//!   (crates/faults).
//! - [`aggregate_mismatches`]: every aggregate of a database checked against
//!   a recount from its events.
//! - [`capture_logs`]: the process's log at info level as text, to check
//!   that it never holds a customer's identifiers.
//!
//! Nothing outlives the test process: shared services are never dropped (they
//! live in statics), so each service process gets a watchdog shell that stops
//! it and removes its temp dir once the test process has exited.
//!
//! ```no_run
//! use std::time::Duration;
//! use panorama_testkit::{broker, eventually, postgres, random_name};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let db = postgres().create_database()?; // db.url: postgres://postgres@127.0.0.1:PORT/NAME
//! let topic = random_name("events");
//! broker().create_topic(&topic, 3)?;
//! let bootstrap = broker().bootstrap(); // 127.0.0.1:PORT
//! # let count = || async { Some(3) };
//! let stored = eventually("3 events stored", Duration::from_secs(10), || async {
//!     count().await.filter(|n| *n == 3)
//! })
//! .await;
//! # let _ = (db, bootstrap, stored);
//! # Ok(())
//! # }
//! ```
//!
//! Binaries are found at run time: PostgreSQL's server binaries through
//! `PANORAMA_PG_BINDIR`, `pg_config --bindir` or `/usr/lib/postgresql/*/bin`;
//! the broker through `PANORAMA_NISSHI_BIN`, the cache that
//! `scripts/ensure-nisshi.sh` installs into, or `PATH`. `make test` installs
//! both.

mod app;
mod broker;
mod broker_security;
mod logs;
mod pg;
mod pg_tls;
mod recount;
mod store;
mod util;

pub use app::{AppBuilder, Burst, TestApp, WAIT};
pub use broker::{Broker, Engine, broker};
pub use broker_security::{BrokerSecurity, BrokerTls, BrokerUser, Scram};
pub use logs::{CapturedLogs, capture_logs};
pub use pg::{PgCluster, TestDatabase, postgres, postgres_tls};
pub use pg_tls::{CLIENT_CERT_USER, PgTls, SERVER_NAMES};
pub use recount::{AggregateMismatch, aggregate_mismatches, contact_types};
pub use store::{customer_with_email, migrated_database};
pub use util::{eventually, free_port, kill_when_parent_exits, random_name};
