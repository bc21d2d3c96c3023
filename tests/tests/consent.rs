//! Consent end to end: contact preferences stated by channel systems
//! (`consent.updated` through `POST /v1/events`) and by agents
//! (`POST /v1/customers/{id}/consent`) go through the broker and the
//! projector into the profile, which keeps the latest statement per
//! channel and purpose whatever order the events arrive in; follow-up tasks
//! carry whether the customer allows their channel; merges, unmerges and a
//! replay of the topic keep the same statements.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use panorama::replay::{ReplayOptions, replay};
use panorama_core::Role;
use panorama_e2e::{at_minute, contact_with};
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

/// A customer's statements as the profile shows them:
/// (channel, purpose) → (granted, source).
type Statements = BTreeMap<(String, String), (bool, String)>;

/// A `consent.updated` event from the e2e preference centre about the
/// customer with `email`.
fn preferences(event_id: &str, minute: i64, email: &str, consent: Value) -> Value {
    json!({
        "event_id": event_id,
        "occurred_at": at_minute(minute).to_rfc3339(),
        "channel": "web",
        "source": "e2e.preferences",
        "type": "consent.updated",
        "identifiers": [{"kind": "email", "value": email}],
        "consent": consent,
    })
}

/// `POST path` with `body` as the holder of `token`: status and JSON body.
async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    post_with(app, token, path, body, None).await
}

