//! The projector's incremental aggregates equal a full recount from the
//! events, after random streams with duplicates, out-of-order arrival and
//! merges (both the store's own recount of each customer and the test kit's
//! read-only recount of the whole database, which the fault harness uses);
//! and its cases equal the case logic run over the events in time order.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, Utc};
use panorama_core::cases::{CaseInput, CaseRules, assign_cases};
use panorama_core::{ContactEvent, EventDraft, ValidationContext};
use panorama_testkit::TestApp;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

const PEOPLE: usize = 12;
const EVENTS: usize = 250;

/// A random stream: contacts, receipts, page views, survey answers and
/// consent statements (a few channels and purposes, so that they overlap)
/// of `PEOPLE` people over the last 60 days. Each person has an email address
/// and a phone number; with `split`, an event carries either or both, so
/// customers are created apart and merged later. A tenth of the events are
/// sent twice.
fn stream(seed: u64, split: bool) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let types = [
        ("phone", "call.ended"),
        ("phone", "call.missed"),
        ("email", "email.received"),
        ("email", "email.sent"),
        ("email", "email.auto_reply"),
        ("social", "message.received"),
        ("social", "message.read"),
        ("web", "form.submitted"),
        ("web", "page.viewed"),
        ("chat", "chat.started"),
    ];
    let reasons = ["parcel", "invoice", "broken device"];
    let now = Utc::now();
    let mut events: Vec<Value> = (0..EVENTS)
        .map(|n| {
            let person = rng.random_range(0..PEOPLE);
            let email = json!({"kind": "email", "value": format!("s{seed}p{person}@example.com")});
            let phone = json!({"kind": "phone", "value": format!("+3162{seed:02}{person:05}")});
            let identifiers = match if split { rng.random_range(0..3) } else { 2 } {
                0 => vec![email],
                1 => vec![phone],
                _ => vec![email, phone],
            };
            let at = now - Duration::seconds(rng.random_range(60..60 * 86_400));
            let mut event = json!({
                "event_id": format!("s{seed}-{n}"),
                "occurred_at": at.to_rfc3339(),
                "source": "e2e",
                "identifiers": identifiers,
            });
            if rng.random_bool(0.15) {
                let metric = *["nps", "csat", "ces"].choose(&mut rng).expect("metric");
                let top = match metric {
                    "nps" => 10,
                    "csat" => 5,
                    _ => 7,
                };
                event["channel"] = json!("web");
                event["type"] = json!("feedback.submitted");
                event["feedback"] = json!({"metric": metric, "score": rng.random_range(1..=top)});
            } else if rng.random_bool(0.12) {
                let keys: Vec<(&str, &str)> = ["any", "phone", "email", "whatsapp"]
                    .into_iter()
                    .flat_map(|channel| ["service", "marketing"].map(|purpose| (channel, purpose)))
                    .collect();
                let count = rng.random_range(1..=3);
                let statements: Vec<Value> = keys
                    .choose_multiple(&mut rng, count)
                    .map(|(channel, purpose)| {
                        json!({"channel": channel, "purpose": purpose, "granted": rng.random_bool(0.5)})
                    })
                    .collect();
                event["channel"] = json!("web");
                event["type"] = json!("consent.updated");
                event["consent"] = json!(statements);
            } else {
                let (channel, event_type) = *types.choose(&mut rng).expect("type");
                event["channel"] = json!(channel);
                event["type"] = json!(event_type);
                event["direction"] = json!("inbound");
                event["contact_reason"] = json!(reasons.choose(&mut rng));
                if rng.random_bool(0.2) {
                    event["conversation_id"] = json!(format!("conv-{}", rng.random_range(0..4)));
                }
                if rng.random_bool(0.3) {
                    event["display_name"] = json!(format!("Person {person} v{n}"));
                }
                if rng.random_bool(0.1) {
                    let tier = ["gold", "basic"][n % 2];
                    event["attributes"] = json!({ "customer.tier": tier });
                }
            }
            event
        })
        .collect();
    let duplicates: Vec<Value> = events
        .iter()
        .filter(|_| rng.random_bool(0.1))
        .cloned()
        .collect();
    events.extend(duplicates);
    events.shuffle(&mut rng);
    events
}

