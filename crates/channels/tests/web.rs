//! Web: forms, page views and chat sessions in Panorama's web schema, and
//! the origin check the server uses for browser calls.

mod support;

use panorama_channels::{ChannelError, Outcome, web};
use proptest::prelude::*;
use support::{attribute, context, events, fixture, identifiers, json_with_keys, validate};

fn parse(name: &str) -> Vec<panorama_core::EventDraft> {
    events(web::parse(&fixture(&format!("web/{name}")), &context()).expect("parses"))
}

#[test]
fn a_contact_form_links_the_visitor_to_the_customer() {
    let drafts = parse("contact_form.json");
    let [draft] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(draft.event_type.as_deref(), Some("form.submitted"));
    assert_eq!(draft.channel.as_deref(), Some("web"));
    assert_eq!(draft.source.as_deref(), Some("web.form"));
    assert_eq!(draft.direction.as_deref(), Some("inbound"));
    assert_eq!(draft.event_id.as_deref(), Some("contact-form-3b1d"));
    assert_eq!(draft.occurred_at.as_deref(), Some("2026-11-24T10:12:00Z"));
    // The weak visitor id and the strong identifiers typed into the form,
    // on one event: this is what links the anonymous visitor to the customer.
    assert_eq!(
        identifiers(draft),
        vec![
            ("visitor", "v-7f3c9a1e"),
            ("email", "anna@example.nl"),
            ("phone", "+31612345678"),
            ("account", "C-1001"),
        ]
    );
    assert_eq!(draft.display_name.as_deref(), Some("Anna de Vries"));
    assert_eq!(draft.subject.as_deref(), Some("Order 1001"));
    assert_eq!(draft.summary.as_deref(), Some("My parcel has not arrived"));
    assert_eq!(
        draft.contact_reason.as_deref(),
        Some("My parcel has not arrived")
    );
    assert_eq!(attribute(draft, "form.id"), Some("contact"));
    assert_eq!(attribute(draft, "form.order_number"), Some("1001"));
    assert_eq!(attribute(draft, "form.newsletter"), Some("false"));
    assert_eq!(
        attribute(draft, "form.password"),
        None,
        "password fields are never stored"
    );
    assert!(!draft.attributes.values().any(|v| v.contains("hunter2")));
    assert_eq!(attribute(draft, "utm_source"), Some("newsletter"));
    assert_eq!(
        attribute(draft, "web.url"),
        Some("https://shop.example/contact")
    );
    assert_eq!(
        attribute(draft, "web.referrer"),
        Some("https://shop.example/orders/1001")
    );
    assert_eq!(attribute(draft, "web.page_title"), Some("Contact us"));
    let event = validate(draft);
    // A resent form with the same key is the same event.
    assert_eq!(event.event_id, validate(draft).event_id);
}

#[test]
fn a_page_view_is_a_beacon_with_the_title_as_subject() {
    let drafts = parse("page_view.json");
    let [draft] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(draft.event_type.as_deref(), Some("page.viewed"));
    assert_eq!(draft.channel.as_deref(), Some("web"));
    assert_eq!(draft.source.as_deref(), Some("web.beacon"));
    assert_eq!(identifiers(draft), vec![("visitor", "v-7f3c9a1e")]);
    assert_eq!(draft.subject.as_deref(), Some("Delivery times"));
    assert_eq!(
        draft.occurred_at.as_deref(),
        Some("2026-11-24T10:05:31.250Z")
    );
    assert_eq!(
        attribute(draft, "web.url"),
        Some("https://shop.example/help/delivery-times")
    );
    assert_eq!(
        draft.event_id, None,
        "no key given: the gateway assigns one"
    );
    validate(draft);
}

