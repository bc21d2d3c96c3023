//! The change log behind live updates: every writer that changes what an
//! agent sees of a customer appends rows to `customer_changes` in its own
//! transaction and notifies `panorama_changes`; API processes listen on a
//! dedicated connection and read the rows after a subscriber's last `seq`.
//!
//! **Why a per-customer `seq` is a resume point.** `seq` is drawn from a
//! sequence when the row is inserted, not when the transaction commits, so
//! across customers a smaller `seq` can become visible after a larger one.
//! For one surviving customer it cannot: [`record_changes`] inserts only
//! while its transaction holds a `FOR UPDATE` lock on the survivor's
//! `customers` row (it takes the lock itself, through
//! [`lock_survivors`]), and that lock is held until commit. Any other
//! transaction writing changes for the same survivor waits for that lock
//! before it draws its `seq`, so it draws a larger one and commits later. A
//! reader that has seen every change of a survivor up to `seq` therefore
//! misses nothing by asking for `seq > n` later. That is why streams are
//! per customer and why nothing global (such as `max(seq)` of the table) is
//! ever used as a starting point.
//!
//! A merge brings the merged profiles' older rows into the survivor's tree;
//! those may have a smaller `seq` than what a subscriber of the survivor
//! has seen, and are not replayed. The merge itself records a `profile`
//! change, on which a client reloads the timeline.
//!
//! This file is the writing side: the rows and the notification. The
//! reading side (the listener, a subscriber's resume, pruning) is in
//! `read/changes.rs`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::identity::lock_survivors;
use crate::Result;

/// The PostgreSQL notification channel change writers notify.
pub const CHANGES_CHANNEL: &str = "panorama_changes";

/// What changed about a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new entry in the timeline (`event_id` is set).
    Timeline,
    /// The profile (aggregates, identifiers, merges) changed.
    Profile,
    /// A case of the customer changed (`subject_id` is the case id).
    Case,
    /// A kind this build does not know, written by a newer one.
    Other(String),
}

impl ChangeKind {
    /// The name stored in `customer_changes.kind` and used as the SSE event
    /// name.
    pub fn as_str(&self) -> &str {
        match self {
            ChangeKind::Timeline => "timeline",
            ChangeKind::Profile => "profile",
            ChangeKind::Case => "case",
            ChangeKind::Other(name) => name,
        }
    }
}