async fn post_with(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .request(reqwest::Method::POST, path, Some(token))
        .json(body);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts `event` with the channel token and waits until `total` events
/// are projected.
async fn project(app: &TestApp, channel: &str, event: Value, total: i64) {
    let (status, body) = post_as(app, channel, "/v1/events", &event).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_events(total).await;
}

async fn customer_of(app: &TestApp, email: &str) -> String {
    app.get_json(&format!("/v1/customers/lookup?email={email}"))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

fn statements_of(profile: &Value) -> Statements {
    profile["consent"]
        .as_array()
        .expect("consent")
        .iter()
        .map(|s| {
            (
                (
                    s["channel"].as_str().unwrap_or_default().to_owned(),
                    s["purpose"].as_str().unwrap_or_default().to_owned(),
                ),
                (
                    s["granted"].as_bool().expect("granted"),
                    s["source"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

fn statements(list: &[(&str, &str, bool, &str)]) -> Statements {
    list.iter()
        .map(|(channel, purpose, granted, source)| {
            (
                ((*channel).to_owned(), (*purpose).to_owned()),
                (*granted, (*source).to_owned()),
            )
        })
        .collect()
}

/// Waits until the profile of `id` shows exactly `expected`.
async fn wait_for_statements(app: &TestApp, id: &str, expected: &Statements) -> Value {
    eventually(&format!("the statements {expected:?}"), WAIT, || async {
        let profile = app.get_json(&format!("/v1/customers/{id}")).await;
        (statements_of(&profile) == *expected).then_some(profile)
    })
    .await
}

/// The `consent` flag of each task of customer `id`, by title.
async fn task_flags(app: &TestApp, id: &str) -> BTreeMap<String, String> {
    app.get_json(&format!("/v1/tasks?customer={id}")).await["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| {
            (
                task["title"].as_str().unwrap_or_default().to_owned(),
                task["consent"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn wait_for_task_flags(app: &TestApp, id: &str, expected: &[(&str, &str)]) {
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(title, flag)| ((*title).to_owned(), (*flag).to_owned()))
        .collect();
    eventually(&format!("the task flags {expected:?}"), WAIT, || async {
        (task_flags(app, id).await == expected).then_some(())
    })
    .await;
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Every aggregate, consent included, agrees with a recount from the
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_from_channels_and_agents_decide_whether_a_follow_up_is_allowed() {
    let app = TestApp::spawn().await;
    let channel = app.token(Role::Channel).await;
    let agent = app.token(Role::Agent).await;
    let anna = "anna@example.nl";
    project(
        &app,
        &channel,
        contact_with(
            "anna-call",
            at_minute(0),
            "phone",
            &[("phone", "+31611110001"), ("email", anna)],
        ),
        1,
    )
    .await;
    let id = customer_of(&app, anna).await;
    let profile = app.get_json(&format!("/v1/customers/{id}")).await;
    assert_eq!(profile["consent"], json!([]), "{profile}");
    assert_eq!(profile["follow_up_consent"]["phone"], "unknown");

    // The preference centre says: no marketing email (at minute 20). An
    // older statement (minute 10: marketing email yes, service calls yes)
    // arrives after it: it keeps its service calls, and does not undo the
    // newer refusal.
    project(
        &app,
        &channel,
        preferences(
            "prefs-new",
            20,
            anna,
            json!([{"channel": "email", "purpose": "marketing", "granted": false}]),
        ),
        2,
    )
    .await;
    project(
        &app,
        &channel,
        preferences(
            "prefs-old",
            10,
            anna,
            json!([
                {"channel": "email", "purpose": "marketing", "granted": true},
                {"channel": "phone", "purpose": "service", "granted": true}
            ]),
        ),
        3,
    )
    .await;
    let profile = wait_for_statements(
        &app,
        &id,
        &statements(&[
            ("email", "marketing", false, "e2e.preferences"),
            ("phone", "service", true, "e2e.preferences"),
        ]),
    )
    .await;
    let refusal = profile["consent"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["channel"] == "email"))
        .expect("the email statement");
    assert_eq!(
        refusal["at"].as_str().map(|at| at.parse::<DateTime<Utc>>()),
        Some(Ok(at_minute(20)))
    );
    assert_eq!(profile["follow_up_consent"]["phone"], "allowed");
    assert_eq!(
        profile["follow_up_consent"]["email"], "unknown",
        "a follow-up is a service contact: marketing says nothing about it"
    );
    // Not a contact: the per-channel counts are the call's alone.
    assert_eq!(
        profile["channels"],
        json!([{"channel": "phone", "count": 1, "last_contact_at": at_minute(0),
                "last_direction": "inbound"}]),
        "{profile}"
    );
    assert_eq!(profile["event_count"], 3);

    // Broken statements are refused, naming the field.
    for (body, field) in [
        (
            preferences(
                "bad-1",
                30,
                anna,
                json!([{"channel": "email", "purpose": "ads", "granted": false}]),
            ),
            "consent[0].purpose",
        ),
        (
            json!({"events": [
                preferences("bad-2", 30, anna, json!([{"channel": "sms", "purpose": "service", "granted": true}])),
                preferences("bad-3", 30, anna, json!([
                    {"channel": "sms", "purpose": "service", "granted": true},
                    {"channel": "fax", "purpose": "service", "granted": true}
                ])),
            ]}),
            "events[1].consent[1].channel",
        ),
        (preferences("bad-4", 30, anna, json!([])), "consent"),
        (
            preferences(
                "bad-5",
                30,
                anna,
                json!([{"channel": "sms", "purpose": "service"}]),
            ),
            "consent[0].granted",
        ),
        (
            preferences(
                "bad-6",
                30,
                anna,
                json!([
                    {"channel": "any", "purpose": "surveys", "granted": false},
                    {"channel": "any", "purpose": "surveys", "granted": true}
                ]),
            ),
            "consent[1]",
        ),
    ] {
        let (status, problem) = post_as(&app, &channel, "/v1/events", &body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }

    // An agent records what the customer said on the phone: no service
    // email. Retried with its key, it is one event.
    let path = format!("/v1/customers/{id}/consent");
    let said = json!({"channel": "email", "purpose": "service", "granted": false,
                      "note": "asked on the phone"});
    let (status, first) = post_with(&app, &agent, &path, &said, Some("pref-1")).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["customer_id"], json!(id));
    let (status, again) = post_with(&app, &agent, &path, &said, Some("pref-1")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["event_id"], first["event_id"], "one event per key");
    for (body, field) in [
        (
            json!({"channel": "fax", "purpose": "service", "granted": true}),
            "channel",
        ),
        (
            json!({"channel": "email", "purpose": "spam", "granted": true}),
            "purpose",
        ),
        (json!({"channel": "email", "purpose": "service"}), "granted"),
        (
            json!({"channel": "email", "purpose": "service", "granted": "no"}),
            "granted",
        ),
        (
            json!({"channel": "email", "purpose": "service", "granted": true, "until": "x"}),
            "until",
        ),
    ] {
        let (status, problem) = post_as(&app, &agent, &path, &body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (status, _) = post_as(&app, &channel, &path, &said).await;
    assert_eq!(status, 403, "the route is an agent's");
    let profile = wait_for_statements(
        &app,
        &id,
        &statements(&[
            ("email", "marketing", false, "e2e.preferences"),
            ("email", "service", false, "agent"),
            ("phone", "service", true, "e2e.preferences"),
        ]),
    )
    .await;
    assert_eq!(profile["follow_up_consent"]["email"], "refused");
    let timeline = app
        .get_json(&format!("/v1/customers/{id}/timeline?type=consent.updated"))
        .await;
    let entry = timeline["entries"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["event_id"] == first["event_id"]))
        .expect("the agent's event on the timeline");
    assert_eq!(entry["channel"], "agent");
    assert_eq!(entry["summary"], "asked on the phone");
    assert_eq!(
        entry["consent"],
        json!([{"channel": "email", "purpose": "service", "granted": false}])
    );

    // Follow-ups: flagged on the refused channel, not on the allowed one.
    let due = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let tasks = format!("/v1/customers/{id}/tasks");
    for (title, channel_name, flag) in [
        ("Mail the invoice", "email", "refused"),
        ("Call back", "phone", "allowed"),
        ("Text the code", "sms", "unknown"),
    ] {
        let (status, answer) = post_as(
            &app,
            &agent,
            &tasks,
            &json!({"title": title, "due_at": due, "channel": channel_name}),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["consent"], flag, "{title}: {answer}");
    }
    wait_for_task_flags(
        &app,
        &id,
        &[
            ("Mail the invoice", "refused"),
            ("Call back", "allowed"),
            ("Text the code", "unknown"),
        ],
    )
    .await;

    // Later the customer wants no service contact on any channel (minute
    // 30): it outweighs the older phone statement (minute 10) and speaks
    // for SMS too. The flags follow: they are read, not stored.
    project(
        &app,
        &channel,
        preferences(
            "prefs-any",
            30,
            anna,
            json!([{"channel": "any", "purpose": "service", "granted": false}]),
        ),
        8,
    )
    .await;
    wait_for_task_flags(
        &app,
        &id,
        &[
            ("Mail the invoice", "refused"),
            ("Call back", "refused"),
            ("Text the code", "refused"),
        ],
    )
    .await;
    // Then calls are fine again, said to an agent (now): the phone's own
    // statement is the later one.
    let (status, body) = post_as(
        &app,
        &agent,
        &path,
        &json!({"channel": "phone", "purpose": "service", "granted": true}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait_for_task_flags(
        &app,
        &id,
        &[
            ("Mail the invoice", "refused"),
            ("Call back", "allowed"),
            ("Text the code", "refused"),
        ],
    )
    .await;
    let profile = app.get_json(&format!("/v1/customers/{id}")).await;
    assert_eq!(
        profile["follow_up_consent"],
        json!({"chat": "refused", "email": "refused", "phone": "allowed", "sms": "refused",
               "social": "refused", "web": "refused"}),
        "{profile}"
    );
    assert_consistent(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_follows_merges_and_comes_back_on_unmerge() {
    let app = TestApp::spawn().await;
    let channel = app.token(Role::Channel).await;
    let (anna, bob) = ("anna@example.nl", "bob@example.com");
    let setup = [
        contact_with(
            "anna-1",
            at_minute(0),
            "phone",
            &[("phone", "+31611110001"), ("email", anna)],
        ),
        contact_with(
            "bob-1",
            at_minute(1),
            "social",
            &[("whatsapp", "31622220002"), ("email", bob)],
        ),
        // Anna: service calls yes (minute 10), marketing email no (10).
        preferences(
            "anna-prefs",
            10,
            anna,
            json!([
                {"channel": "phone", "purpose": "service", "granted": true},
                {"channel": "email", "purpose": "marketing", "granted": false}
            ]),
        ),
        // Bob: service calls no, later (20); marketing email yes, earlier (5).
        preferences(
            "bob-prefs-1",
            20,
            bob,
            json!([{"channel": "phone", "purpose": "service", "granted": false}]),
        ),
        preferences(
            "bob-prefs-2",
            5,
            bob,
            json!([{"channel": "email", "purpose": "marketing", "granted": true}]),
        ),
    ];
    for (n, event) in setup.into_iter().enumerate() {
        project(&app, &channel, event, n as i64 + 1).await;
    }
    let anna_id = customer_of(&app, anna).await;
    let bob_id = customer_of(&app, bob).await;
    let annas = statements(&[
        ("email", "marketing", false, "e2e.preferences"),
        ("phone", "service", true, "e2e.preferences"),
    ]);
    let bobs = statements(&[
        ("email", "marketing", true, "e2e.preferences"),
        ("phone", "service", false, "e2e.preferences"),
    ]);
    wait_for_statements(&app, &anna_id, &annas).await;
    wait_for_statements(&app, &bob_id, &bobs).await;

    // Merged, they disagree: the latest statement of the two wins.
    let (status, merged) = post_as(
        &app,
        &app.admin_token,
        &format!("/v1/customers/{bob_id}/merge"),
        &json!({"other": anna_id}),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["survivor"], json!(anna_id));
    let merged_statements = statements(&[
        ("email", "marketing", false, "e2e.preferences"),
        ("phone", "service", false, "e2e.preferences"),
    ]);
    let profile = wait_for_statements(&app, &bob_id, &merged_statements).await;
    assert_eq!(profile["id"], json!(anna_id));
    assert_eq!(profile["follow_up_consent"]["phone"], "refused");
    assert_consistent(&app).await;

    // Bob, through his WhatsApp, refuses surveys by SMS while merged: it
    // lands on the survivor, and leaves with him.
    project(
        &app,
        &channel,
        json!({
            "event_id": "bob-prefs-3",
            "occurred_at": at_minute(40).to_rfc3339(),
            "channel": "social",
            "source": "e2e.preferences",
            "type": "consent.updated",
            "identifiers": [{"kind": "whatsapp", "value": "31622220002"}],
            "consent": [{"channel": "sms", "purpose": "surveys", "granted": false}],
        }),
        6,
    )
    .await;
    let mut with_surveys = merged_statements.clone();
    with_surveys.insert(
        ("sms".into(), "surveys".into()),
        (false, "e2e.preferences".into()),
    );
    wait_for_statements(&app, &anna_id, &with_surveys).await;

    // Unmerged, each has their own again.
    let (status, unmerged) = post_as(
        &app,
        &app.admin_token,
        &format!("/v1/customers/{anna_id}/unmerge"),
        &json!({"merged": bob_id}),
    )
    .await;
    assert_eq!(status, 200, "{unmerged}");
    wait_for_statements(&app, &anna_id, &annas).await;
    let mut bobs_now = bobs.clone();
    bobs_now.insert(
        ("sms".into(), "surveys".into()),
        (false, "e2e.preferences".into()),
    );
    wait_for_statements(&app, &bob_id, &bobs_now).await;
    assert_consistent(&app).await;
    app.stop().await;
}

/// Each customer's statements by its identifiers (a replay assigns new
/// customer ids): identifiers → (channel, purpose, granted, at, event id,
/// source).
async fn canonical_consent(
    db: &tokio_postgres::Client,
    schema: &str,
) -> BTreeMap<BTreeSet<String>, BTreeSet<String>> {
    let rows = db
        .query(
            &format!(
                "SELECT c.id::text,
                        array(SELECT i.kind || ':' || i.value FROM {schema}.identifiers i
                              JOIN {schema}.customers p ON p.id = i.customer_id
                              WHERE p.survivor_id = c.id),
                        array(SELECT concat_ws(' ', k.channel, k.purpose, k.granted::text,
                                               k.at::text, k.event_id::text, k.source)
                              FROM {schema}.customer_consent k WHERE k.customer_id = c.id)
                 FROM {schema}.customers c WHERE c.survivor_id = c.id"
            ),
            &[],
        )
        .await
        .expect("customers");
    rows.iter()
        .map(|row| {
            let identifiers: Vec<String> = row.get(1);
            let statements: Vec<String> = row.get(2);
            (
                identifiers.into_iter().collect(),
                statements.into_iter().collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_topic_gives_the_same_consent() {
    let app = TestApp::spawn().await;
    let (carol, dave) = ("carol@example.nl", "dave@example.nl");
    let mut events = vec![
        contact_with(
            "carol-1",
            at_minute(0),
            "phone",
            &[("phone", "+31633330003"), ("email", carol)],
        ),
        contact_with(
            "dave-1",
            at_minute(1),
            "email",
            &[("phone", "+31644440004"), ("email", dave)],
        ),
        preferences(
            "carol-prefs-2",
            30,
            carol,
            json!([{"channel": "any", "purpose": "marketing", "granted": false}]),
        ),
        preferences(
            "carol-prefs-1",
            10,
            carol,
            json!([
                {"channel": "any", "purpose": "marketing", "granted": true},
                {"channel": "whatsapp", "purpose": "service", "granted": true}
            ]),
        ),
        preferences(
            "dave-prefs",
            20,
            dave,
            json!([{"channel": "whatsapp", "purpose": "service", "granted": false}]),
        ),
    ];
    // A web form with an opt-in box: a contact that states a preference.
    let mut form = contact_with("dave-form", at_minute(25), "web", &[("email", dave)]);
    form["consent"] = json!([{"channel": "email", "purpose": "surveys", "granted": true}]);
    events.push(form);
    let mut posted = 0;
    for event in events {
        assert_eq!(app.post_events(&event).await.status(), 202);
        posted += 1;
        app.wait_for_events(posted).await;
    }
    // Carol's phone and Dave's email on one contact: one customer.
    let link = contact_with(
        "link",
        at_minute(50),
        "phone",
        &[("phone", "+31633330003"), ("email", dave)],
    );
    assert_eq!(app.post_events(&link).await.status(), 202);
    posted += 1;
    app.wait_for_events(posted).await;
    let carol_id = customer_of(&app, carol).await;
    let profile = wait_for_statements(
        &app,
        &carol_id,
        &statements(&[
            ("any", "marketing", false, "e2e.preferences"),
            ("email", "surveys", true, "e2e"),
            ("whatsapp", "service", false, "e2e.preferences"),
        ]),
    )
    .await;
    assert_eq!(customer_of(&app, dave).await, carol_id, "one customer");
    assert_eq!(
        profile["follow_up_consent"]["social"], "unknown",
        "WhatsApp refused, Messenger and Instagram never said"
    );
    assert_consistent(&app).await;
    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;

    let db = client(&app.database.url).await;
    let live = canonical_consent(&db, "public").await;
    assert!(
        live.values().any(|statements| statements.len() == 3),
        "{live:?}"
    );
    let report = replay(&app.options, &ReplayOptions::new("replay_consent"))
        .await
        .expect("replay");
    assert_eq!(report.records, records);
    let replayed = canonical_consent(&db, "replay_consent").await;
    assert_eq!(replayed, live, "the replay's consent differs");
    app.stop().await;
}
