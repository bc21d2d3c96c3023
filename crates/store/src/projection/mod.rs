//! The projection writer: one batch of events and the consumer's offsets in
//! one transaction, with set-based statements throughout.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::identity::{Conflict, customer_id_for, resolve};
use panorama_core::{ContactEvent, Identifier, IdentifierKind};
use uuid::Uuid;

use crate::changes::{Change, batch_changes, record_changes};
use crate::identity::{Cause, attribute, load_trees, lock_survivors, merge_into, record_conflicts};
use crate::view::{fold_view, project_cases, project_tasks};
use crate::{Result, Store};

mod batch;
mod dead_letters;
mod offsets;

pub use batch::BatchTransaction;
pub use dead_letters::DeadLetter;
pub use offsets::{Claim, PartitionOffset};

/// Advisory lock namespace for identifier stripes ("pano").
const IDENTIFIER_LOCK_SPACE: i32 = 0x7061_6e6f;
/// Identifiers hash onto this many stripes; a batch locks its stripes in
/// ascending order, so concurrent projectors never deadlock and never both
/// claim one new identifier, while a batch holds a bounded number of locks.
const IDENTIFIER_STRIPES: u32 = 1024;

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
    }
}

impl Store {
    /// Projects `events` and stores `offsets` for `group` in one transaction.
    /// Events already projected are skipped; aggregates change only for the
    /// events inserted now. The projector uses [`Store::in_batch`], which
    /// can isolate an event PostgreSQL refuses; this is the whole batch or
    /// nothing.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply_batch(
        &self,
        group: &str,
        events: &[ContactEvent],
        offsets: &[PartitionOffset],
    ) -> Result<BatchOutcome> {
        self.in_batch(group, offsets, async |batch| batch.apply(events).await)
            .await
    }
}

/// Folds `events` into the history inside `transaction`: identities,
/// customers, cases, events, aggregates, the agent's view and the change
/// log. Events already projected are skipped.
pub(crate) async fn apply_events(
    transaction: &Transaction<'_>,
    store: &Store,
    events: &[ContactEvent],
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    let mut timer = StepTimer::new();
    let fresh = skip_existing(transaction, unique_by_id(events)).await?;
    timer.step("skip_existing");

    if !fresh.is_empty() {
        lock_identifier_stripes(transaction, &fresh).await?;
        timer.step("lock_stripes");
        let known = identifier_profiles(transaction, &fresh).await?;
        let mut profiles: Vec<Uuid> = known.values().copied().collect();
        profiles.sort_unstable();
        profiles.dedup();
        let survivors = lock_survivors(transaction, &profiles).await?;
        let mut roots: Vec<Uuid> = survivors.values().copied().collect();
        roots.sort_unstable();
        roots.dedup();
        timer.step("lock_customers");
        let trees = load_trees(transaction, &roots).await?;
        timer.step("trees");
        let identifiers: Vec<&[Identifier]> = fresh
            .iter()
            .map(|event| event.identifiers.as_slice())
            .collect();
        let mut snapshot = trees.snapshot;
        let decisions = resolve(&mut snapshot, &identifiers, &store.rules, |index| {
            customer_id_for(fresh[index])
        });
        let attribution = attribute(&identifiers, &decisions, trees.profiles, trees.survivors);
        insert_customers(transaction, &decisions.new_customers).await?;
        outcome.new_customers = decisions.new_customers.len();
        timer.step("customers");
        let links: Vec<(&Identifier, Uuid)> = decisions
            .new_links
            .iter()
            .zip(&attribution.link_profiles)
            .map(|((identifier, _), profile)| (identifier, *profile))
            .collect();
        insert_identifiers(transaction, &fresh, &links).await?;
        touch_identifiers(transaction, &fresh, &known).await?;
        timer.step("identifiers");
        let customers: Vec<Uuid> = attribution
            .event_profiles
            .iter()
            .map(|profile| {
                attribution
                    .survivors
                    .get(profile)
                    .copied()
                    .unwrap_or(*profile)
            })
            .collect();
        let cases = project_cases(
            transaction,
            &fresh,
            &customers,
            &attribution.event_profiles,
            &attribution.survivors,
            &store.view.cases,
        )
        .await?;
        outcome.cases = cases.touched;
        timer.step("cases");
        // Every fresh event is inserted (a concurrent duplicate fails the
        // whole statement), so the inserted events are exactly `fresh`.
        insert_events(
            transaction,
            &fresh,
            &attribution.event_profiles,
            &cases.event_cases,
        )
        .await?;
        timer.step("events");
        for merge in &decisions.merges {
            let cause = Cause {
                event_id: Some(fresh[merge.event_index].event_id),
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
        let conflicts: Vec<(&Conflict, Uuid)> = decisions
            .conflicts
            .iter()
            .map(|conflict| (conflict, fresh[conflict.event_index].event_id))
            .collect();
        record_conflicts(transaction, &conflicts).await?;
        outcome.merges = decisions.merges.len();
        outcome.conflicts = decisions.conflicts.len();
        timer.step("identity");
        let inserted_events: Vec<(&ContactEvent, Uuid)> = fresh
            .iter()
            .copied()
            .zip(customers.iter().copied())
            .collect();
        fold_aggregates(transaction, &inserted_events).await?;
        fold_view(transaction, &inserted_events).await?;
        let by_profile: Vec<(&ContactEvent, Uuid)> = fresh
            .iter()
            .copied()
            .zip(attribution.event_profiles.iter().copied())
            .collect();
        project_tasks(transaction, &by_profile).await?;
        timer.step("aggregates");
        outcome.inserted = inserted_events
            .iter()
            .map(|(event, customer)| (event.event_id, *customer, event.received_at))
            .collect();
        let mut changes = batch_changes(&outcome.inserted);
        changes.extend(
            outcome
                .cases
                .iter()
                .map(|&(customer, case)| Change::case(customer, case)),
        );
        record_changes(transaction, &changes).await?;
        timer.step("changes");
    }
    tracing::debug!(steps = %timer, "batch steps");
    outcome.duplicates = events.len() - outcome.inserted.len();
    Ok(outcome)
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

fn unique_by_id(events: &[ContactEvent]) -> Vec<&ContactEvent> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .filter(|event| seen.insert(event.event_id))
        .collect()
}

async fn skip_existing<'a>(
    transaction: &Transaction<'_>,
    events: Vec<&'a ContactEvent>,
) -> Result<Vec<&'a ContactEvent>> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let statement = transaction
        // A join against unnest plans as one index probe per id; `= ANY($1)`
        // with thousands of ids got a generic plan that scanned the table.
        .prepare_cached(
            "SELECT e.event_id FROM unnest($1::uuid[]) AS q (id)
             JOIN events AS e ON e.event_id = q.id",
        )
        .await?;
    let existing: HashSet<Uuid> = transaction
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(events
        .into_iter()
        .filter(|event| !existing.contains(&event.event_id))
        .collect())
}

