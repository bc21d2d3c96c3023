//! What the projection ends with once every planned event is projected:
//! the plan's events go through the gateway's parsing and validation, then
//! through the same pure identity resolution and case grouping the
//! projector runs, one event at a time in the order they are sent.
//!
//! Identity decisions depend on the order the projector reads events in;
//! with one partition (or one sender and a topic of one partition) that is
//! the order they were sent. The plan keeps case grouping independent of how
//! the projector batches them (see [`Grouping`]).

use std::collections::{BTreeSet, HashMap};

use panorama_core::cases::{CaseInput, CaseRules, CaseState, assign_cases};
use panorama_core::identity::{IdentityRules, Snapshot, resolve};
use panorama_core::{ContactEvent, Region, ValidationContext};
use uuid::Uuid;

use super::plan::PlannedEvent;
use super::providers::drafts;

/// What the projection holds after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expectation {
    /// Simulated people the events are about.
    pub people: usize,
    /// Events projected (distinct event ids).
    pub events: usize,
    /// Customer profiles created.
    pub profiles: usize,
    /// Profiles merged into another (`survivor_id <> id`).
    pub merges: usize,
    /// Customers left: profiles minus merges.
    pub customers: usize,
    /// Cases (not merged into another case).
    pub cases: usize,
}

/// Which customer a contact is grouped under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Its customer when it is projected, the projector reading one event
    /// per batch.
    OneByOne,
    /// Its customer after every merge of the run, as if the projector read
    /// the whole run in one batch. A plan whose counts agree for both
    /// groupings gives them for any batching.
    WholeRun,
}

/// The validated events of `planned`, first occurrence of each id only.
pub fn events(
    planned: &[PlannedEvent],
    default_region: Option<Region>,
) -> Result<Vec<ContactEvent>, String> {
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    for event in planned {
        let context = ValidationContext {
            received_at: event.at,
            default_region,
        };
        for draft in drafts(event, event.at, default_region)? {
            let validated = draft
                .validate(&context)
                .map_err(|e| format!("{} event {}: {e}", event.provider.as_str(), event.seq))?;
            if seen.insert(validated.event_id) {
                events.push(validated);
            }
        }
    }
    Ok(events)
}

/// The expectation for sending `planned` in order, with the default
/// identity rules and case window.
pub fn expect(
    planned: &[PlannedEvent],
    default_region: Option<Region>,
) -> Result<Expectation, String> {
    expect_with(
        planned,
        default_region,
        &IdentityRules::default(),
        &CaseRules::default(),
        Grouping::OneByOne,
    )
}

/// The expectation with explicit rules and grouping.
pub fn expect_with(
    planned: &[PlannedEvent],
    default_region: Option<Region>,
    identity: &IdentityRules,
    case_rules: &CaseRules,
    grouping: Grouping,
) -> Result<Expectation, String> {
    let events = events(planned, default_region)?;
    let mut snapshot = Snapshot::default();
    let mut next_id = 0u128;
    let mut new_id = || {
        // Ascending like UUIDv7: the smallest id is the oldest customer.
        next_id += 1;
        Uuid::from_u128(next_id)
    };
    let mut survivor: HashMap<Uuid, Uuid> = HashMap::new();
    let mut customers = Vec::with_capacity(events.len());
    let mut merges_by_event: Vec<Vec<(Uuid, Uuid)>> = Vec::with_capacity(events.len());
    let mut profiles = 0;
    let mut merges = 0;
    for event in &events {
        let identifiers = event.identifiers.as_slice();
        let decisions = resolve(&mut snapshot, &[identifiers], identity, &mut new_id);
        profiles += decisions.new_customers.len();
        merges += decisions.merges.len();
        for merge in &decisions.merges {
            survivor.insert(merge.merged, merge.survivor);
        }
        merges_by_event.push(
            decisions
                .merges
                .iter()
                .map(|merge| (merge.merged, merge.survivor))
                .collect(),
        );
        customers.push(decisions.event_customers[0]);
    }
    let root = |survivor: &HashMap<Uuid, Uuid>, mut id: Uuid| {
        while let Some(&next) = survivor.get(&id) {
            id = next;
        }
        id
    };

    let mut cases: Vec<CaseState> = Vec::new();
    let mut final_survivors: HashMap<Uuid, Uuid> = HashMap::new();
    let mut merged_so_far: HashMap<Uuid, Uuid> = HashMap::new();
    for (index, (event, customer)) in events.iter().zip(&customers).enumerate() {
        let customer = match grouping {
            Grouping::WholeRun => *final_survivors
                .entry(*customer)
                .or_insert_with(|| root(&survivor, *customer)),
            Grouping::OneByOne => {
                for &(merged, into) in &merges_by_event[index] {
                    merged_so_far.insert(merged, into);
                }
                for case in &mut cases {
                    case.customer = root(&merged_so_far, case.customer);
                }
                root(&merged_so_far, *customer)
            }
        };
        let input = [CaseInput { event, customer }];
        assign_cases(&mut cases, &input, case_rules, |event| {
            Uuid::new_v5(&Uuid::NAMESPACE_OID, event.event_id.as_bytes())
        });
    }
    let people: BTreeSet<usize> = planned.iter().map(|event| event.customer).collect();
    Ok(Expectation {
        people: people.len(),
        events: events.len(),
        profiles,
        merges,
        customers: profiles - merges,
        cases: cases.len(),
    })
}
