//! The targets, one per parser, and the properties they share: whatever an
//! adapter makes of a request validates, and whatever validates (or
//! decodes) holds to the contract's limits and survives the wire format.

pub(crate) mod contract;
mod cti;
mod identifier;
mod mailgun;
mod meta;
mod mime;
mod multipart;
mod proto;
mod segment;
mod sendgrid;
mod signatures;
mod twilio;
mod web;

use chrono::{DateTime, Utc};
use panorama_channels::{Context, Outcome};
use panorama_core::attributes::value_limit;
use panorama_core::limits::{self, TextLimit};
use panorama_core::{ContactEvent, IdentifierKind, ValidationContext};
use proptest::prelude::*;

use crate::driver::{Failure, Session};
use crate::generate::{Bytes, bytes, mutated};

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name: the `cargo test` name and the `corpus/` directory.
    pub name: &'static str,
    /// What it feeds to what, and what it checks.
    pub about: &'static str,
    /// Runs the seeds, then generated inputs for the session's budget.
    pub run: fn(&mut Session) -> Result<(), Failure>,
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    twilio::TARGET,
    cti::TARGET,
    sendgrid::TARGET,
    mailgun::TARGET,
    mime::TARGET,
    meta::TARGET,
    web::TARGET,
    segment::TARGET,
    multipart::TARGET,
    signatures::TARGET,
    proto::TARGET,
    identifier::TARGET,
    contract::TARGET,
    contract::JSON_TARGET,
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// When the adapters' requests arrive (as in the adapters' own tests, so
/// that the seeds' times are recent).
pub(crate) fn received_at() -> DateTime<Utc> {
    "2026-11-24T18:00:00Z".parse().unwrap_or_default()
}

/// The adapters' context: received at [`received_at`], the Netherlands as
/// default region.
pub(crate) fn context() -> Context {
    context_at(received_at())
}

/// The adapters' context at `received_at`.
pub(crate) fn context_at(received_at: DateTime<Utc>) -> Context {
    Context {
        received_at,
        default_region: "NL".parse().ok(),
    }
}

/// A byte-level target's run: the corpus, then arbitrary bytes, mutated
/// seeds and the structure-aware inputs `structured` makes of the seeds.
pub(crate) fn run_bytes(
    session: &mut Session,
    structured: impl FnOnce(Vec<Vec<u8>>) -> BoxedStrategy<Bytes>,
    property: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), Failure> {
    let seeds: Vec<(String, Bytes)> = session
        .corpus()
        .into_iter()
        .map(|(name, seed)| (name, Bytes(seed)))
        .collect();
    session.replay(&seeds, |input| property(&input.0))?;
    let raw: Vec<Vec<u8>> = seeds.into_iter().map(|(_, seed)| seed.0).collect();
    let strategy = prop_oneof![
        1 => bytes(2048),
        2 => mutated(raw.clone()),
        3 => structured(raw),
    ];
    session.check(strategy, |input| property(&input.0))
}

/// What an adapter made of a request, checked as the gateway would: every
/// draft that validates holds to the contract (see [`check_event`]).
/// Refusals are fine, the adapter's and the contract's alike: a provider id
/// past 512 characters or a time in the year 3026 is the payload's fault,
/// and the gateway answers it with a problem naming the field. Panics are
/// not (the driver catches them).
pub(crate) fn check_outcome(
    outcome: panorama_channels::Result<Outcome>,
    context: &Context,
) -> Result<(), String> {
    let Ok(outcome) = outcome else {
        return Ok(());
    };
    let validation = ValidationContext {
        received_at: context.received_at,
        default_region: context.default_region,
    };
    for draft in outcome.into_drafts() {
        match draft.validate(&validation) {
            Ok(event) => check_event(&event)?,
            Err(error) if error.field.is_empty() => {
                return Err(format!("a refusal that names no field: {error}"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// A validated (or decoded) event: within every limit of the contract, and
/// the same event after encoding and decoding.
pub(crate) fn check_event(event: &ContactEvent) -> Result<(), String> {
    check_limits(event)?;
    let decoded = panorama_proto::decode(&panorama_proto::encode(event))
        .map_err(|error| format!("an encoded event does not decode: {error}\n{event:?}"))?;
    if decoded != *event {
        return Err(format!(
            "an event decodes to another one:\n{event:?}\n{decoded:?}"
        ));
    }
    Ok(())
}

fn within(field: &str, value: Option<&str>, limit: TextLimit) -> Result<(), String> {
    match value {
        Some(text) if !limit.admits(text) => Err(format!(
            "{field} is past its limit ({limit}): {} characters, {} bytes",
            text.chars().count(),
            text.len()
        )),
        _ => Ok(()),
    }
}

/// The limits of `crates/core/src/limits.rs`, field by field.
fn check_limits(event: &ContactEvent) -> Result<(), String> {
    within(
        "conversation_id",
        event.conversation_id.as_deref(),
        limits::CONVERSATION_ID,
    )?;
    within(
        "contact_reason",
        event.contact_reason.as_deref(),
        limits::CONTACT_REASON,
    )?;
    within("subject", event.subject.as_deref(), limits::SUBJECT)?;
    within("summary", event.summary.as_deref(), limits::SUMMARY)?;
    within("agent_id", event.agent_id.as_deref(), limits::SHORT_TEXT)?;
    within("queue", event.queue.as_deref(), limits::SHORT_TEXT)?;
    within("outcome", event.outcome.as_deref(), limits::SHORT_TEXT)?;
    within(
        "display_name",
        event.display_name.as_deref(),
        limits::SHORT_TEXT,
    )?;
    if let Some(feedback) = &event.feedback {
        within(
            "feedback.comment",
            feedback.comment.as_deref(),
            limits::COMMENT,
        )?;
    }
    if event.attributes.len() > limits::MAX_ATTRIBUTES {
        return Err(format!("{} attributes", event.attributes.len()));
    }
    for (key, value) in &event.attributes {
        within("an attribute key", Some(key), limits::ATTRIBUTE_KEY)?;
        within(&format!("attribute {key}"), Some(value), value_limit(key))?;
    }
    if event.identifiers.is_empty() || event.identifiers.len() > limits::MAX_IDENTIFIERS {
        return Err(format!("{} identifiers", event.identifiers.len()));
    }
    for identifier in &event.identifiers {
        check_identifier_value(identifier.identifier.kind(), identifier.identifier.value())?;
    }
    if !limits::event_time_in_range(event.occurred_at)
        || !limits::event_time_in_range(event.received_at)
    {
        return Err(format!(
            "a time out of range: occurred_at {}, received_at {}",
            event.occurred_at, event.received_at
        ));
    }
    Ok(())
}

/// A normalised identifier value: within its kind's limit and the indexed
/// byte limit.
pub(crate) fn check_identifier_value(kind: IdentifierKind, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("an empty {kind} identifier"));
    }
    let limit = match kind {
        IdentifierKind::Phone => TextLimit::chars(16),
        IdentifierKind::Email => limits::EMAIL,
        _ => limits::PLATFORM_ID,
    };
    within(&format!("a {kind} identifier"), Some(value), limit)?;
    if value.len() > limits::MAX_INDEXED_BYTES {
        return Err(format!("a {kind} identifier of {} bytes", value.len()));
    }
    if kind == IdentifierKind::Phone
        && !(value.starts_with('+') && value[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("a phone identifier not in E.164: {value:?}"));
    }
    if kind == IdentifierKind::Email {
        let local = value.rsplit_once('@').map_or(value, |(local, _)| local);
        within("an email local part", Some(local), limits::EMAIL_LOCAL_PART)?;
    }
    Ok(())
}
