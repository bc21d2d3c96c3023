//! Customer traits end to end: `customer.*` attributes posted through
//! `POST /v1/events` go through the broker and the projector into the
//! profile's `traits`, typed, the latest by when the events happened
//! whatever order they arrive in, with where they came from; merges keep
//! the later value per key and unmerges give each side its own again; the
//! priority rule reads them; the export holds them and an erasure removes
//! them; a customer holds at most 100; and every aggregate still agrees
//! with a recount from the events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use panorama_core::priority::PriorityRules;
use panorama_e2e::at_minute;
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

/// Priority rules over traits: typed comparisons and the older syntax.
const RULES: &str = "vip:trait.lifetime_value>=1000,gold:customer.tier=gold,default=standard";

/// An event about the customer with `email` carrying `traits` as
/// `customer.*` attributes.
fn with_traits(
    event_id: &str,
    minute: i64,
    email: &str,
    (channel, source): (&str, &str),
    traits: &[(&str, &str)],
) -> Value {
    let attributes: BTreeMap<String, &str> = traits
        .iter()
        .map(|(name, value)| (format!("customer.{name}"), *value))
        .collect();
    json!({
        "event_id": event_id,
        "occurred_at": at_minute(minute).to_rfc3339(),
        "channel": channel,
        "source": source,
        "type": "form.submitted",
        "direction": "inbound",
        "identifiers": [{"kind": "email", "value": email}],
        "attributes": attributes,
    })
}

/// Posts `event` and waits until `total` events are projected.
async fn project(app: &TestApp, event: &Value, total: i64) {
    let response = app.post_events(event).await;
    let status = response.status().as_u16();
    assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
    app.wait_for_events(total).await;
}

