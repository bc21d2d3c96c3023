//! How an event folds into the history: the projection writer.
//!
//! The projector hands the store a batch of events; the batch is projected
//! in one transaction together with the consumer's offsets ([`batch`]),
//! with set-based statements throughout, one round trip per step whatever
//! the batch's size. [`apply_events`] takes the steps in this order, each in
//! a file of this folder:
//!
//! 1. **Skip what is known** ([`events`]): duplicates within the batch and
//!    events projected before are dropped, so nothing counts twice; one
//!    whose payload differs from the first under its id (its fingerprint,
//!    see [`crate::fingerprint()`]) is counted as an idempotency conflict.
//! 2. **Decide identity** ([`identity`]): lock the customers the batch's
//!    known identifiers lead to and load their merge trees, resolve who
//!    each event is about and attribute each event to a profile, then
//!    insert the new customers and identifiers; decided again when a
//!    concurrent batch created one of those identifiers first.
//! 3. **Assign cases** ([`view`]), before the events are written: each
//!    event row names its case.
//! 4. **Insert the events** ([`events`]), each under the profile it came
//!    through.
//! 5. **Merge and record conflicts** ([`identity`]), with the identity
//!    history.
//! 6. **Fold the aggregates** of the inserted events into their customers
//!    and the daily roll-ups, keep the latest consent statements and
//!    traits, and apply task events ([`view`]).
//! 7. **Record the changes** that live updates read ([`changes`]) and
//!    the change feed's outbox rows ([`outbox`]), derived from what the
//!    steps above decided. The change-log rows go out in one pipeline with
//!    the statements of step 6, which none of them reads.
//! 8. **Store the offsets** ([`offsets`]) and the dead letters
//!    ([`dead_letters`]), then commit ([`batch`]).
//!
//! The identity writes the admin API makes outside any batch (manual
//! merges, unmerges, settling conflicts) are in `identity/manual.rs`,
//! because they are made of these steps. The queries over what is written
//! here are in `read/`; the pure rules the steps apply are in
//! `panorama_core` (`identity`, `cases`, `priority`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use uuid::Uuid;

use crate::{Error, Result, Store};

mod batch;
mod changes;
mod dead_letters;
mod events;
mod identity;
pub(crate) mod offsets;
pub(crate) mod outbox;
mod view;

pub use batch::BatchTransaction;
pub(crate) use changes::ChangeId;
pub use changes::{CHANGES_CHANNEL, ChangeKind};
pub use dead_letters::DeadLetter;
pub use identity::{ConflictAction, ConflictOutcome, MergeOutcome, MergeRecord, UnmergeOutcome};
pub use offsets::{Claim, PartitionOffset};
pub use outbox::{ChangeDetail, ChangeIdentifier};
pub use view::{
    CUSTOMER_ATTRIBUTE_PREFIX, TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID, ViewRules,
};
// How stored identifiers and conflict reasons read back, for `read/`.
pub(crate) use identity::{lock_survivors, reason_detail, stored_identifier};

/// What one batch changed.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Events written for the first time, with their customer (as it is
    /// after the batch's merges) and gateway receipt time.
    pub inserted: Vec<(Uuid, Uuid, DateTime<Utc>)>,
    /// Events already present (replays, retries, duplicates in the batch).
    pub duplicates: usize,
    /// Customers created.
    pub new_customers: usize,
    /// Customers merged into another.
    pub merges: usize,
    /// Merges refused and identifiers left unlinked (see the conflicts).
    pub conflicts: usize,
    /// Cases created or changed, with their customer.
    pub cases: Vec<(Uuid, Uuid)>,
    /// Duplicates (counted among `duplicates`) whose payload differs from
    /// the event first projected under their id: the first wins.
    pub idempotency_conflicts: usize,
    /// New customer traits (`customer.*` keys) dropped because their
    /// customer holds the most it may
    /// ([`panorama_core::traits::MAX_TRAITS`]).
    pub traits_dropped: u64,
}

impl BatchOutcome {
    /// Adds what `other`, a later part of the same batch, changed.
    pub fn absorb(&mut self, other: BatchOutcome) {
        self.inserted.extend(other.inserted);
        self.duplicates += other.duplicates;
        self.new_customers += other.new_customers;
        self.merges += other.merges;
        self.conflicts += other.conflicts;
        self.cases.extend(other.cases);
        self.idempotency_conflicts += other.idempotency_conflicts;
        self.traits_dropped += other.traits_dropped;
    }
}

/// Folds `events` into the history inside `transaction`, by the steps of
/// the module documentation. Events already projected are skipped.
pub(crate) async fn apply_events(
    transaction: &Transaction<'_>,
    store: &Store,
    events: &[ContactEvent],
) -> Result<BatchOutcome> {
    let mut timer = StepTimer::new();
    let (unique, conflicts_in_batch, fingerprints) = events::unique_by_id(events);
    let (fresh, conflicts_stored) = events::skip_existing(transaction, unique).await?;
    timer.step("skip_existing");
    let mut outcome = if fresh.is_empty() {
        BatchOutcome::default()
    } else {
        apply_fresh(transaction, store, &fresh, &fingerprints, &mut timer).await?
    };
    tracing::debug!(steps = %timer, "batch steps");
    outcome.duplicates = events.len() - outcome.inserted.len();
    outcome.idempotency_conflicts = conflicts_in_batch + conflicts_stored;
    Ok(outcome)
}

