//! Cases: a customer's contacts grouped by their reason for contact, so an
//! agent sees "third contact about the missing parcel" rather than three
//! unrelated calls. Pure functions over one batch, like identity
//! resolution.
//!
//! A contact belongs to the case that an agent linked it to (`case_id` on
//! the event); otherwise to every case of the same customer holding a
//! contact of the same conversation, or one with the same reason for
//! contact within the window (7 days by default) — several such cases are
//! merged into the oldest. A contact that matches no case opens one. The
//! grouping of contacts is therefore the connected components of "same
//! conversation, or same reason within the window", whatever order the
//! contacts arrive in. A resolved case takes no contact that happened after
//! its resolution.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::event::{Channel, ContactEvent, EventType};

/// How contacts are grouped into cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseRules {
    /// Contacts with the same reason this close in time share a case.
    pub window: Duration,
}

impl Default for CaseRules {
    fn default() -> Self {
        CaseRules {
            window: Duration::days(7),
        }
    }
}

/// Open or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Still being worked on.
    Open,
    /// Done.
    Resolved,
}

impl CaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
        }
    }
}

/// One contact of a case, as far as grouping cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseContact {
    /// The reason for contact in the customer's words.
    pub reason: Option<String>,
    /// Its normalised form (empty when none was given).
    pub reason_key: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Its conversation, if any.
    pub conversation_id: Option<String>,
}

/// A case as the grouping sees it: its contacts and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseState {
    /// Case id.
    pub id: Uuid,
    /// The (surviving) customer it belongs to.
    pub customer: Uuid,
    /// The reason an agent gave when opening it.
    pub agent_reason: Option<String>,
    /// When it was opened: its first contact, or the agent's action.
    pub opened_at: DateTime<Utc>,
    /// Open or resolved.
    pub status: CaseStatus,
    /// When it was last resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Option<String>,
    /// The agent's note on resolving.
    pub resolution_note: Option<String>,
    /// The agent who opened it, when one did.
    pub opened_by: Option<String>,
    /// Its contacts.
    pub contacts: Vec<CaseContact>,
    /// The channels they came through.
    pub channels: BTreeSet<Channel>,
}

impl CaseState {
    /// A new open case without contacts.
    pub fn new(id: Uuid, customer: Uuid, opened_at: DateTime<Utc>) -> Self {
        CaseState {
            id,
            customer,
            agent_reason: None,
            opened_at,
            status: CaseStatus::Open,
            resolved_at: None,
            outcome: None,
            resolution_note: None,
            opened_by: None,
            contacts: Vec::new(),
            channels: BTreeSet::new(),
        }
    }

    /// The reason for contact: the agent's when an agent opened the case,
    /// otherwise that of its earliest contact that gave one.
    pub fn reason(&self) -> Option<&str> {
        self.agent_reason.as_deref().or_else(|| {
            self.contacts
                .iter()
                .filter(|contact| contact.reason.is_some())
                .min_by_key(|contact| contact.at)
                .and_then(|contact| contact.reason.as_deref())
        })
    }

    /// First contact.
    pub fn first_contact_at(&self) -> Option<DateTime<Utc>> {
        self.contacts.iter().map(|contact| contact.at).min()
    }

    /// Latest contact.
    pub fn last_contact_at(&self) -> Option<DateTime<Utc>> {
        self.contacts.iter().map(|contact| contact.at).max()
    }

    /// Whether a contact at `at` may still join: not after a resolution.
    fn takes_contact_at(&self, at: DateTime<Utc>) -> bool {
        match (self.status, self.resolved_at) {
            (CaseStatus::Resolved, Some(resolved_at)) => at <= resolved_at,
            _ => true,
        }
    }

    fn matches(&self, contact: &CaseContact, window: Duration) -> bool {
        // An agent's reason matches like a contact at the time it was given.
        let agent_match = self.agent_reason.as_deref().is_some_and(|reason| {
            reason_key(Some(reason)) == contact.reason_key
                && (self.opened_at - contact.at).abs() <= window
        });
        self.takes_contact_at(contact.at)
            && (agent_match
                || self.contacts.iter().any(|member| {
                    let same_conversation = contact.conversation_id.is_some()
                        && member.conversation_id == contact.conversation_id;
                    let same_reason = member.reason_key == contact.reason_key
                        && (member.at - contact.at).abs() <= window;
                    same_conversation || same_reason
                }))
    }
}

