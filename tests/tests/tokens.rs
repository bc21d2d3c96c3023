//! Tokens do only their job: a `channel` token posts contact events of its
//! own system under its own source, never agent actions and never under a
//! channel adapter's or another system's source, and an agent action filed under one customer never changes
//! another customer's case.

use panorama_core::Role;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::{TestApp, WAIT, eventually};
use reqwest::Method;
use serde_json::{Value, json};

/// `POST /v1/events` with `body` as the holder of `token`: status and body.
async fn post_events(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let response = app
        .request(Method::POST, "/v1/events", Some(token))
        .json(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A refusal's status, problem type and field.
fn refusal(answer: &(u16, Value)) -> (u16, String, String) {
    let (status, body) = answer;
    (
        *status,
        body["type"].as_str().unwrap_or_default().to_owned(),
        body["field"].as_str().unwrap_or_default().to_owned(),
    )
}

fn refused(field: &str) -> (u16, String, String) {
    (422, "/problems/validation-failed".into(), field.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_token_posts_contact_events_but_no_agent_action_nor_adapter_source() {
    let app = TestApp::spawn().await;
    let channel = app.token(Role::Channel).await;
    let call = |id: &str| contact(0, id, at_minute(0), "phone");

    let mut agent_channel = call("by-channel-1");
    agent_channel["channel"] = json!("agent");
    assert_eq!(
        refusal(&post_events(&app, &channel, &agent_channel).await),
        refused("channel")
    );

    for (index, event_type) in [
        "case.opened",
        "case.resolved",
        "case.reopened",
        "note.added",
        "task.created",
        "task.completed",
        "task.rescheduled",
        "identifier.confirmed",
    ]
    .into_iter()
    .enumerate()
    {
        let mut action = call(&format!("by-channel-action-{index}"));
        action["type"] = json!(event_type);
        let batch = json!({"events": [call(&format!("fine-{index}")), action]});
        assert_eq!(
            refusal(&post_events(&app, &channel, &batch).await),
            refused("events[1].type"),
            "{event_type}"
        );
    }

    for source in [
        "twilio",
        "meta.whatsapp",
        "web.form",
        "agent",
        "twilio.voice",
    ] {
        let mut posing = call(&format!("posing-as-{source}"));
        posing["source"] = json!(source);
        let batch = json!({ "events": [posing] });
        assert_eq!(
            refusal(&post_events(&app, &channel, &batch).await),
            refused("events[0].source"),
            "{source}"
        );
    }

    // Its own system's events go through; nothing refused was published.
    let (status, body) = post_events(&app, &channel, &call("own-call")).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_events(1).await;
    let count = app.psql("SELECT count(*) FROM events").await;
    assert_eq!(count.trim(), "1", "only the accepted event is projected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_token_posts_only_under_its_own_source() {
    let app = TestApp::spawn().await;
    let bound = |name: &'static str, source: Option<&'static str>| {
        let store = app.store.clone();
        async move {
            let (info, secret) = store
                .create_token_with_source(name, Role::Channel, source)
                .await
                .expect("create");
            (info, secret.expose().to_owned())
        }
    };
    let (crm_info, crm) = bound("crm", None).await;
    assert_eq!(crm_info.source.as_deref(), Some("crm"), "bound to its name");
    let (billing_info, billing) = bound("billing-eu", Some("billing.eu")).await;
    assert_eq!(billing_info.source.as_deref(), Some("billing.eu"));
    let call = |id: &str, source: Option<&str>| {
        let mut event = contact(0, id, at_minute(0), "phone");
        match source {
            Some(source) => event["source"] = json!(source),
            None => {
                event.as_object_mut().expect("object").remove("source");
            }
        }
        event
    };

    // One system cannot post under another's source (and so cannot
    // pre-empt the ids derived from it), nor under a source that merely
    // starts like its own, nor under the default `api`.
    for (token, source) in [
        (&crm, "billing.eu"),
        (&crm, "billing"),
        (&crm, "crmx"),
        (&crm, "api"),
        (&billing, "billing"),
        (&billing, "crm"),
    ] {
        let batch = json!({"events": [call(&format!("{source}-as-other"), Some(source))]});
        assert_eq!(
            refusal(&post_events(&app, token, &batch).await),
            refused("events[0].source"),
            "{source}"
        );
    }

    // Its own source, one under it, or none (filled in with its own) go
    // through, and the projection keeps the source.
    for (token, id, source) in [
        (&crm, "crm-own", Some("crm")),
        (&crm, "crm-sub", Some("crm.orders")),
        (&crm, "crm-default", None),
        (&billing, "billing-own", None),
    ] {
        let (status, body) = post_events(&app, token, &call(id, source)).await;
        assert_eq!(status, 202, "{id}: {body}");
    }
    app.wait_for_events(4).await;
    let sources = app
        .psql("SELECT string_agg(source, ',' ORDER BY source) FROM events")
        .await;
    assert_eq!(sources.trim(), "billing.eu,crm,crm,crm.orders");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_event_filed_under_another_customer_changes_no_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token.clone();
    for (index, id) in [(0, "anna-call"), (1, "bob-call")] {
        let (status, body) =
            post_events(&app, &admin, &contact(index, id, at_minute(0), "phone")).await;
        assert_eq!(status, 202, "{body}");
    }
    app.wait_for_events(2).await;
    let customer_of = |index: usize| {
        let app = &app;
        async move {
            let phone = phone_of(index).replace('+', "%2B");
            app.get_json(&format!("/v1/customers/lookup?phone={phone}"))
                .await["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let anna = customer_of(0).await;
    let bob = customer_of(1).await;
    assert_ne!(anna, bob);
    let opened = app
        .post_json(
            &format!("/v1/customers/{anna}/cases"),
            &json!({"reason": "Moving house"}),
        )
        .await;
    assert_eq!(opened.status(), 202);
    let opened: Value = opened.json().await.expect("json");
    let case_id = opened["case_id"].as_str().expect("case id").to_owned();
    app.wait_for_events(3).await;

    // An operator's event about Bob naming Anna's case (an admin token is
    // not bound to contact events): it lands on Bob's timeline and
    // resolves nothing.
    let foreign = json!({
        "event_id": "resolve-someone-elses-case",
        "channel": "agent",
        "source": "agent",
        "type": "case.resolved",
        "identifiers": [{"kind": "phone", "value": phone_of(1)}],
        "case_id": case_id,
        "outcome": "closed by the wrong desk",
    });
    let (status, body) = post_events(&app, &admin, &foreign).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_events(4).await;
    eventually("the foreign event on bob's timeline", WAIT, || async {
        let timeline = app.get_json(&format!("/v1/customers/{bob}/timeline")).await;
        timeline["entries"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["type"] == "case.resolved"))
            .then_some(())
    })
    .await;
    let open = app
        .get_json(&format!("/v1/customers/{anna}/cases?status=open"))
        .await;
    let open = open["cases"].as_array().cloned().unwrap_or_default();
    assert!(
        open.iter().any(|case| case["id"] == json!(case_id)),
        "anna's case is still open: {open:?}"
    );
    let resolved = app
        .get_json(&format!("/v1/customers/{anna}/cases?status=resolved"))
        .await;
    assert_eq!(resolved["cases"], json!([]), "{resolved}");
}
