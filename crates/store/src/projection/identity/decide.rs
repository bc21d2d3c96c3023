//! Deciding a batch's identity without a global lock.
//!
//! A batch reads the profiles its known identifiers came through, locks
//! their survivors, loads their trees, resolves, and writes the new
//! customers and links. Known identifiers need nothing more: their tree's
//! survivor is locked before the tree is read, and every writer of identity
//! takes that lock. Only identifiers nobody has seen yet are unguarded, and
//! two projectors that see the same new one must not both create a customer
//! for it.
//!
//! Locking every identifier of the batch up front would serialise the
//! projectors: 2,000 events carry thousands of identifiers, as many
//! advisory locks as PostgreSQL's shared lock table holds, or, hashed onto
//! stripes, nearly every stripe. Creation is optimistic instead. The new
//! customers and identifiers are written inside a savepoint, and the
//! identifiers' primary key does the serialising: an insert of a key
//! another open transaction has inserted waits for its end and is skipped
//! if it committed ([`create_identifiers`]). When any is skipped the batch
//! decided on a stale view: it rolls back to the savepoint and decides
//! again, and now sees that identifier and locks its survivor. Batches with
//! disjoint new identifiers never wait for each other.
//!
//! The savepoint is taken after the survivors are locked: rolling back to
//! it keeps those locks, and undoes the index entries the batch inserted at
//! once, so a third batch waiting on one of them goes on without waiting
//! for this one to commit.

use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use panorama_core::identity::IdentityRules;

use super::identifiers::{
    LinkWrites, Sightings, create_identifiers, insert_customers, update_known,
};
use super::lock::load_trees;
use super::resolve::{Resolution, identifier_profiles, lock_customers, resolve_events};
use crate::projection::StepTimer;
use crate::{Error, Result};

/// Rounds a batch decides at most before giving up. Each round after the
/// first means another batch committed an identifier this one needed, so
/// the projectors as a whole always progress; this many in a row only
/// happens when many projectors keep racing for the same new identifiers,
/// and the projector retries the batch.
const DECISION_ROUNDS: u32 = 16;

/// The savepoint the writes of a round are made in.
const SAVEPOINT: &str = "SAVEPOINT identity";
/// Undoes a round whose view was stale, and forgets its savepoint: the
/// next round locks more survivors, and must keep those locks.
const ROLL_BACK: &str = "ROLLBACK TO SAVEPOINT identity; RELEASE SAVEPOINT identity";
/// Keeps a round's writes.
const RELEASE: &str = "RELEASE SAVEPOINT identity";

/// Decides who each of `events` is about and writes the customers and
/// identifier links that follows, deciding again while concurrent batches
/// create identifiers the batch meant to create.
pub(crate) async fn decide_identity(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    rules: &IdentityRules,
    timer: &mut StepTimer,
) -> Result<Resolution> {
    for round in 1..=DECISION_ROUNDS {
        let known = identifier_profiles(transaction, events).await?;
        let survivors = lock_customers(transaction, &known).await?;
        timer.step("lock_customers");
        let trees = load_trees(transaction, &survivors).await?;
        timer.step("trees");
        // Read under the locks: an identifier read above may have left the
        // trees since, and one created since may have joined them.
        let sightings = Sightings::of(events, &trees.profiles);
        let resolution = resolve_events(events, trees, rules);
        let writes = LinkWrites::of(&resolution);
        let new_customers = &resolution.decisions.new_customers;
        if !writes.creates() {
            insert_customers(transaction, new_customers).await?;
            timer.step("customers");
            update_known(transaction, &writes, &sightings).await?;
            timer.step("identifiers");
            return Ok(resolution);
        }
        // Sent together with the first write: one round trip.
        let (savepoint, customers) = futures::join!(
            transaction.batch_execute(SAVEPOINT),
            insert_customers(transaction, new_customers),
        );
        savepoint?;
        customers?;
        timer.step("customers");
        let taken = create_identifiers(transaction, events, &writes).await?;
        if taken > 0 {
            transaction.batch_execute(ROLL_BACK).await?;
            timer.step("contended");
            tracing::debug!(
                round,
                taken,
                "new identifiers were created by a concurrent batch; deciding again"
            );
            continue;
        }
        let (released, updated) = futures::join!(
            transaction.batch_execute(RELEASE),
            update_known(transaction, &writes, &sightings),
        );
        released?;
        updated?;
        timer.step("identifiers");
        return Ok(resolution);
    }
    Err(Error::IdentityContended(DECISION_ROUNDS))
}