/// The normalised form of a reason for contact used to match cases:
/// trimmed, lower case, inner whitespace collapsed.
pub fn reason_key(reason: Option<&str>) -> String {
    reason
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Namespace of case ids derived from the event that opened the case, so a
/// replay of the topic gives every case the same id again.
const CASE_NAMESPACE: Uuid = Uuid::from_u128(0x6361_7365_7061_6e6f_7261_6d61_0000_0001);

/// The id of a case opened by a contact, derived from the contact's id: the
/// projector names new cases with it, and anyone who knows which contact
/// opened a case (a simulator, a replay) can name the case without asking.
pub fn case_id_for(event: &ContactEvent) -> Uuid {
    Uuid::new_v5(&CASE_NAMESPACE, event.event_id.as_bytes())
}

/// What the batch did to cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseDecisions {
    /// The case of each event, in batch order (`None`: no case).
    pub event_cases: Vec<Option<Uuid>>,
    /// Cases created or changed, by id.
    pub touched: BTreeSet<Uuid>,
    /// Cases merged into another: (merged, survivor), in order.
    pub merged: Vec<(Uuid, Uuid)>,
    /// Events naming a case of another customer than their own: a
    /// `case.resolved` or `case.reopened` that changed nothing, a note,
    /// task or feedback shown under no case. They stay on the timeline.
    pub foreign_cases: usize,
}

/// One event as the case logic needs it: the event and the (surviving)
/// customer it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct CaseInput<'a> {
    /// The event.
    pub event: &'a ContactEvent,
    /// Its customer after the batch's identity decisions.
    pub customer: Uuid,
}

