//! The change feed's outbox, writing side: every writer that changes what
//! the feed reports appends rows to `change_outbox` in its own
//! transaction, so a change reaches Kafka if and only if it committed (the
//! relay, `crate::relay`, takes them from there).
//!
//! **Why per customer `seq` order is commit order.** As for the change log
//! (`changes.rs`): a row is keyed by a customer whose `customers` row the
//! writer holds `FOR UPDATE` until commit (the batch locks every survivor
//! it touches and creates the new ones, manual merges and unmerges and
//! erasure lock the survivors), so another writer keyed by the same
//! customer draws its `seq` after this one commits. The relay claims rows
//! in `seq` order, so per customer the topic holds the changes in commit
//! order.
//!
//! [`batch_outbox`] derives a batch's changes from what the batch decided
//! and wrote, in memory; [`record_outbox`] writes any writer's changes in
//! one statement.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::{ContactEvent, Identifier, Trust};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CUSTOMER_ATTRIBUTE_PREFIX;
use crate::Result;

/// An identifier as the feed carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeIdentifier {
    /// `phone`, `email`, `account`, ...
    pub kind: String,
    /// The normalised value, in clear (docs/event-contract.md says why).
    pub value: String,
    /// `verified` or `claimed`; empty where the change names an
    /// identifier without a link (a conflict).
    pub trust: String,
}

impl ChangeIdentifier {
    pub(crate) fn new(identifier: &Identifier, trust: Trust) -> Self {
        ChangeIdentifier {
            kind: identifier.kind().as_str().to_owned(),
            value: identifier.value().to_owned(),
            trust: trust.as_str().to_owned(),
        }
    }

    /// An identifier named without a link, as conflicts name them.
    pub(crate) fn without_trust(identifier: &Identifier) -> Self {
        ChangeIdentifier {
            kind: identifier.kind().as_str().to_owned(),
            value: identifier.value().to_owned(),
            trust: String::new(),
        }
    }
}

/// What a change says beyond its type and customer, stored as JSON in the
/// outbox and encoded as the contract's `detail` by the relay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "detail", rename_all = "snake_case")]
pub enum ChangeDetail {
    /// `customer.created`, `customer.erased`.
    #[default]
    None,
    /// `customer.updated`: the fields the change set.
    Updated {
        /// The display name, when set.
        display_name: Option<String>,
        /// `customer.*` attributes set, keys without the prefix.
        attributes: BTreeMap<String, String>,
    },
    /// `customer.merged`.
    Merged {
        /// The customer it was merged into.
        survivor_id: Uuid,
    },
    /// `customer.unmerged`.
    Unmerged {
        /// The profiles that are a customer of their own again, the
        /// restored customer first.
        restored_ids: Vec<Uuid>,
    },
    /// `identifier.added`.
    IdentifierAdded(ChangeIdentifier),
    /// `case.opened`, `case.resolved`, `case.reopened`.
    Case {
        /// The case.
        case_id: Uuid,
        /// Its contact reason.
        reason: Option<String>,
        /// `open` or `resolved`, after the change.
        status: String,
    },
    /// `task.created`, `task.completed`, `task.rescheduled`.
    Task {
        /// The task.
        task_id: Uuid,
        /// `open` or `done`, after the change.
        status: String,
        /// When it is due.
        due_at: Option<DateTime<Utc>>,
        /// The channel to follow up on.
        channel: Option<String>,
        /// Who it is assigned to.
        assignee: Option<String>,
    },
    /// `conflict.opened`, `conflict.resolved`.
    Conflict {
        /// The conflict.
        conflict_id: Uuid,
        /// The identifiers that could not be linked.
        identifiers: Vec<ChangeIdentifier>,
        /// The customers it is between.
        customers: Vec<Uuid>,
        /// `open`, `merged` or `dismissed`.
        status: String,
    },
}

