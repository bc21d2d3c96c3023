//! Email adapters against fixtures in the shapes providers post: raw MIME
//! messages, SendGrid Inbound Parse (parsed and raw mode) and Mailgun route
//! forwards (parsed, with attachments, raw MIME), checked field by field;
//! Mailgun signatures; and no adapter panicking on arbitrary bytes.

use chrono::{DateTime, Duration, Utc};
use panorama_channels::multipart::{self, Part};
use panorama_channels::{
    ChannelError, Context, Outcome, Warning, mailgun, mime, sendgrid, signature,
};
use panorama_core::{EventDraft, IdentifierKind, Trust, ValidationContext};
use proptest::prelude::*;

const MAILGUN_KEY: &str = "mailgun-test-signing-key-1f6b";
/// The `timestamp` every Mailgun fixture was signed with (2026-03-02T10:00:00Z).
const MAILGUN_TIMESTAMP: i64 = 1_772_445_600;
const FORM: &str = "application/x-www-form-urlencoded";
const SENDGRID_TYPE: &str = "multipart/form-data; boundary=xYzZY";
const MAILGUN_MULTIPART_TYPE: &str = "multipart/form-data; boundary=dc2a0b6b1c8e4b1f9a7d";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/email/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn received_at() -> DateTime<Utc> {
    "2026-03-02T10:00:30Z".parse().expect("time")
}

fn context() -> Context {
    Context {
        received_at: received_at(),
        default_region: None,
    }
}

fn context_at(received_at: DateTime<Utc>) -> Context {
    Context {
        received_at,
        default_region: None,
    }
}

/// The one event of an outcome, after checking it holds to the contract.
fn only_event(outcome: Outcome) -> EventDraft {
    let Outcome::Events { .. } = outcome else {
        panic!("expected an event, got {outcome:?}");
    };
    let mut drafts = outcome.into_drafts();
    assert_eq!(drafts.len(), 1, "one email is one event");
    let draft = drafts.remove(0);
    assert_valid(&draft);
    draft
}

fn assert_valid(draft: &EventDraft) {
    let validation = ValidationContext {
        received_at: received_at(),
        default_region: None,
    };
    if let Err(error) = draft.clone().validate(&validation) {
        panic!("draft breaks the contract: {error}\n{draft:#?}");
    }
}

fn mime_event(name: &str) -> EventDraft {
    only_event(mime::parse(&fixture(name), &context(), &[]).expect(name))
}

fn attribute<'a>(draft: &'a EventDraft, key: &str) -> Option<&'a str> {
    draft.attributes.get(key).map(String::as_str)
}

fn email_identifiers(draft: &EventDraft) -> Vec<(&str, &str)> {
    draft
        .identifiers
        .iter()
        .map(|id| (id.kind.as_str(), id.value.as_str()))
        .collect()
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 fixture");
    assert!(text.contains(from), "fixture lacks {from:?}");
    text.replacen(from, to, 1).into_bytes()
}

// ---- raw MIME -------------------------------------------------------------

#[test]
fn multipart_alternative_with_quoted_printable_text() {
    let event = mime_event("multipart-alternative.eml");
    assert_eq!(event.channel.as_deref(), Some("email"));
    assert_eq!(event.source.as_deref(), Some("mime"));
    assert_eq!(event.event_type.as_deref(), Some("email.received"));
    assert_eq!(event.direction.as_deref(), Some("inbound"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "renee.mueller@example.com")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Renée Müller"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Bestellung 4711 ist nicht angekommen – bitte um Rückruf")
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("CAJr8sK2n4VbQ7=Xq1pLm0zT@mail.gmail.com")
    );
    assert_eq!(
        event.conversation_id, event.event_id,
        "a new thread is its own root"
    );
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T09:41:12+01:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Hallo, meine Bestellung 4711 vom 20. Februar ist immer noch nicht angekommen. \
             Laut Sendungsverfolgung liegt sie seit fünf Tagen im Depot. Können Sie mich bitte \
             zurückrufen? Grüße Renée Müller"
        ),
        "the text part, soft line breaks joined, not the HTML part"
    );
    assert_eq!(attribute(&event, "to"), Some("support@shop.example"));
    assert_eq!(
        attribute(&event, "message_id"),
        Some("CAJr8sK2n4VbQ7=Xq1pLm0zT@mail.gmail.com")
    );
    assert_eq!(attribute(&event, "attachments"), None);
}