async fn customer_of(app: &TestApp, email: &str) -> String {
    app.get_json(&format!("/v1/customers/lookup?email={email}"))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// The traits of the profile `id` leads to, as (name → value) pairs.
fn values(profile: &Value) -> BTreeMap<String, Value> {
    profile["traits"]
        .as_object()
        .expect("traits")
        .iter()
        .map(|(name, t)| (name.clone(), t["value"].clone()))
        .collect()
}

/// Waits until the profile of `id` shows exactly these trait values.
async fn wait_for_traits(app: &TestApp, id: &str, expected: &[(&str, Value)]) -> Value {
    let expected: BTreeMap<String, Value> = expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    eventually(&format!("the traits {expected:?}"), WAIT, || async {
        let profile = app.get_json(&format!("/v1/customers/{id}")).await;
        (values(&profile) == expected).then_some(profile)
    })
    .await
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Every aggregate, traits included, agrees with a recount from the
/// events.
async fn assert_consistent(app: &TestApp) {
    let db = client(&app.database.url).await;
    let mismatches = panorama_testkit::aggregate_mismatches(&db)
        .await
        .expect("the checks run");
    assert!(
        mismatches.is_empty(),
        "aggregates differ from their recount:\n{}",
        mismatches
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn at_of(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|at| at.parse().ok())
        .expect("an RFC 3339 time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traits_keep_the_latest_value_typed_with_where_it_came_from() {
    let app = TestApp::builder()
        .configure(|options| {
            options.view_rules.priority = PriorityRules::parse(RULES).expect("rules");
        })
        .spawn()
        .await;
    let anna = "anna.traits@example.nl";
    // The CRM's update (minute 20) arrives before the web form's older one
    // (minute 10): the form's tier does not undo the CRM's, its city is
    // new.
    project(
        &app,
        &with_traits(
            "crm-1",
            20,
            anna,
            ("web", "crm"),
            &[
                ("tier", "gold"),
                ("lifetime_value", "1200"),
                ("newsletter", "true"),
                ("signed_up", "2024-05-01T12:00:00+02:00"),
                ("account_ref", "12345678901234567890"),
            ],
        ),
        1,
    )
    .await;
    project(
        &app,
        &with_traits(
            "form-1",
            10,
            anna,
            ("web", "web.form"),
            &[("tier", "silver"), ("city", "Utrecht")],
        ),
        2,
    )
    .await;
    let id = customer_of(&app, anna).await;
    let profile = wait_for_traits(
        &app,
        &id,
        &[
            ("account_ref", json!("12345678901234567890")),
            ("city", json!("Utrecht")),
            ("lifetime_value", json!(1200)),
            ("newsletter", json!(true)),
            ("signed_up", json!("2024-05-01T10:00:00Z")),
            ("tier", json!("gold")),
        ],
    )
    .await;
    let traits = &profile["traits"];
    for (name, kind) in [
        ("account_ref", "string"),
        ("city", "string"),
        ("lifetime_value", "number"),
        ("newsletter", "boolean"),
        ("signed_up", "timestamp"),
        ("tier", "string"),
    ] {
        assert_eq!(traits[name]["type"], kind, "{name}: {traits}");
    }
    assert_eq!(traits["tier"]["source"], "crm");
    assert_eq!(traits["tier"]["channel"], "web");
    assert_eq!(at_of(&traits["tier"]["at"]), at_minute(20));
    assert_eq!(traits["city"]["source"], "web.form");
    assert_eq!(at_of(&traits["city"]["at"]), at_minute(10));
    // Typed: 1200 is at least 1000, so the first rule gives the tier.
    assert_eq!(profile["signals"]["priority"], "vip", "{profile}");

    // Two values at the same time: the greater event id wins, whatever
    // order they come in.
    let (low, high) = (
        "018f0000-0000-7000-8000-000000000001",
        "018f0000-0000-7000-8000-000000000002",
    );
    project(
        &app,
        &with_traits(high, 30, anna, ("web", "crm"), &[("plan", "b")]),
        3,
    )
    .await;
    project(
        &app,
        &with_traits(low, 30, anna, ("web", "crm"), &[("plan", "a")]),
        4,
    )
    .await;
    // The CRM lowers the value: the older attribute rule gives the tier.
    project(
        &app,
        &with_traits(
            "crm-2",
            40,
            anna,
            ("web", "crm"),
            &[("lifetime_value", "999.5")],
        ),
        5,
    )
    .await;
    let profile = wait_for_traits(
        &app,
        &id,
        &[
            ("account_ref", json!("12345678901234567890")),
            ("city", json!("Utrecht")),
            ("lifetime_value", json!(999.5)),
            ("newsletter", json!(true)),
            ("plan", json!("b")),
            ("signed_up", json!("2024-05-01T10:00:00Z")),
            ("tier", json!("gold")),
        ],
    )
    .await;
    assert_eq!(profile["traits"]["plan"]["event_id"], high);
    assert_eq!(profile["signals"]["priority"], "gold", "{profile}");

    // What the gateway accepts, the projector writes; what it refuses, it
    // refuses naming the field.
    let too_long = "x".repeat(panorama_core::traits::VALUE.chars + 1);
    let response = app
        .post_events(&with_traits(
            "form-2",
            50,
            anna,
            ("web", "web.form"),
            &[("note", too_long.as_str())],
        ))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["field"], "attributes.customer.note", "{problem}");

    // Bob, another customer, has a later tier and a region of his own.
    let bob = "bob.traits@example.nl";
    project(
        &app,
        &with_traits(
            "bob-1",
            45,
            bob,
            ("email", "segment"),
            &[("tier", "platinum"), ("region", "eu"), ("city", "Delft")],
        ),
        6,
    )
    .await;
    project(
        &app,
        &with_traits("bob-0", 5, bob, ("email", "segment"), &[("city", "Leiden")]),
        7,
    )
    .await;
    let bob_id = customer_of(&app, bob).await;
    wait_for_traits(
        &app,
        &bob_id,
        &[
            ("city", json!("Delft")),
            ("region", json!("eu")),
            ("tier", json!("platinum")),
        ],
    )
    .await;
    assert_consistent(&app).await;

    // Merged, the later value of each key wins.
    let response = app
        .post_json(
            &format!("/v1/customers/{bob_id}/merge"),
            &json!({"other": id}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let merged: Value = response.json().await.expect("json");
    let survivor = merged["survivor"].as_str().expect("survivor").to_owned();
    let profile = wait_for_traits(
        &app,
        &survivor,
        &[
            ("account_ref", json!("12345678901234567890")),
            ("city", json!("Delft")),
            ("lifetime_value", json!(999.5)),
            ("newsletter", json!(true)),
            ("plan", json!("b")),
            ("region", json!("eu")),
            ("signed_up", json!("2024-05-01T10:00:00Z")),
            ("tier", json!("platinum")),
        ],
    )
    .await;
    assert_eq!(profile["traits"]["tier"]["source"], "segment");
    assert_eq!(profile["traits"]["tier"]["channel"], "email");
    assert_consistent(&app).await;

    // Unmerged, each side has its own again.
    let other = if survivor == id { &bob_id } else { &id };
    let response = app
        .post_json(
            &format!("/v1/customers/{survivor}/unmerge"),
            &json!({"merged": other}),
        )
        .await;
    assert_eq!(response.status(), 200);
    wait_for_traits(
        &app,
        &id,
        &[
            ("account_ref", json!("12345678901234567890")),
            ("city", json!("Utrecht")),
            ("lifetime_value", json!(999.5)),
            ("newsletter", json!(true)),
            ("plan", json!("b")),
            ("signed_up", json!("2024-05-01T10:00:00Z")),
            ("tier", json!("gold")),
        ],
    )
    .await;
    wait_for_traits(
        &app,
        &bob_id,
        &[
            ("city", json!("Delft")),
            ("region", json!("eu")),
            ("tier", json!("platinum")),
        ],
    )
    .await;
    assert_consistent(&app).await;

    // The export holds them, with where they came from.
    let export = app.get_json(&format!("/v1/customers/{id}/export")).await;
    let tier = export["attributes"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["key"] == "customer.tier"))
        .expect("the tier in the export");
    assert_eq!(tier["value"], "gold");
    assert_eq!(tier["source"], "crm");
    assert_eq!(tier["channel"], "web");
    assert_eq!(at_of(&tier["at"]), at_minute(20));
    assert!(tier["event_id"].is_string(), "{tier}");

    // An erasure removes them.
    let response = app
        .post_json(&format!("/v1/customers/{id}/erasure"), &json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("Location");
    eventually("the erasure done", WAIT, || async {
        (app.get_json(&location).await["status"] == "done").then_some(())
    })
    .await;
    let db = client(&app.database.url).await;
    let held: Vec<String> = db
        .query(
            "SELECT key FROM customer_attributes WHERE customer_id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(held.is_empty(), "{held:?}");
    assert_eq!(app.get(&format!("/v1/customers/{id}")).await.status(), 404);
    wait_for_traits(
        &app,
        &bob_id,
        &[
            ("city", json!("Delft")),
            ("region", json!("eu")),
            ("tier", json!("platinum")),
        ],
    )
    .await;
    assert_consistent(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_holds_at_most_a_hundred_traits() {
    let app = TestApp::spawn().await;
    let carla = "carla.traits@example.nl";
    let keys = |range: std::ops::Range<usize>| -> Vec<(String, String)> {
        range
            .map(|i| (format!("k{i:03}"), format!("v{i}")))
            .collect()
    };
    let event = |event_id: &str, minute: i64, pairs: &[(String, String)]| {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        with_traits(event_id, minute, carla, ("web", "crm"), &pairs)
    };
    // 60 keys, then 60 more: the first 100 are held, the last 20 dropped.
    project(&app, &event("many-1", 1, &keys(0..60)), 1).await;
    project(&app, &event("many-2", 2, &keys(60..120)), 2).await;
    let id = customer_of(&app, carla).await;
    let held = |profile: &Value| -> Vec<String> {
        profile["traits"]
            .as_object()
            .map(|traits| traits.keys().cloned().collect())
            .unwrap_or_default()
    };
    let expected: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
    let profile = eventually("100 traits", WAIT, || async {
        let profile = app.get_json(&format!("/v1/customers/{id}")).await;
        (held(&profile) == expected).then_some(profile)
    })
    .await;
    assert_eq!(profile["traits"]["k099"]["value"], "v99");
    // The keys held keep taking newer values; a new key is dropped.
    project(
        &app,
        &event(
            "many-3",
            3,
            &[
                ("k000".to_owned(), "newer".to_owned()),
                ("k200".to_owned(), "dropped".to_owned()),
            ],
        ),
        3,
    )
    .await;
    let profile = eventually("the newer k000", WAIT, || async {
        let profile = app.get_json(&format!("/v1/customers/{id}")).await;
        (profile["traits"]["k000"]["value"] == "newer").then_some(profile)
    })
    .await;
    assert_eq!(held(&profile), expected);
    let metrics = app.metrics_text().await;
    let dropped: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("panorama_projector_traits_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the dropped traits counter");
    // The counter is the process's: no other test here drops any.
    assert_eq!(
        dropped, 21.0,
        "20 keys of the second event, one of the third"
    );
    assert_consistent(&app).await;
    app.stop().await;
}
