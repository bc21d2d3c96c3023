//! Cases in the projection: the cases a batch's events may join are read,
//! [`assign_cases`] decides in memory, and the touched cases are written
//! back whole.

use std::collections::{BTreeSet, HashMap};

use chrono::DateTime;
use deadpool_postgres::Transaction;
use panorama_core::cases::{
    CaseContact, CaseDecisions, CaseInput, CaseRules, CaseState, CaseStatus, assign_cases,
    case_id_for, reason_key,
};
use panorama_core::{Channel, ContactEvent};
use uuid::Uuid;

use crate::Result;
use crate::projection::outbox::CaseTransition;

/// The case of each event of a batch, after the batch's case merges.
#[derive(Debug, Default)]
pub(crate) struct BatchCases {
    /// In batch order.
    pub(crate) event_cases: Vec<Option<Uuid>>,
    /// Cases changed, to report to listeners.
    pub(crate) touched: Vec<(Uuid, Uuid)>,
    /// Cases opened, resolved or reopened, for the change feed.
    pub(crate) transitions: Vec<CaseTransition>,
}

/// Assigns the batch's events to cases and writes the cases back.
/// `customers` gives each event's customer after the batch's merges and
/// `profiles` the profile each event came through; `survivors` maps every
/// profile of the batch's customers to its survivor.
pub(crate) async fn project_cases(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    customers: &[Uuid],
    profiles: &[Uuid],
    survivors: &HashMap<Uuid, Uuid>,
    rules: &CaseRules,
) -> Result<BatchCases> {
    let mut cases = load_cases(transaction, events, survivors, rules).await?;
    let known: BTreeSet<Uuid> = cases.iter().map(|case| case.id).collect();
    let before: HashMap<Uuid, CaseStatus> =
        cases.iter().map(|case| (case.id, case.status)).collect();
    let inputs: Vec<CaseInput<'_>> = events
        .iter()
        .zip(customers)
        .map(|(event, customer)| CaseInput {
            event,
            customer: *customer,
        })
        .collect();
    let decisions = assign_cases(&mut cases, &inputs, rules, case_id_for);
    if decisions.foreign_cases > 0 {
        // An event filed under one customer that names another's case
        // changes no case; it stays on its own customer's timeline.
        tracing::info!(
            events = decisions.foreign_cases,
            "events naming another customer's case changed no case"
        );
    }
    let event_cases = final_cases(&decisions);
    // A new case belongs to the profile of the first event that names it.
    let mut opened_under: HashMap<Uuid, Uuid> = HashMap::new();
    for (case, profile) in event_cases.iter().zip(profiles) {
        if let Some(case) = case {
            opened_under.entry(*case).or_insert(*profile);
        }
    }
    // The batch's last event of each case.
    let mut last_event: HashMap<Uuid, Uuid> = HashMap::new();
    for (event, case) in events.iter().zip(&event_cases) {
        if let Some(case) = case {
            last_event.insert(*case, event.event_id);
        }
    }
    let mut touched = Vec::new();
    let mut transitions = Vec::new();
    let mut written: Vec<(&CaseState, Option<Uuid>)> = Vec::new();
    for case in cases
        .iter()
        .filter(|case| decisions.touched.contains(&case.id))
    {
        let profile = (!known.contains(&case.id))
            .then(|| opened_under.get(&case.id).copied())
            .flatten();
        written.push((case, profile));
        touched.push((case.customer, case.id));
        transitions.extend(case_transitions(
            case,
            before.get(&case.id).copied(),
            last_event.get(&case.id).copied(),
        ));
    }
    write_cases(transaction, &mut written).await?;
    for (merged, survivor) in &decisions.merged {
        if known.contains(merged) {
            let statement = transaction
                .prepare_cached(
                    "UPDATE cases SET merged_into = $2, updated_at = now() WHERE id = $1",
                )
                .await?;
            transaction.execute(&statement, &[merged, survivor]).await?;
            let events = transaction
                .prepare_cached("UPDATE events SET case_id = $2 WHERE case_id = $1")
                .await?;
            transaction.execute(&events, &[merged, survivor]).await?;
        }
    }
    Ok(BatchCases {
        event_cases,
        touched,
        transitions,
    })
}

/// What the batch did to `case`, whose status before the batch was
/// `before` (`None`: the batch opened it): opened, resolved or reopened,
/// each with `event_id`, the batch's last event of the case.
fn case_transitions(
    case: &CaseState,
    before: Option<CaseStatus>,
    event_id: Option<Uuid>,
) -> Vec<CaseTransition> {
    let types: &[&'static str] = match (before, case.status) {
        (None, CaseStatus::Open) => &["case.opened"],
        (None, CaseStatus::Resolved) => &["case.opened", "case.resolved"],
        (Some(CaseStatus::Open), CaseStatus::Resolved) => &["case.resolved"],
        (Some(CaseStatus::Resolved), CaseStatus::Open) => &["case.reopened"],
        _ => &[],
    };
    types
        .iter()
        .map(|change_type| CaseTransition {
            change_type,
            customer: case.customer,
            case_id: case.id,
            reason: case.reason().map(str::to_owned),
            status: case.status.as_str(),
            event_id,
        })
        .collect()
}

/// Each event's case after every merge of the batch.
fn final_cases(decisions: &CaseDecisions) -> Vec<Option<Uuid>> {
    let merged: HashMap<Uuid, Uuid> = decisions.merged.iter().copied().collect();
    decisions
        .event_cases
        .iter()
        .map(|case| {
            case.map(|mut id| {
                while let Some(&next) = merged.get(&id) {
                    id = next;
                }
                id
            })
        })
        .collect()
}

