//! Segment-compatible ingest through the real gateway, broker, projector
//! and PostgreSQL: Segment's official Python SDK pointed at the test
//! server, and raw Segment Spec payloads (batches of mixed calls, a
//! resent `messageId`, a slow sender clock, bad calls and bad keys).
//!
//! The SDK comes from `PANORAMA_ANALYTICS_PYTHON` (a Python that has
//! `segment-analytics-python`); `make test` installs it
//! (scripts/ensure-analytics-python.sh).

use std::path::{Path, PathBuf};
use std::time::Duration;

use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};

/// A key whose identifiers are claimed.
const WRITE_KEY: &str = "seg_public_1";
/// A key of a server-side SDK whose identifiers are verified.
const VERIFIED_KEY: &str = "seg_server_1";
const CHANNEL_TOKEN: &str = "channel-token-seg";

async fn app() -> TestApp {
    TestApp::builder()
        .configure(|options| {
            let channels = &mut options.channels;
            channels.segment_write_keys = vec![WRITE_KEY.into()];
            channels.segment_verified_write_keys = vec![VERIFIED_KEY.into()];
            channels.segment_contact_events = vec!["Support Ticket Created".into()];
            channels.channel_tokens = vec![CHANNEL_TOKEN.into()];
        })
        .spawn()
        .await
}

/// The Python with Segment's SDK, or a panic that says how to get it.
fn analytics_python() -> PathBuf {
    match std::env::var_os("PANORAMA_ANALYTICS_PYTHON") {
        Some(path) if Path::new(&path).is_file() => PathBuf::from(path),
        Some(path) => panic!(
            "PANORAMA_ANALYTICS_PYTHON={} is not a file: run scripts/ensure-analytics-python.sh",
            Path::new(&path).display()
        ),
        None => panic!(
            "PANORAMA_ANALYTICS_PYTHON is not set: run \
             `export PANORAMA_ANALYTICS_PYTHON=\"$(scripts/ensure-analytics-python.sh)\"` \
             (make test does)"
        ),
    }
}

/// Sends an identify, a page, a track and an alias with the SDK, as its
/// README shows, and fails on any error the SDK reports.
const SDK_SCRIPT: &str = r#"
import sys
import segment.analytics as analytics

errors = []
analytics.write_key = sys.argv[1]
analytics.host = sys.argv[2]
analytics.max_retries = 1
analytics.on_error = lambda error, batch: errors.append(repr(error))

analytics.identify('C-2001', {'email': 'Ben@Example.com', 'name': 'Ben Bakker', 'plan': 'gold'},
                   anonymous_id='anon-ben')
analytics.page('C-2001', 'Help', 'Returns', {'url': 'https://shop.example/help/returns',
               'title': 'Returns'}, anonymous_id='anon-ben')
analytics.track('C-2001', 'Support Ticket Created', {'ticket_id': 'T-9', 'topic': 'refund'})
analytics.alias('anon-ben', 'C-2001')
analytics.flush()
analytics.shutdown()
if errors:
    print('\n'.join(errors), file=sys.stderr)
    sys.exit(1)
"#;

/// `POST` `body` to `path` with `key` as the basic auth user.
async fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    app.anonymous
        .post(format!("{}{path}", app.base_url))
        .basic_auth(key, Some(""))
        .json(body)
        .send()
        .await
        .expect("POST answers")
}