fn stripe(identifier: &Identifier) -> i32 {
    // FNV-1a over kind and value: stable across processes and versions.
    let hash = [
        identifier.kind().as_str().as_bytes(),
        b":",
        identifier.value().as_bytes(),
    ]
    .into_iter()
    .flatten()
    .fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    });
    (hash % IDENTIFIER_STRIPES) as i32
}

pub(super) async fn lock_identifier_stripes(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
) -> Result<()> {
    let mut stripes: Vec<i32> = events
        .iter()
        .flat_map(|event| event.identifiers.iter().map(stripe))
        .collect();
    stripes.sort_unstable();
    stripes.dedup();
    let statement = transaction
        .prepare_cached(
            "SELECT pg_advisory_xact_lock($1, stripe)
             FROM unnest($2::int4[]) WITH ORDINALITY AS s (stripe, position)
             ORDER BY position",
        )
        .await?;
    transaction
        .execute(&statement, &[&IDENTIFIER_LOCK_SPACE, &stripes])
        .await?;
    Ok(())
}

/// The profile each already known identifier of `events` came through.
async fn identifier_profiles(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
) -> Result<HashMap<Identifier, Uuid>> {
    let mut wanted: HashMap<(IdentifierKind, &str), &Identifier> = HashMap::new();
    for identifier in events.iter().flat_map(|event| &event.identifiers) {
        wanted.insert((identifier.kind(), identifier.value()), identifier);
    }
    let kinds: Vec<&str> = wanted.keys().map(|(kind, _)| kind.as_str()).collect();
    let values: Vec<&str> = wanted.keys().map(|(_, value)| *value).collect();
    let statement = transaction
        .prepare_cached(
            "SELECT i.kind, i.value, i.customer_id
             FROM unnest($1::text[], $2::text[]) AS q (kind, value)
             JOIN identifiers AS i USING (kind, value)",
        )
        .await?;
    let rows = transaction.query(&statement, &[&kinds, &values]).await?;
    let mut owners = HashMap::with_capacity(rows.len());
    for row in rows {
        let kind: &str = row.get(0);
        let value: &str = row.get(1);
        let Ok(kind) = kind.parse::<IdentifierKind>() else {
            continue;
        };
        if let Some(identifier) = wanted.get(&(kind, value)) {
            owners.insert((*identifier).clone(), row.get(2));
        }
    }
    Ok(owners)
}

async fn insert_customers(transaction: &Transaction<'_>, customers: &[Uuid]) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO customers (id, survivor_id) SELECT id, id FROM unnest($1::uuid[]) AS q (id)",
        )
        .await?;
    transaction.execute(&statement, &[&customers]).await?;
    Ok(())
}

