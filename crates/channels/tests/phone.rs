//! Phone adapters: Twilio Voice status callbacks (with Twilio's own signature
//! examples) and the CTI schema, from fixtures shaped like the real payloads.

mod support;

use panorama_channels::form::Form;
use panorama_channels::{ChannelError, Outcome, Warning, cti, twilio};
use panorama_core::IdentifierKind;
use proptest::prelude::*;
use support::{attribute, context, events, fixture, identifiers, json_with_keys, validate};

// ------------------------------------------------------- Twilio signatures

/// The worked example of Twilio's security documentation
/// (https://www.twilio.com/docs/usage/webhooks/webhooks-security, formerly
/// /docs/usage/security#validating-requests): auth token 12345, this URL and
/// these POST parameters are signed `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
const DOCS_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const DOCS_TOKEN: &str = "12345";
const DOCS_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
/// Posted out of order on purpose: the signature sorts them.
const DOCS_BODY: &[u8] =
    b"To=%2B18005551212&Digits=1234&From=%2B12349013030&CallSid=CA1234567890ABCDE&Caller=%2B12349013030";

#[test]
fn twilio_signature_matches_the_worked_example_in_twilios_documentation() {
    let form = Form::parse(DOCS_BODY).expect("form");
    assert_eq!(
        twilio::verify(DOCS_URL, &form, Some(DOCS_SIGNATURE), DOCS_TOKEN),
        Ok(())
    );
}

#[test]
fn twilio_signature_matches_the_vectors_of_twilios_helper_libraries() {
    // twilio-php / twilio-python RequestValidator tests (and the older
    // edition of the security page): the same request from +14158675309.
    let form = Form::parse(
        b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212",
    )
    .expect("form");
    assert_eq!(
        twilio::verify(
            DOCS_URL,
            &form,
            Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            DOCS_TOKEN
        ),
        Ok(())
    );
    // A repeated parameter: values sorted, an identical pair signed once.
    let repeated = Form::parse(b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234")
        .expect("form");
    assert_eq!(
        twilio::verify(
            DOCS_URL,
            &repeated,
            Some("IK+Dwps556ElfBT0I3Rgjkr1wJU="),
            DOCS_TOKEN
        ),
        Ok(())
    );
}

#[test]
fn twilio_signature_refuses_tampering_a_wrong_key_and_a_missing_header() {
    let unauthorized = |result: panorama_channels::Result<()>| {
        matches!(result, Err(ChannelError::Unauthorized(_)))
    };
    let form = Form::parse(DOCS_BODY).expect("form");
    let tampered = Form::parse(
        b"To=%2B18005551212&Digits=9999&From=%2B12349013030&CallSid=CA1234567890ABCDE&Caller=%2B12349013030",
    )
    .expect("form");
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &tampered,
        Some(DOCS_SIGNATURE),
        DOCS_TOKEN
    )));
    let added = Form::parse(&[DOCS_BODY, b"&Extra=1"].concat()).expect("form");
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &added,
        Some(DOCS_SIGNATURE),
        DOCS_TOKEN
    )));
    assert!(unauthorized(twilio::verify(
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &form,
        Some(DOCS_SIGNATURE),
        DOCS_TOKEN
    )));
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &form,
        Some(DOCS_SIGNATURE),
        "54321"
    )));
    assert!(unauthorized(twilio::verify(
        DOCS_URL, &form, None, DOCS_TOKEN
    )));
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &form,
        Some("  "),
        DOCS_TOKEN
    )));
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &form,
        Some(DOCS_SIGNATURE),
        ""
    )));
    assert!(unauthorized(twilio::verify(
        DOCS_URL,
        &form,
        Some("not base64!"),
        DOCS_TOKEN
    )));
}

/// The fixture signed by an independent implementation (Python's `hmac`)
/// for this URL and token.
const FIXTURE_URL: &str = "https://panorama.example.com/v1/channels/twilio/voice";
const FIXTURE_TOKEN: &str = "fixture-auth-token";
const FIXTURE_SIGNATURE: &str = "CRWgWC2JBUHiMlEcxLzi/0lj/vc=";
/// The same request signed over the URL with an explicit `:443`.
const FIXTURE_SIGNATURE_WITH_PORT: &str = "HurTgmhBKJs+GaGj20rA87pmzAw=";

