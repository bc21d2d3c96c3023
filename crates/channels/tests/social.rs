//! Meta: the verification handshake, `X-Hub-Signature-256`, and WhatsApp
//! Cloud API, Messenger and Instagram notifications from fixtures shaped like
//! the examples in Meta's webhook references.

mod support;

use panorama_channels::{ChannelError, Outcome, meta};
use proptest::prelude::*;
use support::{attribute, context, events, fixture, identifiers, json_with_keys, validate};

fn parse(name: &str) -> Outcome {
    meta::parse(&fixture(&format!("meta/{name}")), &context()).expect("parses")
}

// ------------------------------------------------------------- signatures

const APP_SECRET: &str = "fixture-app-secret";
/// hex HMAC-SHA256 of `meta/whatsapp_text_message.json` under
/// `fixture-app-secret`, computed with Python's `hmac`.
const SIGNATURE: &str = "sha256=f2e11a50a67f7c56c8f8cd9756f3d805814f82cc6436209bfdbc3c4eca91e45f";

#[test]
fn meta_signature_is_checked_over_the_raw_body() {
    let body = fixture("meta/whatsapp_text_message.json");
    assert_eq!(meta::verify(&body, Some(SIGNATURE), APP_SECRET), Ok(()));
    let unauthorized = |result: panorama_channels::Result<()>| {
        matches!(result, Err(ChannelError::Unauthorized(_)))
    };

    // Tampered: one character of the message text, or the JSON re-serialised
    // (same content, other bytes) — the raw body is what is signed.
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("another color", "another colour");
    assert!(unauthorized(meta::verify(
        tampered.as_bytes(),
        Some(SIGNATURE),
        APP_SECRET
    )));
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).expect("json"))
            .expect("json");
    assert!(unauthorized(meta::verify(
        &reserialised,
        Some(SIGNATURE),
        APP_SECRET
    )));

    assert!(unauthorized(meta::verify(
        &body,
        Some(SIGNATURE),
        "another-secret"
    )));
    assert!(unauthorized(meta::verify(&body, None, APP_SECRET)));
    assert!(unauthorized(meta::verify(&body, Some(""), APP_SECRET)));
    assert!(unauthorized(meta::verify(&body, Some(SIGNATURE), "")));
    // The hex without its `sha256=` prefix, or the legacy SHA-1 header form.
    assert!(unauthorized(meta::verify(
        &body,
        Some(&SIGNATURE["sha256=".len()..]),
        APP_SECRET
    )));
    assert!(unauthorized(meta::verify(
        &body,
        Some("sha1=0f2e"),
        APP_SECRET
    )));
}

#[test]
fn meta_handshake_echoes_the_challenge() {
    assert_eq!(
        meta::handshake(
            Some("subscribe"),
            Some("verify-me"),
            Some("1158201444"),
            "verify-me"
        ),
        Ok("1158201444".to_owned())
    );
    assert!(matches!(
        meta::handshake(
            Some("subscribe"),
            Some("guess"),
            Some("1158201444"),
            "verify-me"
        ),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        meta::handshake(None, None, Some("1158201444"), "verify-me"),
        Err(ChannelError::Unauthorized(_))
    ));
}

// --------------------------------------------------------------- WhatsApp