#[test]
fn html_only_is_converted_to_text() {
    let event = mime_event("html-only.eml");
    assert_eq!(
        email_identifiers(&event),
        [("email", "jan.devries@example.nl")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Jan de Vries"));
    assert_eq!(event.subject.as_deref(), Some("Retour aanvraag order 9921"));
    let summary = event.summary.expect("summary");
    assert!(summary.starts_with("Goedemiddag,"), "{summary}");
    assert!(
        summary.contains("Ik wil graag de blauwe jas uit order 9921 retourneren. Hoe vraag ik een retourlabel aan?"),
        "{summary}"
    );
    assert!(
        !summary.contains('<') && !summary.contains("MsoNormal") && !summary.contains("=3D"),
        "{summary}"
    );
}

#[test]
fn base64_body_and_encoded_word_headers() {
    let event = mime_event("base64.eml");
    assert_eq!(
        email_identifiers(&event),
        [("email", "eloise.dubois@example.fr")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Éloïse Dubois"));
    assert_eq!(event.subject.as_deref(), Some("Double débit commande 5580"));
    assert_eq!(
        event.event_id.as_deref(),
        Some("7F3C2A91-5B6E-4D8A-9C0F-1E2D3C4B5A69@example.fr")
    );
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T07:02:44+01:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Bonjour, J'ai été débité deux fois pour la commande 5580 (2 × 49,90 €). \
             Merci de rembourser le doublon. Cordialement, Éloïse Dubois"
        )
    );
}

#[test]
fn iso_8859_1_body_and_subject_are_decoded() {
    let event = mime_event("iso-8859-1.eml");
    assert_eq!(
        email_identifiers(&event),
        [("email", "jose.pena@example.es")]
    );
    assert_eq!(event.display_name.as_deref(), Some("José Peña"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Factura nº 2026-118: dirección errónea")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Buenos días: La factura nº 2026-118 tiene la dirección errónea. ¿Pueden corregirla? Gracias, José Peña"
        )
    );
}

#[test]
fn windows_1252_quoted_printable_is_decoded() {
    let event = mime_event("windows-1252.eml");
    assert_eq!(
        email_identifiers(&event),
        [("email", "siobhan.obrien@example.ie")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Siobhan O'Brien"));
    assert_eq!(event.subject.as_deref(), Some("Refund of €60 – order 7730"));
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Hi, I’m still waiting for the €60 refund you promised on the phone – it’s been two weeks. Siobhán"
        )
    );
}

#[test]
fn a_reply_chain_threads_into_one_conversation() {
    let original = mime_event("thread-1-original.eml");
    let reply = mime_event("thread-2-reply.eml");
    let reply_to_reply = mime_event("thread-3-reply-to-reply.eml");
    let root = Some("thread-root-0001@mail.example.com");
    for event in [&original, &reply, &reply_to_reply] {
        assert_eq!(event.conversation_id.as_deref(), root);
        assert_eq!(event.event_type.as_deref(), Some("email.received"));
        assert_eq!(
            email_identifiers(event),
            [("email", "anna.jansen@example.com")]
        );
    }
    assert_eq!(original.event_id.as_deref(), root);
    assert_eq!(
        reply.event_id.as_deref(),
        Some("reply-0002@mail.example.com")
    );
    assert_eq!(
        reply_to_reply.event_id.as_deref(),
        Some("reply-0003@mail.example.com")
    );
    assert_eq!(
        reply.summary.as_deref(),
        Some("None of my neighbours has it. Can you send a replacement?"),
        "the quoted answer is not the customer's words"
    );
    assert_eq!(
        reply_to_reply.summary.as_deref(),
        Some("Thank you, the replacement arrived this morning.")
    );

    // A client that sends In-Reply-To without References joins the parent.
    let raw = replace(
        &fixture("thread-2-reply.eml"),
        "References: <thread-root-0001@mail.example.com>\r\n <agent-answer-0001@shop.example>\r\n",
        "",
    );
    let event = only_event(mime::parse(&raw, &context(), &[]).expect("parsed"));
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("agent-answer-0001@shop.example")
    );
}

#[test]
fn an_auto_reply_is_recorded_as_such() {
    let event = mime_event("auto-reply.eml");
    assert_eq!(event.event_type.as_deref(), Some("email.auto_reply"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "anna.jansen@example.com")]
    );
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("shipping-4711@shop.example")
    );
    assert_eq!(
        event.subject.as_deref(),
        Some("Automatic reply: Your order 4711 has shipped")
    );
    assert_eq!(attribute(&event, "auto_reply"), Some("auto-submitted"));

    // Each of the usual signals on its own, on an otherwise plain email.
    let plain = replace(
        &fixture("auto-reply.eml"),
        "Auto-Submitted: auto-generated\r\n",
        "",
    );
    let plain = replace(
        &plain,
        "Subject: Automatic reply: Your order",
        "Subject: Your order",
    );
    assert_eq!(
        only_event(mime::parse(&plain, &context(), &[]).expect("plain"))
            .event_type
            .as_deref(),
        Some("email.received")
    );
    for (header, reason) in [
        ("X-Autoreply: yes\r\n", "x-autoreply"),
        ("X-Autorespond: Out of office\r\n", "x-autoreply"),
        ("Precedence: auto_reply\r\n", "precedence"),
        ("Precedence: bulk\r\n", "precedence"),
    ] {
        let raw = [header.as_bytes(), &plain].concat();
        let event = only_event(mime::parse(&raw, &context(), &[]).expect(header));
        assert_eq!(
            event.event_type.as_deref(),
            Some("email.auto_reply"),
            "{header}"
        );
        assert_eq!(attribute(&event, "auto_reply"), Some(reason), "{header}");
    }
    let out_of_office = replace(
        &plain,
        "Subject: Your order",
        "Subject: Out of Office: Your order",
    );
    let event = only_event(mime::parse(&out_of_office, &context(), &[]).expect("subject"));
    assert_eq!(event.event_type.as_deref(), Some("email.auto_reply"));
    assert_eq!(attribute(&event, "auto_reply"), Some("subject"));
}

