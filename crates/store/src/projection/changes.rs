//! The change log behind live updates: every writer that changes what an
//! agent sees of a customer appends rows to `customer_changes` in its own
//! transaction and notifies `panorama_changes`; API processes listen on a
//! dedicated connection and read the changes after a subscriber's last one.
//!
//! **One row per customer per transaction.** A row holds all the changes a
//! transaction records for one survivor, in order, as its entries: a
//! projector batch writes one row per customer it touched (its new timeline
//! entries, then `profile`, then its cases) rather than one per change, so
//! the log costs one row per (customer, batch) instead of two or more per
//! event. A stream names a change by [`ChangeId`], its row's `seq` and its
//! index in the row, so resuming still starts after one exact change.
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

/// Where one change is in the log: its row's `seq` and its position in
/// the row. A stream sends it packed as `seq · 2^20 + index` (its SSE id),
/// so `Last-Event-ID` names one change, not a row, and ids grow along a
/// stream exactly as positions do (row by row, then within a row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ChangeId {
    seq: i64,
    index: u32,
}

impl ChangeId {
    /// Bits of a packed id that hold the position within the row.
    const INDEX_BITS: u32 = 20;
    /// Most entries in one row: writers split a larger one.
    pub(crate) const ENTRIES_PER_ROW: usize = 1 << Self::INDEX_BITS;
    /// The largest position within a row.
    const LAST_INDEX: u32 = (1 << Self::INDEX_BITS) - 1;
    /// The largest `seq` a packed id can hold (2^43 - 1).
    pub(crate) const MAX_SEQ: i64 = i64::MAX >> Self::INDEX_BITS;

    /// The change at `index` of row `seq`; `None` outside the packable
    /// range (a negative `seq` or one past [`Self::MAX_SEQ`], an index past
    /// a row's last).
    pub(crate) fn new(seq: i64, index: u32) -> Option<Self> {
        ((0..=Self::MAX_SEQ).contains(&seq) && index <= Self::LAST_INDEX)
            .then_some(ChangeId { seq, index })
    }

    /// The position after every change of row `seq` (the last index a row
    /// can have): where a stream starts that has seen the row. `seq` is
    /// clamped to the packable range.
    pub(crate) fn end_of_row(seq: i64) -> Self {
        ChangeId {
            seq: seq.clamp(0, Self::MAX_SEQ),
            index: Self::LAST_INDEX,
        }
    }

    /// The row.
    pub(crate) fn seq(self) -> i64 {
        self.seq
    }

    /// The position within the row, from 0.
    pub(crate) fn index(self) -> u32 {
        self.index
    }

    /// The SSE id: `seq · 2^20 + index`, never negative.
    pub(crate) fn pack(self) -> i64 {
        (self.seq << Self::INDEX_BITS) | i64::from(self.index)
    }

