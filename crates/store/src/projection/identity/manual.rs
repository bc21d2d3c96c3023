//! Identity decisions an agent makes through the admin API, outside any
//! batch: merging two customers, undoing a merge, settling a conflict, and
//! recounting a customer's aggregates.
//!
//! They are here, beside the projection's steps, because they are the same
//! kind of write: they change the merge trees, aggregates, cases and change
//! log the projector keeps, take the same survivor locks (`lock.rs`), merge
//! with the same [`merge_into`] and write the same history. Every writer of
//! identity taking the same locks in the same order is what keeps
//! concurrent merges consistent. The projector never calls this module.

use deadpool_postgres::Transaction;
use panorama_core::Identifier;
use panorama_core::identity::{ConflictReason, IdentityRules, Snapshot, check_merge};
use uuid::Uuid;

use super::history::{Cause, moved_json, record_history};
use super::lock::{load_trees, lock_survivors, stored_identifier};
use super::merge::{MergeRecord, merge_into};
use crate::projection::changes::{Change, record_changes};
use crate::projection::outbox::{ChangeDetail, OutboxChange, record_outbox};
use crate::{Result, Store, retry_lock_conflicts};

/// The result of a manual merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged.
    Merged(MergeRecord),
    /// Both ids already lead to this customer.
    AlreadyOne {
        /// Their survivor.
        survivor: Uuid,
    },
    /// The identity rules forbid the merged customer.
    Refused(ConflictReason),
    /// No customer has this id.
    NotFound(Uuid),
}

/// The result of an unmerge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmergeOutcome {
    /// Split off: `merged` is a customer of its own again.
    Unmerged(MergeRecord),
    /// The customer given is not part of this customer.
    NotMerged {
        /// The customer asked about, as it is now.
        survivor: Uuid,
    },
    /// No customer has this id.
    NotFound(Uuid),
}

/// How an agent settles a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictAction {
    /// Merge the customers after all.
    Merge,
    /// Keep them apart and close the conflict.
    Dismiss,
}

/// The result of settling a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictOutcome {
    /// Merged, one record per customer merged away.
    Merged(Vec<MergeRecord>),
    /// Closed without a merge.
    Dismissed,
    /// The identity rules forbid the merged customer; still open.
    Refused(ConflictReason),
    /// Its customers are one customer already, or it concerns only one.
    NothingToMerge,
    /// Settled before.
    AlreadyResolved {
        /// `merged` or `dismissed`.
        status: String,
    },
    /// No such conflict.
    NotFound,
}

/// The change feed's `conflict.resolved` of `conflict`, keyed by
/// `customer` (locked by the caller).
fn conflict_resolved(
    customer: Uuid,
    conflict: Uuid,
    customers: Vec<Uuid>,
    status: &str,
) -> OutboxChange {
    OutboxChange::new(
        "conflict.resolved",
        customer,
        None,
        ChangeDetail::Conflict {
            conflict_id: conflict,
            identifiers: Vec::new(),
            customers,
            status: status.to_owned(),
        },
    )
}

/// Recomputes a surviving customer's aggregates from its tree's events.
async fn recount(transaction: &Transaction<'_>, survivor: Uuid) -> Result<i64> {
    let types = crate::contact_types();
    let customer = transaction
        .prepare_cached(include_str!("../../../sql/identity/recount_customer.sql"))
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
        .prepare_cached(include_str!("../../../sql/identity/recount_channels.sql"))
        .await?;
    transaction.execute(&channels, &[&survivor, &types]).await?;
    crate::projection::view::recount(transaction, survivor, &types).await?;
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
    // Claims never stay with a customer that has verified identifiers: a
    // merged-in customer of claims lets its claims go, as when a verified
    // event adopts one. They stay on their events.
    let release = transaction
        .prepare_cached(
            "DELETE FROM identifiers AS i USING customers AS c
             WHERE i.customer_id = c.id AND c.survivor_id = $1 AND i.trust = 'claimed'
               AND EXISTS (SELECT 1 FROM customers AS vc
                           JOIN identifiers AS v ON v.customer_id = vc.id
                           WHERE vc.survivor_id = $1 AND v.trust = 'verified')",
        )
        .await?;
    transaction.execute(&release, &[&survivor]).await?;
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
                               WHERE c.id = ANY(ic.customers) AND c.survivor_id <> $1)
             RETURNING ic.id, ic.customers",
        )
        .await?;
    let settled = transaction
        .query(&conflicts, &[&survivor, &cause.actor, &group])
        .await?;
    // The change feed: each merged customer, then each conflict the merge
    // settled, all under locks this transaction holds.
    let mut feed: Vec<OutboxChange> = records
        .iter()
        .map(|record| {
            OutboxChange::new(
                "customer.merged",
                record.merged,
                None,
                ChangeDetail::Merged {
                    survivor_id: survivor,
                },
            )
        })
        .collect();
    feed.extend(
        settled
            .iter()
            .map(|row| conflict_resolved(survivor, row.get(0), row.get(1), "merged")),
    );
    record_outbox(transaction, &feed).await?;
    Ok(Ok(records))
}

impl Store {
    /// Merges customers `a` and `b` (any of their ids, old ones included)
    /// on an agent's request. The oldest survives. Refused when the merged
    /// customer would own more identifiers of a kind than the identity
    /// rules allow; agents may override weak links and separations. The
    /// reason is free text an agent wrote, so the span only says whether
    /// there is one.
    #[tracing::instrument(skip(self, reason), fields(has_reason = reason.is_some()))]
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
            crate::projection::view::split_cases(&transaction, &profiles, &crate::contact_types())
                .await?;
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
                .filter_map(|row| stored_identifier(row.get(0), row.get(1)))
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
            // The restored customer first, then the profiles that came
            // back with it.
            let mut restored = vec![merged];
            restored.extend(record.profiles.iter().filter(|id| **id != merged));
            let unmerged = OutboxChange::new(
                "customer.unmerged",
                survivor,
                None,
                ChangeDetail::Unmerged {
                    restored_ids: restored,
                },
            );
            record_outbox(&transaction, &[unmerged]).await?;
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
    /// dismisses it. Like a merge's reason, the note stays out of the span.
    #[tracing::instrument(skip(self, note), fields(has_note = note.is_some()))]
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
                ConflictAction::Dismiss => {
                    // Keyed by the survivor of its first customer, locked
                    // as every writer of the feed locks its key.
                    let survivors = lock_survivors(&transaction, &customers).await?;
                    let key = customers.iter().find_map(|id| survivors.get(id)).copied();
                    if let Some(key) = key {
                        let dismissed = conflict_resolved(key, id, customers.clone(), "dismissed");
                        record_outbox(&transaction, &[dismissed]).await?;
                    }
                    ("dismissed", ConflictOutcome::Dismissed)
                }
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