#[test]
fn whatsapp_text_message_from_the_reference_example() {
    let drafts = events(parse("whatsapp_text_message.json"));
    let [draft] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(
        draft.event_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")
    );
    assert_eq!(draft.event_type.as_deref(), Some("message.received"));
    assert_eq!(draft.channel.as_deref(), Some("social"));
    assert_eq!(draft.source.as_deref(), Some("meta.whatsapp"));
    assert_eq!(draft.direction.as_deref(), Some("inbound"));
    assert_eq!(
        identifiers(draft),
        vec![("whatsapp", "16505551234"), ("phone", "+16505551234")]
    );
    assert_eq!(draft.display_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(
        draft.summary.as_deref(),
        Some("Does it come in another color?")
    );
    // 1749416383 seconds after the epoch.
    assert_eq!(draft.occurred_at.as_deref(), Some("2025-06-08T20:59:43Z"));
    assert_eq!(attribute(draft, "whatsapp.message_type"), Some("text"));
    assert_eq!(
        attribute(draft, "whatsapp.business_number"),
        Some("15550783881")
    );
    assert_eq!(
        attribute(draft, "whatsapp.phone_number_id"),
        Some("106540352242922")
    );
    let event = validate(draft);
    assert_eq!(event.partition_key(), "whatsapp:16505551234");
}

#[test]
fn whatsapp_delivered_and_failed_statuses() {
    let drafts = events(parse("whatsapp_status_delivered.json"));
    let [delivered] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(
        delivered.event_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA:delivered")
    );
    assert_eq!(delivered.event_type.as_deref(), Some("message.delivered"));
    assert_eq!(delivered.direction.as_deref(), Some("outbound"));
    assert_eq!(
        identifiers(delivered),
        vec![("whatsapp", "16505551234"), ("phone", "+16505551234")]
    );
    assert_eq!(
        delivered.occurred_at.as_deref(),
        Some("2025-06-18T16:22:53Z")
    );
    assert_eq!(delivered.outcome, None);
    assert_eq!(
        attribute(delivered, "whatsapp.conversation_id"),
        Some("4cc25e8bcd0d8d2ef4a3dd5d5e8d1c22")
    );
    assert_eq!(
        attribute(delivered, "whatsapp.pricing_category"),
        Some("utility")
    );
    assert_eq!(
        attribute(delivered, "whatsapp.message_id"),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA")
    );
    validate(delivered);

    let drafts = events(parse("whatsapp_status_failed.json"));
    let [failed] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(failed.event_type.as_deref(), Some("message.failed"));
    assert_eq!(
        failed.event_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA:failed")
    );
    let outcome = failed.outcome.as_deref().expect("outcome");
    assert!(
        outcome.starts_with("131050 Unable to deliver the message."),
        "{outcome}"
    );
    assert!(outcome.chars().count() <= 200);
    assert_eq!(attribute(failed, "whatsapp.error_code"), Some("131050"));
    assert!(
        attribute(failed, "whatsapp.error_details")
            .is_some_and(|d| d.contains("stop receiving marketing"))
    );
    validate(failed);
}

#[test]
fn whatsapp_post_with_two_entries_yields_every_message_and_status() {
    let drafts = events(parse("whatsapp_batch.json"));
    let summary: Vec<(&str, &str, &str)> = drafts
        .iter()
        .map(|d| {
            (
                d.event_type.as_deref().unwrap_or_default(),
                d.identifiers[0].value.as_str(),
                d.summary.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    // 4 messages and 3 mapped statuses; the `played` status is skipped.
    assert_eq!(
        summary,
        vec![
            (
                "message.received",
                "16505551234",
                "[image] The box arrived dented"
            ),
            ("message.received", "31612345678", "[button] Track my order"),
            ("message.sent", "16505551234", ""),
            ("message.delivered", "16505551234", ""),
            (
                "message.received",
                "31612345678",
                "[location] Home, Prinsengracht 263, Amsterdam"
            ),
            (
                "message.received",
                "31612345678",
                "Can you deliver it tomorrow instead?"
            ),
            ("message.read", "31612345678", ""),
        ]
    );
    // Names come from the contact whose wa_id sent the message.
    assert_eq!(drafts[0].display_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(drafts[1].display_name.as_deref(), Some("Anna de Vries"));
    assert_eq!(
        attribute(&drafts[1], "whatsapp.reply_to"),
        Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCQjEwMDAwMDAwMDAwMDAwMDAA")
    );
    assert_eq!(
        attribute(&drafts[4], "whatsapp.business_number"),
        Some("31858881000")
    );
    // sent and delivered of one message are two events.
    assert_ne!(drafts[2].event_id, drafts[3].event_id);
    let ids: std::collections::BTreeSet<_> = drafts.iter().map(|d| validate(d).event_id).collect();
    assert_eq!(ids.len(), drafts.len(), "every event has its own id");
}

#[test]
fn whatsapp_notifications_with_nothing_mapped_are_ignored() {
    assert_eq!(
        parse("whatsapp_status_played.json"),
        Outcome::ignored("whatsapp.unmapped")
    );
    assert_eq!(
        parse("whatsapp_template_status_update.json"),
        Outcome::ignored("whatsapp.unmapped")
    );
    assert_eq!(
        meta::parse(br#"{"object":"user","entry":[]}"#, &context()),
        Ok(Outcome::ignored("meta.unmapped_object"))
    );
    assert_eq!(
        meta::parse(
            br#"{"object":"whatsapp_business_account","entry":[]}"#,
            &context()
        ),
        Ok(Outcome::ignored("meta.empty"))
    );
    for body in [&b"{"[..], b"[]", br#"{"entry":[]}"#, br#"{"object":7}"#] {
        assert!(
            matches!(
                meta::parse(body, &context()),
                Err(ChannelError::Malformed { .. })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// ------------------------------------------------- Messenger and Instagram

#[test]
fn messenger_text_message_from_the_reference_example() {
    let drafts = events(parse("messenger_text_message.json"));
    let [draft] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(
        draft.event_id.as_deref(),
        Some("mid.1457764197618:41d102a3e1ae206a38")
    );
    assert_eq!(draft.event_type.as_deref(), Some("message.received"));
    assert_eq!(draft.source.as_deref(), Some("meta.messenger"));
    assert_eq!(draft.channel.as_deref(), Some("social"));
    assert_eq!(draft.direction.as_deref(), Some("inbound"));
    assert_eq!(identifiers(draft), vec![("messenger", "6254823497921")]);
    assert_eq!(draft.summary.as_deref(), Some("hello, world!"));
    // Messenger timestamps are milliseconds.
    assert_eq!(
        draft.occurred_at.as_deref(),
        Some("2016-03-23T00:25:52.478Z")
    );
    assert_eq!(
        attribute(draft, "meta.quick_reply_payload"),
        Some("ORDER_STATUS")
    );
    validate(draft);
}

#[test]
fn messenger_echo_and_receipts_are_about_the_customer() {
    let drafts = events(parse("messenger_receipts_and_echo.json"));
    // echo, delivery, read; the reaction is not mapped.
    let [echo, delivered, read] = drafts.as_slice() else {
        panic!("three events, got {drafts:#?}")
    };
    for draft in &drafts {
        assert_eq!(
            identifiers(draft),
            vec![("messenger", "6254823497921")],
            "the user, never the page"
        );
        assert_eq!(draft.direction.as_deref(), Some("outbound"));
        validate(draft);
    }
    assert_eq!(echo.event_type.as_deref(), Some("message.sent"));
    assert_eq!(
        echo.event_id.as_deref(),
        Some("mid.1458668856218:ed81099e15d3f4f233")
    );
    assert_eq!(
        echo.summary.as_deref(),
        Some("Your parcel is out for delivery.")
    );
    assert_eq!(delivered.event_type.as_deref(), Some("message.delivered"));
    assert_eq!(
        delivered.event_id.as_deref(),
        Some("mid.1458668856218:ed81099e15d3f4f233:delivered")
    );
    // No timestamp on a delivery: the watermark dates it.
    assert_eq!(
        delivered.occurred_at.as_deref(),
        Some("2016-03-22T17:47:36.253Z")
    );
    assert_eq!(read.event_type.as_deref(), Some("message.read"));
    assert_eq!(
        read.event_id.as_deref(),
        Some("read:6254823497921:1458668856253")
    );
    assert_eq!(
        read.occurred_at.as_deref(),
        Some("2016-03-22T17:47:36.463Z")
    );
}

#[test]
fn instagram_messages_and_seen_receipts() {
    let drafts = events(parse("instagram_message.json"));
    let [text, image, seen] = drafts.as_slice() else {
        panic!("three events")
    };
    for draft in &drafts {
        assert_eq!(draft.source.as_deref(), Some("meta.instagram"));
        assert_eq!(identifiers(draft), vec![("instagram", "1914560085311932")]);
        validate(draft);
    }
    assert_eq!(text.event_type.as_deref(), Some("message.received"));
    assert_eq!(
        text.summary.as_deref(),
        Some("Is the blue one back in stock?")
    );
    assert_eq!(
        text.occurred_at.as_deref(),
        Some("2019-09-23T18:14:45.349Z")
    );
    assert!(
        text.event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3"))
    );
    assert_eq!(image.summary.as_deref(), Some("[image]"));
    assert_ne!(text.event_id, image.event_id);
    assert_eq!(seen.event_type.as_deref(), Some("message.read"));
    assert_eq!(seen.direction.as_deref(), Some("outbound"));
    assert!(
        seen.event_id
            .as_deref()
            .is_some_and(|id| id.ends_with("ZDZE:read"))
    );
}

// -------------------------------------------------------------- no panics

const META_KEYS: &[&str] = &[
    "object",
    "entry",
    "id",
    "time",
    "changes",
    "field",
    "value",
    "messaging_product",
    "metadata",
    "display_phone_number",
    "phone_number_id",
    "contacts",
    "profile",
    "name",
    "wa_id",
    "messages",
    "from",
    "timestamp",
    "type",
    "text",
    "body",
    "image",
    "caption",
    "interactive",
    "button_reply",
    "title",
    "location",
    "address",
    "statuses",
    "status",
    "recipient_id",
    "errors",
    "code",
    "error_data",
    "details",
    "messaging",
    "standby",
    "sender",
    "recipient",
    "message",
    "mid",
    "is_echo",
    "attachments",
    "delivery",
    "mids",
    "watermark",
    "read",
    "postback",
    "payload",
];

proptest! {
    #[test]
    fn meta_never_panics_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..512),
        header in prop::option::of("\\PC{0,80}"),
        mode in prop::option::of("\\PC{0,12}"),
        challenge in prop::option::of("\\PC{0,300}"),
    ) {
        let _ = meta::parse(&body, &context());
        let _ = meta::verify(&body, header.as_deref(), APP_SECRET);
        let _ = meta::handshake(mode.as_deref(), header.as_deref(), challenge.as_deref(), "verify-me");
    }

    #[test]
    fn meta_never_panics_on_json_of_its_own_fields(value in json_with_keys(META_KEYS), object in prop::sample::select(vec!["whatsapp_business_account", "page", "instagram"])) {
        let mut body = serde_json::json!({"object": object, "entry": [value.clone()]});
        let _ = meta::parse(body.to_string().as_bytes(), &context());
        body["entry"] = serde_json::json!([{"changes": [{"field": "messages", "value": value.clone()}], "messaging": [value]}]);
        if let Ok(outcome) = meta::parse(body.to_string().as_bytes(), &context()) {
            let drafts = outcome.into_drafts();
            prop_assert!(drafts.iter().all(|d| !d.identifiers.is_empty()));
        }
    }
}

#[test]
fn every_event_knows_its_item_in_the_notification() {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messages": [
                {"from": "31612345678", "id": "wamid.1", "timestamp": "1795424400", "type": "text", "text": {"body": "one"}},
                {"from": "31612345679", "id": "wamid.2", "timestamp": "1795424401", "type": "text", "text": {"body": "two"}}
            ],
            "statuses": [{"id": "wamid.3", "status": "read", "timestamp": "1795424402", "recipient_id": "31612345678"}]
        }}]}]
    });
    let outcome = meta::parse(body.to_string().as_bytes(), &context()).expect("parses");
    let Outcome::Events { events, warnings } = outcome else {
        panic!("events: {outcome:?}")
    };
    assert!(warnings.is_empty());
    let paths: Vec<&str> = events.iter().map(|found| found.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "entry[0].changes[0].value.messages[0]",
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[0].value.statuses[0]",
        ]
    );

    let messenger = serde_json::json!({
        "object": "page",
        "entry": [{"id": "p", "time": 1, "messaging": [
            {"sender": {"id": "psid-1"}, "recipient": {"id": "page"}, "timestamp": 1_795_424_400_000_i64,
             "message": {"mid": "m.1", "text": "hi"}}
        ], "standby": [
            {"sender": {"id": "psid-2"}, "recipient": {"id": "page"}, "timestamp": 1_795_424_400_000_i64,
             "message": {"mid": "m.2", "text": "hi"}}
        ]}]
    });
    let outcome = meta::parse(messenger.to_string().as_bytes(), &context()).expect("parses");
    let Outcome::Events { events, .. } = outcome else {
        panic!("events: {outcome:?}")
    };
    let paths: Vec<&str> = events.iter().map(|found| found.path.as_str()).collect();
    assert_eq!(paths, vec!["entry[0].messaging[0]", "entry[0].standby[0]"]);
}

#[test]
fn a_wa_id_that_is_no_phone_number_is_kept_and_named() {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messages": [{"from": "999", "id": "wamid.9", "timestamp": "1795424400", "type": "text", "text": {"body": "hi"}}]
        }}]}]
    });
    let outcome = meta::parse(body.to_string().as_bytes(), &context()).expect("parses");
    assert_eq!(outcome.warnings().len(), 1, "{outcome:?}");
    assert_eq!(
        outcome.warnings()[0].field,
        "entry[0].changes[0].value.messages[0].from"
    );
    let drafts = events(outcome);
    assert_eq!(identifiers(&drafts[0]), vec![("whatsapp", "999")]);
    assert_eq!(attribute(&drafts[0], "unparsed.phone"), Some("+999"));
}