impl FromStr for ChangeKind {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match text {
            "timeline" => ChangeKind::Timeline,
            "profile" => ChangeKind::Profile,
            "case" => ChangeKind::Case,
            other => ChangeKind::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to record with [`record_changes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Change {
    /// Any id of the customer: it is recorded under its survivor.
    pub(crate) customer: Uuid,
    /// What changed.
    pub(crate) kind: ChangeKind,
    /// The event, for `timeline`.
    pub(crate) event_id: Option<Uuid>,
    /// The thing that changed, e.g. a case id for `case`.
    pub(crate) subject_id: Option<Uuid>,
}

impl Change {
    /// A new timeline entry `event_id` of `customer`.
    pub(crate) fn timeline(customer: Uuid, event_id: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Timeline,
            event_id: Some(event_id),
            subject_id: None,
        }
    }

    /// A changed profile of `customer`.
    pub(crate) fn profile(customer: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Profile,
            event_id: None,
            subject_id: None,
        }
    }

    /// A changed case `case_id` of `customer`.
    #[allow(dead_code)] // for the case writers
    pub(crate) fn case(customer: Uuid, case_id: Uuid) -> Self {
        Change {
            customer,
            kind: ChangeKind::Case,
            event_id: None,
            subject_id: Some(case_id),
        }
    }
}

/// Appends `changes` to the change log in `transaction` and notifies the
/// listeners (delivered at commit, and only then).
///
/// Each change is recorded under the survivor of its customer, which this
/// locks `FOR UPDATE` (a no-op for rows the transaction has locked
/// already), so per survivor `seq` order is commit order (see the module
/// documentation). Unknown customers are skipped, duplicates recorded once,
/// and the order of `changes` is the order of their `seq`.
pub(crate) async fn record_changes(
    transaction: &Transaction<'_>,
    changes: &[Change],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut customers: Vec<Uuid> = changes.iter().map(|change| change.customer).collect();
    customers.sort_unstable();
    customers.dedup();
    let survivors = lock_survivors(transaction, &customers).await?;
    insert_changes(transaction, changes, &survivors).await
}

/// [`record_changes`] for a projector batch, whose changes are nearly all
/// keyed by customers in `held`: survivors after the batch's merges, each
/// one the batch locked `FOR UPDATE` before resolving identity (its merges
/// only fold into those) or created (no other transaction can see it, let
/// alone write changes for it, before this one commits). So the
/// per-survivor `seq` order of the module documentation holds for them
/// without locking them again; any other customer is locked as
/// [`record_changes`] does.
pub(crate) async fn record_batch_changes(
    transaction: &Transaction<'_>,
    changes: &[Change],
    held: &HashSet<Uuid>,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut others: Vec<Uuid> = changes
        .iter()
        .map(|change| change.customer)
        .filter(|customer| !held.contains(customer))
        .collect();
    others.sort_unstable();
    others.dedup();
    let mut survivors = if others.is_empty() {
        HashMap::new()
    } else {
        lock_survivors(transaction, &others).await?
    };
    survivors.extend(held.iter().map(|customer| (*customer, *customer)));
    insert_changes(transaction, changes, &survivors).await
}

/// Appends `changes`, each under the survivor `survivors` gives for its
/// customer (one the transaction holds); unknown customers are skipped.
async fn insert_changes(
    transaction: &Transaction<'_>,
    changes: &[Change],
    survivors: &HashMap<Uuid, Uuid>,
) -> Result<()> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut ids = Vec::with_capacity(changes.len());
    let mut kinds = Vec::with_capacity(changes.len());
    let mut events = Vec::with_capacity(changes.len());
    let mut subjects = Vec::with_capacity(changes.len());
    for change in changes {
        let Some(&survivor) = survivors.get(&change.customer) else {
            tracing::debug!(customer = %change.customer, "change of an unknown customer skipped");
            continue;
        };
        if !seen.insert((survivor, &change.kind, change.event_id, change.subject_id)) {
            continue;
        }
        ids.push(survivor);
        kinds.push(change.kind.as_str());
        events.push(change.event_id);
        subjects.push(change.subject_id);
    }
    if ids.is_empty() {
        return Ok(());
    }
    let statement = transaction
        .prepare_cached(include_str!("../../sql/record_changes.sql"))
        .await?;
    transaction
        .execute(&statement, &[&ids, &kinds, &events, &subjects])
        .await?;
    Ok(())
}

/// The changes of a projected batch: a `timeline` change per inserted
/// event `(event, customer, received_at)`, then a `profile` change per
/// customer they went to, then a `case` change per case `(customer, case)`
/// the batch created or changed.
pub(crate) fn batch_changes(
    inserted: &[(Uuid, Uuid, DateTime<Utc>)],
    cases: &[(Uuid, Uuid)],
) -> Vec<Change> {
    let timeline = inserted
        .iter()
        .map(|(event, customer, _)| Change::timeline(*customer, *event));
    let profiles = inserted
        .iter()
        .map(|(_, customer, _)| Change::profile(*customer));
    let cases = cases
        .iter()
        .map(|&(customer, case)| Change::case(customer, case));
    timeline.chain(profiles).chain(cases).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_kept() {
        for kind in [ChangeKind::Timeline, ChangeKind::Profile, ChangeKind::Case] {
            assert_eq!(kind.as_str().parse::<ChangeKind>(), Ok(kind.clone()));
        }
        assert_eq!(
            "feedback".parse::<ChangeKind>(),
            Ok(ChangeKind::Other("feedback".into()))
        );
        assert_eq!(ChangeKind::Other("x".into()).to_string(), "x");
    }
}