#[test]
fn a_bounce_belongs_to_the_address_that_failed() {
    let event = mime_event("bounce.eml");
    assert_eq!(event.event_type.as_deref(), Some("email.bounced"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "anna.old@example.com")],
        "the failed recipient, never the mailer daemon"
    );
    assert_eq!(event.display_name, None);
    assert_eq!(event.direction, None);
    assert_eq!(event.outcome.as_deref(), Some("failed"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("20260302095841.3F1A2B4C5D@mail.shop.example")
    );
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("thread-root-0001@mail.example.com"),
        "the bounce joins the thread of the message that bounced"
    );
    assert_eq!(attribute(&event, "bounce_action"), Some("failed"));
    assert_eq!(attribute(&event, "bounce_status"), Some("5.1.1"));
    assert_eq!(
        attribute(&event, "bounce_diagnostic"),
        Some("550 5.1.1 <anna.old@example.com>: Recipient address rejected: User unknown")
    );
    assert_eq!(
        attribute(&event, "reported_by"),
        Some("MAILER-DAEMON@mail.shop.example")
    );
    assert_eq!(
        attribute(&event, "attachments"),
        None,
        "report parts are not attachments"
    );
    assert!(
        event
            .summary
            .as_deref()
            .is_some_and(|s| s.starts_with("This is the mail system at host"))
    );
}

#[test]
fn an_exim_bounce_without_a_report_part_is_still_a_bounce() {
    let event = mime_event("bounce-exim.eml");
    assert_eq!(
        event.event_type.as_deref(),
        Some("email.bounced"),
        "not an auto-reply despite Auto-Submitted"
    );
    assert_eq!(email_identifiers(&event), [("email", "bart@example.org")]);
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("E1vRk2c-00012X-7Q@relay.shop.example")
    );
}

#[test]
fn no_sender_is_ignored_and_garbage_is_malformed() {
    assert_eq!(
        mime::parse(&fixture("no-from.eml"), &context(), &[]),
        Ok(Outcome::ignored("no_identifier"))
    );
    let no_address = replace(
        &fixture("thread-1-original.eml"),
        "<anna.jansen@example.com>",
        "<undisclosed>",
    );
    // A sender that is no address: ignored, and the answer says why
    // without repeating it.
    assert_eq!(
        mime::parse(&no_address, &context(), &[]),
        Ok(Outcome::Ignored {
            reason: "no_identifier",
            warnings: vec![Warning {
                field: "From".into(),
                kind: IdentifierKind::Email,
                message: "not a valid email address".into(),
            }],
        })
    );
    for garbage in [
        &b""[..],
        b" \r\n\r\n",
        b"\x00\x01\x02\xff\xfe binary",
        b"just some words\nand more words\n",
    ] {
        let result = mime::parse(garbage, &context(), &[]);
        assert!(
            matches!(result, Err(ChannelError::Malformed { .. })),
            "{garbage:?}: {result:?}"
        );
    }
}

#[test]
fn a_retried_message_is_the_same_event() {
    let first = mime_event("multipart-alternative.eml");
    let again = mime_event("multipart-alternative.eml");
    assert_eq!(first, again);
    let validation = ValidationContext {
        received_at: received_at(),
        default_region: None,
    };
    let first_id = first.clone().validate(&validation).expect("valid").event_id;
    assert_eq!(
        first_id,
        again.validate(&validation).expect("valid").event_id
    );
    let other_source = EventDraft {
        source: Some("sendgrid".into()),
        ..first
    };
    assert_ne!(
        other_source.validate(&validation).expect("valid").event_id,
        first_id
    );
}

#[test]
fn oversized_fields_are_bounded_to_the_contract() {
    let long_root = format!("<{}@x.example>", "r".repeat(3000));
    let raw = format!(
        "From: {name} <long@example.com>\r\nSubject: {subject}\r\nMessage-ID: <{id}@x.example>\r\n\
         References: {long_root} <p@x.example>\r\nContent-Type: text/plain\r\n\r\n{body}\r\n",
        name = "N".repeat(500),
        subject = "s".repeat(5000),
        id = "i".repeat(700),
        body = "word ".repeat(5000),
    );
    let event = only_event(mime::parse(raw.as_bytes(), &context(), &[]).expect("parsed"));
    assert_eq!(
        event.subject.as_deref().map(|s| s.chars().count()),
        Some(998)
    );
    assert_eq!(
        event.conversation_id.as_deref().map(|s| s.chars().count()),
        Some(998)
    );
    assert!(
        event
            .summary
            .as_deref()
            .is_some_and(|s| s.chars().count() <= 4000)
    );
    assert!(
        event
            .display_name
            .as_deref()
            .is_some_and(|s| s.chars().count() <= 200)
    );
    assert!(
        event
            .event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("sha256:")),
        "a 700-character id is hashed"
    );
}

// ---- SendGrid Inbound Parse ----------------------------------------------------

fn sendgrid_event(body: &[u8]) -> EventDraft {
    only_event(sendgrid::parse(SENDGRID_TYPE, body, &context()).expect("sendgrid"))
}

/// The fixture's parts with `edit` applied, encoded again.
fn edited_sendgrid(name: &str, edit: impl FnOnce(&mut Vec<Part>)) -> Vec<u8> {
    let mut parts = multipart::parse(SENDGRID_TYPE, &fixture(name)).expect("fixture parts");
    edit(&mut parts);
    multipart::encode("xYzZY", &parts)
}