#[test]
fn twilio_signature_over_a_real_status_callback() {
    let body = fixture("twilio/inbound_completed.form");
    let form = Form::parse(&body).expect("form");
    assert_eq!(
        twilio::verify(FIXTURE_URL, &form, Some(FIXTURE_SIGNATURE), FIXTURE_TOKEN),
        Ok(())
    );
    // Twilio may sign the URL with the default port spelled out.
    assert_eq!(
        twilio::verify(
            FIXTURE_URL,
            &form,
            Some(FIXTURE_SIGNATURE_WITH_PORT),
            FIXTURE_TOKEN
        ),
        Ok(())
    );
    let with_port = "https://panorama.example.com:443/v1/channels/twilio/voice";
    assert_eq!(
        twilio::verify(with_port, &form, Some(FIXTURE_SIGNATURE), FIXTURE_TOKEN),
        Ok(())
    );

    let tampered_body = String::from_utf8(body)
        .expect("utf-8")
        .replace("CallDuration=184", "CallDuration=1840");
    let tampered = Form::parse(tampered_body.as_bytes()).expect("form");
    assert!(matches!(
        twilio::verify(
            FIXTURE_URL,
            &tampered,
            Some(FIXTURE_SIGNATURE),
            FIXTURE_TOKEN
        ),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        twilio::verify(FIXTURE_URL, &form, Some(FIXTURE_SIGNATURE), "another-token"),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        twilio::verify(FIXTURE_URL, &form, None, FIXTURE_TOKEN),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        twilio::verify(
            "https://panorama.example.com/v1/channels/twilio/other",
            &form,
            Some(FIXTURE_SIGNATURE),
            FIXTURE_TOKEN
        ),
        Err(ChannelError::Unauthorized(_))
    ));
}

// ------------------------------------------------------ Twilio callbacks

const CALL_SID: &str = "CA5f2b7e0b1c9d4e6fa3b8c7d6e5f40123";

fn twilio_fixture(name: &str) -> Outcome {
    let form = Form::parse(&fixture(&format!("twilio/{name}"))).expect("form");
    twilio::parse_voice_status(&form, &context()).expect("parses")
}

fn one_twilio_event(name: &str) -> panorama_core::EventDraft {
    let mut drafts = events(twilio_fixture(name));
    assert_eq!(drafts.len(), 1, "{name}");
    drafts.remove(0)
}

#[test]
fn twilio_incoming_call_is_a_call_started_by_the_caller() {
    let draft = one_twilio_event("inbound_ringing.form");
    assert_eq!(
        draft.event_id.as_deref(),
        Some(format!("{CALL_SID}:ringing").as_str())
    );
    assert_eq!(draft.event_type.as_deref(), Some("call.started"));
    assert_eq!(draft.channel.as_deref(), Some("phone"));
    assert_eq!(draft.source.as_deref(), Some("twilio"));
    assert_eq!(draft.direction.as_deref(), Some("inbound"));
    assert_eq!(identifiers(&draft), vec![("phone", "+14158675310")]);
    assert_eq!(draft.conversation_id.as_deref(), Some(CALL_SID));
    assert_eq!(draft.display_name.as_deref(), Some("Anna de Vries"));
    assert_eq!(
        draft.occurred_at, None,
        "the incoming-call request has no Timestamp"
    );
    assert_eq!(draft.outcome, None);
    assert_eq!(draft.duration_seconds, None);
    assert_eq!(
        attribute(&draft, "twilio.account_sid"),
        Some("AC3f9c1e27b84d4a6e9d2c5b7a8e1f0d42")
    );
    assert_eq!(attribute(&draft, "twilio.line"), Some("+14155552671"));
    assert_eq!(attribute(&draft, "twilio.direction"), Some("inbound"));
    validate(&draft);
}

#[test]
fn twilio_answered_and_completed_callbacks_carry_time_sequence_and_talk_time() {
    let answered = one_twilio_event("inbound_answered.form");
    assert_eq!(answered.event_type.as_deref(), Some("call.answered"));
    assert_eq!(
        answered.event_id.as_deref(),
        Some(format!("{CALL_SID}:in-progress:2").as_str())
    );
    assert_eq!(
        answered.occurred_at.as_deref(),
        Some("2026-11-24T10:00:12Z")
    );
    assert_eq!(answered.outcome, None);

    let completed = one_twilio_event("inbound_completed.form");
    assert_eq!(completed.event_type.as_deref(), Some("call.ended"));
    assert_eq!(
        completed.event_id.as_deref(),
        Some(format!("{CALL_SID}:completed:3").as_str())
    );
    assert_eq!(
        completed.occurred_at.as_deref(),
        Some("2026-11-24T10:03:16Z")
    );
    assert_eq!(completed.duration_seconds, Some(184));
    assert_eq!(completed.outcome.as_deref(), Some("completed"));
    assert_eq!(identifiers(&completed), vec![("phone", "+14158675310")]);
    assert_eq!(completed.conversation_id, answered.conversation_id);

    // A retried callback is the same event; another status is not.
    let first = validate(&completed);
    let retried = validate(&one_twilio_event("inbound_completed.form"));
    assert_eq!(first.event_id, retried.event_id);
    assert_ne!(first.event_id, validate(&answered).event_id);
}

