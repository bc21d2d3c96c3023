//! Merges: the tree of one surviving customer joins another's. Only the
//! tree's pointers move (identifiers and events stay with their profiles),
//! so a merge costs the same whatever the size of the histories; the merged
//! customer's aggregates and agent-view rows are folded into the
//! survivor's. The batch applies the resolver's merges here, in order;
//! manual merges (`manual.rs`) use [`merge_into`] too.

use deadpool_postgres::Transaction;
use panorama_core::identity::Merge;
use panorama_core::{ContactEvent, Identifier};
use serde::Serialize;
use uuid::Uuid;

use super::history::{Cause, moved_json, record_history};
use crate::Result;

/// What one merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MergeRecord {
    /// The customer that remains.
    pub survivor: Uuid,
    /// The customer merged away (or, for an unmerge, brought back).
    pub merged: Uuid,
    /// The profiles that moved: the merged customer and every profile
    /// merged into it before.
    pub profiles: Vec<Uuid>,
    /// The identifiers that came with them.
    pub identifiers: Vec<Identifier>,
    /// How many events came with them.
    pub events: i64,
}

/// Applies the resolver's `merges` of a batch, in order, each caused by the
/// event of `events` that linked the customers.
pub(crate) async fn apply_merges(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    merges: &[Merge],
) -> Result<()> {
    for merge in merges {
        let cause = Cause {
            event_id: Some(events[merge.event_index].event_id),
            identifiers: merge.via.clone(),
            ..Cause::default()
        };
        merge_into(
            transaction,
            merge.survivor,
            merge.merged,
            &merge.moved,
            &cause,
        )
        .await?;
    }
    Ok(())
}

/// Merges the tree of `merged` into the tree of `survivor`, both surviving
/// customers locked by the caller: the merged tree's profiles point at the
/// new survivor, and the merged customer's aggregates are folded into the
/// survivor's. Identifiers and events stay with their profiles, so the cost
/// does not grow with the merged history. `moved` lists the identifiers the
/// merged customer brings.
pub(crate) async fn merge_into(
    transaction: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
    moved: &[Identifier],
    cause: &Cause<'_>,
) -> Result<MergeRecord> {
    let repoint = transaction
        .prepare_cached("UPDATE customers SET survivor_id = $1 WHERE survivor_id = $2 RETURNING id")
        .await?;
    let mut profiles: Vec<Uuid> = transaction
        .query(&repoint, &[&survivor, &merged])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    profiles.sort_unstable();
    let parent = transaction
        .prepare_cached("UPDATE customers SET merged_into = $1, merged_at = now() WHERE id = $2")
        .await?;
    transaction.execute(&parent, &[&survivor, &merged]).await?;
    let aggregates = transaction
        .prepare_cached(include_str!("../../../sql/identity/merge_aggregates.sql"))
        .await?;
    let events: i64 = transaction
        .query_opt(&aggregates, &[&survivor, &merged])
        .await?
        .map_or(0, |row| row.get(0));
    let channels = transaction
        .prepare_cached(include_str!("../../../sql/identity/merge_channels.sql"))
        .await?;
    transaction
        .execute(&channels, &[&survivor, &merged])
        .await?;
    let drop_channels = transaction
        .prepare_cached("DELETE FROM customer_channels WHERE customer_id = $1")
        .await?;
    transaction.execute(&drop_channels, &[&merged]).await?;
    crate::projection::view::fold_into(transaction, survivor, merged).await?;
    let record = MergeRecord {
        survivor,
        merged,
        profiles,
        identifiers: moved.to_vec(),
        events,
    };
    record_history(
        transaction,
        "merge",
        Some(survivor),
        Some(merged),
        &[survivor, merged],
        cause,
        None,
        Some(moved_json(&record.profiles, &record.identifiers, events)),
    )
    .await?;
    Ok(record)
}