/// Steps 2 to 7 for the events not projected before.
async fn apply_fresh(
    transaction: &Transaction<'_>,
    store: &Store,
    fresh: &[&ContactEvent],
    fingerprints: &HashMap<Uuid, [u8; 32]>,
    timer: &mut StepTimer,
) -> Result<BatchOutcome> {
    let resolution = identity::decide_identity(transaction, fresh, &store.rules, timer).await?;
    let decisions = &resolution.decisions;

    let profiles = &resolution.attribution.event_profiles;
    let cases = view::project_cases(
        transaction,
        fresh,
        &resolution.customers,
        profiles,
        &resolution.attribution.survivors,
        &store.view.cases,
    )
    .await?;
    timer.step("cases");
    // Every fresh event is inserted (a concurrent duplicate fails the
    // whole statement), so the inserted events are exactly `fresh`.
    events::insert_events(
        transaction,
        fresh,
        profiles,
        &cases.event_cases,
        fingerprints,
    )
    .await?;
    timer.step("events");

    identity::apply_merges(transaction, fresh, &decisions.merges).await?;
    let opened_conflicts =
        identity::record_conflicts(transaction, fresh, &decisions.conflicts).await?;
    timer.step("identity");

    let by_customer = resolution.by_customer(fresh);
    let by_profile = resolution.by_profile(fresh);
    let inserted: Vec<(Uuid, Uuid, DateTime<Utc>)> = by_customer
        .iter()
        .map(|(event, customer)| (event.event_id, *customer, event.received_at))
        .collect();
    let rows = changes::batch_changes(&inserted, &cases.touched);
    let held: HashSet<Uuid> = resolution.customers.iter().copied().collect();
    // Nothing below reads what another of these writes, so they go out
    // together: tokio-postgres pipelines statements issued concurrently on
    // one connection, and the batch waits for one round trip, not one per
    // statement. PostgreSQL still runs them one after the other.
    let (aggregates, view, consent, traits, tasks, changes) = futures::join!(
        view::fold_aggregates(transaction, &by_customer),
        view::fold_view(transaction, &by_customer),
        view::fold_consent(transaction, &by_customer),
        view::fold_traits(transaction, &by_customer),
        view::project_tasks(transaction, &by_profile),
        changes::record_batch_changes(transaction, &rows, &held),
    );
    let mut failure = None;
    for result in [aggregates, view, consent, changes] {
        note_failure(&mut failure, result);
    }
    let traits_dropped = traits.unwrap_or_else(|error| {
        note_failure(&mut failure, Err(error));
        0
    });
    let tasks = tasks.unwrap_or_else(|error| {
        note_failure(&mut failure, Err(error));
        Vec::new()
    });
    if let Some(error) = failure {
        return Err(error);
    }
    timer.step("aggregates");
    let named = outbox::batch_display_names(fresh, &resolution.customers);
    let facts = outbox::BatchFacts {
        events: fresh,
        profiles,
        customers: &resolution.customers,
        survivors: &resolution.attribution.survivors,
        new_customers: &decisions.new_customers,
        merges: decisions
            .merges
            .iter()
            .map(|merge| (merge.survivor, merge.merged, merge.event_index))
            .collect(),
        added: resolution
            .attribution
            .links
            .iter()
            .filter(|link| !link.existed)
            .filter_map(|link| {
                link.link
                    .map(|(profile, trust)| (&link.identifier, profile, trust))
            })
            .collect(),
        display_names: outbox::current_display_names(transaction, &named).await?,
        cases: cases.transitions,
        tasks,
        conflicts: opened_conflicts,
    };
    outbox::record_outbox(transaction, &outbox::batch_outbox(&facts)).await?;
    timer.step("outbox");

    Ok(BatchOutcome {
        inserted,
        // Counted by the caller, over the whole batch.
        duplicates: 0,
        new_customers: decisions.new_customers.len(),
        merges: decisions.merges.len(),
        conflicts: decisions.conflicts.len(),
        cases: cases.touched,
        idempotency_conflicts: 0,
        traits_dropped,
    })
}

/// Keeps, of the errors of statements pipelined in one transaction, the
/// one that failed it: the statements sent after it only answer that the
/// transaction is aborted (SQLSTATE 25P02), which says nothing about the
/// batch's data, and the projector decides by the cause whether to isolate
/// a record.
fn note_failure(failure: &mut Option<Error>, result: Result<()>) {
    let Err(error) = result else { return };
    let aborted = |error: &Error| error.sqlstate() == Some("25P02");
    match failure {
        Some(kept) if !aborted(kept) || aborted(&error) => {}
        _ => *failure = Some(error),
    }
}

/// Milliseconds per step of a batch, for the debug log.
struct StepTimer {
    last: std::time::Instant,
    steps: Vec<(&'static str, f64)>,
}

impl StepTimer {
    fn new() -> Self {
        StepTimer {
            last: std::time::Instant::now(),
            steps: Vec::new(),
        }
    }

    fn step(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.steps
            .push((name, (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
    }
}

impl std::fmt::Display for StepTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, ms) in &self.steps {
            write!(f, "{name}={ms:.1}ms ")?;
        }
        Ok(())
    }
}
