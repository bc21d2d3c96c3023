use std::collections::{BTreeSet, HashMap};

use chrono::Duration;
use proptest::prelude::*;

use super::*;
use crate::event::{EventDraft, IdentifierDraft, ValidationContext};
use crate::identifier::IdentifierKind;

const CUSTOMER: Uuid = Uuid::from_u128(1);

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

fn event(
    id: &str,
    hours: i64,
    event_type: &str,
    channel: &str,
    reason: Option<&str>,
    conversation: Option<&str>,
    case_id: Option<Uuid>,
) -> ContactEvent {
    EventDraft {
        event_id: Some(id.to_owned()),
        occurred_at: Some((epoch() + Duration::hours(hours)).to_rfc3339()),
        channel: Some(channel.to_owned()),
        source: Some("test".to_owned()),
        event_type: Some(event_type.to_owned()),
        identifiers: vec![IdentifierDraft::new(IdentifierKind::Email, "a@example.com")],
        contact_reason: reason.map(str::to_owned),
        conversation_id: conversation.map(str::to_owned),
        case_id: case_id.map(|id| id.to_string()),
        ..EventDraft::default()
    }
    .validate(&ValidationContext {
        received_at: epoch() + Duration::days(400),
        default_region: None,
    })
    .expect("valid event")
}

fn contact(id: &str, hours: i64, channel: &str, reason: &str) -> ContactEvent {
    event(
        id,
        hours,
        "message.received",
        channel,
        Some(reason),
        None,
        None,
    )
}

fn run(cases: &mut Vec<CaseState>, events: &[ContactEvent]) -> CaseDecisions {
    let inputs: Vec<CaseInput<'_>> = events
        .iter()
        .map(|event| CaseInput {
            event,
            customer: CUSTOMER,
        })
        .collect();
    assign_cases(cases, &inputs, &CaseRules::default(), |event| {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, event.event_id.as_bytes())
    })
}

#[test]
fn contacts_about_one_reason_within_the_window_share_a_case() {
    let events = [
        contact("call", 0, "phone", "My parcel did not arrive"),
        contact("mail", 30, "email", "my  parcel did NOT arrive"),
        contact("chat", 60, "chat", "I want to change my contract"),
        contact("later", 24 * 20, "phone", "my parcel did not arrive"),
    ];
    let mut cases = Vec::new();
    let decisions = run(&mut cases, &events);
    let ids = &decisions.event_cases;
    assert_eq!(ids[0], ids[1], "same reason within a week");
    assert_ne!(ids[0], ids[2], "another reason");
    assert_ne!(
        ids[0], ids[3],
        "the same reason two weeks after the last contact"
    );
    let parcel = cases
        .iter()
        .find(|case| Some(case.id) == ids[0])
        .expect("case");
    assert_eq!(parcel.contacts.len(), 2);
    assert_eq!(
        parcel.channels,
        BTreeSet::from([Channel::Phone, Channel::Email])
    );
    assert_eq!(parcel.reason(), Some("My parcel did not arrive"));
    assert_eq!(cases.len(), 3);
}

#[test]
fn a_conversation_keeps_its_contacts_together_whatever_they_say() {
    let events = [
        event(
            "a",
            0,
            "email.received",
            "email",
            Some("invoice"),
            Some("thread-1"),
            None,
        ),
        event("b", 1, "email.sent", "email", None, Some("thread-1"), None),
        event(
            "c",
            2,
            "email.received",
            "email",
            Some("refund"),
            Some("thread-1"),
            None,
        ),
    ];
    let mut cases = Vec::new();
    let decisions = run(&mut cases, &events);
    assert_eq!(cases.len(), 1);
    assert!(
        decisions
            .event_cases
            .iter()
            .all(|case| *case == Some(cases[0].id))
    );
    assert_eq!(cases[0].reason(), Some("invoice"), "the earliest reason");
}

#[test]
fn a_late_contact_that_bridges_two_cases_merges_them_into_the_oldest() {
    let mut cases = Vec::new();
    let first = run(&mut cases, &[contact("day-0", 0, "phone", "broken device")]);
    let second = run(
        &mut cases,
        &[contact("day-10", 240, "email", "broken device")],
    );
    assert_eq!(cases.len(), 2);
    let bridge = run(
        &mut cases,
        &[contact("day-5", 120, "chat", "broken device")],
    );
    assert_eq!(cases.len(), 1);
    let survivor = first.event_cases[0].min(second.event_cases[0]);
    assert_eq!(bridge.event_cases[0], survivor);
    let merged = first.event_cases[0]
        .max(second.event_cases[0])
        .expect("case");
    assert_eq!(bridge.merged, vec![(merged, survivor.expect("case"))]);
    assert_eq!(cases[0].contacts.len(), 3);
    assert_eq!(cases[0].channels.len(), 3);
}

