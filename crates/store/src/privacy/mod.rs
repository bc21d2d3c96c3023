//! Privacy (docs/privacy.md): the subject secret and keys that seal events
//! on the topic, suppressions of erased subjects, and erasure requests.
//! Everything lives in the `panorama_privacy` schema, outside the
//! projection schemas a replay swaps, and is named by subject (an
//! identifier's keyed hash, 32 bytes), never by an identifier.

mod erasure;
mod keys;
mod requests;

pub use erasure::{ErasureInput, ErasureOutcome};
pub use keys::{KEY_BYTES, Subject, SubjectKeys};
pub use requests::{ErasureState, ErasureStatus};
