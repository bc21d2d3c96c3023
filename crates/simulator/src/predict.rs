//! What the projection ends with once every planned event is projected:
//! the plan's events go through the gateway's parsing and validation, then
//! through the same pure identity resolution and case grouping the
//! projector runs, one event at a time in the order they are sent.
//!
//! Identity decisions depend on the order the projector reads events in;
//! with one partition (or one sender and a topic of one partition) that is
//! the order they were sent. The plan keeps case grouping independent of how
//! the projector batches them (see [`Grouping`]).

use std::collections::BTreeSet;

use panorama_core::cases::{CaseRules, CaseStatus};
use panorama_core::identity::IdentityRules;
use panorama_core::{ContactEvent, Region, ValidationContext};

use crate::gateway::drafts;
use crate::planned::PlannedEvent;
use crate::projection::Projection;

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
        Grouping::WholeRun => projection.project_as_one_batch(&events, identity, case_rules),
    }
    let people: BTreeSet<usize> = planned.iter().map(|event| event.customer).collect();
    Ok(Expectation {
        people: people.len(),
        events: events.len(),
        profiles: projection.profiles(),
        merges: projection.merges(),
        customers: projection.profiles() - projection.merges(),
        cases: projection.cases().len(),
        resolved: projection
            .cases()
            .iter()
            .filter(|case| case.status == CaseStatus::Resolved)
            .count(),
    })
}