/// A change to append with [`record_outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxChange {
    /// The type, e.g. `customer.merged`.
    pub(crate) change_type: &'static str,
    /// The customer it is about: the record key. Locked by the writer.
    pub(crate) customer: Uuid,
    /// The contact event that caused it.
    pub(crate) event_id: Option<Uuid>,
    /// The detail.
    pub(crate) detail: ChangeDetail,
}

impl OutboxChange {
    pub(crate) fn new(
        change_type: &'static str,
        customer: Uuid,
        event_id: Option<Uuid>,
        detail: ChangeDetail,
    ) -> Self {
        OutboxChange {
            change_type,
            customer,
            event_id,
            detail,
        }
    }

    /// Every customer the change names, the key first: what erasure
    /// matches.
    fn customers(&self) -> Vec<Uuid> {
        let mut customers = vec![self.customer];
        match &self.detail {
            ChangeDetail::Merged { survivor_id } => customers.push(*survivor_id),
            ChangeDetail::Unmerged { restored_ids } => customers.extend(restored_ids),
            ChangeDetail::Conflict { customers: c, .. } => customers.extend(c),
            _ => {}
        }
        customers.dedup();
        customers
    }
}

/// Appends `changes` to the outbox in `transaction`, in order (their `seq`
/// follows it), with one statement.
pub(crate) async fn record_outbox(
    transaction: &Transaction<'_>,
    changes: &[OutboxChange],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changes.iter().map(|_| Uuid::now_v7()).collect();
    let types: Vec<&str> = changes.iter().map(|change| change.change_type).collect();
    let keys: Vec<Uuid> = changes.iter().map(|change| change.customer).collect();
    // Arrays of arrays must be rectangular: the customers go as JSON.
    let named: Vec<serde_json::Value> = changes
        .iter()
        .map(|change| serde_json::to_value(change.customers()))
        .collect::<std::result::Result<_, _>>()?;
    let events: Vec<Option<Uuid>> = changes.iter().map(|change| change.event_id).collect();
    let details: Vec<serde_json::Value> = changes
        .iter()
        .map(|change| serde_json::to_value(&change.detail))
        .collect::<std::result::Result<_, _>>()?;
    let statement = transaction
        .prepare_cached(include_str!("../../sql/record_outbox.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[&ids, &types, &keys, &named, &events, &details],
        )
        .await?;
    Ok(())
}

/// A case a batch opened, resolved or reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaseTransition {
    /// `case.opened`, `case.resolved` or `case.reopened`.
    pub(crate) change_type: &'static str,
    /// Its customer after the batch's merges.
    pub(crate) customer: Uuid,
    /// The case.
    pub(crate) case_id: Uuid,
    /// Its contact reason.
    pub(crate) reason: Option<String>,
    /// `open` or `resolved`, after the batch.
    pub(crate) status: &'static str,
    /// The batch's last event of the case.
    pub(crate) event_id: Option<Uuid>,
}

/// A task a batch's event created or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskTransition {
    /// `task.created`, `task.completed` or `task.rescheduled`.
    pub(crate) change_type: &'static str,
    /// The profile of the event.
    pub(crate) profile: Uuid,
    /// The event.
    pub(crate) event_id: Uuid,
    /// The task's fields after the change.
    pub(crate) detail: ChangeDetail,
}

/// A conflict a batch opened (not one it counted again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenedConflict {
    /// The conflict.
    pub(crate) conflict_id: Uuid,
    /// The event that raised it.
    pub(crate) event_index: usize,
    /// The customers it is between.
    pub(crate) customers: Vec<Uuid>,
    /// The identifiers that could not be linked.
    pub(crate) identifiers: Vec<ChangeIdentifier>,
}