#[test]
fn agents_open_resolve_and_reopen_cases_and_link_contacts() {
    let case = Uuid::now_v7();
    let mut cases = Vec::new();
    let opened = event(
        "open",
        0,
        "case.opened",
        "phone",
        Some("Moving house"),
        None,
        Some(case),
    );
    let call = event("call", 1, "call.ended", "phone", None, None, Some(case));
    let note = event("note", 2, "note.added", "phone", None, None, Some(case));
    let resolved = event("done", 3, "case.resolved", "phone", None, None, Some(case));
    let decisions = run(&mut cases, &[opened, call, note, resolved]);
    assert_eq!(decisions.event_cases, vec![Some(case); 4]);
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].status, CaseStatus::Resolved);
    assert_eq!(cases[0].reason(), Some("Moving house"));
    assert_eq!(cases[0].contacts.len(), 1, "the note is not a contact");

    // After the resolution, the same reason opens a new case; a contact
    // from before it (arriving late) still joins the resolved one.
    let after = event(
        "after",
        5,
        "call.ended",
        "phone",
        Some("Moving house"),
        None,
        None,
    );
    let before = event(
        "before",
        2,
        "message.received",
        "social",
        Some("moving house"),
        None,
        None,
    );
    let decisions = run(&mut cases, &[after, before]);
    assert_ne!(decisions.event_cases[0], Some(case));
    assert_eq!(decisions.event_cases[1], Some(case));
    let reopened = event("again", 6, "case.reopened", "phone", None, None, Some(case));
    run(&mut cases, &[reopened]);
    let case = cases.iter().find(|c| c.id == case).expect("case");
    assert_eq!(case.status, CaseStatus::Open);
    assert_eq!(case.resolved_at, None);
}

#[test]
fn unknown_cases_named_by_agent_actions_are_ignored() {
    let mut cases = Vec::new();
    let ghost = Uuid::now_v7();
    let decisions = run(
        &mut cases,
        &[
            event("r", 0, "case.resolved", "phone", None, None, Some(ghost)),
            event("n", 1, "note.added", "phone", None, None, Some(ghost)),
            event("f", 2, "page.viewed", "web", None, None, None),
        ],
    );
    assert_eq!(decisions.event_cases, vec![None, None, None]);
    assert!(cases.is_empty());
}

#[test]
fn agent_actions_naming_another_customers_case_change_nothing() {
    let theirs = Uuid::now_v7();
    let other_customer = Uuid::from_u128(2);
    let mut cases = vec![CaseState::new(theirs, other_customer, epoch())];
    let decisions = run(
        &mut cases,
        &[
            event("r", 1, "case.resolved", "phone", None, None, Some(theirs)),
            event("n", 2, "note.added", "phone", None, None, Some(theirs)),
        ],
    );
    assert_eq!(decisions.event_cases, vec![None, None]);
    assert_eq!(decisions.foreign_cases, 2);
    assert!(decisions.touched.is_empty());
    assert_eq!(cases[0].status, CaseStatus::Open);
    assert_eq!(cases[0].resolved_at, None);

    cases[0].status = CaseStatus::Resolved;
    let decisions = run(
        &mut cases,
        &[event(
            "o",
            3,
            "case.reopened",
            "phone",
            None,
            None,
            Some(theirs),
        )],
    );
    assert_eq!(decisions.event_cases, vec![None]);
    assert_eq!(cases[0].status, CaseStatus::Resolved);
}

/// The grouping of event ids into cases.
fn grouping(
    cases: &[CaseState],
    events: &[ContactEvent],
    decisions: &[Option<Uuid>],
) -> BTreeSet<BTreeSet<Uuid>> {
    let _ = cases;
    let mut groups: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
    for (event, case) in events.iter().zip(decisions) {
        if let Some(case) = case {
            groups.entry(*case).or_default().insert(event.event_id);
        }
    }
    groups.into_values().collect()
}

