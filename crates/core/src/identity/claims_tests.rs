//! Tests of trust in identity resolution: one per rule, then properties
//! over random events with random trust.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

use super::*;
use crate::identifier::{Identifier, IdentifierKind};
use crate::trust::{EventIdentifier, Trust};

fn id(kind: IdentifierKind, value: &str) -> Identifier {
    Identifier::parse(kind, value, None).expect("valid identifier")
}

fn phone(n: u32) -> Identifier {
    id(IdentifierKind::Phone, &format!("+316{:08}", 12_340_000 + n))
}

fn email(name: &str) -> Identifier {
    id(IdentifierKind::Email, &format!("{name}@example.nl"))
}

fn account(number: &str) -> Identifier {
    id(IdentifierKind::Account, number)
}

fn visitor(cookie: &str) -> Identifier {
    id(IdentifierKind::Visitor, cookie)
}

fn verified(identifiers: &[Identifier]) -> Vec<EventIdentifier> {
    identifiers
        .iter()
        .cloned()
        .map(EventIdentifier::verified)
        .collect()
}

fn claimed(identifiers: &[Identifier]) -> Vec<EventIdentifier> {
    identifiers
        .iter()
        .cloned()
        .map(EventIdentifier::claimed)
        .collect()
}

/// New customer ids 1000, 1001, ...
fn new_ids() -> impl FnMut(usize) -> Uuid {
    let mut next = 1_000u128;
    move |_| {
        next += 1;
        Uuid::from_u128(next - 1)
    }
}

fn run(snapshot: &mut Snapshot, events: &[&[EventIdentifier]]) -> Decisions {
    let events: Vec<EventIdentity<'_>> = events
        .iter()
        .map(|identifiers| EventIdentity {
            identifiers,
            anchored: false,
        })
        .collect();
    resolve_trusted(snapshot, &events, &IdentityRules::default(), new_ids())
}

/// One run per event, as a projector reading one event per batch does.
fn one_by_one(snapshot: &mut Snapshot, events: &[&[EventIdentifier]]) -> Vec<Decisions> {
    let mut ids = new_ids();
    events
        .iter()
        .map(|identifiers| {
            let event = [EventIdentity {
                identifiers,
                anchored: false,
            }];
            resolve_trusted(snapshot, &event, &IdentityRules::default(), &mut ids)
        })
        .collect()
}

fn victim() -> Uuid {
    Uuid::from_u128(1)
}

fn attacker() -> Uuid {
    Uuid::from_u128(2)
}

#[test]
fn a_form_naming_a_customer_and_another_number_links_nothing_to_her() {
    let mut snapshot = Snapshot::from_customers([(victim(), vec![email("anna")])]);
    let form = claimed(&[email("anna"), phone(9)]);
    let call = verified(&[phone(9)]);
    let decisions = one_by_one(&mut snapshot, &[&form, &call]);
    // The form shows on her history, as claimed; the number joins nobody.
    assert_eq!(decisions[0].event_customers, vec![victim()]);
    assert!(decisions[0].merges.is_empty() && decisions[0].new_links.is_empty());
    assert!(decisions[0].trust_changes.is_empty());
    assert_eq!(snapshot.identifiers_of(victim()), &[email("anna")]);
    // The caller gets a customer of their own.
    let caller = decisions[1].event_customers[0];
    assert_ne!(caller, victim());
    assert_eq!(snapshot.owner(&phone(9)), Some(caller));
    assert_eq!(snapshot.trust_of(&phone(9)), Some(Trust::Verified));
}

#[test]
fn a_form_naming_two_known_customers_merges_neither() {
    let mut snapshot = Snapshot::from_customers([
        (victim(), vec![email("anna")]),
        (attacker(), vec![phone(9)]),
    ]);
    let form = claimed(&[email("anna"), phone(9)]);
    let decisions = run(&mut snapshot, &[&form]);
    assert!(decisions.merges.is_empty() && decisions.conflicts.is_empty());
    let own = decisions.event_customers[0];
    assert_ne!(own, victim());
    assert_ne!(own, attacker());
    assert_eq!(decisions.new_customers, vec![own]);
    assert_eq!(snapshot.owner(&email("anna")), Some(victim()));
    assert_eq!(snapshot.owner(&phone(9)), Some(attacker()));
}

