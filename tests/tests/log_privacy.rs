//! No customer's identifiers, name or words in the log at info level: a
//! simulated burst through every channel, events, refused webhooks,
//! validation failures, lookups, agent reads and writes, merges and a
//! conflict, with everything the process logs (span fields included)
//! captured, then searched for every value of the test data.
//!
//! The log is captured by a process-wide subscriber, so this file holds one
//! test.

use std::collections::BTreeSet;

use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_channels::signature::hmac_sha256_hex;
use panorama_core::{EventDraft, IdentifierDraft, IdentifierKind, Role, ValidationContext};
use panorama_e2e::{at_minute, contact_with};
use panorama_simulator::{DemoSecrets, Provider};
use panorama_testkit::{TestApp, capture_logs};
use prost::Message as _;
use serde_json::{Value, json};

const SEED: u64 = 20_261_123;
const CUSTOMERS: usize = 12;
const REQUESTS: u64 = 300;

/// This test's own people: phone, email, name.
const ANNA: (&str, &str, &str) = ("+31687650001", "anna.leak@example.org", "Anna Leakcheck");
const BERT: (&str, &str, &str) = ("+31687650002", "bert.leak@example.org", "Bert Leakcheck");
/// Two account holders, then a call that links the first's phone to the
/// second's account: an identity conflict.
const CORA: (&str, &str) = ("+31687650003", "ACC-LEAK-1");
const DIRK: (&str, &str) = ("+31687650004", "ACC-LEAK-2");
/// A WhatsApp sender (digits of a phone number).
const WHATSAPP: &str = "31687650005";
/// Looked up; nobody has it.
const NOBODY: &str = "+31687650009";
/// A caller only a note knows about.
const UNKNOWN_CALLER: &str = "+31687650010";
/// On records the projector dead-letters.
const POISON_PHONE: &str = "+31687650011";
const POISON_EMAIL: &str = "poison.leak@example.org";
/// What agents write.
const NOTE: &str = "Parcel left with the neighbour at Dorpsstraat 27";
const MERGE_REASON: &str = "same person: +31687650001 and bert.leak@example.org";
const CONFLICT_NOTE: &str = "Dirk called from +31687650003, his wife's phone";

/// Values of this test's own data that must never be logged.
fn own_values() -> Vec<&'static str> {
    vec![
        ANNA.0,
        ANNA.1,
        ANNA.2,
        BERT.0,
        BERT.1,
        BERT.2,
        CORA.0,
        CORA.1,
        DIRK.0,
        DIRK.1,
        WHATSAPP,
        NOBODY,
        UNKNOWN_CALLER,
        POISON_PHONE,
        POISON_EMAIL,
        NOTE,
        MERGE_REASON,
        CONFLICT_NOTE,
        // The digits of the numbers, as WhatsApp and some logs write them.
        "687650001",
        "687650002",
        "687650003",
        "687650009",
    ]
}

fn person(event_id: &str, minute: i64, identifiers: &[(&str, &str)], name: &str) -> Value {
    let mut event = contact_with(event_id, at_minute(minute), "phone", identifiers);
    event["display_name"] = json!(name);
    event["summary"] = json!(NOTE);
    event
}

/// Records a producer writes to the topic directly, each dead-lettered for
/// another reason: not protobuf, an identifier that does not validate, an
/// event PostgreSQL refuses (see the trigger in the test).
fn poison_records() -> Vec<OutboundRecord> {
    let event = EventDraft {
        event_id: Some("leak-poison".to_owned()),
        channel: Some("chat".into()),
        source: Some("producer".into()),
        event_type: Some("chat.message".into()),
        identifiers: vec![IdentifierDraft::new(IdentifierKind::Email, POISON_EMAIL)],
        display_name: Some(ANNA.2.into()),
        summary: Some("refuse me".into()),
        ..EventDraft::default()
    }
    .validate(&ValidationContext::now(None))
    .expect("valid");
    let refused = panorama_proto::to_proto(&event);
    let mut invalid = refused.clone();
    invalid.event_id = "leak-poison-invalid".into();
    invalid.identifiers[0].value = format!("{POISON_EMAIL} {POISON_PHONE}");
    [
        format!("phone={POISON_PHONE}&email={POISON_EMAIL}").into_bytes(),
        invalid.encode_to_vec(),
        refused.encode_to_vec(),
    ]
    .into_iter()
    .map(|payload| OutboundRecord {
        key: format!("email:{POISON_EMAIL}"),
        payload,
        headers: vec![],
    })
    .collect()
}

fn whatsapp_notification(messages: Value) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": ANNA.2}, "wa_id": WHATSAPP}],
                    "messages": messages
                }
            }]
        }]
    });
    serde_json::to_vec(&body).expect("json")
}

fn whatsapp_text(id: &str) -> Value {
    json!({"from": WHATSAPP, "id": id, "timestamp": "1795424400", "type": "text",
           "text": {"body": NOTE}})
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("answer").status().as_u16()
}

async fn id_of(app: &TestApp, token: &str, query: &str) -> String {
    let response = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/customers/lookup?{query}"),
            Some(token),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200, "lookup {query}");
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