/// Follows merges so an early event's case names its final case.
fn finals(decisions: &[CaseDecisions]) -> Vec<Option<Uuid>> {
    let mut merged: HashMap<Uuid, Uuid> = HashMap::new();
    for decision in decisions {
        for &(from, to) in &decision.merged {
            merged.insert(from, to);
        }
    }
    let resolve = |mut id: Uuid| {
        while let Some(&next) = merged.get(&id) {
            id = next;
        }
        id
    };
    decisions
        .iter()
        .flat_map(|decision| decision.event_cases.iter().map(|case| case.map(resolve)))
        .collect()
}

fn contacts_strategy() -> impl Strategy<Value = Vec<(u8, u16, u8, Option<u8>)>> {
    // reason (of 3), hour (over 40 days), channel (of 3), conversation (of 4)
    proptest::collection::vec(
        (
            0u8..3,
            0u16..960,
            0u8..3,
            proptest::option::weighted(0.2, 0u8..4),
        ),
        1..40,
    )
}

/// The contacts of [`contacts_strategy`] as events `e0`, `e1`, ...
fn contact_events(contacts: &[(u8, u16, u8, Option<u8>)]) -> Vec<ContactEvent> {
    let reasons = ["parcel", "contract", "device"];
    let channels = ["phone", "email", "social"];
    contacts
        .iter()
        .enumerate()
        .map(|(n, &(reason, hour, channel, conversation))| {
            event(
                &format!("e{n}"),
                i64::from(hour),
                "message.received",
                channels[channel as usize],
                Some(reasons[reason as usize]),
                conversation.map(|c| ["c0", "c1", "c2", "c3"][c as usize]),
                None,
            )
        })
        .collect()
}

proptest! {
    #[test]
    fn grouping_is_the_same_whatever_the_order_and_batching(
        contacts in contacts_strategy(),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        cut in 1usize..8,
    ) {
        let events = contact_events(&contacts);
        // In time order, one batch.
        let mut sorted = events.clone();
        sorted.sort_by_key(|event| event.occurred_at);
        let mut cases = Vec::new();
        let decision = run(&mut cases, &sorted);
        let expected = grouping(&cases, &sorted, &finals(&[decision]));

        // Shuffled, in batches of `cut`.
        let mut shuffled = events.clone();
        let mut state = order;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut cases = Vec::new();
        let decisions: Vec<CaseDecisions> = shuffled
            .chunks(cut)
            .map(|batch| run(&mut cases, batch))
            .collect();
        let actual = grouping(&cases, &shuffled, &finals(&decisions));
        prop_assert_eq!(&actual, &expected);
        prop_assert_eq!(cases.len(), expected.len());
        let contacts: usize = cases.iter().map(|case| case.contacts.len()).sum();
        prop_assert_eq!(contacts, events.len());
    }
}

proptest! {
    /// One batch with the events of several customers groups each
    /// customer's events as a batch of that customer's events alone would:
    /// a contact only ever joins its own customer's cases.
    #[test]
    fn customers_sharing_a_batch_keep_their_cases_apart(
        contacts in contacts_strategy(),
        owners in proptest::collection::vec(0u128..3, 40),
    ) {
        let events = contact_events(&contacts);
        let owner = |n: usize| Uuid::from_u128(100 + owners[n]);
        let new_id = |event: &ContactEvent| Uuid::new_v5(&Uuid::NAMESPACE_OID, event.event_id.as_bytes());
        let inputs: Vec<CaseInput<'_>> = events
            .iter()
            .enumerate()
            .map(|(n, event)| CaseInput { event, customer: owner(n) })
            .collect();
        let mut together = Vec::new();
        let mixed = assign_cases(&mut together, &inputs, &CaseRules::default(), new_id);
        for customer in (0..3).map(|c| Uuid::from_u128(100 + c)) {
            let own: Vec<CaseInput<'_>> =
                inputs.iter().copied().filter(|input| input.customer == customer).collect();
            let mut alone = Vec::new();
            let decision = assign_cases(&mut alone, &own, &CaseRules::default(), new_id);
            let own_events: Vec<ContactEvent> = own.iter().map(|input| input.event.clone()).collect();
            let mixed_cases: Vec<Option<Uuid>> = finals(std::slice::from_ref(&mixed))
                .into_iter()
                .zip(&inputs)
                .filter(|(_, input)| input.customer == customer)
                .map(|(case, _)| case)
                .collect();
            prop_assert_eq!(
                grouping(&together, &own_events, &mixed_cases),
                grouping(&alone, &own_events, &finals(&[decision]))
            );
            for case in together.iter().filter(|case| case.customer == customer) {
                prop_assert!(alone.iter().any(|mine| mine.id == case.id), "{:?}", case.id);
            }
        }
    }
}