#[test]
fn a_visitors_claims_group_on_a_customer_of_their_own() {
    let mut snapshot = Snapshot::default();
    let browsing = claimed(&[visitor("v-1")]);
    let form = claimed(&[visitor("v-1"), email("bob")]);
    let later = claimed(&[email("bob")]);
    let decisions = run(&mut snapshot, &[&browsing, &form, &later]);
    let visitor_customer = decisions.event_customers[0];
    assert_eq!(decisions.event_customers, vec![visitor_customer; 3]);
    assert_eq!(snapshot.trust_of(&email("bob")), Some(Trust::Claimed));
    assert!(!snapshot.has_verified(visitor_customer));
    assert!(decisions.new_links.is_empty());
}

#[test]
fn a_verified_identifier_adopts_a_customer_of_claims_and_lets_the_other_claims_go() {
    let mut snapshot = Snapshot::default();
    // Someone typed Bob's new address and their own number into a form
    // before Bob ever wrote.
    let form = claimed(&[email("bob"), phone(9)]);
    let bobs_mail = verified(&[email("bob")]);
    let call = verified(&[phone(9)]);
    let decisions = one_by_one(&mut snapshot, &[&form, &bobs_mail, &call]);
    let bob = decisions[0].event_customers[0];
    assert_eq!(decisions[1].event_customers, vec![bob], "adopted");
    assert!(decisions[1].merges.is_empty() && decisions[1].new_customers.is_empty());
    assert_eq!(
        decisions[1].trust_changes,
        vec![
            TrustChange {
                event_index: 0,
                identifier: email("bob"),
                change: LinkChange::Verified,
            },
            TrustChange {
                event_index: 0,
                identifier: phone(9),
                change: LinkChange::Released,
            },
        ]
    );
    assert_eq!(snapshot.identifiers_of(bob), &[email("bob")]);
    // The number typed into the form does not lead to Bob.
    let caller = decisions[2].event_customers[0];
    assert_ne!(caller, bob);
}

#[test]
fn a_visitors_own_claims_do_not_keep_their_form_off_the_customer_it_names() {
    let mut snapshot = Snapshot::from_customers([(victim(), vec![email("anna")])]);
    let browsing = claimed(&[visitor("v-9")]);
    let form = claimed(&[visitor("v-9"), email("anna"), phone(9)]);
    let decisions = run(&mut snapshot, &[&browsing, &form]);
    let visitor_customer = decisions.event_customers[0];
    assert_eq!(decisions.event_customers, vec![visitor_customer, victim()]);
    assert_eq!(snapshot.identifiers_of(victim()), &[email("anna")]);
    assert_eq!(snapshot.identifiers_of(visitor_customer), &[visitor("v-9")]);
    assert_eq!(snapshot.owner(&phone(9)), None);
}

#[test]
fn claims_never_merge_customers_of_claims() {
    let mut snapshot = Snapshot::default();
    let first = claimed(&[visitor("v-1")]);
    let second = claimed(&[email("carol")]);
    let both = claimed(&[visitor("v-1"), email("carol")]);
    let decisions = run(&mut snapshot, &[&first, &second, &both]);
    let [a, b, c] = decisions.event_customers[..] else {
        panic!("three events");
    };
    assert!(a != b && c != a && c != b, "a customer of its own");
    assert!(decisions.merges.is_empty());
}

#[test]
fn a_verified_event_merges_the_customers_of_claims_it_verifies() {
    let mut snapshot = Snapshot::default();
    let first = claimed(&[email("dan")]);
    let second = claimed(&[phone(4)]);
    let crm = verified(&[email("dan"), phone(4)]);
    let decisions = run(&mut snapshot, &[&first, &second, &crm]);
    assert_eq!(decisions.merges.len(), 1);
    let survivor = decisions.merges[0].survivor;
    assert_eq!(decisions.event_customers[2], survivor);
    assert_eq!(snapshot.trust_of(&email("dan")), Some(Trust::Verified));
    assert_eq!(snapshot.trust_of(&phone(4)), Some(Trust::Verified));
}

