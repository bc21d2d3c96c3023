//! The whole pipeline through HTTP, the broker and PostgreSQL: every event
//! lands once, in the right customer's timeline, in the right order.

use std::collections::{HashMap, HashSet};

use panorama_e2e::{at_minute, contact, email_of, phone_of};
use panorama_testkit::TestApp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CUSTOMERS: usize = 100;
const EVENTS_PER_CUSTOMER: usize = 10;

struct Expected {
    /// Customer index → (occurred_at, event id) of each of its events.
    by_customer: HashMap<usize, Vec<(String, String)>>,
    /// The request bodies, in the order they were posted.
    batches: Vec<Value>,
}

/// 1,000 events of 100 customers, shuffled, with occurred_at collisions (a
/// two-day window at minute resolution) so the event_id tie-break matters.
fn workload(seed: u64) -> Vec<(usize, Value)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let channels = ["phone", "email", "web", "social"];
    let mut events = Vec::new();
    for customer in 0..CUSTOMERS {
        for n in 0..EVENTS_PER_CUSTOMER {
            let occurred_at = at_minute(rng.random_range(0..2 * 24 * 60));
            let channel = channels[rng.random_range(0..channels.len())];
            let body = contact(
                customer,
                &format!("e2e-{customer}-{n}"),
                occurred_at,
                channel,
            );
            events.push((customer, body));
        }
    }
    events.shuffle(&mut rng);
    events
}

async fn post_workload(app: &TestApp, events: &[(usize, Value)]) -> Expected {
    let mut expected = Expected {
        by_customer: HashMap::new(),
        batches: Vec::new(),
    };
    for chunk in events.chunks(100) {
        let body = json!({ "events": chunk.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>() });
        let response = app.post_events(&body).await;
        assert_eq!(response.status(), 202);
        let accepted: Value = response.json().await.expect("json");
        let ids = accepted["accepted"].as_array().expect("accepted ids");
        assert_eq!(ids.len(), chunk.len());
        for ((customer, event), id) in chunk.iter().zip(ids) {
            let occurred_at =
                chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().expect("time"))
                    .expect("rfc3339")
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            expected
                .by_customer
                .entry(*customer)
                .or_default()
                .push((occurred_at, id.as_str().expect("id").to_owned()));
        }
        expected.batches.push(body);
    }
    for events in expected.by_customer.values_mut() {
        // Newest first by occurred_at, then event_id (UUIDs order as their
        // lower-case hex text, as PostgreSQL orders them).
        events.sort_by(|a, b| b.cmp(a));
    }
    expected
}

