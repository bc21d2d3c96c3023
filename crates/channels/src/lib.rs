//! Channel adapters: each provider's webhook (bytes and headers in) becomes
//! canonical event drafts, or a typed error out. Pure: no I/O, no clock
//! (the caller passes the time), no global state. The gateway validates the
//! drafts like any other event and publishes them.
//!
//! One module per provider; what several providers share (signatures, form
//! and multipart bodies, email threading, text excerpts) lives in one place.

pub mod cti;
pub mod email;
pub mod form;
pub mod mailgun;
pub mod meta;
pub mod mime;
pub mod multipart;
pub mod sendgrid;
pub mod signature;
pub mod text;
pub mod twilio;
pub mod web;

use chrono::{DateTime, Utc};
use panorama_core::{EventDraft, Identifier, IdentifierDraft, IdentifierKind, Region};

/// What an adapter needs to know besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// When the gateway received the request (default `occurred_at`, and
    /// "now" for replay windows).
    pub received_at: DateTime<Utc>,
    /// Region for national phone numbers.
    pub default_region: Option<Region>,
}

/// What a webhook amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Contact events to publish (possibly several from one delivery).
    Events(Vec<EventDraft>),
    /// Nothing to publish: a payload type the adapter does not map, or one
    /// without a customer identifier. Answered 200 so the provider does not
    /// retry; counted by `reason` (low cardinality, static).
    Ignored {
        /// Why, e.g. `whatsapp.template_status`, `no_identifier`.
        reason: &'static str,
    },
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Missing or wrong signature or credentials: 401, nothing published.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The payload is not what the provider sends: 400 with this message.
    #[error("{message}")]
    Malformed {
        /// The field at fault, when there is one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl ChannelError {
    /// A malformed-payload error naming `field`.
    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChannelError::Malformed { field: Some(field.into()), message: message.into() }
    }

    /// A malformed-payload error about the body as a whole.
    pub fn malformed_body(message: impl Into<String>) -> Self {
        ChannelError::Malformed { field: None, message: message.into() }
    }
}

/// Crate result type.
pub type Result<T, E = ChannelError> = std::result::Result<T, E>;

/// An identifier draft when `raw` parses as `kind`, else `None`: adapters
/// keep the identifiers they can use (an anonymous caller's "+266696687" or
/// a `client:` address is not a customer) and ignore an event left with none.
pub fn identifier(kind: IdentifierKind, raw: &str, context: &Context) -> Option<IdentifierDraft> {
    Identifier::parse(kind, raw, context.default_region)
        .ok()
        .map(|parsed| IdentifierDraft::new(parsed.kind(), parsed.value()))
}

/// `Outcome::Events` when any draft is left, else ignored for want of an
/// identifier.
pub fn events_or_ignored(drafts: Vec<EventDraft>) -> Outcome {
    let drafts: Vec<EventDraft> = drafts.into_iter().filter(|d| !d.identifiers.is_empty()).collect();
    if drafts.is_empty() {
        Outcome::Ignored { reason: "no_identifier" }
    } else {
        Outcome::Events(drafts)
    }
}
