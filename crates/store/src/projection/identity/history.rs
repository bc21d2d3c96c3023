//! The identity history: every merge, refusal and unmerge, automatic or
//! manual, with why it happened (the event, or the agent and their words)
//! and what moved.

use deadpool_postgres::Transaction;
use panorama_core::Identifier;
use panorama_core::identity::ConflictReason;
use serde_json::{Value, json};
use uuid::Uuid;

use super::reason_parts;
use crate::Result;

/// Why something happened to identity, for the history.
#[derive(Debug, Default)]
pub(crate) struct Cause<'a> {
    /// The event that caused it.
    pub(crate) event_id: Option<Uuid>,
    /// The user who did it.
    pub(crate) actor: Option<&'a str>,
    /// In their words, or the resolver's.
    pub(crate) reason: Option<&'a str>,
    /// The identifiers that linked the customers.
    pub(crate) identifiers: Vec<Identifier>,
}

impl<'a> Cause<'a> {
    /// This cause, done by `actor`.
    pub(super) fn with_actor(mut self, actor: Option<&'a str>) -> Self {
        self.actor = actor;
        self
    }
}

/// What moved in a merge or an unmerge, as the history stores it.
pub(super) fn moved_json(profiles: &[Uuid], identifiers: &[Identifier], events: i64) -> Value {
    json!({ "customers": profiles, "identifiers": identifiers, "events": events })
}

/// Appends one decision to the identity history.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_history(
    transaction: &Transaction<'_>,
    action: &str,
    survivor: Option<Uuid>,
    merged: Option<Uuid>,
    customers: &[Uuid],
    cause: &Cause<'_>,
    refusal: Option<ConflictReason>,
    moved: Option<Value>,
) -> Result<()> {
    let statement = transaction
        .prepare_cached(include_str!("../../../sql/identity/record_history.sql"))
        .await?;
    let kind = refusal.map(|reason| reason_parts(reason).1);
    let identifiers = serde_json::to_value(&cause.identifiers).unwrap_or_default();
    transaction
        .execute(
            &statement,
            &[
                &Uuid::now_v7(),
                &action,
                &survivor,
                &merged,
                &customers,
                &cause.event_id,
                &cause.actor,
                &cause.reason,
                &kind,
                &identifiers,
                &moved,
            ],
        )
        .await?;
    Ok(())
}
