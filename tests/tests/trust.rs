//! Identity trust end to end: what a browser posts with a public write key
//! is only claimed, so a forged form cannot tie an attacker's number to a
//! customer, merge two customers, or make the attacker's next call
//! screen-pop someone else's history; and an agent can confirm a claimed
//! identifier.

use panorama_core::Role;
use panorama_simulator::DemoSecrets;
use panorama_testkit::TestApp;
use serde_json::{Value, json};

#[path = "support/webhooks.rs"]
mod webhooks;
use webhooks::twilio_call;

async fn app() -> TestApp {
    TestApp::builder().simulated_channels().spawn().await
}

/// An email the gateway vouches for (a channel token's `POST /v1/events`).
fn email(event_id: &str, address: &str, summary: &str) -> Value {
    json!({
        "event_id": event_id,
        "channel": "email",
        "source": "crm",
        "type": "email.received",
        "direction": "inbound",
        "identifiers": [{"kind": "email", "value": address}],
        "summary": summary,
    })
}

/// A web form posted the way anyone can: the public write key and a
/// forged `Origin`, no browser needed.
async fn forged_form(app: &TestApp, event_id: &str, email: &str, phone: &str) -> Value {
    let body = json!({
        "type": "form.submitted",
        "event_id": event_id,
        "form": {"id": "contact", "fields": {"email": email, "phone": phone, "message": "Call me back"}},
    });
    let response = app
        .request(reqwest::Method::POST, "/v1/channels/web/events", None)
        .header("origin", DemoSecrets::WEB_ORIGIN)
        .header("x-panorama-write-key", DemoSecrets::WEB_WRITE_KEY)
        .json(&body)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A completed inbound call from `phone`, signed by Twilio: the caller's
/// number is verified.
async fn call_from(app: &TestApp, call_sid: &str, phone: &str) {
    let response = twilio_call(app, call_sid, phone).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn customer_of(app: &TestApp, lookup: &str) -> Option<String> {
    let response = app.get(&format!("/v1/customers/lookup?{lookup}")).await;
    if response.status() == 404 {
        return None;
    }
    let body: Value = response.json().await.expect("json");
    Some(body["id"].as_str().expect("id").to_owned())
}

async fn timeline(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get_json(&format!("/v1/customers/{customer}/timeline?limit=100"))
        .await["entries"]
        .as_array()
        .expect("entries")
        .clone()
}

async fn merges_of(app: &TestApp, customer: &str) -> usize {
    app.get_json(&format!("/v1/customers/{customer}/identity"))
        .await["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|entry| entry["action"] == "merge")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_form_cannot_take_over_a_customer() {
    let app = app().await;
    let victim_email = "victim@example.nl";
    let attacker_phone = "+31687650001";
    let posted = app
        .post_events(&email(
            "victim-1",
            victim_email,
            "My order 4711 for the new address",
        ))
        .await;
    assert_eq!(posted.status(), 202);
    app.wait_for_events(1).await;
    let victim = customer_of(&app, &format!("email={victim_email}"))
        .await
        .expect("the victim");

    // The attacker's form names the victim's address and their own number.
    let answer = forged_form(&app, "forged-1", victim_email, attacker_phone).await;
    assert_eq!(answer["accepted"].as_array().map(Vec::len), Some(1));
    app.wait_for_events(2).await;

    // The victim's profile does not get the number, and nothing merged.
    let profile = app.get_json(&format!("/v1/customers/{victim}")).await;
    assert_eq!(profile["id"], json!(victim));
    assert!(profile["identifiers"].get("phone").is_none(), "{profile}");
    assert_eq!(profile["identifiers"]["email"][0]["trust"], "verified");
    assert_eq!(merges_of(&app, &victim).await, 0);
    assert_eq!(
        customer_of(&app, &format!("phone=%2B{}", &attacker_phone[1..])).await,
        None,
        "the claimed number leads nowhere"
    );
    // The form shows on her history, its identifiers marked claimed.
    let entries = timeline(&app, &victim).await;
    let form = entries
        .iter()
        .find(|entry| entry["type"] == "form.submitted")
        .expect("the form on the victim's timeline");
    for identifier in form["identifiers"].as_array().expect("identifiers") {
        assert_eq!(identifier["trust"], "claimed", "{form}");
    }

    // The attacker calls from that number: a customer of its own, whose
    // history holds nothing of the victim.
    call_from(&app, "CA-attacker-1", attacker_phone).await;
    app.wait_for_events(3).await;
    let caller = customer_of(&app, &format!("phone=%2B{}", &attacker_phone[1..]))
        .await
        .expect("the caller");
    assert_ne!(caller, victim);
    let history = timeline(&app, &caller).await;
    assert_eq!(history.len(), 1, "the call only: {history:?}");
    assert_eq!(history[0]["type"], "call.ended");
    let text = serde_json::to_string(&history).expect("json");
    assert!(!text.contains(victim_email) && !text.contains("4711"));
    let caller_profile = app.get_json(&format!("/v1/customers/{caller}")).await;
    assert!(caller_profile["identifiers"].get("email").is_none());
    assert_eq!(timeline(&app, &victim).await.len(), 2, "hers unchanged");

    // A known caller and a known customer named on one form: no merge.
    let other_email = "second@example.nl";
    let other_phone = "+31687650002";
    assert_eq!(
        app.post_events(&email("second-1", other_email, "Invoice 88"))
            .await
            .status(),
        202
    );
    call_from(&app, "CA-attacker-2", other_phone).await;
    app.wait_for_events(5).await;
    let second = customer_of(&app, &format!("email={other_email}"))
        .await
        .expect("second");
    let second_caller = customer_of(&app, &format!("phone=%2B{}", &other_phone[1..]))
        .await
        .expect("second caller");
    assert_ne!(second, second_caller);
    forged_form(&app, "forged-2", other_email, other_phone).await;
    app.wait_for_events(6).await;
    assert_eq!(
        customer_of(&app, &format!("email={other_email}")).await,
        Some(second.clone())
    );
    assert_eq!(
        customer_of(&app, &format!("phone=%2B{}", &other_phone[1..])).await,
        Some(second_caller.clone()),
        "not merged"
    );
    assert_eq!(merges_of(&app, &second).await, 0);
    assert_eq!(timeline(&app, &second).await.len(), 1);
    assert_eq!(timeline(&app, &second_caller).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_confirms_a_claimed_identifier_and_a_sender_cannot_vouch_for_itself() {
    let app = app().await;
    let agent = app.token(Role::Agent).await;
    let confirm = |customer: &str, kind: &str, value: &str| {
        app.request(
            reqwest::Method::POST,
            &format!("/v1/customers/{customer}/identifiers/confirm"),
            Some(&agent),
        )
        .json(&json!({"kind": kind, "value": value}))
    };

    // A walk-in's form: a customer known by claims only.
    let walk_in_email = "walk-in@example.org";
    let walk_in_phone = "+31687650003";
    forged_form(&app, "walk-in-1", walk_in_email, walk_in_phone).await;
    app.wait_for_events(1).await;
    let walk_in = customer_of(&app, &format!("email={walk_in_email}"))
        .await
        .expect("a customer of claims");
    let profile = app.get_json(&format!("/v1/customers/{walk_in}")).await;
    assert_eq!(profile["identifiers"]["phone"][0]["trust"], "claimed");
    assert_eq!(profile["identifiers"]["email"][0]["trust"], "claimed");

    // The agent checks the number on the phone and confirms it.
    let response = confirm(&walk_in, "phone", "06 8765 0003")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        response.status(),
        422,
        "a national number needs a region here"
    );
    let response = confirm(&walk_in, "phone", walk_in_phone)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["customer_id"], json!(walk_in));
    app.wait_for_events(2).await;
    let profile = app.get_json(&format!("/v1/customers/{walk_in}")).await;
    assert_eq!(
        profile["identifiers"]["phone"][0]["trust"], "verified",
        "{profile}"
    );
    // Known now: the unconfirmed claim is let go (it stays on the form).
    assert!(profile["identifiers"].get("email").is_none(), "{profile}");
    // Their next call lands on them.
    call_from(&app, "CA-walk-in", walk_in_phone).await;
    app.wait_for_events(3).await;
    assert_eq!(
        customer_of(&app, &format!("phone=%2B{}", &walk_in_phone[1..])).await,
        Some(walk_in.clone())
    );
    let types: Vec<Value> = timeline(&app, &walk_in)
        .await
        .iter()
        .map(|entry| entry["type"].clone())
        .collect();
    assert!(types.contains(&json!("identifier.confirmed")), "{types:?}");
    assert!(types.contains(&json!("call.ended")), "{types:?}");

    // A sender cannot set trust: refused, naming the field, nothing
    // published.
    let mut event = email("self-vouched", "someone@example.org", "hi");
    event["identifiers"][0]["trust"] = json!("verified");
    let response = app.post_events(&event).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["field"], "identifiers[0].trust", "{problem}");
    // A role without `agent` may not confirm.
    let channel = app.token(Role::Channel).await;
    let response = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/customers/{walk_in}/identifiers/confirm"),
            Some(&channel),
        )
        .json(&json!({"kind": "phone", "value": walk_in_phone}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 403);
    app.wait_for_offsets(app.records_in(&app.options.kafka.topic).await)
        .await;
    assert_eq!(app.store.totals().await.expect("totals").events, 3);
    app.stop().await;
}

/// A raw message from `from`, with an `Authentication-Results` header by
/// `authserv_id` that says DKIM passed for `from`'s domain.
fn authenticated_mail(message_id: &str, from: &str, authserv_id: &str) -> String {
    let domain = from.rsplit('@').next().expect("domain");
    format!(
        "Authentication-Results: {authserv_id}; dkim=pass header.d={domain}\r\n\
         From: {from}\r\n\
         To: support@shop.example\r\n\
         Subject: Where is my order?\r\n\
         Message-ID: <{message_id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello, my order did not arrive.\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_named_mail_servers_authentication_results_verify_a_raw_message() {
    let app = TestApp::builder()
        .configure(|options| {
            options.channels.mime_authserv_ids = vec!["mx.shop.example".to_owned()];
        })
        .spawn()
        .await;
    let channel = app.token(Role::Channel).await;
    for (message_id, from, authserv_id) in [
        ("m1@example.nl", "anna@example.nl", "mx.shop.example"),
        ("m2@example.org", "bob@example.org", "mx.attacker.example"),
    ] {
        let response = app
            .request(
                reqwest::Method::POST,
                "/v1/channels/email/mime",
                Some(&channel),
            )
            .header("content-type", "message/rfc822")
            .body(authenticated_mail(message_id, from, authserv_id))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    app.wait_for_events(2).await;
    let trust_of = |address: &'static str| {
        let app = &app;
        async move {
            let customer = customer_of(app, &format!("email={address}"))
                .await
                .expect("a customer");
            let profile = app.get_json(&format!("/v1/customers/{customer}")).await;
            profile["identifiers"]["email"][0]["trust"].clone()
        }
    };
    assert_eq!(trust_of("anna@example.nl").await, "verified");
    assert_eq!(
        trust_of("bob@example.org").await,
        "claimed",
        "a header under another server's name is the sender's own writing"
    );
    app.stop().await;
}