#[test]
fn sendgrid_parsed_mode() {
    let event = sendgrid_event(&fixture("sendgrid-parsed.multipart"));
    assert_eq!(event.channel.as_deref(), Some("email"));
    assert_eq!(event.source.as_deref(), Some("sendgrid"));
    assert_eq!(event.event_type.as_deref(), Some("email.received"));
    assert_eq!(event.direction.as_deref(), Some("inbound"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "bob.smith@example.com")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Bob Smith"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Re: Damaged blender [#48213]")
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("CAH2Fq0-reply2@mail.example.com")
    );
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("CAH2Fq0-root@mail.example.com"),
        "threading headers come from the `headers` field"
    );
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T10:30:01+01:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some("Here is the photo of the cracked jug you asked for.")
    );
    assert_eq!(attribute(&event, "to"), Some("help@inbound.shop.example"));
    assert_eq!(attribute(&event, "attachments"), Some("1"));
    assert_eq!(
        attribute(&event, "envelope_from"),
        Some("bob.smith@example.com")
    );
    assert_eq!(attribute(&event, "spf"), Some("pass"));
    assert_eq!(attribute(&event, "dkim"), Some("{@example.com : pass}"));
    assert_eq!(attribute(&event, "sender_ip"), Some("209.85.218.52"));
    assert_eq!(attribute(&event, "spam_score"), Some("0.012"));
}

#[test]
fn sendgrid_parsed_mode_with_bare_line_feeds() {
    let crlf = fixture("sendgrid-parsed.multipart");
    let lf: Vec<u8> = String::from_utf8_lossy(&crlf)
        .replace("\r\n", "\n")
        .into_bytes();
    assert_eq!(sendgrid_event(&lf), sendgrid_event(&crlf));
}

#[test]
fn sendgrid_fields_are_decoded_with_their_declared_charsets() {
    let event = sendgrid_event(&fixture("sendgrid-parsed-charsets.multipart"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "begona.ibanez@example.es")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Begoña Ibáñez"));
    assert_eq!(
        event.subject.as_deref(),
        Some("¿Dónde está mi pedido? – nº 3391"),
        "windows-1252 subject"
    );
    assert_eq!(
        event.summary.as_deref(),
        Some("Hice el pedido nº 3391 hace diez días y aún no sé nada. ¿Me dicen algo?"),
        "windows-1252 text"
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("1772444642.7731@example.es")
    );
    assert_eq!(attribute(&event, "spf"), Some("softfail"));
    assert_eq!(attribute(&event, "attachments"), None);

    let html_only = edited_sendgrid("sendgrid-parsed-charsets.multipart", |parts| {
        parts.retain(|p| p.name != "text")
    });
    assert_eq!(
        sendgrid_event(&html_only).summary.as_deref(),
        Some("Hice el pedido nº 3391 hace diez días y aún no sé nada."),
        "iso-8859-1 HTML, converted to text"
    );
}

#[test]
fn sendgrid_raw_mode() {
    let event = sendgrid_event(&fixture("sendgrid-raw.multipart"));
    assert_eq!(event.source.as_deref(), Some("sendgrid"));
    assert_eq!(event.event_type.as_deref(), Some("email.received"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "wei.chen@example.org")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Chen, Wei"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Invoice copy for order 8812")
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("CAEPk3RKEx-raw-9921@mail.example.org")
    );
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T10:20:30+01:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Could you send me a copy of the invoice for order 8812? The one attached is unreadable…"
        )
    );
    assert_eq!(
        attribute(&event, "attachments"),
        Some("1"),
        "counted in the message itself"
    );
    assert_eq!(
        attribute(&event, "envelope_from"),
        Some("bounces+wei=example.org@mail.example.org")
    );
    assert_eq!(attribute(&event, "to"), Some("help@inbound.shop.example"));
    assert_eq!(attribute(&event, "spf"), Some("pass"));
}

#[test]
fn sendgrid_parsed_mode_honours_auto_reply_headers() {
    let body = edited_sendgrid("sendgrid-parsed.multipart", |parts| {
        let headers = parts
            .iter_mut()
            .find(|p| p.name == "headers")
            .expect("headers");
        headers.data = [
            b"Auto-Submitted: auto-replied\r\n".as_slice(),
            &headers.data,
        ]
        .concat();
    });
    let event = sendgrid_event(&body);
    assert_eq!(event.event_type.as_deref(), Some("email.auto_reply"));
    assert_eq!(attribute(&event, "auto_reply"), Some("auto-submitted"));
}

#[test]
fn sendgrid_parsed_mode_without_a_header_block_uses_the_fields() {
    let body = edited_sendgrid("sendgrid-parsed.multipart", |parts| {
        parts.retain(|p| p.name != "headers")
    });
    let event = sendgrid_event(&body);
    assert_eq!(
        email_identifiers(&event),
        [("email", "bob.smith@example.com")]
    );
    assert_eq!(
        event.subject.as_deref(),
        Some("Re: Damaged blender [#48213]")
    );
    assert!(
        event
            .event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("sha256:"))
    );
    assert_eq!(
        event.event_id,
        sendgrid_event(&body).event_id,
        "stable across retries"
    );
}