#[test]
fn claims_on_a_verified_event_stay_on_the_event() {
    let mut snapshot = Snapshot::from_customers([(victim(), vec![email("anna")])]);
    let mut mixed = verified(&[email("anna")]);
    mixed.extend(claimed(&[phone(9)]));
    let decisions = run(&mut snapshot, &[&mixed]);
    assert_eq!(decisions.event_customers, vec![victim()]);
    assert!(decisions.new_links.is_empty() && decisions.trust_changes.is_empty());
    assert_eq!(snapshot.owner(&phone(9)), None);
}

#[test]
fn an_anchored_confirmation_reaches_a_customer_of_claims() {
    let mut snapshot = Snapshot::default();
    let form = claimed(&[email("erin"), visitor("v-2")]);
    let first = run(&mut snapshot, &[&form]);
    let erin = first.event_customers[0];
    // An agent confirms a number Erin gave on the phone.
    let mut confirmation = claimed(&[email("erin")]);
    confirmation.extend(verified(&[phone(5)]));
    let event = [EventIdentity {
        identifiers: &confirmation,
        anchored: true,
    }];
    let decisions = resolve_trusted(&mut snapshot, &event, &IdentityRules::default(), new_ids());
    assert_eq!(decisions.event_customers, vec![erin]);
    assert_eq!(decisions.new_links, vec![(phone(5), erin)]);
    // Erin is known now: her claims are let go, the anchor included.
    assert_eq!(snapshot.identifiers_of(erin), &[phone(5)]);
    // Without the anchor the number would start a customer of its own.
    let mut snapshot = Snapshot::default();
    let mut ids = new_ids();
    let rules = IdentityRules::default();
    let plain = |identifiers| {
        [EventIdentity {
            identifiers,
            anchored: false,
        }]
    };
    let erin = resolve_trusted(&mut snapshot, &plain(&form), &rules, &mut ids).event_customers[0];
    let decisions = resolve_trusted(&mut snapshot, &plain(&confirmation), &rules, &mut ids);
    assert_ne!(decisions.event_customers[0], erin);
    assert_eq!(snapshot.trust_of(&email("erin")), Some(Trust::Claimed));
}

#[test]
fn verifying_claims_obeys_the_limits() {
    let mut snapshot = Snapshot::default();
    let form = claimed(&[account("A-1")]);
    let other_form = claimed(&[visitor("v-3"), account("A-2")]);
    let crm = verified(&[visitor("v-3"), account("A-2")]);
    let decisions = one_by_one(&mut snapshot, &[&form, &other_form, &crm]);
    assert_ne!(
        decisions[0].event_customers, decisions[1].event_customers,
        "two claimed accounts, two customers"
    );
    assert_eq!(decisions[2].event_customers, decisions[1].event_customers);
    assert_eq!(snapshot.trust_of(&account("A-2")), Some(Trust::Verified));
    assert_eq!(snapshot.trust_of(&account("A-1")), Some(Trust::Claimed));
    // A verified account on a known customer, and its claim elsewhere:
    // the verified event keeps to its own customer's limit.
    let mut snapshot = Snapshot::from_customers([(victim(), vec![account("A-1")])]);
    let claim = claimed(&[account("A-2"), email("fay")]);
    let crm = verified(&[account("A-1"), email("fay"), account("A-2")]);
    let decisions = one_by_one(&mut snapshot, &[&claim, &crm]);
    let claims_customer = decisions[0].event_customers[0];
    let refused = &decisions[1].conflicts;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0].reason,
        ConflictReason::Limit(IdentifierKind::Account)
    );
    assert_eq!(refused[0].customers, vec![victim(), claims_customer]);
    // Nothing merged: the claims stay where they were, unverified.
    assert_eq!(decisions[1].event_customers, vec![victim()]);
    assert_eq!(snapshot.trust_of(&account("A-2")), Some(Trust::Claimed));
    assert!(!snapshot.has_verified(claims_customer));
}

// Properties over random events with random trust.

