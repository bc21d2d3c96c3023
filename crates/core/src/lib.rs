//! Panorama's domain: the canonical contact event, customer identifiers that
//! normalise on parse, and identity resolution as a pure function.
//!
//! Nothing here does I/O: no async runtime, no broker, no database. Every
//! other crate speaks in these types.

mod access;
#[cfg(any(test, feature = "proptest"))]
pub mod arbitrary;
pub mod attributes;
pub mod cases;
pub mod consent;
mod crash;
mod event;
mod identifier;
pub mod identity;
pub mod limits;
mod normalised;
pub mod priority;
pub mod retention;
mod text;
mod trace;
pub mod traits;
mod trust;
pub mod webhook;

pub use access::{Role, UnknownRole};
pub use consent::{Consent, ConsentChannel, ConsentDraft, ConsentPurpose, ConsentStatus};
pub use crash::{CrashPoints, KNOWN_CRASH_POINTS};
pub use event::{
    Channel, ContactEvent, Direction, EventDraft, EventType, Feedback, FeedbackDraft,
    FeedbackMetric, FieldError, IdentifierDraft, ValidationContext, parse_source,
};
pub use identifier::{
    EmailAddress, Identifier, IdentifierError, IdentifierKind, PhoneNumber, Region,
};
pub use normalised::NormalisedEvent;
pub use trace::{SpanLinker, TraceContext, link_span, set_span_linker};
pub use trust::{EventIdentifier, Trust};
