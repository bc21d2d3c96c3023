//! Fuzz targets for every parser of untrusted input: the channel adapters,
//! the MIME and multipart parsers, the wire format's decoder, identifier
//! parsing and the event contract's validation. They run on stable Rust:
//! proptest generates the inputs (arbitrary bytes, mutations of the seed
//! corpus in `corpus/<target>/`, and structure-aware payloads with arbitrary
//! Unicode in every string field), catches panics and shrinks what fails.
//!
//! Two ways to run them: briefly inside `cargo test -p panorama-fuzz` (the
//! seeds, then about a second of generated inputs per target), and for as
//! long as wanted with the `panorama-fuzz` binary (`make fuzz`).

pub mod driver;
pub mod generate;
pub mod targets;

pub use driver::{Budget, Failure, Session};
pub use targets::{TARGETS, Target};
