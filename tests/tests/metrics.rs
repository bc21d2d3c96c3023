//! After a small workload, `/metrics` parses as Prometheus text, holds
//! every series the README documents, and its values add up to what was
//! done: accepted events, projected events, dead letters, merges, lag, pool,
//! readiness and the insights figures.
//!
//! Metrics are process-wide, so this file holds one test: nothing else in
//! the process touches the counters it checks.

use std::time::Duration;

use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_e2e::prometheus::{Exposition, documented_metrics};
use panorama_e2e::{contact, contact_with, email_of, phone_of};
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};

fn feedback(event_id: &str, customer: usize, metric: &str, score: i64) -> Value {
    let mut event = contact(customer, event_id, chrono::Utc::now(), "web");
    event["type"] = json!("feedback.submitted");
    event["feedback"] = json!({"metric": metric, "score": score});
    event
}

async fn scrape(app: &TestApp) -> Exposition {
    let response = app
        .anonymous
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .expect("GET /metrics answers");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("metrics body");
    Exposition::parse(&text)
        .unwrap_or_else(|error| panic!("/metrics is not Prometheus text: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_add_up_after_a_workload() {
    let app = TestApp::builder()
        .configure(|options| {
            options.insights.refresh = Duration::from_millis(300);
            // The workload's events happened on fixed days in the past.
            options.insights.window = Duration::from_secs(400 * 24 * 3600);
            options.readiness_interval = Duration::from_millis(200);
        })
        .spawn()
        .await;

    // Before any traffic, every family with fixed labels is already there.
    let first = scrape(&app).await;
    for family in [
        "panorama_build_info",
        "panorama_broker_produce_failures_total",
        "panorama_projector_records_consumed_total",
        "panorama_projector_dlq_records_total",
        "panorama_identity_decisions_total",
        "panorama_event_to_visible_seconds",
        "panorama_db_pool_connections",
    ] {
        assert!(
            first.families.contains_key(family),
            "{family} missing before traffic"
        );
    }

    let now = chrono::Utc::now();
    let mut posted = 0;
    let mut requests = 0;
    let mut phone_contacts = 0;
    for customer in 0..3 {
        for (index, channel) in ["phone", "email", "chat"].iter().enumerate() {
            let id = format!("m-{customer}-{index}");
            let response = app.post_events(&contact(customer, &id, now, channel)).await;
            assert_eq!(response.status(), 202);
            posted += 1;
            requests += 1;
            if *channel == "phone" {
                phone_contacts += 1;
            }
        }
    }
    // One batch request with survey answers: NPS 10 and 3 (score 0), CSAT 5.
    let batch = json!({"events": [
        feedback("f-1", 0, "nps", 10),
        feedback("f-2", 1, "nps", 3),
        feedback("f-3", 2, "csat", 5),
    ]});
    assert_eq!(app.post_events(&batch).await.status(), 202);
    posted += 3;
    requests += 1;
    // Customer 0's phone with customer 1's email: one merge, once both
    // profiles exist (read earlier, the link would only attach).
    app.wait_for_events(posted).await;
    let phone = phone_of(0);
    let email = email_of(1);
    let link = contact_with(
        "m-link",
        now,
        "email",
        &[("phone", &phone), ("email", &email)],
    );
    assert_eq!(app.post_events(&link).await.status(), 202);
    posted += 1;
    requests += 1;
    // Refused: counted as rejected, not accepted.
    let mut bad = contact(5, "m-bad", now, "phone");
    bad["channel"] = json!("fax");
    assert_eq!(app.post_events(&bad).await.status(), 422);
    // A PBX call without a usable caller: acknowledged, ignored.
    let ignored = app
        .post_json(
            "/v1/channels/cti/events",
            &json!({"call_id": "c1", "state": "missed", "direction": "inbound", "caller": "anonymous"}),
        )
        .await;
    assert_eq!(ignored.status(), 200);
    // Garbage written straight to the topic: dead-lettered.
    let producer =
        Producer::new(&ProducerSettings::new(&app.options.kafka.brokers)).expect("producer");
    producer
        .publish(
            &app.options.kafka.topic,
            &[OutboundRecord {
                key: "junk".into(),
                payload: b"not protobuf at all \xff\xff".to_vec(),
                headers: vec![],
            }],
        )
        .await
        .expect("garbage published");

    app.wait_for_events(posted).await;
    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;
    // A customer route by id: its label must be the template, not the id.
    let found = app
        .get_json(&format!("/v1/customers/lookup?phone=%2B{}", &phone[1..]))
        .await;
    let customer_id = found["id"].as_str().expect("customer id").to_owned();
    assert_eq!(
        app.get(&format!("/v1/customers/{customer_id}"))
            .await
            .status(),
        200
    );

    let posted_f = posted as f64;
    let metrics = eventually("metrics to settle", WAIT, || async {
        let metrics = scrape(&app).await;
        let settled = metrics.sum("panorama_insights_contacts", &[("channel", "phone")])
            == f64::from(phone_contacts)
            && metrics.sum("panorama_ready", &[]) == 1.0
            && !metrics
                .find("panorama_projector_consumer_lag", &[])
                .is_empty()
            && metrics.sum("panorama_projector_consumer_lag", &[]) == 0.0
            && metrics.sum("panorama_insights_feedback_responses", &[("metric", "nps")]) == 2.0;
        settled.then_some(metrics)
    })
    .await;

    // Every documented family is exported.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let documented = documented_metrics(&readme);
    assert!(
        documented.len() >= 30,
        "README metrics table: {documented:?}"
    );
    let missing: Vec<&String> = documented
        .iter()
        .filter(|name| !metrics.families.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exported: {missing:?}"
    );
    // And every exported family is documented.
    let undocumented: Vec<&String> = metrics
        .families
        .keys()
        .filter(|name| name.starts_with("panorama_") && !documented.contains(name))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not documented: {undocumented:?}"
    );

    // Ingest.
    assert_eq!(
        metrics.sum("panorama_ingest_events_total", &[("outcome", "accepted")]),
        posted_f
    );
    assert_eq!(
        metrics.sum(
            "panorama_ingest_events_total",
            &[("channel", "phone"), ("source", "events")]
        ),
        f64::from(phone_contacts)
    );
    assert_eq!(
        metrics.sum(
            "panorama_ingest_rejected_total",
            &[("reason", "validation")]
        ),
        1.0
    );
    assert_eq!(
        metrics.sum(
            "panorama_ingest_ignored_total",
            &[("source", "cti"), ("reason", "no_identifier")]
        ),
        1.0
    );
    assert_eq!(
        metrics.sum("panorama_ingest_batch_size_count", &[]),
        f64::from(requests)
    );
    assert_eq!(metrics.sum("panorama_ingest_batch_size_sum", &[]), posted_f);
    assert!(metrics.sum("panorama_broker_produce_seconds_count", &[]) >= f64::from(requests));
    assert_eq!(
        metrics.sum("panorama_broker_produce_failures_total", &[]),
        0.0
    );
    assert_eq!(
        metrics.sum("panorama_broker_producer_queue_depth", &[]),
        0.0
    );

    // Projector.
    assert_eq!(
        metrics.sum("panorama_projector_records_consumed_total", &[]),
        records as f64
    );
    assert_eq!(
        metrics.sum(
            "panorama_projector_events_total",
            &[("outcome", "inserted")]
        ),
        posted_f
    );
    assert_eq!(
        metrics.sum("panorama_event_to_visible_seconds_count", &[]),
        posted_f,
        "one freshness observation per projected event"
    );
    let freshness = metrics.sum("panorama_event_to_visible_seconds_sum", &[]);
    assert!(
        freshness > 0.0 && freshness < posted_f * 60.0,
        "{freshness}"
    );
    assert_eq!(
        metrics.sum(
            "panorama_projector_dlq_records_total",
            &[("reason", "undecodable")]
        ),
        1.0
    );
    assert!(
        metrics.sum(
            "panorama_identity_decisions_total",
            &[("outcome", "merged")]
        ) >= 1.0
    );
    assert_eq!(
        metrics.sum("panorama_projector_batch_size_sum", &[]),
        records as f64
    );
    assert!(metrics.sum("panorama_projector_batch_seconds_count", &[]) >= 1.0);
    assert_eq!(metrics.sum("panorama_projector_group_member", &[]), 1.0);
    assert_eq!(
        metrics.sum("panorama_projector_stored_offset", &[]),
        records as f64
    );
    assert_eq!(
        metrics.find("panorama_projector_consumer_lag", &[]).len(),
        3
    );

    // API: route templates only, never ids.
    let routes: Vec<&String> = metrics
        .find("panorama_http_request_duration_seconds_count", &[])
        .iter()
        .filter_map(|sample| sample.labels.get("route"))
        .collect();
    assert!(
        routes.iter().any(|route| *route == "/v1/customers/{id}"),
        "{routes:?}"
    );
    assert!(
        routes.iter().all(|route| !route.contains(&customer_id)),
        "{routes:?}"
    );
    assert!(
        metrics.sum(
            "panorama_http_request_duration_seconds_count",
            &[
                ("route", "/v1/events"),
                ("method", "POST"),
                ("status", "2xx")
            ]
        ) >= f64::from(requests)
    );
    assert_eq!(metrics.sum("panorama_api_sse_connections", &[]), 0.0);

    // Pool, build, readiness.
    assert_eq!(
        metrics.sum("panorama_db_pool_connections", &[("state", "max")]),
        8.0
    );
    assert!(metrics.sum("panorama_db_pool_connections", &[("state", "open")]) >= 1.0);
    assert_eq!(
        metrics.sum(
            "panorama_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    for check in ["postgres", "kafka", "projector"] {
        assert_eq!(
            metrics.sum("panorama_readiness_check", &[("check", check)]),
            1.0,
            "{check}"
        );
    }

    // Business figures: 9 contacts plus the linking email, 3 per channel
    // for phone and chat; NPS (one promoter, one detractor) 0, CSAT 100.
    assert_eq!(
        metrics.sum("panorama_insights_contacts", &[("channel", "email")]),
        4.0
    );
    assert_eq!(
        metrics.sum("panorama_insights_contacts", &[("channel", "chat")]),
        3.0
    );
    assert_eq!(
        metrics.sum("panorama_insights_contacts", &[("channel", "social")]),
        0.0
    );
    assert_eq!(
        metrics.sum("panorama_insights_feedback_score", &[("metric", "nps")]),
        0.0
    );
    assert_eq!(
        metrics.sum("panorama_insights_feedback_score", &[("metric", "csat")]),
        100.0
    );
    assert!(
        metrics
            .sum("panorama_insights_feedback_score", &[("metric", "ces")])
            .is_nan()
    );
    // Every remaining customer contacted more than once.
    assert_eq!(
        metrics.sum("panorama_insights_repeat_contact_rate", &[]),
        1.0
    );
    assert!(metrics.sum("panorama_insights_refreshed_timestamp_seconds", &[]) > 1.7e9);

    app.stop().await;
}