/// What a batch decided and wrote that the feed reports.
#[derive(Debug)]
pub(crate) struct BatchFacts<'a> {
    /// The batch's fresh events, in order.
    pub(crate) events: &'a [&'a ContactEvent],
    /// The profile each event came through.
    pub(crate) profiles: &'a [Uuid],
    /// Each event's customer after the batch's merges.
    pub(crate) customers: &'a [Uuid],
    /// The survivor of every profile after the batch's merges.
    pub(crate) survivors: &'a HashMap<Uuid, Uuid>,
    /// The customers the batch created.
    pub(crate) new_customers: &'a [Uuid],
    /// `(survivor, merged, event index)` of the batch's merges, in order.
    pub(crate) merges: Vec<(Uuid, Uuid, usize)>,
    /// Identifiers linked for the first time, with their profile.
    pub(crate) added: Vec<(&'a Identifier, Uuid, Trust)>,
    /// The display names that are the customers' now (after the fold).
    pub(crate) display_names: HashMap<Uuid, String>,
    /// Cases opened, resolved or reopened.
    pub(crate) cases: Vec<CaseTransition>,
    /// Tasks created or changed.
    pub(crate) tasks: Vec<TaskTransition>,
    /// Conflicts opened.
    pub(crate) conflicts: Vec<OpenedConflict>,
}

/// The latest display name each customer's events of the batch carry.
pub(crate) fn batch_display_names(
    events: &[&ContactEvent],
    customers: &[Uuid],
) -> HashMap<Uuid, String> {
    let mut latest: HashMap<Uuid, (&str, DateTime<Utc>)> = HashMap::new();
    for (event, customer) in events.iter().zip(customers) {
        let Some(name) = event.display_name.as_deref() else {
            continue;
        };
        let entry = latest.entry(*customer).or_insert((name, event.occurred_at));
        if event.occurred_at >= entry.1 {
            *entry = (name, event.occurred_at);
        }
    }
    latest
        .into_iter()
        .map(|(customer, (name, _))| (customer, name.to_owned()))
        .collect()
}

/// The changes of a batch, in the order a consumer can follow: customers
/// created, merges, identifiers added, profiles updated, cases, tasks,
/// conflicts. Changes other than `customer.created` and `customer.merged`
/// are keyed by the customer after the batch's merges.
pub(crate) fn batch_outbox(facts: &BatchFacts<'_>) -> Vec<OutboxChange> {
    let survivor = |profile: Uuid| facts.survivors.get(&profile).copied().unwrap_or(profile);
    let event_id = |index: usize| facts.events.get(index).map(|event| event.event_id);
    let mut changes = Vec::new();
    for &customer in facts.new_customers {
        let first = facts.profiles.iter().position(|p| *p == customer);
        changes.push(OutboxChange::new(
            "customer.created",
            customer,
            first.and_then(event_id),
            ChangeDetail::None,
        ));
    }
    for &(survivor_id, merged, index) in &facts.merges {
        changes.push(OutboxChange::new(
            "customer.merged",
            merged,
            event_id(index),
            ChangeDetail::Merged { survivor_id },
        ));
    }
    let mut first_carrier: HashMap<&Identifier, Uuid> = HashMap::new();
    for event in facts.events {
        for identifier in event.plain_identifiers() {
            first_carrier.entry(identifier).or_insert(event.event_id);
        }
    }
    for (identifier, profile, trust) in &facts.added {
        changes.push(OutboxChange::new(
            "identifier.added",
            survivor(*profile),
            first_carrier.get(identifier).copied(),
            ChangeDetail::IdentifierAdded(ChangeIdentifier::new(identifier, *trust)),
        ));
    }
    changes.extend(profile_updates(facts));
    for case in &facts.cases {
        changes.push(OutboxChange::new(
            case.change_type,
            case.customer,
            case.event_id,
            ChangeDetail::Case {
                case_id: case.case_id,
                reason: case.reason.clone(),
                status: case.status.to_owned(),
            },
        ));
    }
    for task in &facts.tasks {
        changes.push(OutboxChange::new(
            task.change_type,
            survivor(task.profile),
            Some(task.event_id),
            task.detail.clone(),
        ));
    }
    for conflict in &facts.conflicts {
        let customer = facts
            .customers
            .get(conflict.event_index)
            .copied()
            .or_else(|| conflict.customers.first().map(|c| survivor(*c)));
        let Some(customer) = customer else { continue };
        changes.push(OutboxChange::new(
            "conflict.opened",
            customer,
            event_id(conflict.event_index),
            ChangeDetail::Conflict {
                conflict_id: conflict.conflict_id,
                identifiers: conflict.identifiers.clone(),
                customers: conflict.customers.clone(),
                status: "open".to_owned(),
            },
        ));
    }
    changes
}

