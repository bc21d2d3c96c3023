//! The projector's pure rules, fed the simulator's events: identity
//! resolution and case grouping as `panorama_core` has them, the same
//! functions the projector runs. The plan follows it to name the case an
//! agent resolves; the prediction counts what it ends with.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use panorama_core::ContactEvent;
use panorama_core::cases::{
    CaseInput, CaseRules, CaseState, CaseStatus, assign_cases, case_id_for,
};
use panorama_core::identity::{EventIdentity, IdentityRules, Snapshot, resolve_trusted};
use uuid::Uuid;

/// The projector's identity resolution and case grouping, fed one event at
/// a time as if each were a batch of its own (or a whole run as one batch,
/// [`Projection::project_as_one_batch`]). Customer ids are made up
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
    /// The profile `event` lands on, its identifiers' merges done, with
    /// each identifier's trust as the gateway gave it (claims never merge).
    fn identify(&mut self, event: &ContactEvent, rules: &IdentityRules) -> Uuid {
        let next_id = &mut self.next_id;
        let decisions = resolve_trusted(
            &mut self.snapshot,
            &[EventIdentity::of(event)],
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

    /// Projects `events` as if the projector read them all in one batch:
    /// every identity decision first, then each event grouped under the
    /// customer its profile ends up in after every merge of the batch.
    pub(crate) fn project_as_one_batch(
        &mut self,
        events: &[ContactEvent],
        identity: &IdentityRules,
        case_rules: &CaseRules,
    ) {
        let customers: Vec<Uuid> = events
            .iter()
            .map(|event| self.identify(event, identity))
            .collect();
        for (event, customer) in events.iter().zip(customers) {
            let customer = root(&self.merged, customer);
            let input = [CaseInput { event, customer }];
            assign_cases(&mut self.cases, &input, case_rules, case_id_for);
        }
    }

    /// Customer profiles created so far.
    pub(crate) fn profiles(&self) -> usize {
        self.profiles
    }

    /// Profiles merged into another so far.
    pub(crate) fn merges(&self) -> usize {
        self.merges
    }

    /// The cases, those merged into another left out.
    pub(crate) fn cases(&self) -> &[CaseState] {
        &self.cases
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