async fn insert_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    links: &[(&Identifier, Uuid)],
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    // First and last sighting within this batch, and the source that first
    // brought the identifier.
    let mut seen: HashMap<&Identifier, (DateTime<Utc>, DateTime<Utc>, &str)> = HashMap::new();
    for event in events {
        for identifier in &event.identifiers {
            let entry = seen.entry(identifier).or_insert((
                event.occurred_at,
                event.occurred_at,
                event.source.as_str(),
            ));
            if event.occurred_at < entry.0 {
                entry.0 = event.occurred_at;
                entry.2 = event.source.as_str();
            }
            entry.1 = entry.1.max(event.occurred_at);
        }
    }
    let mut kinds = Vec::with_capacity(links.len());
    let mut values = Vec::with_capacity(links.len());
    let mut customers = Vec::with_capacity(links.len());
    let mut sources = Vec::with_capacity(links.len());
    let mut first = Vec::with_capacity(links.len());
    let mut last = Vec::with_capacity(links.len());
    for (identifier, customer) in links {
        let Some((first_at, last_at, source)) = seen.get(*identifier) else {
            continue;
        };
        kinds.push(identifier.kind().as_str());
        values.push(identifier.value());
        customers.push(*customer);
        sources.push(*source);
        first.push(*first_at);
        last.push(*last_at);
    }
    let statement = transaction
        .prepare_cached(
            "INSERT INTO identifiers (kind, value, customer_id, source, first_seen_at, last_seen_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[])",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[&kinds, &values, &customers, &sources, &first, &last],
        )
        .await?;
    Ok(())
}