/// Assigns a batch of events to cases, updating `cases` (every case of the
/// batch's customers that an event of the batch could join) as it goes.
/// New cases get the id `new_case_id` derives from the event that opens
/// them. Merged-away cases are removed from `cases`.
pub fn assign_cases(
    cases: &mut Vec<CaseState>,
    events: &[CaseInput<'_>],
    rules: &CaseRules,
    mut new_case_id: impl FnMut(&ContactEvent) -> Uuid,
) -> CaseDecisions {
    let mut decisions = CaseDecisions::default();
    let mut index = CaseIndex::of(cases);
    for input in events {
        let event = input.event;
        let case = match event.event_type {
            EventType::CaseOpened => event.case_id.inspect(|&id| {
                if index.get(id).is_none() {
                    let mut case = CaseState::new(id, input.customer, event.occurred_at);
                    case.agent_reason = event.contact_reason.clone();
                    case.opened_by = event.agent_id.clone();
                    index.push(cases, case);
                    decisions.touched.insert(id);
                }
            }),
            EventType::CaseResolved | EventType::CaseReopened => {
                // Only a case of the event's own customer changes: an
                // event filed under one customer never closes another's.
                let found = event.case_id.and_then(|id| {
                    let case = &mut cases[index.get(id)?];
                    if case.customer == input.customer {
                        Some(case)
                    } else {
                        decisions.foreign_cases += 1;
                        None
                    }
                });
                found.map(|case| {
                    if event.event_type == EventType::CaseResolved {
                        case.status = CaseStatus::Resolved;
                        case.resolved_at = Some(event.occurred_at);
                        case.outcome = event.outcome.clone();
                        case.resolution_note = event.summary.clone();
                    } else {
                        case.status = CaseStatus::Open;
                        case.resolved_at = None;
                    }
                    decisions.touched.insert(case.id);
                    case.id
                })
            }
            event_type if event_type.is_customer_contact() => Some(join_contact(
                cases,
                &mut index,
                input,
                rules,
                &mut new_case_id,
                &mut decisions,
            )),
            // Notes, tasks and feedback show under the case they name,
            // when it is their customer's.
            _ => event.case_id.filter(|&id| {
                let Some(case) = index.get(id).map(|position| &cases[position]) else {
                    return false;
                };
                let own = case.customer == input.customer;
                if !own {
                    decisions.foreign_cases += 1;
                }
                own
            }),
        };
        decisions.event_cases.push(case);
    }
    decisions
}

fn join_contact(
    cases: &mut Vec<CaseState>,
    index: &mut CaseIndex,
    input: &CaseInput<'_>,
    rules: &CaseRules,
    new_case_id: &mut impl FnMut(&ContactEvent) -> Uuid,
    decisions: &mut CaseDecisions,
) -> Uuid {
    let event = input.event;
    let contact = CaseContact {
        reason: event.contact_reason.clone(),
        reason_key: reason_key(event.contact_reason.as_deref()),
        at: event.occurred_at,
        conversation_id: event.conversation_id.clone(),
    };
    let mut matching: Vec<Uuid> = match event.case_id {
        Some(id) => vec![id],
        None => index
            .of_customer(input.customer)
            .map(|position| &cases[position])
            .filter(|case| case.matches(&contact, rules.window))
            .map(|case| case.id)
            .collect(),
    };
    matching.sort_unstable();
    let id = match matching.first() {
        Some(&id) => id,
        None => new_case_id(event),
    };
    if index.get(id).is_none() {
        index.push(cases, CaseState::new(id, input.customer, event.occurred_at));
    }
    for &merged in matching.iter().skip(1) {
        merge_case(cases, id, merged);
        decisions.merged.push((merged, id));
        decisions.touched.remove(&merged);
    }
    if matching.len() > 1 {
        // Merges remove cases: positions after them moved.
        *index = CaseIndex::of(cases);
    }
    if let Some(case) = index.get(id).map(|position| &mut cases[position]) {
        case.opened_at = case.opened_at.min(contact.at);
        case.channels.insert(event.channel);
        case.contacts.push(contact);
    }
    decisions.touched.insert(id);
    id
}

/// Where each case of [`assign_cases`]' list is, by id and by customer,
/// so a batch finds an event's candidate cases without scanning every
/// case of the batch for each event. Rebuilt after a merge removes cases.
struct CaseIndex {
    by_id: HashMap<Uuid, usize>,
    by_customer: HashMap<Uuid, Vec<usize>>,
}

impl CaseIndex {
    fn of(cases: &[CaseState]) -> Self {
        let mut index = CaseIndex {
            by_id: HashMap::with_capacity(cases.len()),
            by_customer: HashMap::new(),
        };
        for (position, case) in cases.iter().enumerate() {
            index.note(case, position);
        }
        index
    }

    fn note(&mut self, case: &CaseState, position: usize) {
        self.by_id.entry(case.id).or_insert(position);
        self.by_customer
            .entry(case.customer)
            .or_default()
            .push(position);
    }

    /// The position of case `id`.
    fn get(&self, id: Uuid) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The positions of `customer`'s cases, in list order.
    fn of_customer(&self, customer: Uuid) -> impl Iterator<Item = usize> + '_ {
        self.by_customer
            .get(&customer)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Appends `case` to `cases`.
    fn push(&mut self, cases: &mut Vec<CaseState>, case: CaseState) {
        self.note(&case, cases.len());
        cases.push(case);
    }
}

/// Folds case `merged` into case `survivor`.
fn merge_case(cases: &mut Vec<CaseState>, survivor: Uuid, merged: Uuid) {
    let Some(position) = cases.iter().position(|case| case.id == merged) else {
        return;
    };
    let merged = cases.remove(position);
    let Some(case) = cases.iter_mut().find(|case| case.id == survivor) else {
        return;
    };
    if case.agent_reason.is_none() {
        case.agent_reason = merged.agent_reason;
        case.opened_by = case.opened_by.take().or(merged.opened_by);
    }
    case.opened_at = case.opened_at.min(merged.opened_at);
    case.contacts.extend(merged.contacts);
    case.channels.extend(merged.channels);
    // Open if either was open; otherwise resolved at the later resolution.
    if merged.status == CaseStatus::Open {
        case.status = CaseStatus::Open;
        case.resolved_at = None;
    } else if case.status == CaseStatus::Resolved {
        case.resolved_at = case.resolved_at.max(merged.resolved_at);
    }
}

#[cfg(test)]
mod tests;