#[test]
fn a_chat_session_starts_exchanges_messages_and_ends_with_its_transcript() {
    let drafts = parse("chat_session.json");
    let types: Vec<&str> = drafts
        .iter()
        .map(|d| d.event_type.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        vec!["chat.started", "chat.message", "chat.message", "chat.ended"]
    );
    for draft in &drafts {
        assert_eq!(draft.channel.as_deref(), Some("chat"));
        assert_eq!(draft.source.as_deref(), Some("web.chat"));
        assert_eq!(draft.conversation_id.as_deref(), Some("chat-5521"));
        validate(draft);
    }
    let [started, agent_line, visitor_line, ended] = drafts.as_slice() else {
        unreachable!()
    };

    assert_eq!(started.event_id.as_deref(), Some("chat-5521:started"));
    assert_eq!(
        identifiers(started),
        vec![("visitor", "v-7f3c9a1e"), ("email", "anna@example.nl")]
    );
    assert_eq!(
        started.display_name.as_deref(),
        Some("Anna de Vries"),
        "first and last name joined"
    );
    assert_eq!(
        started.contact_reason.as_deref(),
        Some("Hi, where is my order 1001?")
    );
    assert_eq!(started.queue.as_deref(), Some("orders"));
    assert_eq!(attribute(started, "form.id"), Some("pre-chat"));

    assert_eq!(agent_line.event_id.as_deref(), Some("chat-5521:m-2"));
    assert_eq!(agent_line.direction.as_deref(), Some("outbound"));
    assert_eq!(
        agent_line.summary.as_deref(),
        Some("It left our depot this morning.")
    );
    assert_eq!(
        agent_line.occurred_at.as_deref(),
        Some("2026-11-24T10:21:10Z")
    );
    assert_eq!(agent_line.agent_id.as_deref(), Some("agent-17"));
    assert_eq!(attribute(agent_line, "chat.from"), Some("agent"));
    assert_eq!(agent_line.contact_reason, None);
    assert_eq!(visitor_line.direction.as_deref(), Some("inbound"));
    let derived = visitor_line.event_id.as_deref().expect("derived id");
    assert!(
        derived.starts_with("chat-5521:2026-11-24T10:21:40Z:visitor:"),
        "{derived}"
    );

    assert_eq!(ended.event_id.as_deref(), Some("chat-5521:ended"));
    assert_eq!(ended.direction.as_deref(), Some("inbound"));
    assert_eq!(
        identifiers(ended),
        vec![
            ("visitor", "v-7f3c9a1e"),
            ("email", "anna@example.nl"),
            ("account", "C-1001")
        ]
    );
    assert_eq!(ended.duration_seconds, Some(100), "10:20:00 to 10:21:40");
    assert_eq!(ended.occurred_at.as_deref(), Some("2026-11-24T10:21:40Z"));
    assert_eq!(
        ended.summary.as_deref(),
        Some(
            "visitor: Hi, where is my order 1001? | bot: Connecting you to an agent. | agent: It left our depot this morning. | visitor: Great, thanks!"
        )
    );
    assert_eq!(
        ended.contact_reason.as_deref(),
        Some("Hi, where is my order 1001?")
    );

    // Resending the session gives the same ids.
    let again = parse("chat_session.json");
    assert_eq!(
        drafts.iter().map(|d| &d.event_id).collect::<Vec<_>>(),
        again.iter().map(|d| &d.event_id).collect::<Vec<_>>()
    );
}