#[test]
fn sendgrid_refuses_what_it_does_not_post() {
    let body = fixture("sendgrid-parsed.multipart");
    for content_type in [
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=other",
    ] {
        let result = sendgrid::parse(content_type, &body, &context());
        assert!(
            matches!(result, Err(ChannelError::Malformed { .. })),
            "{content_type}: {result:?}"
        );
    }
    let unrelated = multipart::encode(
        "xYzZY",
        &[Part {
            name: "foo".into(),
            data: b"bar".to_vec(),
            ..Part::default()
        }],
    );
    assert!(matches!(
        sendgrid::parse(SENDGRID_TYPE, &unrelated, &context()),
        Err(ChannelError::Malformed { .. })
    ));
    let nobody = multipart::encode(
        "xYzZY",
        &[Part {
            name: "from".into(),
            data: b"not an address".to_vec(),
            ..Part::default()
        }],
    );
    assert_eq!(
        sendgrid::parse(SENDGRID_TYPE, &nobody, &context()),
        Ok(Outcome::ignored("no_identifier"))
    );
}

// ---- Mailgun route forwards ------------------------------------------------------

fn mailgun_context() -> Context {
    context_at(DateTime::from_timestamp(MAILGUN_TIMESTAMP + 30, 0).expect("time"))
}

fn mailgun_parse(content_type: &str, body: &[u8]) -> panorama_channels::Result<Outcome> {
    mailgun::parse(content_type, body, MAILGUN_KEY, &mailgun_context())
        .map(|forward| forward.outcome)
}

fn assert_unauthorized<T: std::fmt::Debug>(result: panorama_channels::Result<T>, why: &str) {
    assert!(
        matches!(result, Err(ChannelError::Unauthorized(_))),
        "{why}: {result:?}"
    );
}

/// A urlencoded body with `fields` and a valid signature for `token`.
fn signed_form(token: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let timestamp = MAILGUN_TIMESTAMP.to_string();
    let signature = signature::hmac_sha256_hex(
        MAILGUN_KEY.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(fields);
    serializer.extend_pairs([
        ("timestamp", timestamp.as_str()),
        ("token", token),
        ("signature", &signature),
    ]);
    serializer.finish().into_bytes()
}

#[test]
fn mailgun_parsed_forward() {
    let event = only_event(mailgun_parse(FORM, &fixture("mailgun-forward.form")).expect("mailgun"));
    assert_eq!(event.channel.as_deref(), Some("email"));
    assert_eq!(event.source.as_deref(), Some("mailgun"));
    assert_eq!(event.event_type.as_deref(), Some("email.received"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "lena.fischer@example.de")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Lena Fischer"));
    assert_eq!(event.subject.as_deref(), Some("Kündigung Vertrag KD-20931"));
    assert_eq!(
        event.event_id.as_deref(),
        Some("CAKq9vT3-mg-1001@mail.example.de")
    );
    assert_eq!(event.conversation_id, event.event_id);
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T10:59:40+01:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some("Hallo, hiermit kündige ich meinen Vertrag KD-20931 zum nächstmöglichen Zeitpunkt."),
        "Mailgun's stripped-text, without the signature"
    );
    assert_eq!(
        attribute(&event, "to"),
        Some("kundenservice@mg.shop.example")
    );
    assert_eq!(
        attribute(&event, "envelope_from"),
        Some("lena.fischer@example.de")
    );
    assert_eq!(attribute(&event, "spf"), Some("Pass"));
    assert_eq!(attribute(&event, "dkim"), Some("Pass"));
    assert_eq!(attribute(&event, "spam_score"), Some("0.3"));
    assert_eq!(attribute(&event, "attachments"), None);
}

#[test]
fn mailgun_multipart_forward_with_an_attachment() {
    let body = fixture("mailgun-forward-attachment.multipart");
    let event = only_event(mailgun_parse(MAILGUN_MULTIPART_TYPE, &body).expect("mailgun"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "tom.oneill@example.net")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Tom O'Neill"));
    assert_eq!(event.subject.as_deref(), Some("Re: Warranty claim W-5521"));
    assert_eq!(
        event.event_id.as_deref(),
        Some("20260302100058.GA5521@example.net")
    );
    assert_eq!(
        event.conversation_id.as_deref(),
        Some("20260301173012.GA5500@example.net")
    );
    assert_eq!(
        event.occurred_at.as_deref(),
        Some("2026-03-02T10:00:58+00:00")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some("Attached is the receipt you asked for.")
    );
    assert_eq!(attribute(&event, "attachments"), Some("1"));
    assert_eq!(attribute(&event, "to"), Some("support@mg.shop.example"));
}

#[test]
fn mailgun_raw_mime_forward() {
    let event =
        only_event(mailgun_parse(FORM, &fixture("mailgun-forward-mime.form")).expect("mailgun"));
    assert_eq!(event.source.as_deref(), Some("mailgun"));
    assert_eq!(
        email_identifiers(&event),
        [("email", "priya.natarajan@example.com")]
    );
    assert_eq!(event.display_name.as_deref(), Some("Priya Natarajan"));
    assert_eq!(
        event.subject.as_deref(),
        Some("Address change for subscription S-7781")
    );
    assert_eq!(
        event.event_id.as_deref(),
        Some("CAB7781-priya@mail.example.com")
    );
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Please deliver subscription S-7781 to my new address from April: 12 Harbour Road, Cork."
        )
    );
    assert_eq!(attribute(&event, "to"), Some("support@mg.shop.example"));
}

