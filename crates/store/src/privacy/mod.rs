//! Privacy (docs/privacy.md): the subject secret and keys that seal events
//! on the topic, suppressions of erased subjects, erasure requests, and
//! retention (anonymising old events, deleting old audit and dead-letter
//! rows).
//! Everything lives in the `panorama_privacy` schema, outside the
//! projection schemas a replay swaps, and is named by subject (an
//! identifier's keyed hash, 32 bytes), never by an identifier.

mod erasure;
mod keys;
mod requests;
mod retention;

pub use erasure::{ErasureInput, ErasureOutcome};
pub use keys::{KEY_BYTES, Subject, SubjectKeys};
pub use requests::{ErasureState, ErasureStatus};
pub use retention::{RetentionPolicy, RetentionReport};
