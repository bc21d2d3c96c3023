//! Writing identity decisions: merges (automatic and manual), unmerges,
//! conflicts, and the history of all of them.

use deadpool_postgres::Transaction;
use panorama_core::identity::{Conflict, ConflictReason, Snapshot, check_merge};
use panorama_core::{Identifier, identity::IdentityRules};
use serde_json::{Value, json};
use uuid::Uuid;

use super::lock::{load_trees, lock_survivors};
use super::{
    ConflictAction, ConflictOutcome, MergeOutcome, MergeRecord, UnmergeOutcome, reason_parts,
};
use crate::changes::{Change, record_changes};
use crate::{Result, Store, retry_lock_conflicts};

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
        .prepare_cached(include_str!("../../sql/identity/merge_aggregates.sql"))
        .await?;
    let events: i64 = transaction
        .query_opt(&aggregates, &[&survivor, &merged])
        .await?
        .map_or(0, |row| row.get(0));
    let channels = transaction
        .prepare_cached(include_str!("../../sql/identity/merge_channels.sql"))
        .await?;
    transaction
        .execute(&channels, &[&survivor, &merged])
        .await?;
    let drop_channels = transaction
        .prepare_cached("DELETE FROM customer_channels WHERE customer_id = $1")
        .await?;
    transaction.execute(&drop_channels, &[&merged]).await?;
    crate::view::fold_into(transaction, survivor, merged).await?;
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

fn moved_json(profiles: &[Uuid], identifiers: &[Identifier], events: i64) -> Value {
    json!({ "customers": profiles, "identifiers": identifiers, "events": events })
}