#[test]
fn mailgun_raw_mime_keeps_8bit_bytes_in_their_charset() {
    let message = [
        b"From: =?ISO-8859-1?Q?Jos=E9_Pe=F1a?= <jose.pena@example.es>\r\nSubject: Factura\r\n\
          Message-ID: <latin1-mg@example.es>\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\
          Content-Transfer-Encoding: 8bit\r\n\r\n"
            .as_slice(),
        b"La direcci\xf3n es err\xf3nea.\r\n",
    ]
    .concat();
    let mut body = signed_form(&"d".repeat(50), &[("recipient", "support@mg.shop.example")]);
    body.extend(b"&body-mime=");
    body.extend(form_urlencoded::byte_serialize(&message).flat_map(str::bytes));
    let event = only_event(mailgun_parse(FORM, &body).expect("urlencoded"));
    assert_eq!(event.summary.as_deref(), Some("La dirección es errónea."));
    assert_eq!(event.display_name.as_deref(), Some("José Peña"));

    let token = "e".repeat(50);
    let timestamp = MAILGUN_TIMESTAMP.to_string();
    let signature = signature::hmac_sha256_hex(
        MAILGUN_KEY.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let field = |name: &str, data: &[u8]| Part {
        name: name.into(),
        data: data.to_vec(),
        ..Part::default()
    };
    let body = multipart::encode(
        "dc2a0b6b1c8e4b1f9a7d",
        &[
            field("timestamp", timestamp.as_bytes()),
            field("token", token.as_bytes()),
            field("signature", signature.as_bytes()),
            field("body-mime", &message),
        ],
    );
    let event = only_event(mailgun_parse(MAILGUN_MULTIPART_TYPE, &body).expect("multipart"));
    assert_eq!(event.summary.as_deref(), Some("La dirección es errónea."));
}

#[test]
fn mailgun_signature_checks() {
    let body = fixture("mailgun-forward.form");
    assert!(mailgun_parse(FORM, &body).is_ok(), "valid");

    let token = "4f1c6b0e8d2a9c7e5b3f1d0a8c6e4b2d0f9e7c5a3b1d9f7e5c";
    let tampered_token = replace(
        &body,
        token,
        "4f1c6b0e8d2a9c7e5b3f1d0a8c6e4b2d0f9e7c5a3b1d9f7e5d",
    );
    assert_unauthorized(mailgun_parse(FORM, &tampered_token), "tampered token");
    let tampered_timestamp = replace(&body, "timestamp=1772445600", "timestamp=1772445601");
    assert_unauthorized(
        mailgun_parse(FORM, &tampered_timestamp),
        "tampered timestamp",
    );

    let wrong_key = mailgun::parse(FORM, &body, "another-key", &mailgun_context());
    assert_unauthorized(wrong_key, "wrong key");
    let no_key = mailgun::parse(FORM, &body, "", &mailgun_context());
    assert_unauthorized(no_key, "no key configured");

    let form = String::from_utf8(body.clone()).expect("form");
    let without_signature: Vec<&str> = form
        .split('&')
        .filter(|pair| !pair.starts_with("signature="))
        .collect();
    assert_unauthorized(
        mailgun_parse(FORM, without_signature.join("&").as_bytes()),
        "missing signature",
    );
    let empty_signature: Vec<String> = form
        .split('&')
        .map(|pair| {
            if pair.starts_with("signature=") {
                "signature=".to_owned()
            } else {
                pair.to_owned()
            }
        })
        .collect();
    assert_unauthorized(
        mailgun_parse(FORM, empty_signature.join("&").as_bytes()),
        "empty signature",
    );
}

#[test]
fn mailgun_timestamps_from_the_future_or_past_the_retry_window_are_refused() {
    let body = fixture("mailgun-forward.form");
    let signed_at = DateTime::from_timestamp(MAILGUN_TIMESTAMP, 0).expect("time");
    // Received `offset` seconds after signing: up to five minutes early
    // (clock skew), up to nine hours late (Mailgun retries for eight).
    for (offset, accepted) in [
        (-301, false),
        (-300, true),
        (0, true),
        (300, true),
        (4 * 3600, true),
        (9 * 3600, true),
        (9 * 3600 + 1, false),
        (86_400, false),
    ] {
        let context = context_at(signed_at + Duration::seconds(offset));
        let result = mailgun::parse(FORM, &body, MAILGUN_KEY, &context);
        assert_eq!(
            result.is_ok(),
            accepted,
            "received {offset} s after signing: {result:?}"
        );
        if !accepted {
            assert_unauthorized(result, "stale");
        }
    }
}

#[test]
fn a_replayed_mailgun_token_is_refused() {
    let body = fixture("mailgun-forward.form");
    let mut guard = mailgun::ReplayGuard::new();
    let first = mailgun::parse(FORM, &body, MAILGUN_KEY, &mailgun_context()).expect("accepted");
    assert!(matches!(first.outcome, Outcome::Events { .. }), "{first:?}");
    guard
        .check(&first.token, mailgun_context().received_at)
        .expect("first use");
    // Remembered once its event is published, as the gateway does.
    guard.remember(first.token, mailgun_context().received_at);
    let later = context_at(mailgun_context().received_at + Duration::seconds(60));
    let replayed = mailgun::parse(FORM, &body, MAILGUN_KEY, &later).expect("signed");
    assert_unauthorized(guard.check(&replayed.token, later.received_at), "replayed");
    assert_eq!(guard.len(), 1);

    // Forged requests never get a token to remember, so they cannot poison
    // a guard.
    assert_unauthorized(
        mailgun::parse(FORM, &body, "another-key", &mailgun_context()),
        "forged",
    );
}

#[test]
fn mailgun_verify_directly() {
    let now = DateTime::from_timestamp(MAILGUN_TIMESTAMP, 0).expect("time");
    let timestamp = MAILGUN_TIMESTAMP.to_string();
    let token = "a".repeat(50);
    let good = signature::hmac_sha256_hex(
        MAILGUN_KEY.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    assert_eq!(
        mailgun::verify(&timestamp, &token, &good, MAILGUN_KEY, now),
        Ok(())
    );
    assert!(
        mailgun::verify(&timestamp, &token, &good.to_uppercase(), MAILGUN_KEY, now).is_ok(),
        "hex case"
    );
    assert!(mailgun::verify(&timestamp, &token, &good, "wrong", now).is_err());
    assert!(mailgun::verify(&timestamp, "b", &good, MAILGUN_KEY, now).is_err());
    assert!(mailgun::verify(&timestamp, &token, "", MAILGUN_KEY, now).is_err());
    assert!(mailgun::verify(&timestamp, &token, "not hex", MAILGUN_KEY, now).is_err());
    assert!(mailgun::verify("", &token, &good, MAILGUN_KEY, now).is_err());
}

#[test]
fn a_signed_post_that_is_not_a_message_is_ignored() {
    let body = signed_form(
        "c".repeat(50).as_str(),
        &[("event", "delivered"), ("recipient", "x@example.com")],
    );
    assert_eq!(
        mailgun_parse(FORM, &body),
        Ok(Outcome::ignored("mailgun.not_a_message"))
    );
    let json = mailgun_parse("application/json", b"{}");
    assert!(
        matches!(json, Err(ChannelError::Malformed { .. })),
        "{json:?}"
    );
}

// ---- sender trust ---------------------------------------------------------------------

fn sender_trust(draft: &EventDraft) -> Trust {
    assert_eq!(draft.identifiers.len(), 1, "{draft:#?}");
    draft.identifiers[0].trust
}

#[test]
fn a_sendgrid_sender_is_verified_only_when_its_domain_authenticated() {
    // SPF passed for bob.smith@example.com, DKIM for example.com.
    let event = sendgrid_event(&fixture("sendgrid-parsed.multipart"));
    assert_eq!(sender_trust(&event), Trust::Verified);
    let set = |parts: &mut Vec<Part>, name: &str, value: &str| {
        let part = parts.iter_mut().find(|p| p.name == name).expect(name);
        part.data = value.as_bytes().to_vec();
    };
    let failed = edited_sendgrid("sendgrid-parsed.multipart", |parts| {
        set(parts, "SPF", "softfail");
        set(parts, "dkim", "{@example.com : fail}");
    });
    assert_eq!(sender_trust(&sendgrid_event(&failed)), Trust::Claimed);
    // A pass for another domain vouches for nothing about example.com.
    let elsewhere = edited_sendgrid("sendgrid-parsed.multipart", |parts| {
        set(
            parts,
            "envelope",
            r#"{"to":["help@inbound.shop.example"],"from":"x@evil.example"}"#,
        );
        set(parts, "dkim", "{@evil.example : pass}");
    });
    assert_eq!(sender_trust(&sendgrid_event(&elsewhere)), Trust::Claimed);
    let unreported = edited_sendgrid("sendgrid-parsed.multipart", |parts| {
        parts.retain(|p| p.name != "SPF" && p.name != "dkim");
    });
    assert_eq!(sender_trust(&sendgrid_event(&unreported)), Trust::Claimed);
}

#[test]
fn a_mailgun_sender_is_verified_by_mailguns_spf_verdict() {
    let event = only_event(mailgun_parse(FORM, &fixture("mailgun-forward.form")).expect("mailgun"));
    assert_eq!(sender_trust(&event), Trust::Verified);
    // A raw forward carries no verdict.
    let raw =
        only_event(mailgun_parse(FORM, &fixture("mailgun-forward-mime.form")).expect("mailgun"));
    assert_eq!(sender_trust(&raw), Trust::Claimed);
    // A sender's own `X-Mailgun-Spf: Pass` does not outvote Mailgun's.
    let headers = r#"[["X-Mailgun-Spf","Pass"],["X-Mailgun-Spf","Fail"],["From","Anna <anna@example.com>"],["Subject","hi"]]"#;
    let body = signed_form(
        "d".repeat(50).as_str(),
        &[
            ("sender", "anna@example.com"),
            ("from", "Anna <anna@example.com>"),
            ("message-headers", headers),
            ("body-plain", "hello"),
        ],
    );
    let forged = only_event(mailgun_parse(FORM, &body).expect("mailgun"));
    assert_eq!(sender_trust(&forged), Trust::Claimed);
}

#[test]
fn a_raw_message_sender_is_verified_by_the_receiving_mtas_authentication_results() {
    let trusted = ["mx.shop.example".to_owned()];
    assert_eq!(
        sender_trust(&mime_event("multipart-alternative.eml")),
        Trust::Claimed
    );
    let authenticated = [
        b"Authentication-Results: mx.shop.example; spf=fail smtp.mailfrom=x@evil.example;\r\n dkim=pass header.d=example.com\r\n".as_slice(),
        &fixture("multipart-alternative.eml"),
    ]
    .concat();
    let event = only_event(mime::parse(&authenticated, &context(), &trusted).expect("mime"));
    assert_eq!(sender_trust(&event), Trust::Verified);
    // The same header from a server nobody named is the sender's own
    // writing, as is any header when no server is named.
    for authserv_ids in [vec!["mx.other.example".to_owned()], vec![]] {
        let event =
            only_event(mime::parse(&authenticated, &context(), &authserv_ids).expect("mime"));
        assert_eq!(sender_trust(&event), Trust::Claimed);
    }
    // A bounce names its customer in a report anyone can write.
    let bounce = [
        b"Authentication-Results: mx.shop.example; dmarc=pass header.from=mail.shop.example\r\n"
            .as_slice(),
        &fixture("bounce.eml"),
    ]
    .concat();
    let event = only_event(mime::parse(&bounce, &context(), &trusted).expect("mime"));
    assert_eq!(event.event_type.as_deref(), Some("email.bounced"));
    assert_eq!(sender_trust(&event), Trust::Claimed);
}

// ---- no adapter panics on arbitrary bytes -------------------------------------------

const MIME_FIXTURES: &[&str] = &[
    "multipart-alternative.eml",
    "html-only.eml",
    "base64.eml",
    "iso-8859-1.eml",
    "windows-1252.eml",
    "thread-2-reply.eml",
    "auto-reply.eml",
    "bounce.eml",
    "bounce-exim.eml",
];

/// A fixture cut short and with random bytes spliced in: inputs close to
/// real ones reach much deeper into the parsers than uniform noise.
fn mutated(fixtures: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(fixtures),
        any::<proptest::sample::Index>(),
        any::<proptest::sample::Index>(),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(name, cut, at, noise)| {
            let mut bytes = fixture(name);
            bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len() / 2));
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, noise);
            bytes
        })
}