/// A `customer.updated` per customer whose display name or `customer.*`
/// attributes the batch's events set: the latest value of each (by
/// `occurred_at`), the display name only where it is the customer's now
/// (a late event's older name does not replace a newer one).
fn profile_updates(facts: &BatchFacts<'_>) -> Vec<OutboxChange> {
    type Latest<'a> = BTreeMap<&'a str, (&'a str, DateTime<Utc>)>;
    let mut set: BTreeMap<Uuid, (Latest<'_>, Option<Uuid>)> = BTreeMap::new();
    for (event, customer) in facts.events.iter().zip(facts.customers) {
        let attributes = event
            .attributes
            .iter()
            .filter_map(|(key, value)| {
                key.strip_prefix(CUSTOMER_ATTRIBUTE_PREFIX)
                    .filter(|key| !key.is_empty())
                    .map(|key| (key, value.as_str()))
            })
            .collect::<Vec<_>>();
        if attributes.is_empty() && event.display_name.is_none() {
            continue;
        }
        let (latest, last_event) = set.entry(*customer).or_default();
        *last_event = Some(event.event_id);
        for (key, value) in attributes {
            let entry = latest.entry(key).or_insert((value, event.occurred_at));
            if event.occurred_at >= entry.1 {
                *entry = (value, event.occurred_at);
            }
        }
    }
    let names = batch_display_names(facts.events, facts.customers);
    set.into_iter()
        .filter_map(|(customer, (latest, last_event))| {
            let display_name = names
                .get(&customer)
                .filter(|name| facts.display_names.get(&customer) == Some(*name))
                .cloned();
            if latest.is_empty() && display_name.is_none() {
                return None;
            }
            let attributes = latest
                .into_iter()
                .map(|(key, (value, _))| (key.to_owned(), value.to_owned()))
                .collect();
            Some(OutboxChange::new(
                "customer.updated",
                customer,
                last_event,
                ChangeDetail::Updated {
                    display_name,
                    attributes,
                },
            ))
        })
        .collect()
}

/// The display names of `customers` as they are now, for the ones the
/// batch named: one query, only when some event carried a name.
pub(crate) async fn current_display_names(
    transaction: &Transaction<'_>,
    named: &HashMap<Uuid, String>,
) -> Result<HashMap<Uuid, String>> {
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = named.keys().copied().collect();
    let statement = transaction
        .prepare_cached(
            "SELECT id, display_name FROM customers WHERE id = ANY($1) AND display_name IS NOT NULL",
        )
        .await?;
    Ok(transaction
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip_through_json() {
        let details = [
            ChangeDetail::None,
            ChangeDetail::Merged {
                survivor_id: Uuid::from_u128(1),
            },
            ChangeDetail::Updated {
                display_name: Some("Anna".into()),
                attributes: BTreeMap::from([("tier".into(), "gold".into())]),
            },
            ChangeDetail::IdentifierAdded(ChangeIdentifier {
                kind: "email".into(),
                value: "anna@example.nl".into(),
                trust: "verified".into(),
            }),
        ];
        for detail in details {
            let json = serde_json::to_value(&detail).expect("encodes");
            assert_eq!(
                serde_json::from_value::<ChangeDetail>(json).expect("decodes"),
                detail
            );
        }
    }

    #[test]
    fn a_change_names_its_key_first_and_every_customer_it_mentions() {
        let change = OutboxChange::new(
            "customer.merged",
            Uuid::from_u128(2),
            None,
            ChangeDetail::Merged {
                survivor_id: Uuid::from_u128(1),
            },
        );
        assert_eq!(
            change.customers(),
            vec![Uuid::from_u128(2), Uuid::from_u128(1)]
        );
    }
}
