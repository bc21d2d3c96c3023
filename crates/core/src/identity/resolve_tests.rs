//! Unit tests for the guarded resolver, one or more per rule.

use uuid::Uuid;

use super::*;
use crate::identifier::{Identifier, IdentifierKind};

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

fn whatsapp(wa_id: &str) -> Identifier {
    id(IdentifierKind::Whatsapp, wa_id)
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// New customer ids 1000, 1001, ...: newer than every fixture customer, as
/// UUIDv7 ids are.
fn new_ids() -> impl FnMut(usize) -> Uuid {
    let mut next = 1_000u128;
    move |_| {
        next += 1;
        Uuid::from_u128(next - 1)
    }
}

fn run(snapshot: &mut Snapshot, events: &[&[Identifier]], rules: &IdentityRules) -> Decisions {
    resolve(snapshot, events, rules, new_ids())
}

fn sorted(mut identifiers: Vec<Identifier>) -> Vec<Identifier> {
    identifiers.sort();
    identifiers
}

#[test]
fn unknown_identifiers_create_a_customer_that_later_events_find() {
    let mut snapshot = Snapshot::default();
    let first = [phone(1), email("anna")];
    let again = [email("anna")];
    let other = [phone(2)];
    let decisions = run(
        &mut snapshot,
        &[&first, &again, &other],
        &IdentityRules::default(),
    );
    let (anna, bob) = (customer(1000), customer(1001));
    assert_eq!(decisions.new_customers, vec![anna, bob]);
    assert_eq!(decisions.event_customers, vec![anna, anna, bob]);
    assert_eq!(
        decisions.new_links,
        vec![(phone(1), anna), (email("anna"), anna), (phone(2), bob)]
    );
    assert!(decisions.merges.is_empty());
    assert!(decisions.conflicts.is_empty());
    assert_eq!(snapshot.owner(&email("anna")), Some(anna));
    assert_eq!(snapshot.identifiers_of(anna), [phone(1), email("anna")]);
}

#[test]
fn a_new_customer_gets_no_more_than_its_limit() {
    let mut snapshot = Snapshot::default();
    let event = [account("C-1"), account("C-2"), account("C-1")];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    let created = customer(1000);
    assert_eq!(decisions.new_links, vec![(account("C-1"), created)]);
    assert_eq!(
        decisions.conflicts,
        vec![Conflict {
            event_index: 0,
            customers: vec![created],
            identifiers: vec![account("C-2")],
            reason: ConflictReason::Limit(IdentifierKind::Account),
        }]
    );
    assert_eq!(snapshot.owner(&account("C-2")), None);
}

#[test]
fn a_known_identifier_attaches_and_brings_new_ones_along() {
    let known = customer(7);
    let mut snapshot = Snapshot::from_customers([(known, vec![phone(1)])]);
    let event = [email("anna"), phone(1)];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    assert!(decisions.new_customers.is_empty());
    assert_eq!(decisions.event_customers, vec![known]);
    assert_eq!(decisions.new_links, vec![(email("anna"), known)]);
    assert_eq!(snapshot.owner(&email("anna")), Some(known));
    assert_eq!(snapshot.identifiers_of(known), [phone(1), email("anna")]);
}

#[test]
fn an_identifier_over_the_limit_is_not_linked_and_is_reported() {
    let known = customer(7);
    let mut snapshot = Snapshot::from_customers([(known, vec![account("C-1"), email("a")])]);
    let event = [email("a"), account("C-2"), email("b")];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    assert_eq!(decisions.event_customers, vec![known]);
    assert_eq!(decisions.new_links, vec![(email("b"), known)]);
    assert_eq!(
        decisions.conflicts,
        vec![Conflict {
            event_index: 0,
            customers: vec![known],
            identifiers: vec![account("C-2")],
            reason: ConflictReason::Limit(IdentifierKind::Account),
        }]
    );
    assert_eq!(snapshot.owner(&account("C-2")), None);

    // A configured limit applies the same way to other kinds.
    let rules = IdentityRules::default().with_limit(IdentifierKind::Email, Some(2));
    let event = [email("a"), email("c"), email("d")];
    let decisions = run(&mut snapshot, &[&event], &rules);
    assert!(decisions.new_links.is_empty());
    assert_eq!(
        decisions.conflicts[0].identifiers,
        vec![email("c"), email("d")]
    );
    assert_eq!(
        decisions.conflicts[0].reason,
        ConflictReason::Limit(IdentifierKind::Email)
    );
}

#[test]
fn several_customers_merge_into_the_oldest() {
    let (older, newer) = (customer(1), customer(2));
    for event in [[email("b"), phone(1)], [phone(1), email("b")]] {
        let mut snapshot = Snapshot::from_customers([
            (newer, vec![phone(1), whatsapp("316")]),
            (older, vec![email("b")]),
        ]);
        let later = [whatsapp("316")];
        let decisions = run(&mut snapshot, &[&event, &later], &IdentityRules::default());
        let via = event.to_vec();
        assert_eq!(
            decisions.merges,
            vec![Merge {
                survivor: older,
                merged: newer,
                event_index: 0,
                via,
                moved: vec![phone(1), whatsapp("316")],
            }]
        );
        assert_eq!(decisions.event_customers, vec![older, older]);
        assert!(decisions.conflicts.is_empty());
        assert_eq!(snapshot.owner(&phone(1)), Some(older));
        assert_eq!(snapshot.owner(&whatsapp("316")), Some(older));
        assert!(!snapshot.identifiers.contains_key(&newer));
        assert_eq!(
            sorted(snapshot.identifiers_of(older).to_vec()),
            sorted(vec![email("b"), phone(1), whatsapp("316")])
        );
    }
}

#[test]
fn three_customers_merge_in_one_event_and_new_identifiers_join_the_survivor() {
    let (a, b, c) = (customer(1), customer(2), customer(3));
    let mut snapshot = Snapshot::from_customers([
        (c, vec![whatsapp("316")]),
        (b, vec![email("b")]),
        (a, vec![phone(1)]),
    ]);
    let event = [whatsapp("316"), email("b"), email("new"), phone(1)];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    let pairs: Vec<(Uuid, Uuid, Vec<Identifier>)> = decisions
        .merges
        .iter()
        .map(|merge| (merge.survivor, merge.merged, merge.via.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (a, b, vec![email("b"), phone(1)]),
            (a, c, vec![whatsapp("316"), phone(1)]),
        ]
    );
    assert_eq!(decisions.event_customers, vec![a]);
    assert_eq!(decisions.new_links, vec![(email("new"), a)]);
    assert_eq!(snapshot.identifiers.len(), 1);
    assert_eq!(snapshot.identifiers_of(a).len(), 4);
}

#[test]
fn merges_are_transitive_within_a_batch() {
    let (a, b, c) = (customer(1), customer(2), customer(3));
    let mut snapshot = Snapshot::from_customers([
        (a, vec![phone(1)]),
        (b, vec![email("b")]),
        (c, vec![whatsapp("316")]),
    ]);
    let links_b_c = [whatsapp("316"), email("b")];
    let links_a_b = [email("b"), phone(1)];
    let only_c = [whatsapp("316")];
    let decisions = run(
        &mut snapshot,
        &[&links_b_c, &links_a_b, &only_c],
        &IdentityRules::default(),
    );
    assert_eq!(decisions.event_customers, vec![b, a, a]);
    assert_eq!(decisions.merges.len(), 2);
    assert_eq!(
        (decisions.merges[0].survivor, decisions.merges[0].merged),
        (b, c)
    );
    assert_eq!(
        (decisions.merges[1].survivor, decisions.merges[1].merged),
        (a, b)
    );
    assert_eq!(decisions.merges[1].event_index, 1);
    assert_eq!(
        sorted(decisions.merges[1].moved.clone()),
        sorted(vec![email("b"), whatsapp("316")])
    );
    assert_eq!(snapshot.owner(&whatsapp("316")), Some(a));
}

#[test]
fn an_anonymous_visitor_joins_the_known_customer() {
    let (browsing, known) = (customer(1), customer(2));
    let mut snapshot = Snapshot::from_customers([
        (browsing, vec![visitor("v-1")]),
        (known, vec![email("anna"), visitor("v-2")]),
    ]);
    // A web form: the anonymous visitor leaves an email address.
    let form = [visitor("v-1"), email("anna")];
    // The same person on another device: two visitor ids, one known.
    let mut other = Snapshot::from_customers([
        (browsing, vec![visitor("v-1")]),
        (known, vec![email("anna"), visitor("v-2")]),
    ]);
    let devices = [visitor("v-1"), visitor("v-2")];
    for (snapshot, event) in [(&mut snapshot, &form[..]), (&mut other, &devices[..])] {
        let decisions = run(snapshot, &[event], &IdentityRules::default());
        assert!(decisions.conflicts.is_empty(), "{event:?}");
        assert_eq!(decisions.merges.len(), 1, "{event:?}");
        assert_eq!(decisions.merges[0].survivor, browsing);
        assert_eq!(decisions.merges[0].merged, known);
        assert_eq!(snapshot.owner(&email("anna")), Some(browsing));
        assert_eq!(snapshot.owner(&visitor("v-1")), Some(browsing));
    }
}

#[test]
fn a_shared_visitor_id_does_not_merge_two_known_customers() {
    let (anna, bob) = (customer(1), customer(2));
    let fixture = || {
        Snapshot::from_customers([
            (anna, vec![email("anna"), visitor("shared-pc")]),
            (bob, vec![email("bob"), visitor("bob-phone")]),
        ])
    };
    // Bob fills in a form on the shared computer.
    let mut snapshot = fixture();
    let form = [visitor("shared-pc"), email("bob")];
    let decisions = run(&mut snapshot, &[&form], &IdentityRules::default());
    assert!(decisions.merges.is_empty());
    assert_eq!(decisions.event_customers, vec![bob]);
    assert_eq!(
        decisions.conflicts,
        vec![Conflict {
            event_index: 0,
            customers: vec![anna, bob],
            identifiers: vec![visitor("shared-pc"), email("bob")],
            reason: ConflictReason::WeakLinkOnly,
        }]
    );
    assert_eq!(snapshot, fixture(), "links stay as they were");

    // Only visitor ids: neither is merged, the first listed wins.
    let mut snapshot = fixture();
    let browsing = [visitor("bob-phone"), visitor("shared-pc")];
    let decisions = run(&mut snapshot, &[&browsing], &IdentityRules::default());
    assert!(decisions.merges.is_empty());
    assert_eq!(decisions.event_customers, vec![bob]);
    assert_eq!(decisions.conflicts[0].reason, ConflictReason::WeakLinkOnly);
}

#[test]
fn the_weak_link_guard_leaves_out_only_the_weakly_linked_known_customer() {
    let (anonymous, anna, bob) = (customer(1), customer(2), customer(3));
    let mut snapshot = Snapshot::from_customers([
        (anonymous, vec![visitor("v-anon")]),
        (anna, vec![email("anna"), visitor("shared-pc")]),
        (bob, vec![email("bob")]),
    ]);
    let event = [visitor("v-anon"), visitor("shared-pc"), email("bob")];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    assert_eq!(decisions.merges.len(), 1);
    assert_eq!(
        (decisions.merges[0].survivor, decisions.merges[0].merged),
        (anonymous, bob)
    );
    assert_eq!(decisions.event_customers, vec![anonymous]);
    assert_eq!(decisions.conflicts.len(), 1);
    assert_eq!(decisions.conflicts[0].reason, ConflictReason::WeakLinkOnly);
    assert_eq!(snapshot.owner(&visitor("shared-pc")), Some(anna));
}

#[test]
fn different_accounts_linked_by_a_shared_phone_are_not_merged() {
    let (first, second) = (customer(1), customer(2));
    let fixture = || {
        Snapshot::from_customers([
            (first, vec![account("C-1"), phone(1)]),
            (second, vec![account("C-2"), email("partner")]),
        ])
    };
    let mut snapshot = fixture();
    let call = [phone(1), account("C-2"), email("new")];
    let decisions = run(&mut snapshot, &[&call], &IdentityRules::default());
    assert!(decisions.merges.is_empty());
    assert_eq!(decisions.event_customers, vec![second], "the account owner");
    assert_eq!(
        decisions.conflicts,
        vec![Conflict {
            event_index: 0,
            customers: vec![first, second],
            identifiers: vec![phone(1), account("C-2")],
            reason: ConflictReason::Limit(IdentifierKind::Account),
        }]
    );
    assert_eq!(snapshot.owner(&phone(1)), Some(first), "links stay");
    assert_eq!(snapshot.owner(&email("new")), Some(second));
}

#[test]
fn a_new_identifier_that_would_break_the_merged_limit_refuses_the_merge() {
    let (first, second) = (customer(1), customer(2));
    let mut snapshot = Snapshot::from_customers([
        (first, vec![account("C-1"), email("a")]),
        (second, vec![phone(1)]),
    ]);
    let event = [phone(1), email("a"), account("C-9")];
    let decisions = run(&mut snapshot, &[&event], &IdentityRules::default());
    assert!(decisions.merges.is_empty());
    assert_eq!(
        decisions.conflicts[0].reason,
        ConflictReason::Limit(IdentifierKind::Account)
    );
    assert_eq!(
        decisions.conflicts[0].identifiers,
        vec![phone(1), email("a"), account("C-9")]
    );
    // Phone and email rank equal: the first listed decides.
    assert_eq!(decisions.event_customers, vec![second]);
    assert_eq!(snapshot.owner(&account("C-9")), Some(second));
}

#[test]
fn a_do_not_merge_pair_is_not_merged_again() {
    let (a, b, c) = (customer(1), customer(2), customer(3));
    let mut snapshot = Snapshot::from_customers([
        (a, vec![phone(1)]),
        (b, vec![email("b")]),
        (c, vec![whatsapp("316")]),
    ]);
    snapshot.forbid_merge(c, b);
    assert!(snapshot.do_not_merge.contains(&(b, c)));
    let links_b_c = [email("b"), whatsapp("316")];
    let decisions = run(&mut snapshot, &[&links_b_c], &IdentityRules::default());
    assert!(decisions.merges.is_empty());
    assert_eq!(
        decisions.event_customers,
        vec![b],
        "email outranks whatsapp"
    );
    assert_eq!(
        decisions.conflicts,
        vec![Conflict {
            event_index: 0,
            customers: vec![b, c],
            identifiers: vec![email("b"), whatsapp("316")],
            reason: ConflictReason::DoNotMerge,
        }]
    );

    // Once `b` merges into `a`, `a` inherits the pair: `c` stays apart.
    let links_a_b = [phone(1), email("b")];
    let links_a_c = [phone(1), whatsapp("316")];
    let decisions = run(
        &mut snapshot,
        &[&links_a_b, &links_a_c],
        &IdentityRules::default(),
    );
    assert_eq!(decisions.merges.len(), 1);
    assert_eq!(decisions.conflicts.len(), 1);
    assert_eq!(decisions.conflicts[0].customers, vec![a, c]);
    assert_eq!(decisions.conflicts[0].reason, ConflictReason::DoNotMerge);
    assert_eq!(snapshot.owner(&whatsapp("316")), Some(c));
}

#[test]
fn check_merge_applies_limits_only() {
    let (a, b, c) = (customer(1), customer(2), customer(3));
    let mut snapshot = Snapshot::from_customers([
        (
            a,
            vec![account("C-1"), email("a1"), email("a2"), visitor("x")],
        ),
        (b, vec![account("C-2")]),
        (c, vec![email("c1"), visitor("y")]),
    ]);
    snapshot.forbid_merge(a, c);
    let rules = IdentityRules::default();
    assert_eq!(
        check_merge(&snapshot, a, b, &rules),
        Err(ConflictReason::Limit(IdentifierKind::Account))
    );
    assert_eq!(
        check_merge(&snapshot, b, a, &rules),
        Err(ConflictReason::Limit(IdentifierKind::Account))
    );
    // Do-not-merge and weak-only links are an agent's call.
    assert_eq!(check_merge(&snapshot, a, c, &rules), Ok(()));
    assert_eq!(check_merge(&snapshot, a, a, &rules), Ok(()));
    let strict = rules.with_limit(IdentifierKind::Email, Some(2));
    assert_eq!(
        check_merge(&snapshot, a, c, &strict),
        Err(ConflictReason::Limit(IdentifierKind::Email))
    );
}

#[test]
fn conflict_reasons_serialise_in_snake_case() {
    let json = |reason| serde_json::to_string(&reason).expect("serialisable");
    assert_eq!(
        json(ConflictReason::Limit(IdentifierKind::Account)),
        r#"{"limit":"account"}"#
    );
    assert_eq!(json(ConflictReason::WeakLinkOnly), r#""weak_link_only""#);
    assert_eq!(json(ConflictReason::DoNotMerge), r#""do_not_merge""#);
    assert!(
        ConflictReason::Limit(IdentifierKind::Account)
            .to_string()
            .contains("account")
    );
}