/// Walks a customer's whole timeline `page` entries at a time.
async fn walk_timeline(app: &TestApp, customer_id: &str, page: usize) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/customers/{customer_id}/timeline?limit={page}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let body = app.get_json(&path).await;
        let page_entries = body["entries"].as_array().expect("entries");
        assert!(page_entries.len() <= page);
        for entry in page_entries {
            entries.push((
                entry["occurred_at"].as_str().expect("time").to_owned(),
                entry["event_id"].as_str().expect("id").to_owned(),
            ));
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_land_once_in_order_and_replays_change_nothing() {
    let app = TestApp::spawn().await;
    let events = workload(7);
    let expected = post_workload(&app, &events).await;
    app.wait_for_events(1000).await;

    let totals = app.store.totals().await.expect("totals");
    assert_eq!(totals.customers, CUSTOMERS as i64);
    assert_eq!(totals.identifiers, 2 * CUSTOMERS as i64);

    let mut seen_ids = HashSet::new();
    for customer in 0..CUSTOMERS {
        let by_phone = app
            .get_json(&format!(
                "/v1/customers/lookup?phone={}",
                phone_of(customer).replace('+', "%2B")
            ))
            .await;
        let by_email = app
            .get_json(&format!(
                "/v1/customers/lookup?email={}",
                email_of(customer)
            ))
            .await;
        assert_eq!(by_phone["id"], by_email["id"], "one customer per person");
        assert_eq!(by_phone["event_count"], EVENTS_PER_CUSTOMER as i64);
        assert_eq!(by_phone["display_name"], format!("Customer {customer}"));
        let channel_total: i64 = by_phone["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .map(|c| c["count"].as_i64().expect("count"))
            .sum();
        assert_eq!(channel_total, EVENTS_PER_CUSTOMER as i64);

        let customer_id = by_phone["id"].as_str().expect("id");
        let timeline = walk_timeline(&app, customer_id, 3).await;
        assert_eq!(
            timeline, expected.by_customer[&customer],
            "customer {customer}: order, gaps, repeats"
        );
        for (_, id) in &timeline {
            assert!(
                seen_ids.insert(id.clone()),
                "event {id} appears in two timelines"
            );
        }
        let newest = &expected.by_customer[&customer][0].0;
        let oldest = &expected.by_customer[&customer][EVENTS_PER_CUSTOMER - 1].0;
        assert_eq!(by_phone["last_contact_at"].as_str(), Some(newest.as_str()));
        assert_eq!(by_phone["first_contact_at"].as_str(), Some(oldest.as_str()));
    }
    assert_eq!(seen_ids.len(), 1000);

    // The same 1,000 again: accepted (they are retries), projected as no-ops.
    for body in &expected.batches {
        assert_eq!(app.post_events(body).await.status(), 202);
    }
    app.wait_for_offsets(2000).await;
    let again = app.store.totals().await.expect("totals");
    assert_eq!(again, totals, "a replay changes nothing");
    let first = &expected.by_customer[&0];
    let profile = app
        .get_json(&format!("/v1/customers/lookup?email={}", email_of(0)))
        .await;
    assert_eq!(
        profile["event_count"],
        first.len() as i64,
        "aggregates did not double"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_filters_and_late_events() {
    let app = TestApp::spawn().await;
    let late = contact(1, "late", at_minute(5), "email");
    let early = contact(1, "early", at_minute(10), "phone");
    let newest = contact(1, "newest", at_minute(20), "phone");
    for body in [&newest, &early] {
        assert_eq!(app.post_events(body).await.status(), 202);
    }
    app.wait_for_events(2).await;
    // Arrives last, happened first: lands at the end of the timeline.
    assert_eq!(app.post_events(&late).await.status(), 202);
    app.wait_for_events(3).await;

    let id = app
        .get_json(&format!("/v1/customers/lookup?email={}", email_of(1)))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let types = |body: &Value| -> Vec<String> {
        body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["type"].as_str().expect("type").to_owned())
            .collect()
    };
    let all = app.get_json(&format!("/v1/customers/{id}/timeline")).await;
    assert_eq!(types(&all), ["call.ended", "call.ended", "email.received"]);
    assert_eq!(
        all["entries"][2]["occurred_at"],
        at_minute(5).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert!(all.get("next_cursor").is_none());

    let email = app
        .get_json(&format!("/v1/customers/{id}/timeline?channel=email"))
        .await;
    assert_eq!(types(&email), ["email.received"]);
    let calls = app
        .get_json(&format!("/v1/customers/{id}/timeline?type=call.ended"))
        .await;
    assert_eq!(calls["entries"].as_array().map(Vec::len), Some(2));
    let since = at_minute(10).to_rfc3339().replace('+', "%2B");
    let until = at_minute(20).to_rfc3339().replace('+', "%2B");
    let window = app
        .get_json(&format!(
            "/v1/customers/{id}/timeline?since={since}&until={until}"
        ))
        .await;
    assert_eq!(
        window["entries"].as_array().map(Vec::len),
        Some(1),
        "since inclusive, until exclusive"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_replies_and_receipts_are_history_not_contacts() {
    let app = TestApp::spawn().await;
    let question = contact(2, "question", at_minute(10), "email");
    let mut out_of_office = contact(2, "ooo", at_minute(20), "email");
    out_of_office["type"] = json!("email.auto_reply");
    let mut read = contact(2, "read", at_minute(30), "social");
    read["type"] = json!("message.read");
    read["direction"] = json!("outbound");
    let body = json!({ "events": [question, out_of_office, read] });
    assert_eq!(app.post_events(&body).await.status(), 202);
    app.wait_for_events(3).await;

    let profile = app
        .get_json(&format!("/v1/customers/lookup?email={}", email_of(2)))
        .await;
    assert_eq!(profile["event_count"], 3, "all three are in the history");
    let channels = profile["channels"].as_array().expect("channels");
    assert_eq!(
        channels.len(),
        1,
        "only the email channel saw a contact: {channels:?}"
    );
    assert_eq!(channels[0]["channel"], "email");
    assert_eq!(channels[0]["count"], 1);
    let question_at = at_minute(10).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(
        profile["last_contact_at"].as_str(),
        Some(question_at.as_str())
    );
    app.stop().await;
}
