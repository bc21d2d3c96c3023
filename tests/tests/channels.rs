//! Provider webhooks through the real gateway, broker, projector and
//! PostgreSQL: one person calls, emails, messages on WhatsApp and fills a
//! web form, and every contact lands in the history. Signatures and
//! credentials are checked the way each provider signs.

use panorama_channels::multipart::{self, Part};
use panorama_channels::signature::{hmac_sha1_base64, hmac_sha256_hex};
use panorama_testkit::TestApp;
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://panorama.example.com";
const TWILIO_TOKEN: &str = "twilio-auth-token";
const META_SECRET: &str = "meta-app-secret";
const META_VERIFY: &str = "meta-verify-token";
const SENDGRID_SECRET: &str = "sendgrid-secret";
const MAILGUN_KEY: &str = "mailgun-signing-key";
const CHANNEL_TOKEN: &str = "channel-token-1";
const WRITE_KEY: &str = "pk_web_1";
const ORIGIN: &str = "https://shop.example";

async fn app() -> TestApp {
    TestApp::builder()
        .configure(|options| {
            // A Dutch shop: national numbers on its forms are Dutch.
            options.default_region = "NL".parse().ok();
            let channels = &mut options.channels;
            channels.public_url = Some(PUBLIC_URL.into());
            channels.twilio_auth_token = Some(TWILIO_TOKEN.into());
            channels.meta_app_secret = Some(META_SECRET.into());
            channels.meta_verify_token = Some(META_VERIFY.into());
            channels.sendgrid_secret = Some(SENDGRID_SECRET.into());
            channels.mailgun_signing_key = Some(MAILGUN_KEY.into());
            channels.channel_tokens = vec![CHANNEL_TOKEN.into()];
            channels.web_write_keys = vec![WRITE_KEY.into()];
            channels.web_allowed_origins = vec![ORIGIN.into()];
        })
        .spawn()
        .await
}

fn twilio_form(status: &str, sequence: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".into()),
        ("CallSid", "CA42ed11f93dc08b952027ffbc406d0868".into()),
        ("CallStatus", status.into()),
        ("Direction", "inbound".into()),
        ("From", "+31612345678".into()),
        ("To", "+31201234567".into()),
        ("CallDuration", "184".into()),
        ("SequenceNumber", sequence.into()),
        ("Timestamp", "Mon, 23 Nov 2026 09:00:00 +0000".into()),
    ]
}

/// Twilio's scheme: the full URL, then each parameter sorted by name, name
/// then value, HMAC-SHA1 with the auth token, base64.
fn twilio_signature(token: &str, url: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = params.to_vec();
    sorted.sort();
    let mut message = url.to_owned();
    for (name, value) in sorted {
        message.push_str(name);
        message.push_str(&value);
    }
    hmac_sha1_base64(token.as_bytes(), message.as_bytes())
}

fn form_body(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('+', "%2B")
                    .replace(' ', "+")
                    .replace(',', "%2C")
                    .replace(':', "%3A")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_twilio(app: &TestApp, params: &[(&str, String)], token: &str) -> reqwest::Response {
    let signature = twilio_signature(
        token,
        &format!("{PUBLIC_URL}/v1/channels/twilio/voice"),
        params,
    );
    app.http
        .post(format!("{}/v1/channels/twilio/voice", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form_body(params))
        .send()
        .await
        .expect("answer")
}

fn raw_email() -> String {
    "From: Anna de Vries <Anna@Example.nl>\r\n\
     To: support@shop.example\r\n\
     Subject: Where is my order 1001?\r\n\
     Message-ID: <order-1001-question@mail.example.nl>\r\n\
     Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
     Content-Type: text/plain; charset=utf-8\r\n\
     \r\n\
     Hello, my order 1001 did not arrive. Can you check?\r\n"
        .to_owned()
}

fn whatsapp_message() -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Anna de Vries"}, "wa_id": "31612345678"}],
                    "messages": [{
                        "from": "31612345678",
                        "id": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTdBRkQ4RDBGNzE1MjVDRDI0NwA=",
                        "timestamp": "1795424400",
                        "type": "text",
                        "text": {"body": "Any news on order 1001?"}
                    }]
                }
            }]
        }]
    })
}

async fn post_meta(app: &TestApp, body: &[u8], secret: &str) -> reqwest::Response {
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body));
    app.http
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("answer")
}

fn web_form() -> Value {
    json!({
        "type": "form.submitted",
        "visitor_id": "v-7f3c9a1e",
        "event_id": "contact-form-1001",
        "occurred_at": "2026-11-23T11:00:00Z",
        "url": "https://shop.example/contact",
        "form": {"id": "contact", "fields": {
            "name": "Anna de Vries",
            "email": "anna@example.nl",
            "phone": "06 12345678",
            "message": "Still no parcel for order 1001"
        }}
    })
}

async fn accepted(response: reqwest::Response) -> Vec<String> {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body["accepted"]
        .as_array()
        .unwrap_or_else(|| panic!("accepted events: {body}"))
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect()
}