/// A profile without its id fields, for comparing before and after.
async fn aggregates(app: &TestApp, customer: &str) -> Value {
    let mut profile = app.get_json(&format!("/v1/customers/{customer}")).await;
    if let Some(object) = profile.as_object_mut() {
        object.remove("requested_id");
    }
    profile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_aggregates_equal_a_recount_after_random_streams() {
    let app = TestApp::spawn().await;
    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let mut total = 0i64;
    for seed in 1..=4u64 {
        // Odd seeds merge customers; even ones keep each person one
        // customer from the start, so the cases can be compared with the
        // case logic run once over all events (cases of two customers are
        // joined after a merge only by a later contact that links them).
        let split = seed % 2 == 1;
        let events = stream(seed, split);
        // Out of order and in several requests, so several batches.
        for chunk in events.chunks(60) {
            let response = app.post_events(&json!({ "events": chunk })).await;
            assert_eq!(response.status(), 202);
        }
        let unique: BTreeSet<&str> = events
            .iter()
            .filter_map(|event| event["event_id"].as_str())
            .collect();
        total += unique.len() as i64;
        app.wait_for_events(total).await;
        // Every aggregate of the database against a recount from the
        // events, before the per-customer recounts below rewrite them.
        let mismatches = panorama_testkit::aggregate_mismatches(&client)
            .await
            .expect("bulk recount");
        assert!(
            mismatches.is_empty(),
            "seed {seed}: {}",
            mismatches
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );

        let survivors: Vec<Uuid> = client
            .query(
                "SELECT id FROM customers WHERE merged_into IS NULL AND id IN
                 (SELECT c.survivor_id FROM customers AS c JOIN identifiers AS i ON i.customer_id = c.id
                  WHERE i.value LIKE $1 OR i.value LIKE $2)",
                &[&format!("s{seed}p%"), &format!("+3162{seed:02}%")],
            )
            .await
            .expect("survivors")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            survivors.len() >= PEOPLE / 2,
            "seed {seed}: {} customers",
            survivors.len()
        );
        for survivor in &survivors {
            let id = survivor.to_string();
            let incremental = aggregates(&app, &id).await;
            assert!(
                app.store
                    .recount_customer(*survivor)
                    .await
                    .expect("recount")
            );
            let recounted = aggregates(&app, &id).await;
            assert_eq!(incremental, recounted, "seed {seed}, customer {id}");
        }

        if split {
            continue;
        }
        // Cases: the projection's grouping equals the case logic over the
        // unique events in time order, per customer.
        let context = ValidationContext::now(None);
        let mut drafts: Vec<ContactEvent> = Vec::new();
        let mut seen = BTreeSet::new();
        for event in &events {
            let event: ContactEvent = serde_json::from_value::<EventDraft>(event.clone())
                .expect("draft")
                .validate(&context)
                .expect("valid");
            if seen.insert(event.event_id) {
                drafts.push(event);
            }
        }
        drafts.sort_by_key(|event| event.occurred_at);
        let ids: Vec<Uuid> = drafts.iter().map(|event| event.event_id).collect();
        let rows = client
            .query(
                "SELECT e.event_id, c.survivor_id, e.case_id FROM events AS e
                 JOIN customers AS c ON c.id = e.customer_id WHERE e.event_id = ANY($1)",
                &[&ids],
            )
            .await
            .expect("events");
        let stored: HashMap<Uuid, (Uuid, Option<Uuid>)> = rows
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let inputs: Vec<CaseInput<'_>> = drafts
            .iter()
            .map(|event| CaseInput {
                event,
                customer: stored[&event.event_id].0,
            })
            .collect();
        let mut cases = Vec::new();
        let decisions = assign_cases(&mut cases, &inputs, &CaseRules::default(), |event| {
            event.event_id
        });
        let merged: HashMap<Uuid, Uuid> = decisions.merged.iter().copied().collect();
        let final_case = |mut id: Uuid| {
            while let Some(&next) = merged.get(&id) {
                id = next;
            }
            id
        };
        let expected = grouping(
            drafts
                .iter()
                .zip(&decisions.event_cases)
                .filter_map(|(event, case)| case.map(|case| (event.event_id, final_case(case)))),
        );
        let actual = grouping(
            drafts
                .iter()
                .filter_map(|event| stored[&event.event_id].1.map(|case| (event.event_id, case))),
        );
        assert_eq!(actual, expected, "seed {seed}: cases");
    }
    app.stop().await;
}

/// Events grouped by case, as sets of event ids.
fn grouping(pairs: impl Iterator<Item = (Uuid, Uuid)>) -> BTreeSet<BTreeSet<Uuid>> {
    let mut groups: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
    for (event, case) in pairs {
        groups.entry(case).or_default().insert(event);
    }
    groups.into_values().collect()
}
