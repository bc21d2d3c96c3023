//! The agent's 360° view end to end: cases by contact reason, signals,
//! feedback, notes, tasks and insights, built by the projector from
//! contacts and from agent actions published as events.

use chrono::{DateTime, Duration, Utc};
use panorama_core::priority::PriorityRules;
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};

fn hours_ago(hours: i64) -> DateTime<Utc> {
    Utc::now() - Duration::hours(hours)
}

/// A contact of the person with `email`, about `reason`.
fn contact(
    id: &str,
    at: DateTime<Utc>,
    channel: &str,
    kind: &str,
    email: &str,
    reason: &str,
) -> Value {
    let event_type = match channel {
        "phone" => "call.ended",
        "email" => "email.received",
        _ => "message.received",
    };
    let mut identifiers = vec![json!({"kind": "email", "value": email})];
    if kind == "whatsapp" {
        identifiers.push(json!({"kind": "whatsapp", "value": "31699990001"}));
    }
    json!({
        "event_id": id,
        "occurred_at": at.to_rfc3339(),
        "channel": channel,
        "source": "e2e",
        "type": event_type,
        "direction": "inbound",
        "identifiers": identifiers,
        "contact_reason": reason,
    })
}

async fn post_all(app: &TestApp, events: &[Value]) {
    let response = app.post_events(&json!({ "events": events })).await;
    assert_eq!(response.status(), 202);
}