async fn timeline_types(app: &TestApp, lookup: &str) -> Vec<String> {
    let customer = app
        .get_json(&format!("/v1/customers/lookup?{lookup}"))
        .await;
    let id = customer["id"].as_str().expect("id");
    let timeline = app.get_json(&format!("/v1/customers/{id}/timeline")).await;
    timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["source"].as_str().unwrap_or_default(),
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_across_phone_email_whatsapp_and_web_lands_in_the_history() {
    let app = app().await;
    let mut posted = Vec::new();

    // A call: ringing, answered, completed. A Twilio retry of the last one
    // is the same event.
    posted.extend(
        accepted(post_twilio(&app, &twilio_form("ringing", "0"), TWILIO_TOKEN).await).await,
    );
    posted.extend(
        accepted(post_twilio(&app, &twilio_form("in-progress", "1"), TWILIO_TOKEN).await).await,
    );
    let completed =
        accepted(post_twilio(&app, &twilio_form("completed", "2"), TWILIO_TOKEN).await).await;
    let retried =
        accepted(post_twilio(&app, &twilio_form("completed", "2"), TWILIO_TOKEN).await).await;
    assert_eq!(completed, retried, "a retried callback is the same event");
    posted.extend(completed);

    // An email through SendGrid in raw mode, with basic auth; SendGrid
    // reports that the sender's domain signed it, so the address is
    // verified.
    let boundary = "xYzZY";
    let body = multipart::encode(
        boundary,
        &[
            Part {
                name: "email".into(),
                filename: None,
                content_type: None,
                data: raw_email().into_bytes(),
            },
            Part {
                name: "to".into(),
                filename: None,
                content_type: None,
                data: b"support@shop.example".to_vec(),
            },
            Part {
                name: "dkim".into(),
                filename: None,
                content_type: None,
                data: b"{@example.nl : pass}".to_vec(),
            },
        ],
    );
    let response = app
        .http
        .post(format!("{}/v1/channels/sendgrid/inbound", app.base_url))
        .basic_auth("inbound", Some(SENDGRID_SECRET))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("answer");
    posted.extend(accepted(response).await);

    // A WhatsApp message from the same number.
    let whatsapp = serde_json::to_vec(&whatsapp_message()).expect("json");
    posted.extend(accepted(post_meta(&app, &whatsapp, META_SECRET).await).await);

    // A web form with the email and (national) phone, relayed by the shop's
    // back end where Anna is signed in: its channel token vouches for
    // them. (From a browser's write key they would only be claimed, and
    // could link nobody: see tests/trust.rs.)
    let response = app
        .request(
            reqwest::Method::POST,
            "/v1/channels/web/events",
            Some(CHANNEL_TOKEN),
        )
        .header("origin", ORIGIN)
        .json(&web_form())
        .send()
        .await
        .expect("answer");
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    posted.extend(accepted(response).await);

    assert_eq!(
        posted.len(),
        6,
        "3 call states, 1 email, 1 WhatsApp message, 1 form"
    );
    app.wait_for_events(6).await;

    // Every contact is in the history: the phone identifies the call and the
    // WhatsApp message, the email address the email.
    let by_phone = timeline_types(&app, "phone=%2B31612345678").await;
    for expected in [
        "twilio/call.started",
        "twilio/call.answered",
        "twilio/call.ended",
        "meta.whatsapp/message.received",
    ] {
        assert!(
            by_phone.contains(&expected.to_owned()),
            "{expected} in {by_phone:?}"
        );
    }
    let by_email = timeline_types(&app, "email=anna@example.nl").await;
    assert!(
        by_email.contains(&"sendgrid/email.received".to_owned()),
        "{by_email:?}"
    );
    let whatsapp_customer = app
        .get_json("/v1/customers/lookup?whatsapp=31612345678")
        .await;
    let phone_customer = app
        .get_json("/v1/customers/lookup?phone=%2B31612345678")
        .await;
    assert_eq!(
        whatsapp_customer["id"], phone_customer["id"],
        "WhatsApp joins the caller"
    );
    assert_eq!(phone_customer["display_name"], "Anna de Vries");
    // The web form carries the email address and the phone number: it links
    // the caller and the emailer, so they are one customer from then on,
    // whatever order the events were projected in.
    let customer = phone_customer["id"].clone();
    for lookup in ["email=anna@example.nl", "visitor=v-7f3c9a1e"] {
        assert_eq!(
            app.get_json(&format!("/v1/customers/lookup?{lookup}"))
                .await["id"],
            customer,
            "{lookup} leads to the one customer"
        );
    }
    let timeline = app
        .get_json(&format!(
            "/v1/customers/{}/timeline",
            customer.as_str().unwrap_or_default()
        ))
        .await;
    let mut ids: Vec<&str> = timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["event_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        6,
        "one timeline with every contact once: {timeline}"
    );
    let profile = app
        .get_json(&format!(
            "/v1/customers/{}",
            customer.as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(profile["event_count"], 6);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_credentials_are_refused_and_publish_nothing() {
    let app = app().await;
    let status = |response: reqwest::Response| response.status().as_u16();

    assert_eq!(
        status(post_twilio(&app, &twilio_form("ringing", "0"), "wrong-token").await),
        401
    );
    let unsigned = app
        .http
        .post(format!("{}/v1/channels/twilio/voice", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&twilio_form("ringing", "0")))
        .send()
        .await
        .expect("answer");
    assert_eq!(status(unsigned), 401);

    let whatsapp = serde_json::to_vec(&whatsapp_message()).expect("json");
    assert_eq!(
        status(post_meta(&app, &whatsapp, "wrong-secret").await),
        401
    );
    let mut tampered = whatsapp.clone();
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(META_SECRET.as_bytes(), &whatsapp)
    );
    tampered.extend_from_slice(b" ");
    let response = app
        .http
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("x-hub-signature-256", signature)
        .body(tampered)
        .send()
        .await
        .expect("answer");
    assert_eq!(status(response), 401);

    let response = app
        .http
        .post(format!("{}/v1/channels/sendgrid/inbound", app.base_url))
        .basic_auth("inbound", Some("guess"))
        .body("x")
        .send()
        .await
        .expect("answer");
    assert_eq!(status(response), 401);

    let response = app
        .anonymous
        .post(format!("{}/v1/channels/email/mime", app.base_url))
        .header("content-type", "message/rfc822")
        .body(raw_email())
        .send()
        .await
        .expect("answer");
    assert_eq!(status(response), 401, "raw MIME needs a channel token");

    let response = app
        .http
        .post(format!("{}/v1/channels/web/events", app.base_url))
        .header("origin", "https://evil.example")
        .header("x-panorama-write-key", WRITE_KEY)
        .json(&web_form())
        .send()
        .await
        .expect("answer");
    assert_eq!(status(response), 401, "write key from a foreign origin");

    let response = app
        .http
        .post(format!("{}/v1/channels/cti/events", app.base_url))
        .bearer_auth("not-a-token")
        .json(&json!({"call_id": "c1", "state": "ringing", "direction": "inbound", "caller": "+31612345678"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(status(response), 401);

    // Mailgun: a valid signature once, then the same token again.
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let token = "4f0c6dc7bd6f0a63b6c4b5f2d1e0a9b8c7d6e5f4a3b2c1d0e9";
    let signature = hmac_sha256_hex(
        MAILGUN_KEY.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let mailgun = |signature: String| {
        let body = form_body(&[
            ("timestamp", timestamp.clone()),
            ("token", token.to_owned()),
            ("signature", signature),
            ("sender", "bob@example.com".to_owned()),
            ("from", "Bob <bob@example.com>".to_owned()),
            ("recipient", "support@shop.example".to_owned()),
            ("subject", "Invoice question".to_owned()),
            ("body-plain", "Why was I charged twice?".to_owned()),
            ("Message-Id", "<invoice-q@example.com>".to_owned()),
        ]);
        app.http
            .post(format!("{}/v1/channels/mailgun/inbound", app.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(
        status(mailgun("00".repeat(32)).await.expect("answer")),
        401,
        "wrong signature"
    );
    assert_eq!(
        accepted(mailgun(signature.clone()).await.expect("answer"))
            .await
            .len(),
        1
    );
    assert_eq!(
        status(mailgun(signature).await.expect("answer")),
        401,
        "replayed token"
    );

    app.wait_for_events(1).await;
    assert_eq!(
        app.records_in(&app.options.kafka.topic).await,
        1,
        "only the one valid delivery was published"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_preflight_ignored_payloads_and_disabled_adapters() {
    let app = app().await;
    let challenge = app
        .get(&format!(
            "/v1/channels/meta/webhook?hub.mode=subscribe&hub.verify_token={META_VERIFY}&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!(challenge.status(), 200);
    assert_eq!(challenge.text().await.expect("body"), "1158201444");
    let wrong = app
        .get("/v1/channels/meta/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
        .await;
    assert_eq!(wrong.status(), 401);

    let preflight = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/channels/web/events", app.base_url),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("answer");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );

    // A status Panorama does not map: 200, so Meta does not retry.
    let template_status = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "message_template_status_update",
            "value": {"event": "APPROVED", "message_template_id": 1, "message_template_name": "x", "message_template_language": "en_US"}}]}]
    });
    let body = serde_json::to_vec(&template_status).expect("json");
    let response = post_meta(&app, &body, META_SECRET).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert!(answer["ignored"].is_string(), "{answer}");

    // An anonymous caller has no usable identifier: ignored, not refused.
    let mut anonymous = twilio_form("ringing", "0");
    anonymous[4].1 = "anonymous".into();
    let response = post_twilio(&app, &anonymous, TWILIO_TOKEN).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.records_in(&app.options.kafka.topic).await, 0);

    let plain = TestApp::spawn().await;
    let response = plain
        .http
        .post(format!("{}/v1/channels/twilio/voice", plain.base_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 404, "no secret, no adapter");
    plain.stop().await;
    app.stop().await;
}
