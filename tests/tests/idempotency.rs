//! Idempotency keys that work like the best payment APIs: an `event_id` (on
//! `POST /v1/events`) or an `Idempotency-Key` (on the agent actions) sent
//! again with the same payload is accepted with the same ids and projected
//! once; sent again with a different payload it is refused with 409
//! `/problems/idempotency-conflict`, nothing published.

use panorama_core::Role;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

const CONFLICT: &str = "/problems/idempotency-conflict";

/// Status and JSON body of an answer.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST` `body` to `path` as the holder of `token`, with `key` as its
/// `Idempotency-Key` when given.
async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = app.request(Method::POST, path, Some(token)).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    answer(request.send().await.expect("answer")).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.psql(sql).await.trim().parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_payload_twice_is_one_event_under_one_id() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Admin).await;
    let mut event = contact(0, "idem-same", at_minute(0), "phone");
    // No `occurred_at`: it defaults to the time of receipt, which differs
    // between the two posts, and is still the same payload.
    event["occurred_at"] = Value::Null;

    let (status, first) = post(&app, &token, "/v1/events", None, &event).await;
    assert_eq!(status, 202, "{first}");
    app.wait_for_events(1).await;
    let (status, again) = post(&app, &token, "/v1/events", None, &event).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(first["accepted"], again["accepted"]);

    app.wait_for_offsets(2).await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE fingerprint IS NOT NULL"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_id_with_another_payload_is_refused_and_nothing_published() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Admin).await;
    let topic = app.options.kafka.topic.clone();
    let original = contact(0, "idem-reused", at_minute(0), "phone");
    let (status, body) = post(&app, &token, "/v1/events", None, &original).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_events(1).await;
    assert_eq!(app.records_in(&topic).await, 1);

    let mut changed = original.clone();
    changed["contact_reason"] = json!("a different reason");
    let batch = json!({"events": [contact(1, "idem-fresh", at_minute(1), "phone"), changed]});
    let (status, problem) = post(&app, &token, "/v1/events", None, &batch).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], CONFLICT);
    assert_eq!(problem["field"], "events[1].event_id");
    let (status, problem) = post(&app, &token, "/v1/events", None, &changed).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["field"], "event_id");

    // Nothing of either request reached the topic (a 409 is answered after
    // the check and before any publish), and the first event stands.
    assert_eq!(app.records_in(&topic).await, 1);
    app.wait_for_offsets(1).await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 1);
    assert_eq!(
        app.psql("SELECT contact_reason FROM events").await.trim(),
        "my order did not arrive"
    );
    let lookup = format!("/v1/customers/lookup?phone=%2B{}", &phone_of(1)[1..]);
    assert_eq!(app.get(&lookup).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_action_retried_with_its_idempotency_key_happens_once() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Admin).await;
    let (status, _) = post(
        &app,
        &token,
        "/v1/events",
        None,
        &contact(0, "idem-agent", at_minute(0), "phone"),
    )
    .await;
    assert_eq!(status, 202);
    app.wait_for_events(1).await;
    let lookup = format!("/v1/customers/lookup?phone=%2B{}", &phone_of(0)[1..]);
    let customer = app.get_json(&lookup).await["id"]
        .as_str()
        .expect("customer id")
        .to_owned();
    let notes = format!("/v1/customers/{customer}/notes");
    let note = json!({"text": "Called back, engineer booked"});

    let (status, first) = post(&app, &token, &notes, Some("note-7f3a"), &note).await;
    assert_eq!(status, 202, "{first}");
    app.wait_for_events(2).await;
    let (status, again) = post(&app, &token, &notes, Some("note-7f3a"), &note).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(first["event_id"], again["event_id"]);

    let cases = format!("/v1/customers/{customer}/cases");
    let case = json!({"reason": "Boiler service visit"});
    let (status, opened) = post(&app, &token, &cases, Some("case-1"), &case).await;
    assert_eq!(status, 202, "{opened}");
    let (status, reopened) = post(&app, &token, &cases, Some("case-1"), &case).await;
    assert_eq!(status, 202, "{reopened}");
    assert_eq!(opened["case_id"], reopened["case_id"]);
    assert_eq!(opened["event_id"], reopened["event_id"]);

    // Five records (the contact, two notes, two case openings), three events.
    app.wait_for_offsets(5).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE type = 'note.added'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE type = 'case.opened'"
        )
        .await,
        1
    );
    let case_id = opened["case_id"].as_str().expect("case id");
    let case = format!("SELECT count(*) FROM cases WHERE id = '{case_id}'");
    assert_eq!(count(&app, &case).await, 1);

    let other = json!({"text": "Something else entirely"});
    let (status, problem) = post(&app, &token, &notes, Some("note-7f3a"), &other).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], CONFLICT);
    assert_eq!(problem["field"], "Idempotency-Key");
    // A new key is a new note.
    let (status, fresh) = post(&app, &token, &notes, Some("note-8b1c"), &other).await;
    assert_eq!(status, 202, "{fresh}");
    assert_ne!(fresh["event_id"], first["event_id"]);

    // A key is scoped to its route: the note's key on the case route opens
    // a case, under an id of its own.
    let visit = json!({"reason": "Follow-up visit"});
    let (status, scoped) = post(&app, &token, &cases, Some("note-7f3a"), &visit).await;
    assert_eq!(status, 202, "{scoped}");
    assert_ne!(scoped["event_id"], first["event_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_idempotency_key_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Admin).await;
    let long = "k".repeat(256);
    for key in ["", "two words", long.as_str()] {
        let (status, problem) = post(
            &app,
            &token,
            "/v1/notes",
            Some(key),
            &json!({"identifier": {"kind": "phone", "value": phone_of(3)}, "text": "hi"}),
        )
        .await;
        assert_eq!(status, 400, "{key:?}: {problem}");
        assert_eq!(problem["type"], "/problems/invalid-parameter");
        assert_eq!(problem["field"], "Idempotency-Key");
    }
    let topic = app.options.kafka.topic.clone();
    assert_eq!(app.records_in(&topic).await, 0);
}

/// An event, to publish straight to the topic, with `summary`: two
/// such events are one id with two payloads, the way two posts of a reused
/// id look while the first is still in flight.
fn in_flight(summary: &str) -> panorama_core::ContactEvent {
    panorama_core::EventDraft {
        event_id: Some("idem-in-flight".into()),
        channel: Some("phone".into()),
        source: Some("e2e".into()),
        event_type: Some("call.ended".into()),
        summary: Some(summary.into()),
        identifiers: vec![panorama_core::IdentifierDraft::new(
            panorama_core::IdentifierKind::Phone,
            phone_of(5),
        )],
        ..panorama_core::EventDraft::default()
    }
    .validate(&panorama_core::ValidationContext::now(None))
    .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_in_flight_is_dropped_by_the_projection_and_counted() {
    let app = TestApp::spawn().await;
    let conflicts = async || {
        panorama_e2e::prometheus::Exposition::parse(&app.metrics_text().await)
            .expect("exposition")
            .value("panorama_projector_idempotency_conflicts_total", &[])
            .unwrap_or(0.0)
    };
    let before = conflicts().await;
    let producer = panorama_bus::Producer::new(&panorama_bus::ProducerSettings::new(
        &app.options.kafka.brokers,
    ))
    .expect("producer");
    let records: Vec<_> = [in_flight("first"), in_flight("second")]
        .iter()
        .map(|event| panorama_bus::OutboundRecord {
            key: event.partition_key(),
            payload: panorama_proto::encode(event),
            headers: vec![],
        })
        .collect();
    producer
        .publish(&app.options.kafka.topic, &records)
        .await
        .expect("written to the topic");

    app.wait_for_offsets(2).await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 1);
    assert_eq!(app.psql("SELECT summary FROM events").await.trim(), "first");
    assert_eq!(conflicts().await - before, 1.0);
}