async fn customer(app: &TestApp, email: &str) -> String {
    app.get_json(&format!("/v1/customers/lookup?email={email}"))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(path, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `path` answers JSON for which `check` holds.
async fn wait_for(app: &TestApp, what: &str, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, WAIT, || async {
        let body = app.get_json(path).await;
        check(&body).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_journeys_give_the_expected_signals_and_insights() {
    let app = TestApp::builder()
        .configure(|options| {
            options.view_rules.priority =
                PriorityRules::parse("high:customer.tier=gold").expect("rules");
        })
        .spawn()
        .await;
    // Anna calls, emails the next day, then messages on WhatsApp about the
    // same parcel: one case, three contacts, three channels.
    let anna = "anna@example.nl";
    let mut journey = vec![
        contact(
            "anna-call",
            hours_ago(50),
            "phone",
            "email",
            anna,
            "My parcel did not arrive",
        ),
        contact(
            "anna-mail",
            hours_ago(26),
            "email",
            "email",
            anna,
            "my parcel did not arrive",
        ),
        contact(
            "anna-wa",
            hours_ago(2),
            "social",
            "whatsapp",
            anna,
            "My parcel did not arrive",
        ),
    ];
    journey[0]["attributes"] = json!({"customer.tier": "gold"});
    // Bob calls once; the agent resolves it on that call.
    let bob = "bob@example.nl";
    journey.push(contact(
        "bob-call",
        hours_ago(5),
        "phone",
        "email",
        bob,
        "Change my address",
    ));
    // Carol wrote five days ago and nobody got back to her.
    let carol = "carol@example.nl";
    journey.push(contact(
        "carol-mail",
        hours_ago(120),
        "email",
        "email",
        carol,
        "Refund",
    ));
    // Survey answers from three channels.
    let mut surveys = vec![
        json!({"event_id": "nps-1", "occurred_at": hours_ago(1).to_rfc3339(), "channel": "web",
               "type": "feedback.submitted", "identifiers": [{"kind": "email", "value": anna}],
               "feedback": {"metric": "nps", "score": 9}}),
        json!({"event_id": "csat-1", "occurred_at": hours_ago(4).to_rfc3339(), "channel": "phone",
               "type": "feedback.submitted", "identifiers": [{"kind": "email", "value": bob}],
               "feedback": {"metric": "csat", "score": 4, "comment": "quick"}}),
        json!({"event_id": "nps-2", "occurred_at": hours_ago(3).to_rfc3339(), "channel": "email",
               "type": "feedback.submitted", "identifiers": [{"kind": "email", "value": bob}],
               "feedback": {"metric": "nps", "score": 3}}),
    ];
    journey.append(&mut surveys);
    post_all(&app, &journey).await;
    app.wait_for_events(journey.len() as i64).await;

    let anna_id = customer(&app, anna).await;
    let profile = app.get_json(&format!("/v1/customers/{anna_id}")).await;
    eprintln!(
        "profile after the journey: {}",
        serde_json::to_string_pretty(&profile).unwrap_or_default()
    );
    assert_eq!(profile["signals"]["repeat_contact"], true, "{profile}");
    assert_eq!(profile["signals"]["channel_hop"], true);
    assert_eq!(profile["signals"]["unresolved_after_contact"], false);
    assert_eq!(profile["signals"]["priority"], "high");
    let cases = profile["open_cases"].as_array().expect("open cases");
    assert_eq!(cases.len(), 1, "{profile}");
    assert_eq!(cases[0]["contact_count"], 3);
    assert_eq!(cases[0]["channels"], json!(["email", "phone", "social"]));
    assert_eq!(cases[0]["reason"], "My parcel did not arrive");
    assert_eq!(
        profile["contacts"],
        json!({"last_7_days": 3, "last_30_days": 3, "last_90_days": 3})
    );
    assert_eq!(profile["feedback"]["nps"]["latest"], 9);
    assert_eq!(
        profile["identifiers"]["whatsapp"][0]["value"],
        "31699990001"
    );

    let carol_id = customer(&app, carol).await;
    let carol_profile = app.get_json(&format!("/v1/customers/{carol_id}")).await;
    assert_eq!(carol_profile["signals"]["unresolved_after_contact"], true);
    assert_eq!(carol_profile["signals"]["repeat_contact"], false);
    assert_eq!(carol_profile["signals"]["priority"], "normal");

    // The agent resolves Bob's case on his first call.
    let bob_id = customer(&app, bob).await;
    let bob_profile = app.get_json(&format!("/v1/customers/{bob_id}")).await;
    assert_eq!(bob_profile["feedback"]["nps"]["latest"], 3);
    assert_eq!(bob_profile["feedback"]["csat"]["average"], 4.0);
    let bob_case = bob_profile["open_cases"][0]["id"]
        .as_str()
        .expect("case")
        .to_owned();
    let (status, body) = post(
        &app,
        &format!("/v1/cases/{bob_case}/resolve"),
        json!({"outcome": "address changed", "note": "done while on the phone"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let resolved = wait_for(
        &app,
        "bob's case resolved",
        &format!("/v1/customers/{bob_id}/cases?status=resolved"),
        |body| {
            body["cases"]
                .as_array()
                .is_some_and(|cases| cases.len() == 1)
        },
    )
    .await;
    assert_eq!(resolved["cases"][0]["first_contact_resolution"], true);
    assert_eq!(resolved["cases"][0]["outcome"], "address changed");
    let (status, body) = post(
        &app,
        &format!("/v1/cases/{bob_case}/resolve"),
        json!({"outcome": "again"}),
    )
    .await;
    assert_eq!(
        (status, body["type"].clone()),
        (409, json!("/problems/case-state"))
    );

    // Three cases opened in the period: Anna's (repeat, hop), Bob's (first
    // contact resolution), Carol's.
    let insights = app.get_json("/v1/insights").await;
    assert_eq!(insights["cases"], 3, "{insights}");
    assert_eq!(
        insights["contacts_per_channel"],
        json!({"email": 2, "phone": 2, "social": 1})
    );
    let rate = |name: &str| insights[name].as_f64().unwrap_or(-1.0);
    assert!(
        (rate("repeat_contact_rate") - 1.0 / 3.0).abs() < 1e-9,
        "{insights}"
    );
    assert!((rate("channel_hop_rate") - 1.0 / 3.0).abs() < 1e-9);
    assert!((rate("first_contact_resolution_rate") - 1.0).abs() < 1e-9);
    assert!(
        (rate("nps") - 0.0).abs() < 1e-9,
        "one promoter, one detractor"
    );
    assert!((rate("csat") - 100.0).abs() < 1e-9);
    assert_eq!(insights["ces"], Value::Null);
    let phone_only = app.get_json("/v1/insights?channel=phone").await;
    assert_eq!(phone_only["contacts_per_channel"], json!({"phone": 2}));
    assert_eq!(
        phone_only["cases"], 2,
        "cases touched by phone: {phone_only}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_open_cases_write_notes_and_follow_up_with_tasks() {
    let app = TestApp::spawn().await;
    let dora = "dora@example.nl";
    post_all(
        &app,
        &[contact(
            "dora-1",
            hours_ago(3),
            "phone",
            "email",
            dora,
            "Broken boiler",
        )],
    )
    .await;
    app.wait_for_events(1).await;
    let dora_id = customer(&app, dora).await;

    let (status, opened) = post(
        &app,
        &format!("/v1/customers/{dora_id}/cases"),
        json!({"reason": "Boiler service visit", "note": "customer prefers mornings"}),
    )
    .await;
    assert_eq!(status, 202, "{opened}");
    let case_id = opened["case_id"].as_str().expect("case id").to_owned();
    let (status, note) = post(
        &app,
        &format!("/v1/customers/{dora_id}/notes"),
        json!({"text": "Called back, engineer booked", "case_id": case_id}),
    )
    .await;
    assert_eq!(status, 202, "{note}");
    let due = (Utc::now() + Duration::days(2)).to_rfc3339();
    let (status, task) = post(
        &app,
        &format!("/v1/customers/{dora_id}/tasks"),
        json!({"title": "Call after the visit", "due_at": due, "channel": "phone",
               "case_id": case_id, "assignee": "desk-12"}),
    )
    .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["task_id"].as_str().expect("task id").to_owned();
    let (status, _) = post(
        &app,
        &format!("/v1/customers/{dora_id}/tasks"),
        json!({"title": "Send the invoice", "due_at": (Utc::now() + Duration::days(9)).to_rfc3339(),
               "channel": "email"}),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post(
        &app,
        &format!("/v1/customers/{dora_id}/feedback"),
        json!({"metric": "ces", "score": 2, "case_id": case_id}),
    )
    .await;
    assert_eq!(status, 202);
    app.wait_for_events(6).await;

    // The agent's actions are in the history, with the case they are about.
    let timeline = app
        .get_json(&format!("/v1/customers/{dora_id}/timeline"))
        .await;
    let types: Vec<&str> = timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["type"].as_str())
        .collect();
    for expected in [
        "case.opened",
        "note.added",
        "task.created",
        "feedback.submitted",
        "call.ended",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let cases = app
        .get_json(&format!("/v1/customers/{dora_id}/cases"))
        .await;
    assert_eq!(cases["cases"].as_array().map(Vec::len), Some(2), "{cases}");
    let profile = app.get_json(&format!("/v1/customers/{dora_id}")).await;
    assert_eq!(profile["feedback"]["ces"]["latest"], 2);

    // Tasks: filters, pagination, completion and rescheduling.
    let mine = app.get_json("/v1/tasks?assignee=desk-12&status=open").await;
    assert_eq!(mine["tasks"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["tasks"][0]["customer_id"], json!(dora_id));
    assert_eq!(mine["tasks"][0]["case_id"], json!(case_id));
    let soon = (Utc::now() + Duration::days(3))
        .to_rfc3339()
        .replace('+', "%2B");
    let due_soon = app.get_json(&format!("/v1/tasks?due_before={soon}")).await;
    assert_eq!(due_soon["tasks"].as_array().map(Vec::len), Some(1));
    let first_page = app.get_json("/v1/tasks?limit=1").await;
    let next = first_page["next_cursor"].as_str().expect("a second page");
    let second_page = app
        .get_json(&format!("/v1/tasks?limit=1&cursor={next}"))
        .await;
    assert_eq!(second_page["tasks"][0]["title"], "Send the invoice");
    assert!(second_page.get("next_cursor").is_none());

    let response = app
        .http
        .patch(format!("{}/v1/tasks/{task_id}", app.base_url))
        .json(&json!({"status": "done"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 202);
    wait_for(&app, "the task done", "/v1/tasks?status=done", |body| {
        body["tasks"]
            .as_array()
            .is_some_and(|tasks| tasks.len() == 1)
    })
    .await;
    let response = app
        .http
        .patch(format!("{}/v1/tasks/{task_id}", app.base_url))
        .json(&json!({"status": "done", "due_at": due}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 422);

    // Reopen and resolve the agent's case.
    let (status, body) = post(&app, &format!("/v1/cases/{case_id}/reopen"), json!({})).await;
    assert_eq!(
        (status, body["type"].clone()),
        (409, json!("/problems/case-state"))
    );
    let (status, _) = post(
        &app,
        &format!("/v1/cases/{case_id}/resolve"),
        json!({"outcome": "visit done"}),
    )
    .await;
    assert_eq!(status, 202);
    wait_for(
        &app,
        "the case resolved",
        &format!("/v1/customers/{dora_id}/cases?status=resolved"),
        |body| {
            body["cases"]
                .as_array()
                .is_some_and(|cases| cases.len() == 1)
        },
    )
    .await;
    let (status, _) = post(
        &app,
        &format!("/v1/cases/{case_id}/reopen"),
        json!({"note": "boiler broke again"}),
    )
    .await;
    assert_eq!(status, 202);
    wait_for(
        &app,
        "the case open again",
        &format!("/v1/customers/{dora_id}/cases?status=open"),
        |body| {
            body["cases"]
                .as_array()
                .is_some_and(|cases| cases.len() == 2)
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agent_requests_name_the_field_and_publish_nothing() {
    let app = TestApp::spawn().await;
    post_all(
        &app,
        &[contact(
            "eve-1",
            hours_ago(1),
            "email",
            "email",
            "eve@example.nl",
            "Hello",
        )],
    )
    .await;
    app.wait_for_events(1).await;
    let eve = customer(&app, "eve@example.nl").await;
    let before = app.records_in(&app.options.kafka.topic).await;
    let unknown = uuid::Uuid::now_v7();
    let cases = [
        (
            format!("/v1/customers/{eve}/notes"),
            json!({}),
            422,
            Some("text"),
        ),
        (
            format!("/v1/customers/{eve}/notes"),
            json!({"text": "  "}),
            422,
            Some("text"),
        ),
        (
            format!("/v1/customers/{eve}/notes"),
            json!({"text": "x", "colour": 1}),
            422,
            Some("colour"),
        ),
        (
            format!("/v1/customers/{unknown}/notes"),
            json!({"text": "x"}),
            404,
            None,
        ),
        (
            format!("/v1/customers/{eve}/cases"),
            json!({"note": "x"}),
            422,
            Some("reason"),
        ),
        (
            format!("/v1/customers/{eve}/tasks"),
            json!({"title": "t", "channel": "phone"}),
            422,
            Some("due_at"),
        ),
        (
            format!("/v1/customers/{eve}/tasks"),
            json!({"title": "t", "channel": "fax", "due_at": "2030-01-01T00:00:00Z"}),
            422,
            Some("channel"),
        ),
        (
            format!("/v1/customers/{eve}/tasks"),
            json!({"title": "t", "channel": "phone", "due_at": "tomorrow"}),
            422,
            Some("due_at"),
        ),
        (
            format!("/v1/customers/{eve}/feedback"),
            json!({"metric": "nps", "score": 11}),
            422,
            Some("feedback.score"),
        ),
        (
            format!("/v1/customers/{eve}/feedback"),
            json!({"metric": "stars", "score": 3}),
            422,
            Some("feedback.metric"),
        ),
        (
            format!("/v1/cases/{unknown}/resolve"),
            json!({"outcome": "x"}),
            404,
            None,
        ),
        (
            "/v1/notes".to_owned(),
            json!({"text": "first call"}),
            422,
            Some("identifier"),
        ),
        (
            "/v1/notes".to_owned(),
            json!({"identifier": {"kind": "fax", "value": "1"}, "text": "x"}),
            422,
            Some("identifier.kind"),
        ),
        (
            "/v1/notes".to_owned(),
            json!({"identifier": {"kind": "phone", "value": "call me"}, "text": "x"}),
            422,
            Some("identifier.value"),
        ),
        (
            "/v1/notes".to_owned(),
            json!({"identifier": {"kind": "phone", "value": "+31687650001"}}),
            422,
            Some("text"),
        ),
        (
            "/v1/notes".to_owned(),
            json!({"identifier": {"kind": "phone", "value": "+31687650001"}, "text": "x", "case_id": unknown}),
            422,
            Some("case_id"),
        ),
        (
            "/v1/cases/nope/resolve".to_owned(),
            json!({"outcome": "x"}),
            400,
            Some("id"),
        ),
    ];
    for (path, body, expected, field) in cases {
        let (status, problem) = post(&app, &path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {problem}");
        assert_eq!(problem["field"].as_str(), field, "{path} {body}: {problem}");
    }
    for query in [
        "/v1/tasks?status=later",
        "/v1/tasks?due_before=soon",
        "/v1/insights?channel=fax",
        "/v1/insights?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/v1/tasks?colour=red",
    ] {
        assert_eq!(app.get(query).await.status(), 400, "{query}");
    }
    let malformed = app
        .http
        .post(format!("{}/v1/notes", app.base_url))
        .header("content-type", "application/json")
        .body("{\"identifier\":")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        app.records_in(&app.options.kafka.topic).await,
        before,
        "nothing published"
    );
    assert_eq!(
        app.get("/v1/customers/lookup?phone=%2B31687650001")
            .await
            .status(),
        404,
        "no customer created"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_note_about_an_unknown_caller_creates_the_customer() {
    let app = TestApp::spawn().await;
    let agent = app.token(panorama_core::Role::Agent).await;
    let note = json!({
        "identifier": {"kind": "phone", "value": "+31 6 8765 4321"},
        "text": "Called about a delivery to a new address",
    });
    let response = app
        .request(reqwest::Method::POST, "/v1/notes", Some(&agent))
        .json(&note)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("JSON");
    assert!(accepted["event_id"].is_string(), "{accepted}");
    assert!(
        accepted.get("customer_id").is_none(),
        "nobody had it: {accepted}"
    );
    let path = "/v1/customers/lookup?phone=%2B31687654321";
    let profile = eventually("the customer the note created", WAIT, || async {
        let response = app.get(path).await;
        if response.status() != 200 {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await;
    let id = profile["id"].as_str().expect("id").to_owned();
    assert_eq!(profile["identifiers"]["phone"][0]["value"], "+31687654321");
    let timeline = app.get_json(&format!("/v1/customers/{id}/timeline")).await;
    let entry = &timeline["entries"][0];
    assert_eq!(entry["type"], "note.added", "{timeline}");
    assert_eq!(entry["channel"], "agent");
    assert_eq!(entry["summary"], "Called about a delivery to a new address");
    assert!(
        entry["agent_id"]
            .as_str()
            .is_some_and(|a| a.starts_with("test_agent"))
    );

    // A note about a known identifier says whose it is.
    let (status, accepted) = post(
        &app,
        "/v1/notes",
        json!({"identifier": {"kind": "phone", "value": "+31687654321"}, "text": "Second call"}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(accepted["customer_id"].as_str(), Some(id.as_str()));
    wait_for(
        &app,
        "the second note",
        &format!("/v1/customers/{id}/timeline"),
        |page| {
            page["entries"]
                .as_array()
                .is_some_and(|entries| entries.len() == 2)
        },
    )
    .await;
    app.stop().await;
}