fn make(kind: IdentifierKind, n: u8) -> Identifier {
    let raw = match kind {
        IdentifierKind::Phone => format!("+3161234{:04}", n),
        IdentifierKind::Email => format!("p{n}@example.com"),
        _ => format!("{kind}-{n}"),
    };
    Identifier::parse(kind, &raw, None).expect("valid identifier")
}

const KINDS: [IdentifierKind; 6] = [
    IdentifierKind::Account,
    IdentifierKind::Phone,
    IdentifierKind::Email,
    IdentifierKind::Whatsapp,
    IdentifierKind::Visitor,
    IdentifierKind::Visitor,
];

fn trusted_event() -> impl Strategy<Value = Vec<EventIdentifier>> {
    let carried = (
        proptest::sample::select(KINDS.to_vec()),
        0..6u8,
        prop_oneof![Just(Trust::Verified), Just(Trust::Claimed)],
    )
        .prop_map(|(kind, n, trust)| EventIdentifier {
            identifier: make(kind, n),
            trust,
        });
    prop_oneof![
        // Mostly events of one trust, as the gateway makes them.
        3 => (proptest::collection::vec(carried.clone(), 1..=3), any::<bool>()).prop_map(
            |(mut identifiers, verified)| {
                for carried in &mut identifiers {
                    carried.trust = if verified { Trust::Verified } else { Trust::Claimed };
                }
                identifiers
            }
        ),
        1 => proptest::collection::vec(carried, 1..=3),
    ]
}