async fn answered(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// The customer `lookup` finds once the projection has it.
async fn customer(app: &TestApp, lookup: &str) -> Value {
    let path = format!("/v1/customers/lookup?{lookup}");
    eventually(&format!("a customer for {lookup}"), WAIT, || async {
        let response = app.get(&path).await;
        if response.status() != 200 {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await
}

/// The timeline of customer `id` once it holds `count` entries.
async fn timeline(app: &TestApp, id: &str, count: usize) -> Vec<Value> {
    let path = format!("/v1/customers/{id}/timeline");
    eventually(&format!("{count} timeline entries"), WAIT, || async {
        let timeline = app.get_json(&path).await;
        let entries = timeline["entries"].as_array().cloned().unwrap_or_default();
        (entries.len() == count).then_some(entries)
    })
    .await
}

/// `(kind, trust)` of every identifier of a profile.
fn trusts(profile: &Value) -> Vec<(String, String)> {
    let mut trusts = Vec::new();
    for (kind, identifiers) in profile["identifiers"].as_object().expect("identifiers") {
        for identifier in identifiers.as_array().expect("a list") {
            let trust = identifier["trust"].as_str().unwrap_or_default();
            trusts.push((kind.clone(), trust.to_owned()));
        }
    }
    trusts
}

fn types(entries: &[Value]) -> Vec<&str> {
    let mut types: Vec<&str> = entries
        .iter()
        .map(|entry| entry["type"].as_str().unwrap_or_default())
        .collect();
    types.sort_unstable();
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_lands_its_calls_on_one_customer() {
    let app = app().await;
    let host = format!("{}/v1/segment", app.base_url);
    let run = tokio::process::Command::new(analytics_python())
        .args(["-c", SDK_SCRIPT, WRITE_KEY, &host])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the SDK finishes within a minute")
        .expect("python runs");
    assert!(
        output.status.success(),
        "the SDK reported errors: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let by_account = customer(&app, "account=C-2001").await;
    let id = by_account["id"].as_str().expect("id").to_owned();
    let entries = timeline(&app, &id, 4).await;
    assert_eq!(
        types(&entries),
        [
            "contact.recorded",
            "customer.aliased",
            "customer.identified",
            "page.viewed"
        ]
    );
    assert!(entries.iter().all(|entry| entry["source"] == "segment"));
    for lookup in ["email=ben@example.com", "visitor=anon-ben"] {
        assert_eq!(
            customer(&app, lookup).await["id"],
            id,
            "{lookup} leads to the one customer"
        );
    }
    let profile = app.get_json(&format!("/v1/customers/{id}")).await;
    assert_eq!(profile["display_name"], "Ben Bakker");
    assert_eq!(
        profile["contacts"]["last_7_days"], 1,
        "only the configured track event is a contact: {profile}"
    );
    let ticket = entries
        .iter()
        .find(|entry| entry["type"] == "contact.recorded")
        .expect("the ticket");
    assert_eq!(ticket["subject"], "Support Ticket Created");
    assert_eq!(ticket["attributes"]["properties.ticket_id"], "T-9");
    assert_eq!(
        ticket["attributes"]["context.library.name"],
        "analytics-python"
    );
    // A write key is what anyone could send: its identifiers are claimed.
    let identifiers = trusts(&profile);
    assert_eq!(identifiers.len(), 3, "{identifiers:?}");
    assert!(
        identifiers.iter().all(|(_, trust)| trust == "claimed"),
        "{identifiers:?}"
    );
    app.stop().await;
}

/// Mixed calls as the Spec documents them, in one batch, with the batch's
/// `sentAt` an hour behind the gateway's clock.
fn spec_batch(user: &str, offset: &str) -> Value {
    let at = |seconds: u32| format!("{offset}:{seconds:02}.000Z");
    json!({
        "batch": [
            {"type": "identify", "userId": user, "anonymousId": format!("anon-{user}"),
             "messageId": format!("{user}-1"), "timestamp": at(1),
             "traits": {"email": format!("{user}@example.com"), "name": "Peter Gibbons",
                        "plan": "premium", "address": {"city": "San Francisco"}},
             "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0"}},
            {"type": "track", "userId": user, "event": "Course Clicked",
             "messageId": format!("{user}-2"), "timestamp": at(2),
             "properties": {"title": "Intro to Analytics"}},
            {"type": "page", "anonymousId": format!("anon-{user}"), "name": "Home",
             "messageId": format!("{user}-3"), "timestamp": at(3),
             "properties": {"title": "Welcome | Initech", "url": "https://initech.com/"}},
            {"type": "screen", "userId": user, "name": "Home",
             "messageId": format!("{user}-4"), "timestamp": at(4)},
            {"type": "group", "userId": user, "groupId": "0e8c78ea9d97a7b8185e8632",
             "messageId": format!("{user}-5"), "timestamp": at(5),
             "traits": {"name": "Initech", "employees": 329}},
            {"type": "track", "userId": user, "event": "support ticket created",
             "messageId": format!("{user}-6"), "timestamp": at(6)}
        ],
        "sentAt": at(9),
        "context": {"library": {"name": "analytics-node", "version": "2.1.0"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_spec_payloads_are_one_customer_with_corrected_times() {
    let app = app().await;
    // The sender's clock runs an hour behind the gateway's.
    let behind = chrono::Utc::now() - chrono::Duration::hours(1);
    let offset = behind.format("%Y-%m-%dT%H:%M").to_string();
    let batch = spec_batch("u-1001", &offset);
    let (status, answer) =
        answered(post_keyed(&app, "/v1/segment/batch", VERIFIED_KEY, &batch).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["accepted"].as_array().map(Vec::len), Some(6));

    // A resent batch (the same message ids) adds nothing.
    let (status, again) =
        answered(post_keyed(&app, "/v1/segment", VERIFIED_KEY, &batch).await).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["accepted"], answer["accepted"], "the same event ids");

    let id = customer(&app, "account=u-1001").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let entries = timeline(&app, &id, 6).await;
    assert_eq!(
        types(&entries),
        [
            "activity.tracked",
            "contact.recorded",
            "customer.grouped",
            "customer.identified",
            "page.viewed",
            "screen.viewed"
        ]
    );
    assert_eq!(customer(&app, "email=u-1001@example.com").await["id"], id);
    assert_eq!(customer(&app, "visitor=anon-u-1001").await["id"], id);
    // Corrected: the gateway's time of receipt less (sentAt - timestamp),
    // so about now, not an hour ago.
    for entry in &entries {
        let occurred: chrono::DateTime<chrono::Utc> = entry["occurred_at"]
            .as_str()
            .and_then(|at| at.parse().ok())
            .expect("occurred_at");
        let age = chrono::Utc::now() - occurred;
        assert!(
            age < chrono::Duration::minutes(5) && age > chrono::Duration::seconds(-5),
            "{occurred} is not corrected for the sender's clock"
        );
    }
    let identify = entries
        .iter()
        .find(|entry| entry["type"] == "customer.identified")
        .expect("identify");
    assert_eq!(identify["attributes"]["customer.plan"], "premium");
    assert_eq!(
        identify["attributes"]["customer.address.city"],
        "San Francisco"
    );
    assert_eq!(identify["attributes"]["context.userAgent"], "Mozilla/5.0");
    assert!(identify["attributes"].get("context.ip").is_none());
    let profile = app.get_json(&format!("/v1/customers/{id}")).await;
    assert_eq!(profile["contacts"]["last_7_days"], 1, "{profile}");
    let identifiers = trusts(&profile);
    assert_eq!(identifiers.len(), 3, "{identifiers:?}");
    assert!(
        identifiers.iter().all(|(_, trust)| trust == "verified"),
        "{identifiers:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_and_bad_keys_are_refused_naming_why() {
    let app = app().await;
    let call = json!({"type": "track", "userId": "u-7", "event": "Clicked", "messageId": "m-7"});

    // A wrong key: 401 problem+json; no key at all: 401 too.
    let response = post_keyed(&app, "/v1/segment", "not-a-key", &call).await;
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let (status, problem) = answered(response).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["type"], "/problems/unauthorized");
    let (status, _) = answered(
        app.anonymous
            .post(format!("{}/v1/segment", app.base_url))
            .json(&call)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 401);
    let mut wrong_in_body = call.clone();
    wrong_in_body["writeKey"] = json!("not-a-key");
    let (status, _) = answered(
        app.anonymous
            .post(format!("{}/v1/segment", app.base_url))
            .json(&wrong_in_body)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 401);

    // An unknown call type: 400 naming the field, nothing published.
    let batch = json!({"batch": [call, {"type": "purchase", "userId": "u-7"}]});
    let (status, problem) =
        answered(post_keyed(&app, "/v1/segment/batch", WRITE_KEY, &batch).await).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "batch[1].type");

    // The key in the body (as analytics-python sends it) and a channel
    // token are accepted.
    let mut keyed = json!({"batch": [call], "writeKey": WRITE_KEY});
    keyed["sentAt"] = json!(chrono::Utc::now().to_rfc3339());
    let (status, answer) = answered(
        app.anonymous
            .post(format!("{}/v1/segment/v1/batch", app.base_url))
            .json(&keyed)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, by_token) = answered(
        app.anonymous
            .post(format!("{}/v1/segment", app.base_url))
            .bearer_auth(CHANNEL_TOKEN)
            .json(&call)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 200, "{by_token}");
    assert_eq!(
        by_token["accepted"], answer["accepted"],
        "one message id, one event"
    );
    let id = customer(&app, "account=u-7").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    timeline(&app, &id, 1).await;
    app.stop().await;
}
