//! Provider webhooks signed as the providers sign them, against an app
//! configured with the simulator's demo secrets
//! (`TestApp::builder().simulated_channels()`).

use panorama_channels::form::Form;
use panorama_channels::signature::hmac_sha256_hex;
use panorama_channels::twilio;
use panorama_simulator::DemoSecrets;
use panorama_testkit::TestApp;
use serde_json::Value;

/// A completed inbound call from `phone`, signed by Twilio: the caller's
/// number is verified. The app's answer.
#[allow(dead_code)]
pub(crate) async fn twilio_call(app: &TestApp, call_sid: &str, phone: &str) -> reqwest::Response {
    let pairs: Vec<(String, String)> = [
        ("AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ("CallSid", call_sid),
        ("CallStatus", "completed"),
        ("Direction", "inbound"),
        ("From", phone),
        ("To", "+31201234567"),
        ("CallDuration", "60"),
        ("SequenceNumber", "2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let path = "/v1/channels/twilio/voice";
    let signature = twilio::sign(
        &format!("{}{path}", DemoSecrets::PUBLIC_URL),
        &Form::from_pairs(pairs.clone()),
        DemoSecrets::TWILIO_AUTH_TOKEN,
    );
    let body = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encoded(k), form_encoded(v)))
        .collect::<Vec<_>>()
        .join("&");
    app.request(reqwest::Method::POST, path, None)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(body)
        .send()
        .await
        .expect("answer")
}

/// `body` posted to the Meta webhook with Meta's `X-Hub-Signature-256`.
#[allow(dead_code)]
pub(crate) async fn meta_webhook(app: &TestApp, body: &Value) -> reqwest::Response {
    let body = serde_json::to_vec(body).expect("json");
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(DemoSecrets::META_APP_SECRET.as_bytes(), &body)
    );
    app.anonymous
        .post(format!("{}/v1/channels/meta/webhook", app.base_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("answer")
}

/// `text` percent-encoded for an `application/x-www-form-urlencoded` body.
fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