#[test]
fn twilio_outbound_call_identifies_the_callee_and_misses_on_no_answer() {
    let draft = one_twilio_event("outbound_no_answer.form");
    assert_eq!(draft.event_type.as_deref(), Some("call.missed"));
    assert_eq!(draft.direction.as_deref(), Some("outbound"));
    assert_eq!(identifiers(&draft), vec![("phone", "+14158675310")]);
    assert_eq!(attribute(&draft, "twilio.line"), Some("+14155552671"));
    assert_eq!(attribute(&draft, "twilio.direction"), Some("outbound-api"));
    assert_eq!(draft.outcome.as_deref(), Some("no-answer"));
    assert_eq!(draft.duration_seconds, Some(0));
    assert_eq!(draft.display_name, None);
    assert_eq!(draft.occurred_at.as_deref(), Some("2026-11-24T15:30:41Z"));
    validate(&draft);
}

#[test]
fn twilio_callbacks_without_a_customer_or_status_are_ignored_or_refused() {
    // An anonymous caller: ignored, and the warning says which field did
    // not parse (never its value).
    let not_a_number = |field: &str| Warning {
        field: field.into(),
        kind: IdentifierKind::Phone,
        message: "not a valid phone number".into(),
    };
    assert_eq!(
        twilio_fixture("anonymous_busy.form"),
        Outcome::Ignored {
            reason: "no_identifier",
            warnings: vec![not_a_number("From")],
        }
    );
    assert_eq!(
        twilio_fixture("voicemail_unmapped_status.form"),
        Outcome::ignored("twilio.unmapped_status")
    );
    let unknown_direction = Form::parse(
        b"CallSid=CA1&CallStatus=ringing&Direction=trunking-terminating&From=%2B14158675310",
    )
    .expect("form");
    assert_eq!(
        twilio::parse_voice_status(&unknown_direction, &context()),
        Ok(Outcome::ignored("twilio.unmapped_direction"))
    );
    let softphone = Form::parse(b"CallSid=CA1&CallStatus=completed&Direction=outbound-dial&From=%2B14155552671&To=client%3Aagent17")
        .expect("form");
    assert_eq!(
        twilio::parse_voice_status(&softphone, &context()),
        Ok(Outcome::Ignored {
            reason: "no_identifier",
            warnings: vec![not_a_number("To")],
        })
    );
    for (body, field) in [
        (&b"CallStatus=ringing&From=%2B14158675310"[..], "CallSid"),
        (b"CallSid=CA1&From=%2B1", "CallStatus"),
    ] {
        let form = Form::parse(body).expect("form");
        let Err(ChannelError::Malformed {
            field: Some(named), ..
        }) = twilio::parse_voice_status(&form, &context())
        else {
            panic!("{field} is required");
        };
        assert_eq!(named, field);
    }
}

// ------------------------------------------------------------------ CTI

#[test]
fn cti_call_lifecycle_becomes_three_call_events() {
    let drafts = events(cti::parse(&fixture("cti/inbound_call.json"), &context()).expect("parses"));
    assert_eq!(drafts.len(), 3);
    let [ringing, answered, ended] = [&drafts[0], &drafts[1], &drafts[2]];
    for draft in &drafts {
        assert_eq!(draft.channel.as_deref(), Some("phone"));
        assert_eq!(draft.source.as_deref(), Some("cti"));
        assert_eq!(draft.direction.as_deref(), Some("inbound"));
        assert_eq!(
            draft.conversation_id.as_deref(),
            Some("pbx1-20261124-000417")
        );
        // The national number is read in the default region (NL).
        assert_eq!(
            identifiers(draft),
            vec![("phone", "+31207940958"), ("account", "C-1001")]
        );
        assert_eq!(attribute(draft, "cti.line"), Some("+31 85 888 1000"));
        assert_eq!(draft.queue.as_deref(), Some("billing"));
        validate(draft);
    }
    assert_eq!(ringing.event_type.as_deref(), Some("call.started"));
    assert_eq!(
        ringing.event_id.as_deref(),
        Some("pbx1-20261124-000417:ringing")
    );
    assert_eq!(ringing.occurred_at.as_deref(), Some("2026-11-24T09:58:02Z"));
    assert_eq!(ringing.agent_id, None);

    assert_eq!(answered.event_type.as_deref(), Some("call.answered"));
    assert_eq!(
        answered.event_id.as_deref(),
        Some("pbx1-20261124-000417:answered")
    );
    assert_eq!(
        answered.occurred_at.as_deref(),
        Some("2026-11-24T09:58:40Z")
    );
    assert_eq!(answered.agent_id.as_deref(), Some("agent-17"));
    assert_eq!(answered.display_name.as_deref(), Some("Anna de Vries"));
    assert_eq!(
        answered.contact_reason.as_deref(),
        Some("parcel not delivered")
    );

    assert_eq!(ended.event_type.as_deref(), Some("call.ended"));
    assert_eq!(
        ended.event_id.as_deref(),
        Some("pbx1-20261124-000417:ended")
    );
    assert_eq!(ended.occurred_at.as_deref(), Some("2026-11-24T10:01:44Z"));
    assert_eq!(
        ended.duration_seconds,
        Some(184),
        "answered 09:58:40, ended 10:01:44"
    );
    assert_eq!(ended.outcome.as_deref(), Some("resolved"));
}