/// Moves `last_seen_at` of the batch's already known identifiers forward.
/// The batch holds their stripe locks, so no other transaction updates these
/// rows meanwhile.
async fn touch_identifiers(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    known: &HashMap<Identifier, Uuid>,
) -> Result<()> {
    let mut latest: BTreeMap<&Identifier, DateTime<Utc>> = BTreeMap::new();
    for event in events {
        for identifier in event.identifiers.iter().filter(|i| known.contains_key(*i)) {
            let at = latest.entry(identifier).or_insert(event.occurred_at);
            *at = (*at).max(event.occurred_at);
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = latest.keys().map(|i| i.kind().as_str()).collect();
    let values: Vec<&str> = latest.keys().map(|i| i.value()).collect();
    let ats: Vec<DateTime<Utc>> = latest.values().copied().collect();
    let statement = transaction
        .prepare_cached(
            "UPDATE identifiers AS i SET last_seen_at = q.at
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS q (kind, value, at)
             WHERE i.kind = q.kind AND i.value = q.value AND q.at > i.last_seen_at",
        )
        .await?;
    transaction
        .execute(&statement, &[&kinds, &values, &ats])
        .await?;
    Ok(())
}

async fn insert_events(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    customers: &[Uuid],
    cases: &[Option<Uuid>],
) -> Result<()> {
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut occurred = Vec::with_capacity(n);
    let mut received = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut directions = Vec::with_capacity(n);
    let mut identifiers = Vec::with_capacity(n);
    let mut conversations = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut summaries = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut sentiments = Vec::with_capacity(n);
    let mut metrics = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut comments = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut attributes = Vec::with_capacity(n);
    for event in events {
        ids.push(event.event_id);
        occurred.push(event.occurred_at);
        received.push(event.received_at);
        channels.push(event.channel.as_str());
        sources.push(event.source.as_str());
        types.push(event.event_type.as_str());
        directions.push(event.direction.map(|d| d.as_str()));
        identifiers.push(serde_json::to_value(&event.identifiers).unwrap_or_default());
        conversations.push(event.conversation_id.as_deref());
        reasons.push(event.contact_reason.as_deref());
        subjects.push(event.subject.as_deref());
        summaries.push(event.summary.as_deref());
        agents.push(event.agent_id.as_deref());
        queues.push(event.queue.as_deref());
        durations.push(
            event
                .duration_seconds
                .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
        );
        outcomes.push(event.outcome.as_deref());
        sentiments.push(event.sentiment);
        metrics.push(event.feedback.as_ref().map(|f| f.metric.as_str()));
        scores.push(event.feedback.as_ref().map(|f| f.score as i16));
        comments.push(event.feedback.as_ref().and_then(|f| f.comment.as_deref()));
        names.push(event.display_name.as_deref());
        attributes.push(serde_json::to_value(&event.attributes).unwrap_or_default());
    }
    let statement = transaction
        .prepare_cached(include_str!("../../sql/insert_events.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &ids,
                &customers,
                &occurred,
                &received,
                &channels,
                &sources,
                &types,
                &directions,
                &identifiers,
                &conversations,
                &reasons,
                &subjects,
                &summaries,
                &agents,
                &queues,
                &durations,
                &outcomes,
                &sentiments,
                &metrics,
                &scores,
                &comments,
                &names,
                &attributes,
                &cases,
            ],
        )
        .await?;
    Ok(())
}

#[derive(Default)]
struct CustomerDelta<'a> {
    events: i64,
    first_at: Option<DateTime<Utc>>,
    last_at: Option<DateTime<Utc>>,
    name: Option<(&'a str, DateTime<Utc>)>,
}

struct ChannelDelta<'a> {
    events: i64,
    last_at: DateTime<Utc>,
    last_direction: Option<&'a str>,
}

async fn fold_aggregates(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<()> {
    if inserted.is_empty() {
        return Ok(());
    }
    // BTreeMaps: rows are locked and updated in key order, the same order in
    // every transaction, so concurrent batches cannot deadlock on them.
    let mut customers: BTreeMap<Uuid, CustomerDelta<'_>> = BTreeMap::new();
    let mut channels: BTreeMap<(Uuid, &str), ChannelDelta<'_>> = BTreeMap::new();
    for (event, customer) in inserted {
        let at = event.occurred_at;
        let delta = customers.entry(*customer).or_default();
        delta.events += 1;
        if let Some(name) = event.display_name.as_deref() {
            if delta.name.is_none_or(|(_, name_at)| at >= name_at) {
                delta.name = Some((name, at));
            }
        }
        // Receipts, automatic replies, bounces and agent actions are in the
        // history but are not contacts with the customer.
        if !event.event_type.is_customer_contact() {
            continue;
        }
        delta.first_at = Some(delta.first_at.map_or(at, |first| first.min(at)));
        delta.last_at = Some(delta.last_at.map_or(at, |last| last.max(at)));
        let direction = event.direction.map(|d| d.as_str());
        channels
            .entry((*customer, event.channel.as_str()))
            .and_modify(|channel| {
                channel.events += 1;
                if at >= channel.last_at {
                    channel.last_at = at;
                    channel.last_direction = direction;
                }
            })
            .or_insert(ChannelDelta {
                events: 1,
                last_at: at,
                last_direction: direction,
            });
    }

    let ids: Vec<Uuid> = customers.keys().copied().collect();
    let lock = transaction
        .prepare_cached(
            "SELECT c.id FROM customers AS c JOIN unnest($1::uuid[]) AS q (id) ON c.id = q.id
             ORDER BY c.id FOR UPDATE OF c",
        )
        .await?;
    transaction.execute(&lock, &[&ids]).await?;

    let counts: Vec<i64> = customers.values().map(|d| d.events).collect();
    let firsts: Vec<Option<DateTime<Utc>>> = customers.values().map(|d| d.first_at).collect();
    let lasts: Vec<Option<DateTime<Utc>>> = customers.values().map(|d| d.last_at).collect();
    let names: Vec<Option<&str>> = customers.values().map(|d| d.name.map(|(n, _)| n)).collect();
    let name_ats: Vec<Option<DateTime<Utc>>> = customers
        .values()
        .map(|d| d.name.map(|(_, at)| at))
        .collect();
    let update = transaction
        .prepare_cached(include_str!("../../sql/update_customers.sql"))
        .await?;
    transaction
        .execute(
            &update,
            &[&ids, &counts, &firsts, &lasts, &names, &name_ats],
        )
        .await?;

    if channels.is_empty() {
        return Ok(());
    }
    let channel_customers: Vec<Uuid> = channels.keys().map(|(c, _)| *c).collect();
    let channel_names: Vec<&str> = channels.keys().map(|(_, ch)| *ch).collect();
    let channel_counts: Vec<i64> = channels.values().map(|d| d.events).collect();
    let channel_lasts: Vec<DateTime<Utc>> = channels.values().map(|d| d.last_at).collect();
    let channel_directions: Vec<Option<&str>> =
        channels.values().map(|d| d.last_direction).collect();
    let upsert = transaction
        .prepare_cached(include_str!("../../sql/upsert_channels.sql"))
        .await?;
    transaction
        .execute(
            &upsert,
            &[
                &channel_customers,
                &channel_names,
                &channel_counts,
                &channel_lasts,
                &channel_directions,
            ],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_stable_and_in_range() {
        let phone = Identifier::parse(IdentifierKind::Phone, "+31612345678", None).expect("valid");
        let email =
            Identifier::parse(IdentifierKind::Email, "anna@example.nl", None).expect("valid");
        assert_eq!(stripe(&phone), stripe(&phone.clone()));
        assert!((0..IDENTIFIER_STRIPES as i32).contains(&stripe(&phone)));
        assert!((0..IDENTIFIER_STRIPES as i32).contains(&stripe(&email)));
    }
}
