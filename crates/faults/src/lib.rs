//! Panorama's fault harness: posts events to a real stack of `panorama`
//! processes (the all-in-one process, a gateway, a projector and an API
//! node) on a durable PostgreSQL and a broker on its SQLite engine, while
//! killing, crashing, stopping and slowing those processes, PostgreSQL and
//! the broker on a seeded schedule; then proves that every acknowledged
//! event took effect exactly once and that every aggregate equals a
//! recount from the history. `make faults` and `make faults-short` run it;
//! docs/reliability.md explains the faults and the summary.
//!
//! The flow of a run: [`options`] → [`schedule`] and [`events`] (pure) →
//! [`stack`] → [`client`] and [`inject`] side by side → [`verify`] →
//! [`summary`].

pub mod client;
mod error;
pub mod events;
pub mod inject;
pub mod options;
mod run;
pub mod schedule;
pub mod stack;
pub mod summary;
pub mod verify;

pub use error::{Error, Result};
pub use options::{Cli, Config, Profile};
pub use run::{interrupted, run};
pub use summary::Summary;