#[test]
fn cti_outbound_missed_call_identifies_the_callee() {
    let drafts =
        events(cti::parse(&fixture("cti/outbound_missed.json"), &context()).expect("parses"));
    let [missed] = drafts.as_slice() else {
        panic!("one event")
    };
    assert_eq!(missed.event_type.as_deref(), Some("call.missed"));
    assert_eq!(missed.direction.as_deref(), Some("outbound"));
    assert_eq!(identifiers(missed), vec![("phone", "+31612345678")]);
    assert_eq!(attribute(missed, "cti.line"), Some("217"));
    assert_eq!(missed.occurred_at.as_deref(), Some("2026-11-24T10:15:31Z"));
    assert_eq!(missed.outcome.as_deref(), Some("no-answer"));
    assert_eq!(missed.duration_seconds, None);
    validate(missed);
}

#[test]
fn cti_refuses_unknown_fields_naming_them() {
    let error = cti::parse(&fixture("cti/unknown_field.json"), &context()).expect_err("refused");
    let ChannelError::Malformed { field, message } = error else {
        panic!("malformed")
    };
    assert_eq!(field.as_deref(), Some("events[1].calling_party_name"));
    assert!(message.contains("unknown field"), "{message}");
    for (body, expected) in [
        (&b"not json"[..], None),
        (b"[]", None),
        (br#"{"events":[]}"#, Some("events")),
        (br#"{"events":{}}"#, Some("events")),
        (br#"{"events":[1]}"#, Some("events[0]")),
        (br#"{"events":[],"source":"pbx"}"#, Some("source")),
    ] {
        let Err(ChannelError::Malformed { field, .. }) = cti::parse(body, &context()) else {
            panic!("{} should be malformed", String::from_utf8_lossy(body));
        };
        assert_eq!(
            field.as_deref(),
            expected,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// -------------------------------------------------------------- no panics

const CTI_KEYS: &[&str] = &[
    "events",
    "call_id",
    "state",
    "direction",
    "caller",
    "callee",
    "queue",
    "agent_id",
    "started_at",
    "answered_at",
    "ended_at",
    "occurred_at",
    "duration_seconds",
    "customer_name",
    "account",
    "reason",
    "outcome",
    "sequence",
    "colour",
];

const TWILIO_KEYS: &[&str] = &[
    "CallSid",
    "CallStatus",
    "Direction",
    "From",
    "To",
    "CallDuration",
    "Timestamp",
    "SequenceNumber",
    "CallerName",
    "AccountSid",
    "Other",
];

proptest! {
    #[test]
    fn twilio_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), signature in prop::option::of("\\PC{0,40}")) {
        if let Ok(form) = Form::parse(&body) {
            let _ = twilio::parse_voice_status(&form, &context());
            let _ = twilio::verify(FIXTURE_URL, &form, signature.as_deref(), FIXTURE_TOKEN);
        }
    }

    #[test]
    fn twilio_never_panics_on_arbitrary_callbacks(
        pairs in prop::collection::vec((prop::sample::select(TWILIO_KEYS), "\\PC{0,40}"), 0..12),
        url in "\\PC{0,60}",
    ) {
        let form = Form::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        if let Ok(Outcome::Events { events, .. }) = twilio::parse_voice_status(&form, &context()) {
            prop_assert_eq!(events.len(), 1);
        }
        let _ = twilio::verify(&url, &form, Some("CRWgWC2JBUHiMlEcxLzi/0lj/vc="), FIXTURE_TOKEN);
    }

    #[test]
    fn cti_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = cti::parse(&body, &context());
    }

    #[test]
    fn cti_never_panics_on_json_of_its_own_fields(value in json_with_keys(CTI_KEYS)) {
        let body = serde_json::to_vec(&value).expect("serialises");
        let _ = cti::parse(&body, &context());
    }
}
