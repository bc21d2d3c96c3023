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

use chrono::{DateTime, Utc};

use panorama_core::cases::{
    CaseInput, CaseRules, CaseState, CaseStatus, assign_cases, case_id_for,
};
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
    /// Of those, the ones resolved.
    pub resolved: usize,
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
    let mut projection = Projection::default();
    match grouping {
        Grouping::OneByOne => {
            for event in &events {
                projection.project(event, identity, case_rules);
            }
        }
        Grouping::WholeRun => {
            let customers: Vec<Uuid> = events
                .iter()
                .map(|event| projection.identify(event, identity))
                .collect();
            for (event, customer) in events.iter().zip(customers) {
                let customer = root(&projection.merged, customer);
                let input = [CaseInput { event, customer }];
                assign_cases(&mut projection.cases, &input, case_rules, case_id_for);
            }
        }
    }
    let people: BTreeSet<usize> = planned.iter().map(|event| event.customer).collect();
    Ok(Expectation {
        people: people.len(),
        events: events.len(),
        profiles: projection.profiles,
        merges: projection.merges,
        customers: projection.profiles - projection.merges,
        cases: projection.cases.len(),
        resolved: projection
            .cases
            .iter()
            .filter(|case| case.status == CaseStatus::Resolved)
            .count(),
    })
}

/// The projector's identity resolution and case grouping, fed one event at
/// a time as if each were a batch of its own. Customer ids are made up
/// (ascending like UUIDv7: the smallest is the oldest customer); case ids
/// are the projector's own, since [`case_id_for`] derives them from the
/// events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    snapshot: Snapshot,
    next_id: u128,
    /// Every merged profile to the profile it merged into.
    merged: HashMap<Uuid, Uuid>,
    cases: Vec<CaseState>,
    profiles: usize,
    merges: usize,
}

impl Projection {
    /// The profile `event` lands on, its identifiers' merges done.
    fn identify(&mut self, event: &ContactEvent, rules: &IdentityRules) -> Uuid {
        let next_id = &mut self.next_id;
        let decisions = resolve(
            &mut self.snapshot,
            &[event.identifiers.as_slice()],
            rules,
            |_| {
                *next_id += 1;
                Uuid::from_u128(*next_id)
            },
        );
        self.profiles += decisions.new_customers.len();
        self.merges += decisions.merges.len();
        for merge in &decisions.merges {
            self.merged.insert(merge.merged, merge.survivor);
        }
        decisions.event_customers[0]
    }

    /// Projects `event`: the case it joins, opens or changes, if any.
    pub(crate) fn project(
        &mut self,
        event: &ContactEvent,
        identity: &IdentityRules,
        case_rules: &CaseRules,
    ) -> Option<Uuid> {
        let customer = self.identify(event, identity);
        for case in &mut self.cases {
            case.customer = root(&self.merged, case.customer);
        }
        let customer = root(&self.merged, customer);
        let input = [CaseInput { event, customer }];
        let decisions = assign_cases(&mut self.cases, &input, case_rules, case_id_for);
        decisions.event_cases.first().copied().flatten()
    }

    /// Whether case `id` is known and open.
    pub(crate) fn is_open(&self, id: Uuid) -> bool {
        self.cases
            .iter()
            .any(|case| case.id == id && case.status == CaseStatus::Open)
    }

    /// Drops the cases resolved before `before`. A resolved case takes no
    /// contact after its resolution and the plan never reopens one, so once
    /// the plan's clock is well past a resolution (occurred_at is cut to
    /// the second, so not just past it) nothing joins it again; a long live
    /// run would otherwise hold every case it ever made.
    pub(crate) fn forget_resolved_before(&mut self, before: DateTime<Utc>) {
        self.cases.retain(|case| {
            case.status == CaseStatus::Open || case.resolved_at.is_none_or(|at| at >= before)
        });
    }
}

/// The profile `id` ended up in.
fn root(merged: &HashMap<Uuid, Uuid>, mut id: Uuid) -> Uuid {
    while let Some(&next) = merged.get(&id) {
        id = next;
    }
    id
}
