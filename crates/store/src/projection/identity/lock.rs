//! Locking the customers a transaction will decide about, and reading what
//! the resolver needs to know about them.
//!
//! Every writer of identity (the projector's batches, manual merges and
//! unmerges) locks the surviving customers it touches with `FOR UPDATE`, in
//! id order, before reading their identifiers. A survivor can only change
//! under a lock on it, so once the locked set covers the survivors of every
//! profile concerned, the transaction's view of those trees is stable until
//! it commits. A concurrent merge can move a profile to a survivor that is
//! not locked yet while this transaction waits; the loop then locks that
//! one too. Locks taken in a second round may go against the id order; the
//! rare deadlock that follows is detected by PostgreSQL and the whole
//! transaction is retried.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::Transaction;
use panorama_core::identity::Snapshot;
use panorama_core::{Identifier, IdentifierKind};
use uuid::Uuid;

use crate::Result;

/// Locks the survivors of `profiles` and returns each known profile's
/// survivor (unknown ids are left out).
pub(crate) async fn lock_survivors(
    transaction: &Transaction<'_>,
    profiles: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>> {
    let read = transaction
        .prepare_cached("SELECT id, survivor_id FROM customers WHERE id = ANY($1)")
        .await?;
    let lock = transaction
        .prepare_cached("SELECT id FROM customers WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .await?;
    let mut locked: BTreeSet<Uuid> = BTreeSet::new();
    loop {
        let survivors: HashMap<Uuid, Uuid> = transaction
            .query(&read, &[&profiles])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let missing: Vec<Uuid> = survivors
            .values()
            .filter(|survivor| !locked.contains(survivor))
            .copied()
            .collect::<BTreeSet<Uuid>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(survivors);
        }
        transaction.execute(&lock, &[&missing]).await?;
        locked.extend(missing);
    }
}

/// What the store knows of some surviving customers: their merge trees'
/// identifiers (and which links are only claimed), which profile each
/// identifier came through, and the separations between them.
#[derive(Debug, Default)]
pub(crate) struct Trees {
    /// The resolver's view: identifiers per survivor, do-not-merge pairs.
    pub(crate) snapshot: Snapshot,
    /// The profile each identifier came through.
    pub(crate) profiles: HashMap<Identifier, Uuid>,
    /// The survivor of every profile of the trees.
    pub(crate) survivors: HashMap<Uuid, Uuid>,
}

/// Reads the trees of `survivors`, which the caller has locked.
pub(crate) async fn load_trees(transaction: &Transaction<'_>, survivors: &[Uuid]) -> Result<Trees> {
    let mut trees = Trees::default();
    if survivors.is_empty() {
        return Ok(trees);
    }
    let members = transaction
        .prepare_cached("SELECT id, survivor_id FROM customers WHERE survivor_id = ANY($1)")
        .await?;
    for row in transaction.query(&members, &[&survivors]).await? {
        trees.survivors.insert(row.get(0), row.get(1));
    }
    let identifiers = transaction
        .prepare_cached(
            "SELECT c.survivor_id, i.kind, i.value, i.customer_id, i.trust = 'claimed'
             FROM customers AS c JOIN identifiers AS i ON i.customer_id = c.id
             WHERE c.survivor_id = ANY($1)",
        )
        .await?;
    let mut by_survivor: HashMap<Uuid, Vec<Identifier>> = survivors
        .iter()
        .map(|&survivor| (survivor, Vec::new()))
        .collect();
    let mut claimed = Vec::new();
    for row in transaction.query(&identifiers, &[&survivors]).await? {
        let Some(identifier) = stored_identifier(row.get(1), row.get(2)) else {
            continue;
        };
        trees.profiles.insert(identifier.clone(), row.get(3));
        if row.get::<_, bool>(4) {
            claimed.push(identifier.clone());
        }
        by_survivor.entry(row.get(0)).or_default().push(identifier);
    }
    trees.snapshot = Snapshot::from_customers(by_survivor);
    for identifier in claimed {
        trees.snapshot.mark_claimed(identifier);
    }
    let separations = transaction
        .prepare_cached(
            "SELECT a.survivor_id, b.survivor_id
             FROM identity_separations AS s
             JOIN customers AS a ON a.id = s.customer_a
             JOIN customers AS b ON b.id = s.customer_b
             WHERE a.survivor_id = ANY($1) AND b.survivor_id = ANY($1)",
        )
        .await?;
    for row in transaction.query(&separations, &[&survivors]).await? {
        let (a, b): (Uuid, Uuid) = (row.get(0), row.get(1));
        if a != b {
            trees.snapshot.forbid_merge(a, b);
        }
    }
    Ok(trees)
}

/// An identifier as stored: normalised when it was written, so parsing
/// again only fails if the schema was edited by hand; such rows are skipped.
pub(crate) fn stored_identifier(kind: &str, value: &str) -> Option<Identifier> {
    let kind = kind.parse::<IdentifierKind>().ok()?;
    Identifier::parse(kind, value, None).ok()
}
