//! Nothing a provider hands over is lost or stuck at the gateway: a Mailgun
//! delivery answered 503 while the broker was down is accepted on retry; one
//! bad item in a Meta notification does not hold back the good ones; email
//! routes take messages of realistic size; and an identifier value that does
//! not parse stays on its event, is counted and is named in the answer.
//!
//! Every test here runs the real gateway, broker, projector and PostgreSQL.
//! Metrics are process-wide: each test reads only series no other test in
//! this file touches.

use std::time::Duration;

use panorama_channels::{mailgun, meta};
use panorama_e2e::prometheus::Exposition;
use panorama_testkit::{Broker, Engine, TestApp, WAIT, eventually, random_name};
use serde_json::{Value, json};

const MAILGUN_KEY: &str = "mailgun-signing-key";
const META_SECRET: &str = "meta-app-secret";
const CHANNEL_TOKEN: &str = "channel-token-1";
const WRITE_KEY: &str = "pk_web_1";
const ORIGIN: &str = "https://shop.example";
const MIB: usize = 1024 * 1024;

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_body(pairs: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A Mailgun route forward of one customer email, signed now with `token`.
fn mailgun_forward(token: &str) -> String {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = mailgun::sign(&timestamp, token, MAILGUN_KEY);
    form_body(&[
        ("timestamp", timestamp),
        ("token", token.to_owned()),
        ("signature", signature),
        ("sender", "bob@example.com".to_owned()),
        ("from", "Bob Visser <bob@example.com>".to_owned()),
        ("recipient", "support@shop.example".to_owned()),
        ("subject", "Charged twice for order 2002".to_owned()),
        (
            "body-plain",
            "Hello, I was charged twice for order 2002.".to_owned(),
        ),
        ("Message-Id", "<charged-twice-2002@example.com>".to_owned()),
    ])
}

async fn post_mailgun(app: &TestApp, body: &str) -> reqwest::Response {
    app.anonymous
        .post(format!("{}/v1/channels/mailgun/inbound", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("answer")
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The timeline entries of the customer found by `lookup` (`email=...`).
async fn timeline(app: &TestApp, lookup: &str) -> Vec<Value> {
    let customer = app
        .get_json(&format!("/v1/customers/lookup?{lookup}"))
        .await;
    let id = customer["id"].as_str().expect("customer id");
    let timeline = app.get_json(&format!("/v1/customers/{id}/timeline")).await;
    timeline["entries"].as_array().expect("entries").clone()
}

async fn metrics(app: &TestApp) -> Exposition {
    Exposition::parse(&app.metrics_text().await).expect("Prometheus text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailgun_retry_after_a_broker_outage_is_accepted_and_a_replay_after_success_is_not() {
    // A private broker that survives a restart, so it can go down and come
    // back under a running gateway.
    let mut broker = tokio::task::spawn_blocking(|| Broker::start(Engine::TempSqlite))
        .await
        .expect("joined")
        .expect("private broker");
    let (topic, dlq) = (random_name("events"), random_name("dlq"));
    tokio::task::block_in_place(|| {
        broker.create_topic(&topic, 1).expect("topic");
        broker.create_topic(&dlq, 1).expect("dead-letter topic");
    });
    let bootstrap = broker.bootstrap();
    let app = TestApp::builder()
        .configure(move |options| {
            options.kafka.brokers = bootstrap;
            options.kafka.topic = topic;
            options.kafka.dlq_topic = dlq;
            options.kafka.produce_timeout = Duration::from_secs(2);
            options.channels.mailgun_signing_key = Some(MAILGUN_KEY.into());
        })
        .spawn()
        .await;

    let delivery = mailgun_forward("4f0c6dc7bd6f0a63b6c4b5f2d1e0a9b8c7d6e5f4a3b2c1d0e9");
    tokio::task::block_in_place(|| broker.kill());
    let response = post_mailgun(&app, &delivery).await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5"),
        "a 503 says when to retry"
    );
    let (status, body) = json_of(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/broker-unavailable");

    // Mailgun retries the same signed request (same token). Until the
    // producer has reconnected it may get 503 again, never 401.
    tokio::task::block_in_place(|| broker.restart()).expect("broker back");
    let accepted = eventually("the retried delivery is accepted", WAIT, || async {
        let (status, body) = json_of(post_mailgun(&app, &delivery).await).await;
        assert_ne!(
            status, 401,
            "a retry after a 503 refused as a replay: {body}"
        );
        (status == 200).then_some(body)
    })
    .await;
    let ids = accepted["accepted"].as_array().expect("accepted ids");
    assert_eq!(ids.len(), 1, "{accepted}");

    app.wait_for_events(1).await;
    let entries = timeline(&app, "email=bob@example.com").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["event_id"], ids[0]);
    assert_eq!(entries[0]["source"], "mailgun");

    // The same request once more, now that it was accepted: a replay.
    let (status, body) = json_of(post_mailgun(&app, &delivery).await).await;
    assert_eq!(status, 401, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_item_in_a_meta_notification_does_not_hold_back_the_others() {
    let app = TestApp::builder()
        .configure(|options| {
            options.channels.meta_app_secret = Some(META_SECRET.into());
            options.channels.meta_verify_token = Some("meta-verify-token".into());
        })
        .spawn()
        .await;
    let now = chrono::Utc::now().timestamp().to_string();
    // The second message's id is longer than any provider id the event
    // contract takes: that item alone breaks the contract.
    let bad_id = format!("wamid.{}", "A".repeat(600));
    let notification = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": [
                        {"profile": {"name": "Anna de Vries"}, "wa_id": "31612345678"},
                        {"profile": {"name": "Piet Jansen"}, "wa_id": "31687654321"}
                    ],
                    "messages": [
                        {"from": "31612345678", "id": "wamid.good-1", "timestamp": now,
                         "type": "text", "text": {"body": "Any news on order 1001?"}},
                        {"from": "31687654321", "id": bad_id, "timestamp": now,
                         "type": "text", "text": {"body": "Where is my refund?"}}
                    ]
                }
            }]
        }]
    });
    let body = serde_json::to_vec(&notification).expect("json");
    let response = app
        .anonymous
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", meta::sign(&body, META_SECRET))
        .body(body)
        .send()
        .await
        .expect("answer");
    let (status, answer) = json_of(response).await;
    assert_eq!(status, 200, "Meta must not retry the batch: {answer}");
    assert_eq!(
        answer["accepted"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    let refused = answer["refused"].as_array().expect("refused items");
    assert_eq!(refused.len(), 1, "{answer}");
    assert_eq!(refused[0]["path"], "entry[0].changes[0].value.messages[1]");
    let reason = refused[0]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("event_id:"), "{reason}");
    // The refusal names the item, not what the customer wrote or who they are.
    let text = answer.to_string();
    for personal in ["31687654321", "Piet", "refund", "AAAAAAAAAA"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }

    app.wait_for_events(1).await;
    let entries = timeline(&app, "whatsapp=31612345678").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["event_id"], answer["accepted"][0]);
    assert_eq!(
        metrics(&app).await.value(
            "panorama_ingest_refused_items_total",
            &[("source", "meta.whatsapp")]
        ),
        Some(1.0)
    );
    app.stop().await;
}