/// The store's view: applying each event's merges, link changes and new
/// links in event order gives the owners and claims the resolver ended
/// with.
fn replay(
    batches: &[(Vec<Vec<EventIdentifier>>, Decisions)],
    snapshot: &Snapshot,
) -> Result<(), TestCaseError> {
    let mut owners: HashMap<Identifier, Uuid> = HashMap::new();
    let mut claims: HashSet<Identifier> = HashSet::new();
    for (events, decisions) in batches {
        let new_links: HashMap<&Identifier, Uuid> = decisions
            .new_links
            .iter()
            .map(|(identifier, customer)| (identifier, *customer))
            .collect();
        for (index, identifiers) in events.iter().enumerate() {
            for merge in decisions.merges.iter().filter(|m| m.event_index == index) {
                for identifier in &merge.moved {
                    let owner = owners.get_mut(identifier).expect("moved identifiers exist");
                    prop_assert_eq!(*owner, merge.merged);
                    *owner = merge.survivor;
                }
            }
            let changes = decisions
                .trust_changes
                .iter()
                .filter(|change| change.event_index == index);
            for change in changes.clone() {
                if change.change == LinkChange::Verified {
                    prop_assert!(claims.remove(&change.identifier), "{:?}", change);
                }
            }
            for carried in identifiers.iter().filter(|c| c.is_verified()) {
                let identifier = &carried.identifier;
                if !owners.contains_key(identifier)
                    && new_links.get(identifier) == Some(&decisions.event_customers[index])
                {
                    owners.insert(identifier.clone(), decisions.event_customers[index]);
                }
            }
            for change in changes {
                match change.change {
                    LinkChange::Claimed(customer) => {
                        prop_assert!(owners.insert(change.identifier.clone(), customer).is_none());
                        claims.insert(change.identifier.clone());
                    }
                    LinkChange::Released => {
                        prop_assert!(claims.remove(&change.identifier));
                        owners.remove(&change.identifier);
                    }
                    LinkChange::Verified => {}
                }
            }
        }
    }
    prop_assert_eq!(&owners, &snapshot.owners);
    prop_assert_eq!(&claims, &snapshot.claimed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn claims_never_merge_nor_reach_a_verified_customer(
        events in proptest::collection::vec(trusted_event(), 1..40),
        cuts in proptest::collection::vec(any::<Index>(), 0..4),
    ) {
        let rules = IdentityRules::default();
        let mut snapshot = Snapshot::default();
        let mut bounds: Vec<usize> = cuts.iter().map(|cut| cut.index(events.len() + 1)).collect();
        bounds.extend([0, events.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut ids = new_ids();
        let mut batches = Vec::new();
        for window in bounds.windows(2) {
            let batch = events[window[0]..window[1]].to_vec();
            let identities: Vec<EventIdentity<'_>> = batch
                .iter()
                .map(|identifiers| EventIdentity { identifiers, anchored: false })
                .collect();
            let decisions = resolve_trusted(&mut snapshot, &identities, &rules, &mut ids);
            for (index, identifiers) in batch.iter().enumerate() {
                let all_claimed = identifiers.iter().all(|c| !c.is_verified());
                // Every merge goes through a verified identifier of its event.
                for merge in decisions.merges.iter().filter(|m| m.event_index == index) {
                    prop_assert!(!all_claimed, "{:?}", merge);
                    for identifier in &merge.via {
                        prop_assert!(
                            identifiers.iter().any(|c| &c.identifier == identifier && c.is_verified()),
                            "{} merged through a claim", identifier
                        );
                    }
                }
                if all_claimed {
                    prop_assert!(decisions.conflicts.iter().all(|c| c.event_index != index));
                    let only_claims = decisions.trust_changes.iter().all(|change| {
                        change.event_index != index || matches!(change.change, LinkChange::Claimed(_))
                    });
                    prop_assert!(only_claims, "a claimed event verified or let go a link");
                }
            }
            // Claimed links only ever belong to customers of claims only.
            for (customer, identifiers) in &snapshot.identifiers {
                let claims = identifiers.iter().filter(|i| snapshot.claimed.contains(*i)).count();
                prop_assert!(claims == 0 || claims == identifiers.len(), "{} mixes trust", customer);
            }
            for identifier in &snapshot.claimed {
                prop_assert!(snapshot.owners.contains_key(identifier));
            }
            // Limits hold for verified links, and among claims.
            for identifiers in snapshot.identifiers.values() {
                for kind in IdentifierKind::ALL {
                    if let Some(limit) = rules.limit(kind) {
                        prop_assert!(identifiers.iter().filter(|i| i.kind() == kind).count() <= limit);
                    }
                }
            }
            batches.push((batch, decisions));
        }
        replay(&batches, &snapshot)?;
    }

    /// A claimed-only event goes to the one known customer owning any of
    /// its identifiers, else to the one customer of claims owning any, else
    /// to a new customer; it never changes a customer that has verified
    /// identifiers.
    #[test]
    fn a_claimed_event_goes_to_its_one_owner_or_its_own_customer(
        history in proptest::collection::vec(trusted_event(), 1..30),
        claims in proptest::collection::vec((proptest::sample::select(KINDS.to_vec()), 0..6u8), 1..=3),
    ) {
        let rules = IdentityRules::default();
        let mut snapshot = Snapshot::default();
        let identities: Vec<EventIdentity<'_>> = history
            .iter()
            .map(|identifiers| EventIdentity { identifiers, anchored: false })
            .collect();
        let mut ids = new_ids();
        resolve_trusted(&mut snapshot, &identities, &rules, &mut ids);
        let event: Vec<EventIdentifier> = claims
            .iter()
            .map(|&(kind, n)| EventIdentifier::claimed(make(kind, n)))
            .collect();
        let mut owners: Vec<Uuid> = event
            .iter()
            .filter_map(|c| snapshot.owner(&c.identifier))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let known: Vec<Uuid> = owners.iter().copied().filter(|&o| snapshot.has_verified(o)).collect();
        if !known.is_empty() {
            owners = known;
        }
        let before = snapshot.clone();
        let decisions = resolve_trusted(
            &mut snapshot,
            &[EventIdentity { identifiers: &event, anchored: false }],
            &rules,
            &mut ids,
        );
        let customer = decisions.event_customers[0];
        match owners.as_slice() {
            [only] => prop_assert_eq!(customer, *only),
            _ => prop_assert_eq!(decisions.new_customers.clone(), vec![customer]),
        }
        prop_assert!(decisions.merges.is_empty());
        for (known, identifiers) in &before.identifiers {
            if before.has_verified(*known) {
                prop_assert_eq!(snapshot.identifiers_of(*known), identifiers.as_slice());
            }
        }
    }
}
