//! Conflicts: links the identity rules refused. Each is written to the
//! history and opens (or adds to) a conflict for an agent to review; the
//! agent settles it through the admin API (`manual.rs`).

use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use panorama_core::identity::Conflict;
use uuid::Uuid;

use super::history::{Cause, record_history};
use super::reason_parts;
use crate::Result;
use crate::projection::outbox::{ChangeIdentifier, OpenedConflict};

/// Records conflicts the resolver raised for events of a batch: each in the
/// history, and each opening (or adding to) a conflict for review.
/// Returns the conflicts opened, for the change feed.
pub(crate) async fn record_conflicts(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    conflicts: &[Conflict],
) -> Result<Vec<OpenedConflict>> {
    let mut opened = Vec::new();
    if conflicts.is_empty() {
        return Ok(opened);
    }
    let conflicts: Vec<(&Conflict, Uuid)> = conflicts
        .iter()
        .map(|conflict| (conflict, events[conflict.event_index].event_id))
        .collect();
    let upsert = transaction
        .prepare_cached(include_str!("../../../sql/identity/record_conflict.sql"))
        .await?;
    for (conflict, event_id) in &conflicts {
        let (reason, kind) = reason_parts(conflict.reason);
        let identifiers = serde_json::to_value(&conflict.identifiers).unwrap_or_default();
        let row = transaction
            .query_one(
                &upsert,
                &[
                    &Uuid::now_v7(),
                    &reason,
                    &kind,
                    &conflict.customers,
                    &identifiers,
                    event_id,
                ],
            )
            .await?;
        if row.get::<_, bool>(1) {
            opened.push(OpenedConflict {
                conflict_id: row.get(0),
                event_index: conflict.event_index,
                customers: conflict.customers.clone(),
                identifiers: conflict
                    .identifiers
                    .iter()
                    .map(ChangeIdentifier::without_trust)
                    .collect(),
            });
        }
        let detail = conflict.reason.to_string();
        record_history(
            transaction,
            "refused",
            None,
            None,
            &conflict.customers,
            &Cause {
                event_id: Some(*event_id),
                actor: None,
                reason: Some(&detail),
                identifiers: conflict.identifiers.clone(),
            },
            Some(conflict.reason),
            None,
        )
        .await?;
    }
    Ok(opened)
}