/// A raw MIME message from a customer with an attachment, `size` bytes or a
/// little more.
fn email_with_attachment(message_id: &str, size: usize) -> Vec<u8> {
    use base64::Engine as _;
    let head = format!(
        "From: Anna de Vries <anna@example.nl>\r\n\
         To: support@shop.example\r\n\
         Subject: Photos of the damaged parcel\r\n\
         Message-ID: <{message_id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"part-boundary\"\r\n\
         \r\n\
         --part-boundary\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         The parcel arrived damaged, photos attached.\r\n\
         --part-boundary\r\n\
         Content-Type: image/jpeg; name=\"parcel.jpg\"\r\n\
         Content-Disposition: attachment; filename=\"parcel.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n"
    );
    let tail = "--part-boundary--\r\n";
    // Base64 in 76-character lines: 78 bytes per 57 bytes of image.
    let lines = size.saturating_sub(head.len() + tail.len()) / 78 + 1;
    let image: Vec<u8> = (0..lines * 57).map(|n| (n * 31 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&image);
    let mut message = head.into_bytes();
    for line in encoded.as_bytes().chunks(76) {
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(tail.as_bytes());
    message
}

async fn post_mime(app: &TestApp, message: Vec<u8>) -> (u16, Value) {
    let response = app
        .anonymous
        .post(format!("{}/v1/channels/email/mime", app.base_url))
        .bearer_auth(CHANNEL_TOKEN)
        .header("content-type", "message/rfc822")
        .body(message)
        .send()
        .await
        .expect("answer");
    json_of(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_routes_take_messages_of_realistic_size_and_other_routes_do_not() {
    let app = TestApp::builder()
        .configure(|options| options.channels.channel_tokens = vec![CHANNEL_TOKEN.into()])
        .spawn()
        .await;
    assert_eq!(app.options.http.max_body_bytes, MIB);
    assert_eq!(app.options.http.max_email_body_bytes, 25 * MIB);

    let five_mib = email_with_attachment("parcel-photos-1@mail.example.nl", 5 * MIB);
    assert!(five_mib.len() >= 5 * MIB && five_mib.len() < 6 * MIB);
    let (status, answer) = post_mime(&app, five_mib).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"].as_array().map(Vec::len), Some(1));
    app.wait_for_events(1).await;
    let entries = timeline(&app, "email=anna@example.nl").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["type"], "email.received");
    assert_eq!(entries[0]["attributes"]["attachments"], "1");

    // Every other route keeps the general limit.
    let mut event = panorama_e2e::contact(1, "too-big", panorama_e2e::at_minute(1), "email");
    event["summary"] = json!("x".repeat(5 * MIB));
    let (status, problem) = json_of(app.post_events(&event).await).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "/problems/payload-too-large");

    // Past the email limit: 413 too, and nothing published.
    let too_big = email_with_attachment("parcel-photos-2@mail.example.nl", 25 * MIB + 1024);
    let (status, problem) = post_mime(&app, too_big).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "/problems/payload-too-large");
    assert_eq!(app.records_in(&app.options.kafka.topic).await, 1);
    app.stop().await;
}

/// A contact form with a national phone number and nothing else that
/// identifies the customer but the site's visitor id.
fn form_with_national_number(visitor: &str) -> Value {
    json!({
        "type": "form.submitted",
        "visitor_id": visitor,
        "event_id": format!("callback-form-{visitor}"),
        "url": "https://shop.example/contact",
        "form": {"id": "callback", "fields": {
            "name": "Anna de Vries",
            "phone": "0612345678",
            "message": "Please call me back about order 1001"
        }}
    })
}

async fn post_form(app: &TestApp, form: &Value) -> (u16, Value) {
    let response = app
        .anonymous
        .post(format!("{}/v1/channels/web/events", app.base_url))
        .header("origin", ORIGIN)
        .header("x-panorama-write-key", WRITE_KEY)
        .json(form)
        .send()
        .await
        .expect("answer");
    json_of(response).await
}

fn web_app(region: Option<&'static str>) -> panorama_testkit::AppBuilder {
    TestApp::builder().configure(move |options| {
        options.default_region = region.and_then(|r| r.parse().ok());
        options.channels.web_write_keys = vec![WRITE_KEY.into()];
        options.channels.web_allowed_origins = vec![ORIGIN.into()];
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_number_that_does_not_parse_is_kept_counted_and_named() {
    // No default region: "0612345678" cannot become an identifier.
    let app = web_app(None).spawn().await;
    let (status, answer) = post_form(&app, &form_with_national_number("v-no-region")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"].as_array().map(Vec::len), Some(1));
    let warnings = answer["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{answer}");
    assert_eq!(warnings[0]["field"], "form.fields.phone");
    assert_eq!(warnings[0]["kind"], "phone");
    let message = warnings[0]["message"].as_str().expect("message");
    assert!(message.contains("needs a country"), "{message}");
    assert!(
        !answer.to_string().contains("0612345678"),
        "the answer never repeats the value: {answer}"
    );

    app.wait_for_events(1).await;
    let entries = timeline(&app, "visitor=v-no-region").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["attributes"]["unparsed.phone"], "0612345678");
    assert_eq!(
        metrics(&app).await.value(
            "panorama_ingest_unparsed_identifiers_total",
            &[("source", "web.form"), ("kind", "phone")]
        ),
        Some(1.0)
    );
    app.stop().await;

    // With PANORAMA_DEFAULT_REGION=NL the same form gives the customer's
    // phone number, and nothing to warn about.
    let app = web_app(Some("NL")).spawn().await;
    let (status, answer) = post_form(&app, &form_with_national_number("v-nl")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("warnings").is_none(), "{answer}");
    app.wait_for_events(1).await;
    let entries = timeline(&app, "phone=%2B31612345678").await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0]["attributes"].get("unparsed.phone").is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_left_without_identifiers_is_ignored_but_still_warns() {
    let app = web_app(None).spawn().await;
    // Only a mistyped email address: no identifier is left.
    let form = json!({
        "type": "form.submitted",
        "form": {"fields": {"email": "anna at example.nl", "message": "Hello?"}}
    });
    let (status, answer) = post_form(&app, &form).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ignored"], "no_identifier");
    assert_eq!(answer["warnings"][0]["field"], "form.fields.email");
    assert_eq!(answer["warnings"][0]["kind"], "email");
    assert!(!answer.to_string().contains("anna at"), "{answer}");
    assert_eq!(app.records_in(&app.options.kafka.topic).await, 0);
    app.stop().await;
}