/// Whatever an adapter returns, it never panics, and every event it emits
/// holds to the contract.
fn check_outcome(result: panorama_channels::Result<Outcome>) -> Result<(), TestCaseError> {
    if let Ok(outcome) = result {
        let drafts = outcome.into_drafts();
        let validation = ValidationContext {
            received_at: received_at(),
            default_region: None,
        };
        for draft in drafts {
            prop_assert!(draft.clone().validate(&validation).is_ok(), "{draft:#?}");
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn mime_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_outcome(mime::parse(&bytes, &context(), &[]))?;
    }

    #[test]
    fn mime_never_panics_on_mutated_messages(bytes in mutated(MIME_FIXTURES)) {
        check_outcome(mime::parse(&bytes, &context(), &[]))?;
    }

    #[test]
    fn sendgrid_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048), content_type in "\\PC{0,80}") {
        check_outcome(sendgrid::parse(SENDGRID_TYPE, &bytes, &context()))?;
        check_outcome(sendgrid::parse(&content_type, &bytes, &context()))?;
    }

    #[test]
    fn sendgrid_never_panics_on_mutated_posts(
        bytes in mutated(&["sendgrid-parsed.multipart", "sendgrid-parsed-charsets.multipart", "sendgrid-raw.multipart"]),
    ) {
        check_outcome(sendgrid::parse(SENDGRID_TYPE, &bytes, &context()))?;
    }

    #[test]
    fn sendgrid_never_panics_on_arbitrary_field_values(
        headers in proptest::collection::vec(any::<u8>(), 0..400),
        text in proptest::collection::vec(any::<u8>(), 0..200),
        charsets in "\\PC{0,60}",
        envelope in "\\PC{0,60}",
    ) {
        let field = |name: &str, data: Vec<u8>| Part { name: name.into(), data, ..Part::default() };
        let body = multipart::encode("xYzZY-not-in-the-values-0f7c", &[
            field("headers", headers),
            field("text", text),
            field("charsets", charsets.into_bytes()),
            field("envelope", envelope.into_bytes()),
            field("from", b"Anna <anna@example.com>".to_vec()),
        ]);
        let result = sendgrid::parse("multipart/form-data; boundary=xYzZY-not-in-the-values-0f7c", &body, &context());
        // Unless the random header block holds a From of its own, the field's
        // sender is the customer.
        prop_assert!(!matches!(result, Err(ChannelError::Unauthorized(_))));
        check_outcome(result)?;
    }

    #[test]
    fn mailgun_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_outcome(mailgun_parse(FORM, &bytes))?;
        check_outcome(mailgun_parse(MAILGUN_MULTIPART_TYPE, &bytes))?;
    }

    #[test]
    fn mailgun_never_panics_on_mutated_posts(
        bytes in mutated(&["mailgun-forward.form", "mailgun-forward-mime.form", "mailgun-forward-attachment.multipart"]),
    ) {
        check_outcome(mailgun_parse(FORM, &bytes))?;
        check_outcome(mailgun_parse(MAILGUN_MULTIPART_TYPE, &bytes))?;
    }

    #[test]
    fn mailgun_never_panics_past_a_valid_signature(
        message_headers in "\\PC{0,300}",
        body_mime in proptest::option::of("\\PC{0,400}"),
        body_plain in "\\PC{0,200}",
        token in "[a-f0-9]{50}",
    ) {
        let mut fields = vec![
            ("message-headers", message_headers.as_str()),
            ("from", "Anna <anna@example.com>"),
            ("body-plain", body_plain.as_str()),
        ];
        if let Some(raw) = &body_mime {
            fields.push(("body-mime", raw.as_str()));
        }
        let result = mailgun_parse(FORM, &signed_form(&token, &fields));
        prop_assert!(!matches!(result, Err(ChannelError::Unauthorized(_))), "signed: {result:?}");
        check_outcome(result)?;
    }
}
