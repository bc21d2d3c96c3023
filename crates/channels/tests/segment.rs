//! Segment Spec calls, as the Spec documents them and as SDKs batch them.

mod support;

use panorama_channels::{ChannelError, Outcome, segment};
use panorama_core::EventDraft;
use proptest::prelude::*;
use support::{attribute, context, events, fixture, identifiers, json_with_keys, validate};

fn contacts() -> Vec<String> {
    vec!["support ticket created ".to_owned()]
}

fn batch() -> Vec<EventDraft> {
    events(segment::parse(&fixture("segment/batch.json"), &context(), &contacts()).expect("parses"))
}

fn refusal(body: &str) -> (Option<String>, String) {
    match segment::parse(body.as_bytes(), &context(), &contacts()) {
        Err(ChannelError::Malformed { field, message }) => (field, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_spec_batch_maps_every_call_type() {
    let drafts = batch();
    let types: Vec<&str> = drafts
        .iter()
        .map(|d| d.event_type.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        [
            "customer.identified",
            "activity.tracked",
            "page.viewed",
            "screen.viewed",
            "customer.grouped",
            "customer.aliased",
            "contact.recorded",
        ]
    );
    for draft in &drafts {
        assert_eq!(draft.channel.as_deref(), Some("web"));
        assert_eq!(draft.source.as_deref(), Some("segment"));
        assert_eq!(draft.direction.as_deref(), Some("inbound"));
        let event = validate(draft);
        assert!(
            !event.event_type.is_customer_contact()
                || event.event_type.as_str() == "contact.recorded",
            "only configured track events are contacts"
        );
    }
    let identify = &drafts[0];
    assert_eq!(
        identifiers(identify),
        [
            ("account", "97980cfea0067"),
            ("email", "peter@example.com"),
            ("visitor", "507f191e810c19729de860ea"),
        ]
    );
    assert_eq!(identify.display_name.as_deref(), Some("Peter Gibbons"));
    assert_eq!(attribute(identify, "customer.plan"), Some("premium"));
    assert_eq!(attribute(identify, "customer.logins"), Some("5"));
    assert_eq!(
        attribute(identify, "customer.address.city"),
        Some("San Francisco")
    );
    assert_eq!(attribute(identify, "customer.email"), None, "an identifier");
    assert_eq!(
        attribute(identify, "segment.message_id"),
        Some("022bb90c-bbac-11e4-8dfc-aa07a5b093db")
    );
    // The batch's context applies to every call; a call's own keys win.
    assert_eq!(
        attribute(identify, "context.library.name"),
        Some("analytics-python")
    );
    assert_eq!(
        attribute(&drafts[1], "context.library.name"),
        Some("analytics.js")
    );

    let track = &drafts[1];
    assert_eq!(track.subject.as_deref(), Some("Course Clicked"));
    assert_eq!(
        attribute(track, "properties.title"),
        Some("Intro to Analytics")
    );
    let page = &drafts[2];
    assert_eq!(page.subject.as_deref(), Some("Welcome | Initech"));
    assert_eq!(attribute(page, "web.url"), Some("https://initech.com/"));
    assert_eq!(attribute(page, "web.referrer"), Some("https://google.com/"));
    assert_eq!(drafts[3].subject.as_deref(), Some("Home"));
    assert_eq!(
        attribute(&drafts[3], "properties.Feed Type"),
        Some("private")
    );
    let group = &drafts[4];
    assert_eq!(
        attribute(group, "customer.group.id"),
        Some("0e8c78ea9d97a7b8185e8632")
    );
    assert_eq!(attribute(group, "customer.group.name"), Some("Initech"));
    assert_eq!(attribute(group, "customer.group.employees"), Some("329"));
    assert_eq!(
        identifiers(&drafts[5]),
        [
            ("account", "97980cfea0067"),
            ("visitor", "39239-239239-239239-23923")
        ],
        "alias: the previous id joins as a weak id"
    );
    let ticket = &drafts[6];
    assert_eq!(ticket.subject.as_deref(), Some("Support Ticket Created"));
    assert_eq!(attribute(ticket, "properties.ticket_id"), Some("T-1001"));
}

#[test]
fn the_address_is_never_kept_but_the_browser_is() {
    for draft in batch() {
        assert!(
            !draft.attributes.keys().any(|key| key.contains(".ip")),
            "{:?}",
            draft.attributes
        );
        assert!(!draft.attributes.values().any(|value| value == "8.8.8.8"));
    }
    assert!(
        attribute(&batch()[0], "context.userAgent").is_some_and(|ua| ua.starts_with("Mozilla"))
    );
}

#[test]
fn times_are_corrected_for_the_sender_clock() {
    // Received at 18:00:00; the SDK sent at 17:59:59.111 by its own clock,
    // 9 s after the identify call by that clock.
    let drafts = batch();
    assert_eq!(
        drafts[0].occurred_at.as_deref(),
        Some("2026-11-24T17:59:51Z")
    );
    assert_eq!(
        drafts[6].occurred_at.as_deref(),
        Some("2026-11-24T17:59:57Z")
    );
}

#[test]
fn a_message_id_is_the_same_event_on_every_retry_and_never_taken_as_is() {
    let first = validate(&batch()[0]);
    let again = validate(&batch()[0]);
    assert_eq!(first.event_id, again.event_id);
    assert_ne!(
        first.event_id.to_string(),
        "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
        "a UUID message id is not the event id: the source's namespace is"
    );
    assert_eq!(first.event_id.get_version_num(), 5);
    let other = validate(&batch()[2]);
    assert_ne!(first.event_id, other.event_id);
    let no_id = r#"{"type":"track","event":"Clicked","userId":"u-1"}"#;
    let drafts = events(segment::parse(no_id.as_bytes(), &context(), &[]).expect("parses"));
    assert_eq!(drafts[0].event_id, None, "a new id at validation");
}

#[test]
fn the_write_key_is_read_from_the_body() {
    let body = segment::read(&fixture("segment/batch.json")).expect("reads");
    assert_eq!(body.write_key(), Some("seg-write-key"));
    let single = segment::read(br#"{"type":"page","userId":"u"}"#).expect("reads");
    assert_eq!(single.write_key(), None);
}

#[test]
fn refusals_name_the_field() {
    assert_eq!(
        refusal(r#"{"batch":[{"type":"track","event":"x","userId":"u"},{"type":"purchase","userId":"u"}]}"#),
        (
            Some("batch[1].type".to_owned()),
            "unknown type \"purchase\"; expected one of identify, track, page, screen, group, alias"
                .to_owned()
        )
    );
    assert_eq!(
        refusal(r#"{"event":"x","userId":"u"}"#).0.as_deref(),
        Some("type")
    );
    assert_eq!(
        refusal(r#"{"type":"track","event":"x"}"#),
        (
            Some("userId".to_owned()),
            "userId or anonymousId is required".to_owned()
        )
    );
    assert_eq!(
        refusal(r#"{"type":"track","userId":"u"}"#).0.as_deref(),
        Some("event")
    );
    assert_eq!(
        refusal(r#"{"type":"alias","userId":"u"}"#).0.as_deref(),
        Some("previousId")
    );
    assert_eq!(
        refusal(r#"{"type":"group","userId":"u"}"#).0.as_deref(),
        Some("groupId")
    );
    assert_eq!(
        refusal(r#"{"batch":[{"type":"page","userId":"u","timestamp":"yesterday"}]}"#)
            .0
            .as_deref(),
        Some("batch[0].timestamp")
    );
    assert_eq!(
        refusal(r#"{"type":"identify","userId":"u","traits":"gold"}"#)
            .0
            .as_deref(),
        Some("traits")
    );
    assert_eq!(refusal(r#"{"batch":[]}"#).0.as_deref(), Some("batch"));
    assert_eq!(refusal(r#"{"batch":[1]}"#).0.as_deref(), Some("batch[0]"));
    let big = format!(
        r#"{{"batch":[{{"type":"page","userId":"u","name":"{}"}}]}}"#,
        "x".repeat(33 * 1024)
    );
    assert_eq!(refusal(&big).0.as_deref(), Some("batch[0]"));
    assert_eq!(refusal("[]").0, None);
}

#[test]
fn ids_that_do_not_parse_are_kept_and_named() {
    let body = format!(
        r#"{{"type":"identify","userId":"{}","anonymousId":"a-1","traits":{{"phone":"not a number"}}}}"#,
        "u".repeat(200)
    );
    let outcome = segment::parse(body.as_bytes(), &context(), &[]).expect("parses");
    let fields: Vec<&str> = outcome
        .warnings()
        .iter()
        .map(|w| w.field.as_str())
        .collect();
    assert_eq!(fields, ["userId", "traits.phone"]);
    let drafts = events(outcome);
    assert_eq!(identifiers(&drafts[0]), [("visitor", "a-1")]);
    validate(&drafts[0]);
    let only_bad = r#"{"type":"track","event":"x","userId":"a\u0007b"}"#;
    assert!(matches!(
        segment::parse(only_bad.as_bytes(), &context(), &[]),
        Ok(Outcome::Ignored {
            reason: "no_identifier",
            ..
        })
    ));
}

#[test]
fn numeric_ids_and_context_traits_identify_the_user() {
    let body = r#"{"type":"track","event":"Order Completed","userId":1001,
        "context":{"traits":{"email":"anna@example.nl","phone":"+31 6 1234 5678","name":"Anna"}}}"#;
    let drafts = events(segment::parse(body.as_bytes(), &context(), &[]).expect("parses"));
    assert_eq!(
        identifiers(&drafts[0]),
        [
            ("account", "1001"),
            ("email", "anna@example.nl"),
            ("phone", "+31612345678"),
        ]
    );
    assert_eq!(drafts[0].display_name.as_deref(), Some("Anna"));
    assert!(
        !drafts[0]
            .attributes
            .keys()
            .any(|key| key.starts_with("context.traits"))
    );
}

const SEGMENT_KEYS: &[&str] = &[
    "batch",
    "type",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "traits",
    "properties",
    "context",
    "event",
    "name",
    "category",
    "groupId",
    "previousId",
    "email",
    "phone",
    "firstName",
    "page",
    "url",
    "writeKey",
];

fn call_type() -> impl Strategy<Value = serde_json::Value> {
    prop::sample::select(vec![
        "identify", "track", "page", "screen", "group", "alias", "batch", "",
    ])
    .prop_map(|t| serde_json::Value::String(t.to_owned()))
}

proptest! {
    #[test]
    fn segment_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = segment::parse(&body, &context(), &contacts());
    }

    #[test]
    fn segment_never_panics_on_json_of_its_own_fields(value in json_with_keys(SEGMENT_KEYS)) {
        let body = serde_json::to_vec(&value).expect("serialises");
        if let Ok(outcome) = segment::parse(&body, &context(), &contacts()) {
            for draft in outcome.into_drafts() {
                prop_assert!(!draft.identifiers.is_empty());
            }
        }
    }

    /// Every call with text of all of Unicode in every field it reads maps
    /// to an event that holds to the contract, or is refused naming a field.
    #[test]
    fn any_unicode_in_a_call_makes_a_valid_event(
        kind in call_type(),
        texts in prop::collection::vec("\\PC{0,80}|\\p{Any}{0,40}", 12),
    ) {
        let text = |i: usize| serde_json::Value::String(texts[i].clone());
        let call = serde_json::json!({
            "type": kind, "userId": text(0), "anonymousId": text(1),
            "messageId": text(2), "event": text(3), "name": text(4),
            "groupId": text(5), "previousId": text(6),
            "traits": {"email": text(7), "phone": text(8), texts[9].clone(): text(10)},
            "properties": {texts[11].clone(): text(3), "title": text(4)},
            "context": {"traits": {"email": text(7)}, texts[10].clone(): text(9)},
        });
        let body = serde_json::to_vec(&call).expect("serialises");
        match segment::parse(&body, &context(), &contacts()) {
            Ok(outcome) => {
                for draft in outcome.into_drafts() {
                    let validation = panorama_core::ValidationContext {
                        received_at: support::received_at(),
                        default_region: "NL".parse().ok(),
                    };
                    if let Err(error) = draft.clone().validate(&validation) {
                        prop_assert!(false, "{error}\n{draft:#?}");
                    }
                }
            }
            Err(ChannelError::Malformed { field, .. }) => prop_assert!(field.is_some()),
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}