fn plus(phone: &str) -> String {
    phone.replace('+', "%2B")
}

/// Every value the burst's events and people carry: identifiers, names,
/// subjects and texts.
fn burst_values(burst: &panorama_testkit::Burst, app: &TestApp) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    let events = panorama_simulator::predict::events(&burst.planned, app.options.default_region)
        .expect("the plan is valid");
    for event in events {
        values.extend(
            event
                .identifiers
                .iter()
                .map(|i| i.identifier.value().to_owned()),
        );
        values.extend(event.display_name);
        values.extend(event.subject);
        values.extend(event.summary);
    }
    for customer in &burst.customers {
        values.extend([
            customer.name.clone(),
            customer.phone.clone(),
            customer.email.clone(),
            customer.visitor.clone(),
        ]);
        values.extend(customer.account.clone());
        values.extend(customer.whatsapp.clone());
        values.extend(customer.instagram.clone());
        values.extend(customer.second_phone.clone());
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identifier_value_name_or_text_reaches_the_log() {
    let logs = capture_logs();
    let app = TestApp::builder()
        .partitions(1)
        .simulated_channels()
        .spawn()
        .await;

    // Every channel, as the simulator drives it.
    let burst = app.simulate_burst(SEED, CUSTOMERS, REQUESTS).await;
    for provider in Provider::ALL {
        assert!(
            burst
                .report
                .providers
                .get(&provider)
                .is_some_and(|counts| counts.sent > 0),
            "the burst sends through {}: {:?}",
            provider.as_str(),
            burst.report
        );
    }

    // Events of this test's people, and a call linking two account holders.
    for (event, expected) in [
        (
            person(
                "leak-anna",
                1,
                &[("phone", ANNA.0), ("email", ANNA.1)],
                ANNA.2,
            ),
            202,
        ),
        (
            person(
                "leak-bert",
                2,
                &[("phone", BERT.0), ("email", BERT.1)],
                BERT.2,
            ),
            202,
        ),
        (
            person(
                "leak-cora",
                3,
                &[("phone", CORA.0), ("account", CORA.1)],
                "C",
            ),
            202,
        ),
        (
            person(
                "leak-dirk",
                4,
                &[("phone", DIRK.0), ("account", DIRK.1)],
                "D",
            ),
            202,
        ),
        (
            person(
                "leak-link",
                5,
                &[("phone", CORA.0), ("account", DIRK.1)],
                "D",
            ),
            202,
        ),
        // Validation failures that name the field holding the value.
        (
            person("leak-bad-phone", 6, &[("phone", "+3168765000")], ANNA.2),
            422,
        ),
        (
            person(
                "leak-bad-email",
                6,
                &[("email", "anna.leak@@example.org")],
                ANNA.2,
            ),
            422,
        ),
        (
            {
                let mut event = person("leak-bad-channel", 6, &[("phone", ANNA.0)], ANNA.2);
                event["channel"] = json!(ANNA.0);
                event
            },
            422,
        ),
    ] {
        let response = app.post_events(&event).await;
        assert_eq!(response.status(), expected, "{event}");
    }
    let malformed = app
        .http
        .post(format!("{}/v1/events", app.base_url))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"identifiers": [{{"kind": "email", "value": "{}""#,
            ANNA.1
        ));
    assert_eq!(status(malformed).await, 400);

    // Webhooks with bad signatures or credentials, full of identifiers.
    let twilio = app
        .http
        .post(format!("{}/v1/channels/twilio/voice", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(format!(
            "CallSid=CAleak&CallStatus=ringing&From={}&To=%2B31201234567",
            plus(BERT.0)
        ));
    assert_eq!(status(twilio).await, 401);
    let meta = app
        .http
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", format!("sha256={}", "00".repeat(32)))
        .body(whatsapp_notification(json!([whatsapp_text(
            "wamid.leak-1"
        )])));
    assert_eq!(status(meta).await, 401);
    let web = app
        .http
        .post(format!("{}/v1/channels/web/events", app.base_url))
        .header("origin", DemoSecrets::WEB_ORIGIN)
        .header("x-panorama-write-key", "not-the-key")
        .json(&json!({"type": "form.submitted", "visitor_id": "v-leak01",
            "form": {"id": "contact", "fields": {"email": ANNA.1, "phone": ANNA.0, "name": ANNA.2}}}));
    assert_eq!(status(web).await, 401);
    let cti = app
        .http
        .post(format!("{}/v1/channels/cti/events", app.base_url))
        .bearer_auth("not-a-token")
        .json(&json!({"call_id": "leak-1", "state": "ringing", "direction": "inbound", "caller": BERT.0}));
    assert_eq!(status(cti).await, 401);
    let mailgun = app
        .http
        .post(format!("{}/v1/channels/mailgun/inbound", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "timestamp=1&token=t&signature={}&sender={}&from={}&body-plain=x",
            "00".repeat(32),
            BERT.1,
            BERT.1
        ));
    assert_eq!(status(mailgun).await, 401);
    let sendgrid = app
        .http
        .post(format!("{}/v1/channels/sendgrid/inbound", app.base_url))
        .basic_auth("inbound", Some("guess"))
        .body(format!("From: {} <{}>\r\n\r\nhello\r\n", BERT.2, BERT.1));
    assert_eq!(status(sendgrid).await, 401);

    // A signed notification whose second item breaks the contract: the
    // first is published, the second refused by its path.
    let signed = whatsapp_notification(json!([
        whatsapp_text("wamid.leak-2"),
        whatsapp_text(&format!("wamid.{}", "x".repeat(600))),
    ]));
    let meta = app
        .http
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            format!(
                "sha256={}",
                hmac_sha256_hex(DemoSecrets::META_APP_SECRET.as_bytes(), &signed)
            ),
        )
        .body(signed);
    assert_eq!(status(meta).await, 200);

    // Records the projector cannot take: dead letters.
    app.psql(
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.summary = 'refuse me' THEN
             RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22023';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_marked BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION refuse_marked();",
    )
    .await;
    Producer::new(&ProducerSettings::new(&app.options.kafka.brokers))
        .expect("producer")
        .publish(&app.options.kafka.topic, &poison_records())
        .await
        .expect("written to the topic");

    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;
    assert_eq!(
        app.psql("SELECT count(*) FROM dead_letters").await.trim(),
        "3",
        "the three poison records are dead-lettered"
    );

    // Agent reads: lookups that find someone, nobody, or refuse the value.
    let agent = app.token(Role::Agent).await;
    let anna = id_of(&app, &agent, &format!("phone={}", plus(ANNA.0))).await;
    let bert = id_of(&app, &agent, &format!("email={}", BERT.1)).await;
    let cora = id_of(&app, &agent, &format!("account={}", CORA.1)).await;
    id_of(&app, &agent, &format!("whatsapp={WHATSAPP}")).await;
    let get = |path: String| app.request(reqwest::Method::GET, &path, Some(&agent));
    assert_eq!(
        status(get(format!("/v1/customers/lookup?phone={}", plus(NOBODY)))).await,
        404
    );
    assert_eq!(
        status(get("/v1/customers/lookup?phone=%2B3168765000".to_owned())).await,
        400
    );
    assert_eq!(
        status(get(format!("/v1/customers/lookup?fax={}", plus(ANNA.0)))).await,
        400
    );
    for path in [
        format!("/v1/customers/{anna}"),
        format!("/v1/customers/{anna}/timeline"),
        format!("/v1/customers/{anna}/identity"),
        format!("/v1/customers/{anna}/cases"),
        format!("/v1/tasks?customer={anna}"),
        "/v1/insights".to_owned(),
        format!("/v1/stream?customer={anna}"),
    ] {
        assert_eq!(status(get(path.clone())).await, 200, "{path}");
    }

    // Agent writes with personal words in them.
    let post = |path: String, body: Value| {
        app.request(reqwest::Method::POST, &path, Some(&agent))
            .json(&body)
    };
    assert_eq!(
        status(post(
            format!("/v1/customers/{anna}/notes"),
            json!({"text": NOTE})
        ))
        .await,
        202
    );
    assert_eq!(
        status(post(
            "/v1/notes".to_owned(),
            json!({"identifier": {"kind": "phone", "value": UNKNOWN_CALLER}, "text": NOTE})
        ))
        .await,
        202
    );

    // Admin work: a merge with a reason, its undoing, the conflict settled
    // with a note, the audit trail.
    let merged = app
        .post_json(
            &format!("/v1/customers/{anna}/merge"),
            &json!({"other": bert, "reason": MERGE_REASON}),
        )
        .await;
    assert_eq!(merged.status(), 200);
    let unmerged = app
        .post_json(
            &format!("/v1/customers/{anna}/unmerge"),
            &json!({"merged": bert}),
        )
        .await;
    assert_eq!(unmerged.status(), 200);
    let conflicts = app
        .get_json(&format!("/v1/identity/conflicts?customer={cora}"))
        .await;
    let conflict = conflicts["conflicts"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a conflict about cora: {conflicts}"))
        .to_owned();
    let resolved = app
        .post_json(
            &format!("/v1/identity/conflicts/{conflict}/resolve"),
            &json!({"action": "dismiss", "note": CONFLICT_NOTE}),
        )
        .await;
    assert_eq!(resolved.status(), 200);
    app.get_json(&format!("/v1/audit?customer={anna}")).await;

    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;
    let mut values = burst_values(&burst, &app);
    app.stop().await;

    values.extend(own_values().into_iter().map(str::to_owned));
    // Short values (a two-letter name) could match anything.
    values.retain(|value| value.chars().count() >= 6);
    let text = logs.text();
    assert!(
        text.contains("request served") && text.contains("http_request"),
        "the capture holds the request log and its spans"
    );
    let found = logs.find(values.iter().map(String::as_str));
    assert!(
        found.is_empty(),
        "{} values of the test data are in the log:\n{}",
        found.len(),
        found
            .iter()
            .map(|(value, line)| format!("  {value:?} in: {}", truncate(line)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn truncate(line: &str) -> String {
    line.chars().take(400).collect()
}
