//! Bad input gets a problem+json answer naming the field and changes
//! nothing; an unreachable broker gets 503 with Retry-After.

use std::time::Duration;

use panorama::ProcessRole;
use panorama_e2e::{at_minute, contact};
use panorama_testkit::TestApp;
use serde_json::{Value, json};

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/"))
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_by_field_and_nothing_reaches_the_topic() {
    let app = TestApp::builder()
        .configure(|options| options.http.max_body_bytes = 4096)
        .spawn()
        .await;
    let url = format!("{}/v1/events", app.base_url);
    let raw = |body: &'static str, content_type: &'static str| {
        app.http
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let malformed = problem(
        raw("{\"channel\":", "application/json")
            .await
            .expect("answer"),
        400,
    )
    .await;
    assert_eq!(malformed["type"], "/problems/malformed-json");

    let mut no_identifiers = contact(1, "bad-1", at_minute(1), "phone");
    no_identifiers["identifiers"] = json!([]);
    let body = problem(app.post_events(&no_identifiers).await, 422).await;
    assert_eq!(body["field"], "identifiers");

    let mut bad_phone = contact(1, "bad-2", at_minute(1), "phone");
    bad_phone["identifiers"] = json!([{"kind": "phone", "value": "+31 6 12"}]);
    let body = problem(app.post_events(&bad_phone).await, 422).await;
    assert_eq!(body["field"], "identifiers[0].value");

    let mut fax = contact(1, "bad-3", at_minute(1), "phone");
    fax["channel"] = json!("fax");
    let body = problem(app.post_events(&fax).await, 422).await;
    assert_eq!(body["field"], "channel");

    let one_bad_in_batch = json!({"events": [contact(1, "ok-1", at_minute(1), "phone"), fax]});
    let body = problem(app.post_events(&one_bad_in_batch).await, 422).await;
    assert_eq!(body["field"], "events[1].channel");

    let mut huge = contact(1, "bad-4", at_minute(1), "phone");
    huge["attributes"] = json!({ "note": "x".repeat(1000), "more": "y".repeat(1000), "again": "z".repeat(1000), "last": "w".repeat(1000) });
    let body = problem(app.post_events(&huge).await, 413).await;
    assert_eq!(body["type"], "/problems/payload-too-large");

    problem(
        raw("channel=phone", "application/x-www-form-urlencoded")
            .await
            .expect("answer"),
        415,
    )
    .await;

    assert_eq!(
        app.records_in(&app.options.kafka.topic).await,
        0,
        "nothing was published"
    );
    assert_eq!(
        app.post_events(&contact(1, "good", at_minute(2), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    assert_eq!(app.records_in(&app.options.kafka.topic).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_refuse_bad_parameters_and_unknown_customers() {
    let app = TestApp::builder().role(ProcessRole::Api).spawn().await;
    let body = problem(
        app.get("/v1/customers/lookup?phone=%2B31612345678").await,
        404,
    )
    .await;
    assert_eq!(body["type"], "/problems/not-found");
    let body = problem(app.get("/v1/customers/lookup?phone=12").await, 400).await;
    assert_eq!(body["field"], "phone");
    let body = problem(
        app.get("/v1/customers/lookup?phone=%2B31612345678&email=a@b.nl")
            .await,
        400,
    )
    .await;
    assert_eq!(body["field"], "query");
    let body = problem(app.get("/v1/customers/lookup?fax=1").await, 400).await;
    assert_eq!(body["field"], "fax");
    let body = problem(app.get("/v1/customers/not-a-uuid").await, 400).await;
    assert_eq!(body["field"], "id");
    let unknown = uuid::Uuid::now_v7();
    problem(app.get(&format!("/v1/customers/{unknown}")).await, 404).await;
    problem(
        app.get(&format!("/v1/customers/{unknown}/timeline")).await,
        404,
    )
    .await;
    let body = problem(
        app.get(&format!("/v1/customers/{unknown}/timeline?limit=500"))
            .await,
        400,
    )
    .await;
    assert_eq!(body["field"], "limit");
    let body = problem(
        app.get(&format!("/v1/customers/{unknown}/timeline?cursor=abc"))
            .await,
        400,
    )
    .await;
    assert_eq!(body["field"], "cursor");
    problem(app.get("/v1/nothing-here").await, 404).await;
    // This process runs the API role only: ingest is not mounted.
    problem(
        app.post_events(&contact(1, "x", at_minute(1), "phone"))
            .await,
        404,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_means_503_with_retry_after() {
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .configure(|options| {
            options.kafka.brokers = "127.0.0.1:1".into();
            options.kafka.produce_timeout = Duration::from_millis(1500);
        })
        .spawn()
        .await;
    let response = app
        .post_events(&contact(1, "unlucky", at_minute(1), "phone"))
        .await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body = problem(response, 503).await;
    assert_eq!(body["type"], "/problems/broker-unavailable");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503, "not ready without a broker");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    // Ready once the projector has joined its consumer group.
    let ready = panorama_testkit::eventually("ready", panorama_testkit::WAIT, || async {
        let response = app.get("/readyz").await;
        let ok = response.status() == 200;
        let body: Value = response.json().await.ok()?;
        ok.then_some(body)
    })
    .await;
    assert_eq!(ready["ready"], true);
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["postgres", "kafka", "projector"]);
    assert_eq!(
        app.store.migrate().await.expect("migrate again"),
        0,
        "migrations are idempotent"
    );
    app.stop().await;
}
