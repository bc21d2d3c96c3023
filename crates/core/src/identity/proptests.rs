//! Property tests over random identifier graphs: without guards the grouping
//! of events is the connected components of the identifier graph, whatever
//! the order and batching; with guards the invariants hold.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

use super::*;
use crate::identifier::{Identifier, IdentifierKind};

/// A valid identifier of `kind`, one of a small pool per kind so that random
/// events overlap.
fn make(kind: IdentifierKind, n: u8) -> Identifier {
    let raw = match kind {
        IdentifierKind::Phone => format!("+3161234{:04}", n),
        IdentifierKind::Email => format!("p{n}@example.com"),
        _ => format!("{kind}-{n}"),
    };
    Identifier::parse(kind, &raw, None).expect("valid identifier")
}

fn event(kinds: &[IdentifierKind], pool: u8) -> impl Strategy<Value = Vec<Identifier>> + use<> {
    let identifier =
        (proptest::sample::select(kinds.to_vec()), 0..pool).prop_map(|(kind, n)| make(kind, n));
    proptest::collection::vec(identifier, 1..=3)
}

/// Events, and the order to feed them in (a permutation of their indices).
fn shuffled_events(
    kinds: &'static [IdentifierKind],
    pool: u8,
) -> impl Strategy<Value = (Vec<Vec<Identifier>>, Vec<usize>)> {
    proptest::collection::vec(event(kinds, pool), 1..40).prop_flat_map(|events| {
        let order = Just((0..events.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(events), order)
    })
}

const STRONG: [IdentifierKind; 7] = [
    IdentifierKind::Phone,
    IdentifierKind::Email,
    IdentifierKind::Account,
    IdentifierKind::Whatsapp,
    IdentifierKind::Messenger,
    IdentifierKind::Instagram,
    IdentifierKind::X,
];

/// Account-heavy, so that limits, weak links and do-not-merge pairs fire.
const MIXED: [IdentifierKind; 8] = [
    IdentifierKind::Account,
    IdentifierKind::Account,
    IdentifierKind::Phone,
    IdentifierKind::Email,
    IdentifierKind::Whatsapp,
    IdentifierKind::Visitor,
    IdentifierKind::Visitor,
    IdentifierKind::X,
];

/// One batch as resolved: the original index of each of its events, and the
/// decisions.
struct Batch {
    events: Vec<usize>,
    decisions: Decisions,
}

/// Feeds `events` in `order`, cut into batches at `cuts`, through one
/// snapshot; `between` runs after each batch.
fn run_batches(
    snapshot: &mut Snapshot,
    events: &[Vec<Identifier>],
    order: &[usize],
    cuts: &[Index],
    rules: &IdentityRules,
    mut between: impl FnMut(&mut Snapshot),
) -> Vec<Batch> {
    let mut bounds: Vec<usize> = cuts.iter().map(|cut| cut.index(order.len() + 1)).collect();
    bounds.extend([0, order.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    let mut next = 0u128;
    let mut new_id = move |_| {
        next += 1;
        Uuid::from_u128(next)
    };
    let mut batches = Vec::new();
    for window in bounds.windows(2) {
        let indices = order[window[0]..window[1]].to_vec();
        let slices: Vec<&[Identifier]> = indices.iter().map(|&i| events[i].as_slice()).collect();
        let decisions = resolve(snapshot, &slices, rules, &mut new_id);
        between(snapshot);
        batches.push(Batch {
            events: indices,
            decisions,
        });
    }
    batches
}

/// Follows `merged → survivor` pointers to the customer that remains.
fn survivor_of(pointers: &HashMap<Uuid, Uuid>, mut customer: Uuid) -> Uuid {
    for _ in 0..=pointers.len() {
        match pointers.get(&customer) {
            Some(&next) => customer = next,
            None => return customer,
        }
    }
    panic!("merge pointers form a cycle through {customer}");
}

fn pointers(batches: &[Batch]) -> HashMap<Uuid, Uuid> {
    batches
        .iter()
        .flat_map(|batch| &batch.decisions.merges)
        .map(|merge| (merge.merged, merge.survivor))
        .collect()
}

/// The canonical grouping: which events (by original index) end up with the
/// same customer after following every merge. Groups sorted inside and
/// among themselves, so two groupings compare equal exactly when they
/// partition the events the same way, whatever the customer ids.
fn grouping(batches: &[Batch]) -> Vec<Vec<usize>> {
    let pointers = pointers(batches);
    let mut groups: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for batch in batches {
        for (&event, &customer) in batch.events.iter().zip(&batch.decisions.event_customers) {
            groups
                .entry(survivor_of(&pointers, customer))
                .or_default()
                .push(event);
        }
    }
    canonical(groups.into_values().collect())
}

fn canonical(mut groups: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    for group in &mut groups {
        group.sort_unstable();
    }
    groups.sort();
    groups
}

/// Connected components of the graph whose nodes are events, joined when
/// they share an identifier, in the canonical form of [`grouping`].
fn components(events: &[Vec<Identifier>]) -> Vec<Vec<usize>> {
    fn root(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    let mut parent: Vec<usize> = (0..events.len()).collect();
    let mut first_seen: HashMap<&Identifier, usize> = HashMap::new();
    for (event, identifiers) in events.iter().enumerate() {
        for identifier in identifiers {
            let other = *first_seen.entry(identifier).or_insert(event);
            let (a, b) = (root(&mut parent, event), root(&mut parent, other));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for event in 0..events.len() {
        groups
            .entry(root(&mut parent, event))
            .or_default()
            .push(event);
    }
    canonical(groups.into_values().collect())
}

/// The snapshot's two maps agree, and no identifier has two owners.
fn assert_consistent(snapshot: &Snapshot) {
    let mut seen = HashSet::new();
    for (&customer, identifiers) in &snapshot.identifiers {
        for identifier in identifiers {
            assert!(seen.insert(identifier), "{identifier} has two owners");
            assert_eq!(snapshot.owner(identifier), Some(customer), "{identifier}");
        }
    }
    assert_eq!(
        seen.len(),
        snapshot.owners.len(),
        "owners without a customer"
    );
}

/// The store's view: applying each batch's new links, then its merges in
/// order, to the identifier owners gives the snapshot the resolver ended with.
fn assert_decisions_replay(batches: &[Batch], snapshot: &Snapshot) {
    let mut owners: HashMap<Identifier, Uuid> = HashMap::new();
    for batch in batches {
        for (identifier, customer) in &batch.decisions.new_links {
            assert!(
                owners.insert(identifier.clone(), *customer).is_none(),
                "{identifier} linked twice"
            );
        }
        for merge in &batch.decisions.merges {
            for identifier in &merge.moved {
                let owner = owners.get_mut(identifier).expect("moved identifiers exist");
                assert_eq!(*owner, merge.merged, "{identifier} moved from its owner");
                *owner = merge.survivor;
            }
        }
    }
    assert_eq!(&owners, &snapshot.owners);
}

/// Merges form a forest: the survivor is the smaller id, and neither side
/// was merged away before; no event is given a customer merged away before
/// or by that event.
fn assert_merges_form_a_forest(batches: &[Batch]) {
    let mut gone: HashSet<Uuid> = HashSet::new();
    for batch in batches {
        let decisions = &batch.decisions;
        let mut merges = decisions.merges.iter().peekable();
        for (event, customer) in decisions.event_customers.iter().enumerate() {
            while let Some(merge) = merges.next_if(|merge| merge.event_index == event) {
                assert!(merge.survivor < merge.merged, "{merge:?}");
                assert!(!gone.contains(&merge.survivor), "{merge:?}");
                assert!(gone.insert(merge.merged), "{merge:?} merged twice");
            }
            assert!(!gone.contains(customer), "event {event} given {customer}");
        }
        assert!(merges.next().is_none(), "merges out of event order");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn without_guards_the_grouping_is_the_connected_components(
        (events, order) in shuffled_events(&STRONG, 25),
        cuts in proptest::collection::vec(any::<Index>(), 0..4),
    ) {
        let mut snapshot = Snapshot::default();
        let rules = IdentityRules::unlimited();
        let batches = run_batches(&mut snapshot, &events, &order, &cuts, &rules, |_| {});
        prop_assert_eq!(grouping(&batches), components(&events));
        for batch in &batches {
            prop_assert!(batch.decisions.conflicts.is_empty());
        }
        // Every identifier ends with the customer of each event carrying it.
        let pointers = pointers(&batches);
        for batch in &batches {
            for (&event, &customer) in batch.events.iter().zip(&batch.decisions.event_customers) {
                let survivor = survivor_of(&pointers, customer);
                for identifier in &events[event] {
                    prop_assert_eq!(snapshot.owner(identifier), Some(survivor));
                }
            }
        }
        assert_consistent(&snapshot);
        assert_decisions_replay(&batches, &snapshot);
        assert_merges_form_a_forest(&batches);
    }

    #[test]
    fn with_guards_the_invariants_hold(
        (events, order) in shuffled_events(&MIXED, 6),
        cuts in proptest::collection::vec(any::<Index>(), 0..4),
        forbidden in proptest::collection::vec((any::<Index>(), any::<Index>()), 0..10),
    ) {
        let rules = IdentityRules::default();
        let mut snapshot = Snapshot::default();
        let mut separated = Vec::new();
        let batches = run_batches(&mut snapshot, &events, &order, &cuts, &rules, |snapshot| {
            separate(snapshot, &forbidden, &mut separated);
        });
        assert_guarded_invariants(&events, &batches, &snapshot, &rules, &separated);
    }

    #[test]
    fn do_not_merge_pairs_stay_apart_and_nothing_else_does(
        (events, order) in shuffled_events(&STRONG, 5),
        cuts in proptest::collection::vec(any::<Index>(), 1..4),
        forbidden in proptest::collection::vec((any::<Index>(), any::<Index>()), 1..10),
    ) {
        let rules = IdentityRules::unlimited();
        let mut snapshot = Snapshot::default();
        let mut separated = Vec::new();
        let batches = run_batches(&mut snapshot, &events, &order, &cuts, &rules, |snapshot| {
            separate(snapshot, &forbidden, &mut separated);
        });
        assert_guarded_invariants(&events, &batches, &snapshot, &rules, &separated);
        for batch in &batches {
            for conflict in &batch.decisions.conflicts {
                prop_assert_eq!(conflict.reason, ConflictReason::DoNotMerge);
            }
        }
        // Only separations split a component: without any, the grouping is
        // the components again; with some, each group lies within one.
        let components = components(&events);
        let grouping = grouping(&batches);
        if separated.is_empty() {
            prop_assert_eq!(&grouping, &components);
        }
        for group in &grouping {
            prop_assert!(components.iter().any(|component| group.iter().all(|e| component.contains(e))));
        }
    }
}

/// An agent separates some pairs of the snapshot's customers (picked by
/// `picks`); the pairs are added to `separated`.
fn separate(snapshot: &mut Snapshot, picks: &[(Index, Index)], separated: &mut Vec<(Uuid, Uuid)>) {
    let mut customers: Vec<Uuid> = snapshot.identifiers.keys().copied().collect();
    customers.sort_unstable();
    if customers.is_empty() {
        return;
    }
    for (a, b) in picks {
        let (a, b) = (*a.get(&customers), *b.get(&customers));
        if a != b {
            snapshot.forbid_merge(a, b);
            separated.push((a, b));
        }
    }
}

/// The invariants that hold whatever guards fire and whatever the order.
fn assert_guarded_invariants(
    events: &[Vec<Identifier>],
    batches: &[Batch],
    snapshot: &Snapshot,
    rules: &IdentityRules,
    separated: &[(Uuid, Uuid)],
) {
    assert_consistent(snapshot);
    assert_decisions_replay(batches, snapshot);
    assert_merges_form_a_forest(batches);

    // No customer owns more identifiers of a kind than its limit.
    for (customer, identifiers) in &snapshot.identifiers {
        for kind in IdentifierKind::ALL {
            let count = identifiers.iter().filter(|i| i.kind() == kind).count();
            if let Some(limit) = rules.limit(kind) {
                assert!(count <= limit, "{customer} has {count} {kind}");
            }
        }
    }

    // Separated customers never end up as one.
    let pointers = pointers(batches);
    for &(a, b) in separated {
        assert_ne!(survivor_of(&pointers, a), survivor_of(&pointers, b));
    }

    // A known customer linked only through weak identifiers never merges
    // with a customer the event links through a strong one.
    let weak = |identifier: &Identifier| !rules.is_strong(identifier.kind());
    for merge in batches.iter().flat_map(|batch| &batch.decisions.merges) {
        let (merged_links, survivor_links): (Vec<&Identifier>, Vec<&Identifier>) =
            merge.via.iter().partition(|i| merge.moved.contains(i));
        let merged_known = merge.moved.iter().any(|i| !weak(i));
        if merged_known && merged_links.iter().all(|i| weak(i)) {
            assert!(survivor_links.iter().all(|i| weak(i)), "{merge:?}");
        }
    }

    for batch in batches {
        let decisions = &batch.decisions;
        for (position, (&event, &customer)) in batch
            .events
            .iter()
            .zip(&decisions.event_customers)
            .enumerate()
        {
            let survivor = survivor_of(&pointers, customer);
            let distinct: HashSet<&Identifier> = events[event].iter().collect();
            let owned = distinct
                .iter()
                .filter(|identifier| snapshot.owner(identifier) == Some(survivor))
                .count();
            let created = decisions.new_customers.contains(&customer)
                && !decisions.event_customers[..position].contains(&customer);
            assert!(
                owned > 0 || created,
                "event {event} owns none of its identifiers"
            );
            // An event without a conflict has all its identifiers with its
            // customer: every refused merge or link is on record.
            let conflicted = decisions
                .conflicts
                .iter()
                .any(|conflict| conflict.event_index == position);
            if !conflicted {
                assert_eq!(owned, distinct.len(), "event {event} split silently");
            }
        }
        for conflict in &decisions.conflicts {
            assert!(!conflict.customers.is_empty() && !conflict.identifiers.is_empty());
            assert!(conflict.customers.is_sorted());
            // A merge refused outright merges nothing at that event.
            if conflict.customers.len() > 1 && conflict.reason != ConflictReason::WeakLinkOnly {
                assert!(
                    decisions
                        .merges
                        .iter()
                        .all(|merge| merge.event_index != conflict.event_index),
                    "{conflict:?}"
                );
            }
        }
    }
}

#[test]
fn the_helpers_tell_groupings_apart() {
    let a = make(IdentifierKind::Phone, 1);
    let b = make(IdentifierKind::Email, 2);
    let c = make(IdentifierKind::Account, 3);
    let events = vec![vec![a.clone()], vec![b.clone()], vec![a, b], vec![c]];
    assert_eq!(components(&events), vec![vec![0, 1, 2], vec![3]]);
    let (x, y, z) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let batch = |events, customers, merges| Batch {
        events,
        decisions: Decisions {
            event_customers: customers,
            merges,
            ..Decisions::default()
        },
    };
    let merge = |survivor, merged| Merge {
        survivor,
        merged,
        event_index: 0,
        via: Vec::new(),
        moved: Vec::new(),
    };
    let unmerged = [batch(vec![3, 0, 1, 2], vec![z, x, y, x], vec![])];
    assert_eq!(grouping(&unmerged), vec![vec![0, 2], vec![1], vec![3]]);
    let merged = [
        batch(vec![3, 0], vec![z, x], vec![]),
        batch(vec![1, 2], vec![y, x], vec![merge(x, y)]),
    ];
    assert_eq!(grouping(&merged), components(&events));
}