    /// The position a packed id names; `None` for a negative one. Every
    /// other `i64` is some position, so an id from before rows held several
    /// changes (a bare `seq`) reads as an earlier position than the one it
    /// named: resuming from it sends changes again, never skips one.
    pub(crate) fn unpack(id: i64) -> Option<Self> {
        let index = u32::try_from(id & i64::from(Self::LAST_INDEX)).ok()?;
        Self::new(id >> Self::INDEX_BITS, index)
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
/// documentation). Each survivor's changes go in one row (see
/// [`insert_changes`]). Unknown customers are skipped, duplicates recorded
/// once, and for each survivor the order of `changes` is the order of
/// their positions.
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
///
/// One row per survivor, its changes as the row's entries in the order of
/// `changes`; a survivor with more than [`ChangeId::ENTRIES_PER_ROW`]
/// changes gets several rows, in order. Rows go in the order their
/// survivors first appear.
async fn insert_changes(
    transaction: &Transaction<'_>,
    changes: &[Change],
    survivors: &HashMap<Uuid, Uuid>,
) -> Result<()> {
    let rows = change_rows(changes, survivors, ChangeId::ENTRIES_PER_ROW);
    if rows.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::with_capacity(changes.len());
    let mut events = Vec::with_capacity(changes.len());
    let mut subjects = Vec::with_capacity(changes.len());
    let mut row_of = Vec::with_capacity(changes.len());
    let mut customers = Vec::with_capacity(rows.len());
    for (survivor, entries) in &rows {
        customers.push(*survivor);
        // 1-based. (Past i32, which no transaction reaches, PostgreSQL
        // refuses the statement.)
        let row = i32::try_from(customers.len()).unwrap_or(i32::MAX);
        for change in entries {
            kinds.push(change.kind.as_str());
            events.push(change.event_id);
            subjects.push(change.subject_id);
            row_of.push(row);
        }
    }
    let statement = transaction
        .prepare_cached(include_str!("../../sql/record_changes.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[&kinds, &events, &subjects, &row_of, &customers],
        )
        .await?;
    Ok(())
}

/// The rows [`insert_changes`] writes: `(survivor, entries)`, at most
/// `per_row` entries each, duplicates (same survivor, kind, event and
/// subject) and changes of unknown customers left out.
fn change_rows<'a>(
    changes: &'a [Change],
    survivors: &HashMap<Uuid, Uuid>,
    per_row: usize,
) -> Vec<(Uuid, Vec<&'a Change>)> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut order: Vec<Uuid> = Vec::new();
    let mut entries: HashMap<Uuid, Vec<&Change>> = HashMap::new();
    for change in changes {
        let Some(&survivor) = survivors.get(&change.customer) else {
            tracing::debug!(customer = %change.customer, "change of an unknown customer skipped");
            continue;
        };
        if !seen.insert((survivor, &change.kind, change.event_id, change.subject_id)) {
            continue;
        }
        entries
            .entry(survivor)
            .or_insert_with(|| {
                order.push(survivor);
                Vec::new()
            })
            .push(change);
    }
    let per_row = per_row.max(1);
    let mut rows = Vec::with_capacity(order.len());
    for survivor in order {
        let Some(all) = entries.remove(&survivor) else {
            continue;
        };
        for chunk in all.chunks(per_row) {
            rows.push((survivor, chunk.to_vec()));
        }
    }
    rows
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
    use proptest::prelude::*;

    use super::*;

    /// Any position a row can have.
    fn position() -> impl Strategy<Value = ChangeId> {
        let seq = prop_oneof![
            Just(0),
            Just(ChangeId::MAX_SEQ),
            0..=ChangeId::MAX_SEQ,
            0..1_000_000i64,
        ];
        let index = prop_oneof![
            Just(0),
            Just(ChangeId::LAST_INDEX),
            0..=ChangeId::LAST_INDEX
        ];
        (seq, index).prop_map(|(seq, index)| ChangeId::new(seq, index).expect("in range"))
    }

    proptest! {
        #[test]
        fn ids_round_trip_and_order_as_positions(a in position(), b in position()) {
            prop_assert!(a.pack() >= 0);
            prop_assert_eq!(ChangeId::unpack(a.pack()), Some(a));
            prop_assert_eq!(a.cmp(&b), a.pack().cmp(&b.pack()));
            prop_assert!(a <= ChangeId::end_of_row(a.seq()));
        }

        #[test]
        fn every_id_is_a_position_and_a_bare_seq_reads_as_no_later_one(id in 0..=i64::MAX) {
            let position = ChangeId::unpack(id).expect("a position");
            prop_assert_eq!(position.pack(), id);
            // An id from when rows held one change each was the bare
            // `seq`: resuming from it must not skip past that row.
            if id <= ChangeId::MAX_SEQ {
                prop_assert!(position <= ChangeId::new(id, 0).expect("in range"));
            }
        }
    }

    #[test]
    fn ids_at_the_bounds() {
        assert_eq!(ChangeId::ENTRIES_PER_ROW, 1 << 20);
        let first = ChangeId::new(0, 0).expect("in range");
        assert_eq!(first.pack(), 0);
        assert_eq!(ChangeId::unpack(0), Some(first));
        let last = ChangeId::new(ChangeId::MAX_SEQ, ChangeId::LAST_INDEX).expect("in range");
        assert_eq!(last.pack(), i64::MAX);
        assert_eq!(ChangeId::unpack(i64::MAX), Some(last));
        assert_eq!(
            ChangeId::new(3, 5).map(ChangeId::pack),
            Some(3 * (1 << 20) + 5)
        );
        assert_eq!(ChangeId::new(-1, 0), None);
        assert_eq!(ChangeId::new(ChangeId::MAX_SEQ + 1, 0), None);
        assert_eq!(ChangeId::new(0, ChangeId::LAST_INDEX + 1), None);
        assert_eq!(ChangeId::unpack(-1), None);
        assert_eq!(ChangeId::unpack(i64::MIN), None);
        // The last entry of row 7 comes just before the first of row 8.
        assert_eq!(
            ChangeId::end_of_row(7).pack() + 1,
            ChangeId::new(8, 0).expect("in range").pack()
        );
        assert_eq!(ChangeId::end_of_row(-5), ChangeId::end_of_row(0));
        assert_eq!(ChangeId::end_of_row(i64::MAX).pack(), i64::MAX);
    }

    #[test]
    fn rows_hold_each_survivors_changes_in_order() {
        let (a, b, merged, unknown) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let survivors = HashMap::from([(a, a), (b, b), (merged, a)]);
        let events: Vec<Uuid> = (10..16).map(Uuid::from_u128).collect();
        let changes = vec![
            Change::timeline(a, events[0]),
            Change::timeline(b, events[1]),
            Change::timeline(merged, events[2]),
            Change::timeline(unknown, events[3]),
            Change::timeline(a, events[0]),
            Change::profile(a),
            Change::profile(b),
            Change::profile(merged),
            Change::case(b, events[4]),
        ];
        let rows = change_rows(&changes, &survivors, ChangeId::ENTRIES_PER_ROW);
        let shape: Vec<(Uuid, Vec<&Change>)> = vec![
            (a, vec![&changes[0], &changes[2], &changes[5]]),
            (b, vec![&changes[1], &changes[6], &changes[8]]),
        ];
        assert_eq!(rows, shape, "one row per survivor, duplicates once");

        // Past the bound a survivor's changes go on in another row.
        let many: Vec<Change> = events.iter().map(|e| Change::timeline(a, *e)).collect();
        let rows = change_rows(&many, &survivors, 4);
        let sizes: Vec<usize> = rows.iter().map(|(_, entries)| entries.len()).collect();
        assert_eq!(sizes, [4, 2]);
        let flat: Vec<&Change> = rows.into_iter().flat_map(|(_, entries)| entries).collect();
        assert_eq!(flat, many.iter().collect::<Vec<_>>(), "in order");
    }

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