/// Records conflicts the resolver raised for events of a batch: each in the
/// history, and each opening (or adding to) a conflict for review.
pub(crate) async fn record_conflicts(
    transaction: &Transaction<'_>,
    conflicts: &[(&Conflict, Uuid)],
) -> Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let upsert = transaction
        .prepare_cached(include_str!("../../sql/identity/record_conflict.sql"))
        .await?;
    for (conflict, event_id) in conflicts {
        let (reason, kind) = reason_parts(conflict.reason);
        let identifiers = serde_json::to_value(&conflict.identifiers).unwrap_or_default();
        transaction
            .execute(
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
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record_history(
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
        .prepare_cached(include_str!("../../sql/identity/record_history.sql"))
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

/// Recomputes a surviving customer's aggregates from its tree's events.
async fn recount(transaction: &Transaction<'_>, survivor: Uuid) -> Result<i64> {
    let types = crate::contact_types();
    let customer = transaction
        .prepare_cached(include_str!("../../sql/identity/recount_customer.sql"))
        .await?;
    let events: i64 = transaction
        .query_one(&customer, &[&survivor, &types])
        .await?
        .get(0);
    let drop_channels = transaction
        .prepare_cached("DELETE FROM customer_channels WHERE customer_id = $1")
        .await?;
    transaction.execute(&drop_channels, &[&survivor]).await?;
    let channels = transaction
        .prepare_cached(include_str!("../../sql/identity/recount_channels.sql"))
        .await?;
    transaction.execute(&channels, &[&survivor, &types]).await?;
    crate::view::recount(transaction, survivor, &types).await?;
    Ok(events)
}

/// Merges the trees of `survivors` (distinct surviving customers, locked)
/// into the smallest id, if `rules` allow the merged customer; otherwise
/// records the refusal and returns why.
async fn merge_group(
    transaction: &Transaction<'_>,
    survivors: &[Uuid],
    rules: &IdentityRules,
    cause: &Cause<'_>,
) -> Result<Result<Vec<MergeRecord>, ConflictReason>> {
    let mut group = survivors.to_vec();
    group.sort_unstable();
    group.dedup();
    let trees = load_trees(transaction, &group).await?;
    let Some((&survivor, others)) = group.split_first() else {
        return Ok(Ok(Vec::new()));
    };
    // The limits apply to the customer the whole group would become.
    let rest: Vec<Identifier> = others
        .iter()
        .flat_map(|&other| trees.snapshot.identifiers_of(other).iter().cloned())
        .collect();
    let combined = Snapshot::from_customers([
        (survivor, trees.snapshot.identifiers_of(survivor).to_vec()),
        (Uuid::nil(), rest),
    ]);
    if let Err(reason) = check_merge(&combined, survivor, Uuid::nil(), rules) {
        let detail = reason.to_string();
        record_history(
            transaction,
            "refused",
            None,
            None,
            &group,
            &Cause {
                reason: Some(&detail),
                ..Cause::default()
            }
            .with_actor(cause.actor),
            Some(reason),
            None,
        )
        .await?;
        return Ok(Err(reason));
    }
    let mut records = Vec::with_capacity(others.len());
    for &other in others {
        let moved = trees.snapshot.identifiers_of(other).to_vec();
        records.push(merge_into(transaction, survivor, other, &moved, cause).await?);
    }
    // Separations inside the merged customer no longer separate anything;
    // conflicts between its parts are settled.
    let separations = transaction
        .prepare_cached(
            "DELETE FROM identity_separations AS s
             USING customers AS a, customers AS b
             WHERE a.id = s.customer_a AND b.id = s.customer_b
               AND a.survivor_id = $1 AND b.survivor_id = $1",
        )
        .await?;
    transaction.execute(&separations, &[&survivor]).await?;
    let conflicts = transaction
        .prepare_cached(
            "UPDATE identity_conflicts AS ic SET status = 'merged', resolved_at = now(),
                    resolved_by = $2
             WHERE ic.status = 'open' AND cardinality(ic.customers) > 1
               AND ic.customers && $3
               AND NOT EXISTS (SELECT 1 FROM customers AS c
                               WHERE c.id = ANY(ic.customers) AND c.survivor_id <> $1)",
        )
        .await?;
    transaction
        .execute(&conflicts, &[&survivor, &cause.actor, &group])
        .await?;
    Ok(Ok(records))
}

impl<'a> Cause<'a> {
    fn with_actor(mut self, actor: Option<&'a str>) -> Self {
        self.actor = actor;
        self
    }
}

impl Store {
    /// Merges customers `a` and `b` (any of their ids, old ones included)
    /// on an agent's request. The oldest survives. Refused when the merged
    /// customer would own more identifiers of a kind than the identity
    /// rules allow; agents may override weak links and separations.
    #[tracing::instrument(skip(self))]
    pub async fn merge_customers(
        &self,
        a: Uuid,
        b: Uuid,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<MergeOutcome> {
        retry_lock_conflicts(async || {
            let mut client = self.pool.get().await?;
            let transaction = client.transaction().await?;
            let survivors = lock_survivors(&transaction, &[a, b]).await?;
            let (Some(&first), Some(&second)) = (survivors.get(&a), survivors.get(&b)) else {
                let missing = if survivors.contains_key(&a) { b } else { a };
                return Ok(MergeOutcome::NotFound(missing));
            };
            if first == second {
                return Ok(MergeOutcome::AlreadyOne { survivor: first });
            }
            let cause = Cause {
                actor: Some(actor),
                reason,
                ..Cause::default()
            };
            let outcome =
                match merge_group(&transaction, &[first, second], &self.rules, &cause).await? {
                    Ok(mut records) => match records.pop() {
                        Some(record) => MergeOutcome::Merged(record),
                        None => MergeOutcome::AlreadyOne { survivor: first },
                    },
                    Err(reason) => MergeOutcome::Refused(reason),
                };
            if matches!(outcome, MergeOutcome::Merged(_)) {
                let changes = [Change::profile(first), Change::profile(second)];
                record_changes(&transaction, &changes).await?;
            }
            transaction.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// Undoes the merge of `merged` into the customer `customer` now is:
    /// `merged` comes back with every profile merged into it before, every
    /// identifier that came through them and every event that arrived
    /// through those identifiers, after the merge too. The two are then kept
    /// apart: a later link between them is a conflict, not a merge.
    #[tracing::instrument(skip(self))]
    pub async fn unmerge(
        &self,
        customer: Uuid,
        merged: Uuid,
        actor: &str,
    ) -> Result<UnmergeOutcome> {
        retry_lock_conflicts(async || {
            let mut client = self.pool.get().await?;
            let transaction = client.transaction().await?;
            let survivors = lock_survivors(&transaction, &[customer, merged]).await?;
            let (Some(&survivor), Some(&merged_survivor)) =
                (survivors.get(&customer), survivors.get(&merged))
            else {
                let missing = if survivors.contains_key(&customer) {
                    merged
                } else {
                    customer
                };
                return Ok(UnmergeOutcome::NotFound(missing));
            };
            if merged_survivor != survivor || merged == survivor {
                return Ok(UnmergeOutcome::NotMerged { survivor });
            }
            let cut = transaction
                .prepare_cached(
                    "UPDATE customers SET merged_into = NULL, merged_at = NULL
                 WHERE id = $1 RETURNING 1",
                )
                .await?;
            transaction.execute(&cut, &[&merged]).await?;
            let subtree = transaction
                .prepare_cached(
                    "WITH RECURSIVE subtree (id) AS (
                     SELECT $1::uuid
                     UNION ALL
                     SELECT c.id FROM customers AS c JOIN subtree AS s ON c.merged_into = s.id
                 )
                 UPDATE customers SET survivor_id = $1
                 WHERE id IN (SELECT id FROM subtree) RETURNING id",
                )
                .await?;
            let mut profiles: Vec<Uuid> = transaction
                .query(&subtree, &[&merged])
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            profiles.sort_unstable();
            crate::view::split_cases(&transaction, &profiles, &crate::contact_types()).await?;
            recount(&transaction, survivor).await?;
            let events = recount(&transaction, merged).await?;
            let separate = transaction
                .prepare_cached(
                    "INSERT INTO identity_separations (customer_a, customer_b, created_by)
                 VALUES (LEAST($1::uuid, $2::uuid), GREATEST($1::uuid, $2::uuid), $3)
                 ON CONFLICT DO NOTHING",
                )
                .await?;
            transaction
                .execute(&separate, &[&survivor, &merged, &actor])
                .await?;
            let identifiers_of = transaction
                .prepare_cached(
                    "SELECT i.kind, i.value FROM identifiers AS i
                 WHERE i.customer_id = ANY($1) ORDER BY i.kind, i.value",
                )
                .await?;
            let identifiers: Vec<Identifier> = transaction
                .query(&identifiers_of, &[&profiles])
                .await?
                .iter()
                .filter_map(|row| super::lock::stored_identifier(row.get(0), row.get(1)))
                .collect();
            let record = MergeRecord {
                survivor,
                merged,
                profiles,
                identifiers,
                events,
            };
            record_history(
                &transaction,
                "unmerge",
                Some(survivor),
                Some(merged),
                &[survivor, merged],
                &Cause {
                    actor: Some(actor),
                    ..Cause::default()
                },
                None,
                Some(moved_json(&record.profiles, &record.identifiers, events)),
            )
            .await?;
            let changes = [Change::profile(survivor), Change::profile(merged)];
            record_changes(&transaction, &changes).await?;
            transaction.commit().await?;
            Ok(UnmergeOutcome::Unmerged(record))
        })
        .await
    }

    /// Recomputes the aggregates of the customer `id` leads to from its
    /// events: what an unmerge does to both sides, and a way to check or
    /// repair the incremental aggregates.
    #[tracing::instrument(skip(self))]
    pub async fn recount_customer(&self, id: Uuid) -> Result<bool> {
        retry_lock_conflicts(async || {
            let mut client = self.pool.get().await?;
            let transaction = client.transaction().await?;
            let survivors = lock_survivors(&transaction, &[id]).await?;
            let Some(&survivor) = survivors.get(&id) else {
                return Ok(false);
            };
            recount(&transaction, survivor).await?;
            transaction.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Settles an open conflict: merges its customers (as they are now) or
    /// dismisses it.
    #[tracing::instrument(skip(self))]
    pub async fn resolve_conflict(
        &self,
        id: Uuid,
        action: ConflictAction,
        actor: &str,
        note: Option<&str>,
    ) -> Result<ConflictOutcome> {
        retry_lock_conflicts(async || {
            let mut client = self.pool.get().await?;
            let transaction = client.transaction().await?;
            let read = transaction
                .prepare_cached(
                    "SELECT status, customers FROM identity_conflicts WHERE id = $1 FOR UPDATE",
                )
                .await?;
            let Some(row) = transaction.query_opt(&read, &[&id]).await? else {
                return Ok(ConflictOutcome::NotFound);
            };
            let status: String = row.get(0);
            if status != "open" {
                return Ok(ConflictOutcome::AlreadyResolved { status });
            }
            let customers: Vec<Uuid> = row.get(1);
            let (status, outcome) = match action {
                ConflictAction::Dismiss => ("dismissed", ConflictOutcome::Dismissed),
                ConflictAction::Merge => {
                    let survivors = lock_survivors(&transaction, &customers).await?;
                    let mut group: Vec<Uuid> = survivors.values().copied().collect();
                    group.sort_unstable();
                    group.dedup();
                    if group.len() < 2 {
                        return Ok(ConflictOutcome::NothingToMerge);
                    }
                    let cause = Cause {
                        actor: Some(actor),
                        reason: note,
                        ..Cause::default()
                    };
                    match merge_group(&transaction, &group, &self.rules, &cause).await? {
                        Ok(records) => {
                            let changes: Vec<Change> =
                                group.iter().map(|id| Change::profile(*id)).collect();
                            record_changes(&transaction, &changes).await?;
                            ("merged", ConflictOutcome::Merged(records))
                        }
                        Err(reason) => {
                            transaction.commit().await?;
                            return Ok(ConflictOutcome::Refused(reason));
                        }
                    }
                }
            };
            let settle = transaction
                .prepare_cached(
                    "UPDATE identity_conflicts SET status = $2, resolved_at = now(),
                        resolved_by = $3, resolution = $4
                 WHERE id = $1",
                )
                .await?;
            transaction
                .execute(&settle, &[&id, &status, &actor, &note])
                .await?;
            transaction.commit().await?;
            Ok(outcome)
        })
        .await
    }
}