#[test]
fn unknown_fields_and_bad_values_are_refused_naming_the_field() {
    let error = web::parse(&fixture("web/unknown_field.json"), &context()).expect_err("refused");
    let ChannelError::Malformed { field, .. } = error else {
        panic!("malformed")
    };
    assert_eq!(field.as_deref(), Some("form.feilds"));
    for (body, expected) in [
        (r#"{"visitor_id":"v1"}"#, "type"),
        (r#"{"type":"form.sent","visitor_id":"v1"}"#, "type"),
        (r#"{"type":"form.submitted","visitor_id":"v1"}"#, "form"),
        (r#"{"type":"chat.ended","visitor_id":"v1"}"#, "chat"),
        (
            r#"{"type":"chat.ended","visitor_id":"v1","chat":{}}"#,
            "chat.session_id",
        ),
        (
            r#"{"type":"chat.message","visitor_id":"v1","chat":{"session_id":"s"}}"#,
            "chat.transcript",
        ),
        (
            r#"{"type":"chat.message","visitor_id":"v1","chat":{"session_id":"s","transcript":[{"from":"visitor","text":"a"},{"from":"cat","text":"b"}]}}"#,
            "chat.transcript[1].from",
        ),
        (
            r#"{"type":"chat.message","visitor_id":"v1","chat":{"session_id":"s","transcript":[{"from":"visitor","text":"a","at":"noon"}]}}"#,
            "chat.transcript[0].at",
        ),
        (
            r#"{"type":"page.viewed","visitor_id":"v1","occurred_at":"today"}"#,
            "occurred_at",
        ),
        (r#"{"type":"page.viewed","visitor_id":7}"#, "visitor_id"),
        (
            r#"{"type":"page.viewed","visitor_id":"v1","event_id":""}"#,
            "event_id",
        ),
        (
            r#"{"type":"form.submitted","form":{"fields":{"email":["a@b.nl"]}}}"#,
            "form.fields.email",
        ),
        (
            r#"{"type":"form.submitted","form":{"fields":[]}}"#,
            "form.fields",
        ),
        (
            r#"{"type":"page.viewed","visitor_id":"v1","customer":{"mail":"a@b.nl"}}"#,
            "customer.mail",
        ),
        (
            r#"{"type":"page.viewed","visitor_id":"v1","attributes":{"a":[1]}}"#,
            "attributes.a",
        ),
        (
            r#"{"events":[{"type":"page.viewed","visitor_id":"v1"},{"type":"page.viewed","url":5}]}"#,
            "events[1].url",
        ),
    ] {
        let Err(ChannelError::Malformed { field, .. }) = web::parse(body.as_bytes(), &context())
        else {
            panic!("{body} should be malformed");
        };
        assert_eq!(field.as_deref(), Some(expected), "{body}");
    }
}

#[test]
fn events_without_any_identifier_are_ignored_and_typos_do_not_fail_a_form() {
    assert_eq!(
        web::parse(
            br#"{"type":"page.viewed","url":"https://shop.example/"}"#,
            &context()
        ),
        Ok(Outcome::ignored("no_identifier"))
    );
    // A visitor who mistyped their email still gets their form recorded.
    let drafts = events(
        web::parse(
            br#"{"type":"form.submitted","visitor_id":"v1","form":{"fields":{"email":"anna@","phone":"12","message":"hi"}}}"#,
            &context(),
        )
        .expect("parses"),
    );
    assert_eq!(identifiers(&drafts[0]), vec![("visitor", "v1")]);
    validate(&drafts[0]);
}

#[test]
fn browser_origins_are_checked_exactly() {
    let allowed = vec![
        "https://shop.example".to_owned(),
        "http://localhost:3000".to_owned(),
    ];
    assert!(web::origin_allowed(Some("https://shop.example"), &allowed));
    assert!(web::origin_allowed(Some("http://localhost:3000"), &allowed));
    assert!(!web::origin_allowed(
        Some("https://shop.example.attacker.net"),
        &allowed
    ));
    assert!(!web::origin_allowed(Some("http://shop.example"), &allowed));
    assert!(!web::origin_allowed(None, &allowed));
    assert!(web::origin_allowed(
        Some("https://elsewhere.example"),
        &["*".to_owned()]
    ));
}

const WEB_KEYS: &[&str] = &[
    "events",
    "type",
    "visitor_id",
    "event_id",
    "occurred_at",
    "url",
    "title",
    "referrer",
    "customer",
    "form",
    "chat",
    "attributes",
    "id",
    "fields",
    "email",
    "phone",
    "account",
    "name",
    "message",
    "first_name",
    "session_id",
    "agent_id",
    "queue",
    "duration_seconds",
    "transcript",
    "from",
    "text",
    "at",
];

proptest! {
    #[test]
    fn web_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), origin in prop::option::of("\\PC{0,40}")) {
        let _ = web::parse(&body, &context());
        let _ = web::origin_allowed(origin.as_deref(), &["https://shop.example:8443".to_owned(), origin.clone().unwrap_or_default()]);
    }

    #[test]
    fn web_never_panics_on_json_of_its_own_fields(value in json_with_keys(WEB_KEYS)) {
        let body = serde_json::to_vec(&value).expect("serialises");
        if let Ok(outcome) = web::parse(&body, &context()) {
            let drafts = outcome.into_drafts();
            prop_assert!(drafts.iter().all(|d| !d.identifiers.is_empty()));
        }
    }
}

#[test]
fn a_national_number_without_a_region_is_kept_and_named() {
    let body = br#"{"events":[{"type":"form.submitted","visitor_id":"v-1",
        "form":{"id":"contact","fields":{"phone":"0612345678","message":"Call me back"}}}]}"#;
    let no_region = panorama_channels::Context {
        default_region: None,
        ..context()
    };
    let outcome = web::parse(body, &no_region).expect("parses");
    let [warning] = outcome.warnings() else {
        panic!("one warning: {outcome:?}")
    };
    assert_eq!(warning.field, "events[0].form.fields.phone");
    assert_eq!(warning.kind, panorama_core::IdentifierKind::Phone);
    assert!(
        warning.message.contains("needs a country"),
        "{}",
        warning.message
    );
    assert!(
        !warning.message.contains("0612345678"),
        "a warning never repeats the value"
    );
    let drafts = events(outcome);
    let [draft] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(identifiers(draft), vec![("visitor", "v-1")]);
    assert_eq!(attribute(draft, "unparsed.phone"), Some("0612345678"));
    validate(draft);

    // With the region, the same number is the customer's phone.
    let outcome = web::parse(body, &context()).expect("parses");
    assert!(outcome.warnings().is_empty());
    let drafts = events(outcome);
    assert_eq!(
        identifiers(&drafts[0]),
        vec![("visitor", "v-1"), ("phone", "+31612345678")]
    );
    assert_eq!(attribute(&drafts[0], "unparsed.phone"), None);
}

#[test]
fn an_event_left_without_identifiers_is_ignored_with_its_warnings() {
    let body = br#"{"type":"form.submitted","customer":{"email":"anna at example"},
        "form":{"fields":{"message":"hello"}}}"#;
    let outcome = web::parse(body, &context()).expect("parses");
    let Outcome::Ignored { reason, warnings } = outcome else {
        panic!("ignored: {outcome:?}")
    };
    assert_eq!(reason, "no_identifier");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].field, "customer.email");
}

#[test]
fn a_caller_attribute_named_like_an_unparsed_value_is_not_overwritten() {
    let body = br#"{"type":"form.submitted","visitor_id":"v-1",
        "attributes":{"unparsed.phone":"spoofed"},
        "form":{"fields":{"phone":"12"}}}"#;
    let drafts = events(web::parse(body, &context()).expect("parses"));
    // The caller's own value stays; the value that did not parse comes next
    // to it rather than being lost.
    assert_eq!(attribute(&drafts[0], "unparsed.phone"), Some("spoofed"));
    assert_eq!(attribute(&drafts[0], "unparsed.phone.2"), Some("12"));
}