/// Reads every case the batch's events could join: the cases of the
/// batch's customers with a contact or an opening within the window of the
/// batch's earliest event, those sharing a conversation with it, and those
/// it names; with their contacts.
async fn load_cases(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    survivors: &HashMap<Uuid, Uuid>,
    rules: &CaseRules,
) -> Result<Vec<CaseState>> {
    let profiles: Vec<Uuid> = survivors.keys().copied().collect();
    if profiles.is_empty() && events.iter().all(|event| event.case_id.is_none()) {
        return Ok(Vec::new());
    }
    let earliest = events
        .iter()
        .map(|event| event.occurred_at)
        .min()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let since = earliest - rules.window;
    let conversations: Vec<&str> = events
        .iter()
        .filter_map(|event| event.conversation_id.as_deref())
        .collect();
    let named: Vec<Uuid> = events.iter().filter_map(|event| event.case_id).collect();
    let statement = transaction
        .prepare_cached(include_str!("../../../sql/view/load_cases.sql"))
        .await?;
    let rows = transaction
        .query(&statement, &[&profiles, &since, &conversations, &named])
        .await?;
    let mut cases: Vec<CaseState> = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Uuid = row.get(0);
        let profile: Uuid = row.get(1);
        let status: &str = row.get(2);
        let channels: Vec<String> = row.get(8);
        let mut case = CaseState::new(
            id,
            survivors.get(&profile).copied().unwrap_or(profile),
            row.get(4),
        );
        case.status = if status == "resolved" {
            CaseStatus::Resolved
        } else {
            CaseStatus::Open
        };
        case.agent_reason = row.get(3);
        case.opened_by = row.get(5);
        case.resolved_at = row.get(6);
        case.outcome = row.get(7);
        case.channels = channels
            .iter()
            .filter_map(|channel| channel.parse::<Channel>().ok())
            .collect();
        case.resolution_note = row.get(9);
        cases.push(case);
    }
    if cases.is_empty() {
        return Ok(cases);
    }
    let ids: Vec<Uuid> = cases.iter().map(|case| case.id).collect();
    let contact_types = crate::contact_types();
    let contacts = transaction
        .prepare_cached(
            "SELECT case_id, contact_reason, occurred_at, conversation_id FROM events
             WHERE case_id = ANY($1) AND type = ANY($2)",
        )
        .await?;
    let mut by_case: HashMap<Uuid, Vec<CaseContact>> = HashMap::new();
    for row in transaction
        .query(&contacts, &[&ids, &contact_types])
        .await?
    {
        let reason: Option<String> = row.get(1);
        by_case.entry(row.get(0)).or_default().push(CaseContact {
            reason_key: reason_key(reason.as_deref()),
            reason,
            at: row.get(2),
            conversation_id: row.get(3),
        });
    }
    for case in &mut cases {
        case.contacts = by_case.remove(&case.id).unwrap_or_default();
    }
    Ok(cases)
}

/// Writes the touched `cases`, each with the profile a new one is opened
/// under (`None`: it keeps its own), whole, in one statement. Rows are
/// written in id order, the same order in every transaction.
async fn write_cases(
    transaction: &Transaction<'_>,
    cases: &mut [(&CaseState, Option<Uuid>)],
) -> Result<()> {
    if cases.is_empty() {
        return Ok(());
    }
    cases.sort_unstable_by_key(|(case, _)| case.id);
    let n = cases.len();
    let mut ids = Vec::with_capacity(n);
    let mut customers = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut agent_reasons = Vec::with_capacity(n);
    let mut opened_at = Vec::with_capacity(n);
    let mut opened_by = Vec::with_capacity(n);
    let mut first_contact = Vec::with_capacity(n);
    let mut last_contact = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut conversations = Vec::with_capacity(n);
    let mut resolved_at = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut notes = Vec::with_capacity(n);
    for (case, new_profile) in cases.iter() {
        // Sorted by name, as a recount from the events sorts them.
        let mut names: Vec<&str> = case
            .channels
            .iter()
            .map(|channel| channel.as_str())
            .collect();
        names.sort_unstable();
        let mut threads: Vec<&str> = case
            .contacts
            .iter()
            .filter_map(|contact| contact.conversation_id.as_deref())
            .collect();
        threads.sort_unstable();
        threads.dedup();
        ids.push(case.id);
        customers.push(new_profile.unwrap_or(case.customer));
        statuses.push(case.status.as_str());
        reasons.push(case.reason());
        agent_reasons.push(case.agent_reason.as_deref());
        opened_at.push(case.opened_at);
        opened_by.push(case.opened_by.as_deref());
        first_contact.push(case.first_contact_at());
        last_contact.push(case.last_contact_at());
        counts.push(i32::try_from(case.contacts.len()).unwrap_or(i32::MAX));
        channels.push(serde_json::Value::from(names));
        conversations.push(serde_json::Value::from(threads));
        resolved_at.push(case.resolved_at);
        outcomes.push(case.outcome.as_deref());
        notes.push(case.resolution_note.as_deref());
    }
    let statement = transaction
        .prepare_cached(include_str!("../../../sql/view/upsert_cases.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &ids,
                &customers,
                &statuses,
                &reasons,
                &agent_reasons,
                &opened_at,
                &opened_by,
                &first_contact,
                &last_contact,
                &counts,
                &channels,
                &conversations,
                &resolved_at,
                &outcomes,
                &notes,
            ],
        )
        .await?;
    Ok(())
}
