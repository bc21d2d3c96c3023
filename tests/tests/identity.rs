//! Identity resolution end to end: guards that keep different people apart,
//! manual merge and unmerge, old ids after a merge, and conflicts for
//! review.

use panorama_e2e::{at_minute, contact_with};
use panorama_testkit::TestApp;
use serde_json::{Value, json};

#[path = "support/customers.rs"]
mod customers;

use customers::{customer_of, project};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(path, &body).await;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn open_conflicts(app: &TestApp) -> Vec<Value> {
    app.get_json("/v1/identity/conflicts").await["conflicts"]
        .as_array()
        .expect("conflicts")
        .clone()
}

/// The identity of a customer as a comparable value: its identifiers with
/// the profile each came through, sorted.
async fn identifiers_of(app: &TestApp, customer: &str) -> Vec<(String, String, String)> {
    let identity = app
        .get_json(&format!("/v1/customers/{customer}/identity"))
        .await;
    let mut identifiers: Vec<(String, String, String)> = identity["identifiers"]
        .as_array()
        .expect("identifiers")
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or_default().to_owned(),
                i["value"].as_str().unwrap_or_default().to_owned(),
                i["profile_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    identifiers.sort();
    identifiers
}

async fn event_ids_of(app: &TestApp, customer: &str) -> Vec<String> {
    let timeline = app
        .get_json(&format!("/v1/customers/{customer}/timeline?limit=200"))
        .await;
    let mut ids: Vec<String> = timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["event_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The profile's aggregates, without the id fields.
async fn aggregates_of(app: &TestApp, customer: &str) -> Value {
    let mut profile = app.get_json(&format!("/v1/customers/{customer}")).await;
    let object = profile.as_object_mut().expect("profile");
    object.remove("id");
    object.remove("requested_id");
    profile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_accounts_or_a_shared_web_visitor_never_merge_two_people() {
    let app = TestApp::spawn().await;
    let phone = "+31612340001";
    project(
        &app,
        contact_with(
            "guard-1",
            at_minute(0),
            "phone",
            &[("account", "A-1"), ("phone", phone)],
        ),
        1,
    )
    .await;
    project(
        &app,
        contact_with("guard-2", at_minute(1), "web", &[("account", "A-2")]),
        2,
    )
    .await;
    let first = customer_of(&app, "account=A-1").await;
    let second = customer_of(&app, "account=A-2").await;
    assert_ne!(first, second);

    // The second account holder calls from the first one's phone.
    project(
        &app,
        contact_with(
            "guard-3",
            at_minute(2),
            "phone",
            &[("phone", phone), ("account", "A-2")],
        ),
        3,
    )
    .await;
    assert_eq!(customer_of(&app, "account=A-1").await, first, "not merged");
    assert_eq!(customer_of(&app, "account=A-2").await, second, "not merged");
    assert_eq!(
        customer_of(&app, &format!("phone=%2B{}", &phone[1..])).await,
        first,
        "the phone stays where it was"
    );
    assert!(
        event_ids_of(&app, &second).await.len() == 2,
        "the call went to the owner of the account, its best identifier"
    );
    let conflicts = open_conflicts(&app).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["reason"], "limit");
    assert_eq!(conflicts[0]["kind"], "account");
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(conflicts[0]["customers"], json!(expected));

    // Two known customers who used the same computer.
    project(
        &app,
        contact_with(
            "guard-4",
            at_minute(3),
            "web",
            &[("visitor", "v-shared"), ("email", "mo@example.com")],
        ),
        4,
    )
    .await;
    project(
        &app,
        contact_with(
            "guard-5",
            at_minute(4),
            "email",
            &[("email", "ni@example.com")],
        ),
        5,
    )
    .await;
    project(
        &app,
        contact_with(
            "guard-6",
            at_minute(5),
            "web",
            &[("visitor", "v-shared"), ("email", "ni@example.com")],
        ),
        6,
    )
    .await;
    let mo = customer_of(&app, "email=mo@example.com").await;
    let ni = customer_of(&app, "email=ni@example.com").await;
    assert_ne!(
        mo, ni,
        "a shared visitor id does not merge two known people"
    );
    assert_eq!(event_ids_of(&app, &ni).await.len(), 2);
    let conflicts = open_conflicts(&app).await;
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert_eq!(conflicts[0]["reason"], "weak_link_only", "newest first");

    // An anonymous visitor does join the known customer it signs in as.
    project(
        &app,
        contact_with("guard-7", at_minute(6), "web", &[("visitor", "v-anon")]),
        7,
    )
    .await;
    let anonymous = customer_of(&app, "visitor=v-anon").await;
    project(
        &app,
        contact_with(
            "guard-8",
            at_minute(7),
            "web",
            &[("visitor", "v-anon"), ("email", "mo@example.com")],
        ),
        8,
    )
    .await;
    assert_eq!(customer_of(&app, "visitor=v-anon").await, mo);
    let profile = app.get_json(&format!("/v1/customers/{anonymous}")).await;
    assert_eq!(
        profile["id"],
        json!(mo),
        "the anonymous id leads to the survivor"
    );
    assert_eq!(profile["requested_id"], json!(anonymous));

    // Settling conflicts: the account conflict cannot be merged by hand
    // either; it can be dismissed, once.
    let account_conflict = conflicts[1]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/identity/conflicts/{account_conflict}/resolve");
    let (status, body) = post(&app, &path, json!({"action": "merge"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/merge-refused");
    let (status, body) = post(
        &app,
        &path,
        json!({"action": "dismiss", "note": "household"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&app, &path, json!({"action": "dismiss"})).await;
    assert_eq!(status, 409);
    assert_eq!(body["type"], "/problems/already-resolved");
    let (status, body) = post(&app, &path, json!({"action": "explode"})).await;
    assert_eq!((status, body["field"].clone()), (422, json!("action")));
    assert_eq!(open_conflicts(&app).await.len(), 1);
    let dismissed = app
        .get_json("/v1/identity/conflicts?status=dismissed")
        .await;
    assert!(
        dismissed["conflicts"][0]["resolved_by"]
            .as_str()
            .is_some_and(|actor| actor.starts_with("testkit_admin")),
        "the token's name is the actor: {dismissed}"
    );

    // The weak-link conflict can be merged by an agent who knows better.
    let weak_conflict = conflicts[0]["id"].as_str().expect("id");
    let (status, body) = post(
        &app,
        &format!("/v1/identity/conflicts/{weak_conflict}/resolve"),
        json!({"action": "merge", "note": "same person, two addresses"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(customer_of(&app, "email=ni@example.com").await, mo.min(ni));
    assert!(open_conflicts(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_then_unmerge_restores_both_customers_exactly() {
    let app = TestApp::spawn().await;
    let events = [
        contact_with(
            "anna-1",
            at_minute(0),
            "phone",
            &[("phone", "+31611110001"), ("email", "anna@example.nl")],
        ),
        contact_with(
            "anna-2",
            at_minute(10),
            "email",
            &[("email", "anna@example.nl")],
        ),
        contact_with(
            "bob-1",
            at_minute(20),
            "social",
            &[("whatsapp", "31622220002"), ("email", "bob@example.com")],
        ),
        contact_with(
            "bob-2",
            at_minute(30),
            "email",
            &[("email", "bob@example.com")],
        ),
    ];
    for (n, event) in events.into_iter().enumerate() {
        let mut event = event;
        event["display_name"] = json!(if n < 2 { "Anna" } else { "Bob" });
        project(&app, event, n as i64 + 1).await;
    }
    let anna = customer_of(&app, "email=anna@example.nl").await;
    let bob = customer_of(&app, "email=bob@example.com").await;
    assert!(anna < bob, "created first, so the older id");
    let before = (
        identifiers_of(&app, &anna).await,
        event_ids_of(&app, &anna).await,
        aggregates_of(&app, &anna).await,
        identifiers_of(&app, &bob).await,
        event_ids_of(&app, &bob).await,
        aggregates_of(&app, &bob).await,
    );

    // An agent merges them, asking from the younger customer's card.
    let (status, merged) = post(
        &app,
        &format!("/v1/customers/{bob}/merge"),
        json!({"other": anna, "reason": "same household account"}),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["survivor"], json!(anna), "the oldest survives");
    assert_eq!(merged["merged"], json!(bob));
    assert_eq!(merged["events"], 2);

    // The old id leads to the survivor through every customer endpoint.
    let profile = app.get_json(&format!("/v1/customers/{bob}")).await;
    assert_eq!(profile["id"], json!(anna));
    assert_eq!(profile["requested_id"], json!(bob));
    assert_eq!(profile["event_count"], 4);
    assert_eq!(profile["display_name"], "Bob", "the latest name");
    let timeline = app.get_json(&format!("/v1/customers/{bob}/timeline")).await;
    assert_eq!(timeline["customer_id"], json!(anna));
    assert_eq!(timeline["requested_id"], json!(bob));
    assert_eq!(timeline["entries"].as_array().map(Vec::len), Some(4));
    let cases = app.get_json(&format!("/v1/customers/{bob}/cases")).await;
    assert_eq!(cases["customer_id"], json!(anna));
    assert_eq!(cases["requested_id"], json!(bob));
    let identity = app.get_json(&format!("/v1/customers/{bob}/identity")).await;
    assert_eq!(identity["customer_id"], json!(anna));
    assert_eq!(identity["requested_id"], json!(bob));
    assert_eq!(identity["identifiers"].as_array().map(Vec::len), Some(4));
    assert_eq!(identity["history"][0]["action"], "merge");
    assert_eq!(identity["history"][0]["reason"], "same household account");
    assert!(
        identity["history"][0]["actor"]
            .as_str()
            .is_some_and(|actor| actor.starts_with("testkit_admin")),
        "{identity}"
    );
    assert_eq!(customer_of(&app, "whatsapp=31622220002").await, anna);
    let (status, body) = post(
        &app,
        &format!("/v1/customers/{anna}/merge"),
        json!({"other": bob}),
    )
    .await;
    assert_eq!(
        (status, body["type"].clone()),
        (409, json!("/problems/already-merged"))
    );

    // After the merge Bob writes again, from his WhatsApp and a new address.
    project(
        &app,
        contact_with(
            "bob-3",
            at_minute(40),
            "social",
            &[("whatsapp", "31622220002"), ("email", "bob@work.example")],
        ),
        5,
    )
    .await;
    assert_eq!(event_ids_of(&app, &anna).await.len(), 5);

    let (status, body) = post(
        &app,
        &format!("/v1/customers/{bob}/unmerge"),
        json!({"merged": anna}),
    )
    .await;
    assert_eq!(
        status, 409,
        "the survivor is not merged into itself: {body}"
    );
    assert_eq!(body["type"], "/problems/not-merged");
    let (status, unmerged) = post(
        &app,
        &format!("/v1/customers/{anna}/unmerge"),
        json!({"merged": bob}),
    )
    .await;
    assert_eq!(status, 200, "{unmerged}");
    assert_eq!(unmerged["events"], 3, "Bob's two events and the later one");

    // Anna is exactly as before; Bob too, plus what came through him since.
    assert_eq!(identifiers_of(&app, &anna).await, before.0);
    assert_eq!(event_ids_of(&app, &anna).await, before.1);
    assert_eq!(aggregates_of(&app, &anna).await, before.2);
    let mut bob_identifiers = before.3.clone();
    bob_identifiers.push(("email".into(), "bob@work.example".into(), bob.clone()));
    bob_identifiers.sort();
    assert_eq!(identifiers_of(&app, &bob).await, bob_identifiers);
    let mut bob_events = before.4.clone();
    bob_events.extend(event_ids_of(&app, &bob).await);
    bob_events.sort();
    bob_events.dedup();
    assert_eq!(event_ids_of(&app, &bob).await.len(), 3);
    assert_eq!(bob_events.len(), 3, "Bob's old events and the new one");
    let bob_now = aggregates_of(&app, &bob).await;
    assert_eq!(bob_now["event_count"], 3);
    assert_eq!(bob_now["first_contact_at"], before.5["first_contact_at"]);
    assert_eq!(bob_now["display_name"], "Bob");
    assert_eq!(
        app.get_json(&format!("/v1/customers/{bob}")).await["id"],
        json!(bob)
    );

    // Unmerged customers stay apart: a link between them is a conflict now.
    project(
        &app,
        contact_with(
            "link-again",
            at_minute(50),
            "email",
            &[("email", "anna@example.nl"), ("email", "bob@example.com")],
        ),
        6,
    )
    .await;
    assert_ne!(
        customer_of(&app, "email=anna@example.nl").await,
        customer_of(&app, "email=bob@example.com").await
    );
    let conflicts = open_conflicts(&app).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["reason"], "do_not_merge");
    let history = app
        .get_json(&format!("/v1/customers/{anna}/identity"))
        .await["history"]
        .clone();
    let actions: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(actions, ["refused", "unmerge", "merge"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identity_requests_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    project(
        &app,
        contact_with(
            "solo",
            at_minute(0),
            "email",
            &[("email", "solo@example.com")],
        ),
        1,
    )
    .await;
    let solo = customer_of(&app, "email=solo@example.com").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let cases = [
        (
            format!("/v1/customers/{solo}/merge"),
            json!({}),
            422,
            Some("other"),
        ),
        (
            format!("/v1/customers/{solo}/merge"),
            json!({"other": "x"}),
            422,
            Some("other"),
        ),
        (
            format!("/v1/customers/{solo}/merge"),
            json!({"other": unknown, "oops": 1}),
            422,
            Some("oops"),
        ),
        (
            format!("/v1/customers/{solo}/merge"),
            json!({"other": unknown}),
            400,
            Some("other"),
        ),
        (
            format!("/v1/customers/{unknown}/merge"),
            json!({"other": solo}),
            404,
            None,
        ),
        (
            "/v1/customers/not-a-uuid/merge".to_owned(),
            json!({"other": solo}),
            400,
            Some("id"),
        ),
        (
            format!("/v1/customers/{solo}/unmerge"),
            json!({"merged": solo}),
            409,
            Some("merged"),
        ),
        (
            format!("/v1/identity/conflicts/{unknown}/resolve"),
            json!({"action": "merge"}),
            404,
            None,
        ),
        (
            format!("/v1/identity/conflicts/{unknown}/resolve"),
            json!({"action": "explode"}),
            422,
            Some("action"),
        ),
    ];
    for (path, body, expected, field) in cases {
        let (status, problem) = post(&app, &path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {problem}");
        assert_eq!(problem["field"].as_str(), field, "{path} {body}: {problem}");
    }
    for query in [
        "status=closed",
        "limit=0",
        "cursor=zz",
        "customer=1",
        "colour=red",
    ] {
        let response = app.get(&format!("/v1/identity/conflicts?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
    }
    let identity = app
        .get_json(&format!("/v1/customers/{solo}/identity"))
        .await;
    assert_eq!(identity["history"], json!([]), "nothing changed");
    assert_eq!(identity["profiles"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undone_automatic_merge_is_not_redone_by_the_same_link() {
    let app = TestApp::spawn().await;
    let caller = [("phone", "+31633330003")];
    let writer = [("email", "kim@example.com")];
    let link = [("email", "kim@example.com"), ("phone", "+31633330003")];
    project(
        &app,
        contact_with("kim-call", at_minute(0), "phone", &caller),
        1,
    )
    .await;
    project(
        &app,
        contact_with("kim-mail", at_minute(1), "email", &writer),
        2,
    )
    .await;
    let by_phone = customer_of(&app, "phone=%2B31633330003").await;
    let by_email = customer_of(&app, "email=kim@example.com").await;
    assert!(by_phone < by_email);

    // A form with both merges them automatically; then each writes again.
    project(
        &app,
        contact_with("kim-form", at_minute(2), "web", &link),
        3,
    )
    .await;
    assert_eq!(customer_of(&app, "email=kim@example.com").await, by_phone);
    let identity = app
        .get_json(&format!("/v1/customers/{by_phone}/identity"))
        .await;
    let merge = &identity["history"][0];
    assert_eq!(merge["action"], "merge");
    assert_eq!(merge["actor"], Value::Null, "automatic");
    assert_eq!(merge["event_id"].as_str().map(str::len), Some(36));
    assert_eq!(merge["identifiers"].as_array().map(Vec::len), Some(2));
    project(
        &app,
        contact_with("kim-call-2", at_minute(3), "phone", &caller),
        4,
    )
    .await;
    project(
        &app,
        contact_with("kim-mail-2", at_minute(4), "email", &writer),
        5,
    )
    .await;
    assert_eq!(event_ids_of(&app, &by_phone).await.len(), 5);

    let (status, body) = post(
        &app,
        &format!("/v1/customers/{by_phone}/unmerge"),
        json!({"merged": by_email}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Each side gets the events that came through its identifiers, the ones
    // after the merge included; the linking form went with its first
    // identifier of the highest priority, the email.
    assert_eq!(event_ids_of(&app, &by_phone).await.len(), 2);
    assert_eq!(event_ids_of(&app, &by_email).await.len(), 3);
    assert_eq!(aggregates_of(&app, &by_phone).await["event_count"], 2);
    assert_eq!(aggregates_of(&app, &by_email).await["event_count"], 3);

    // The same link again: a conflict, not a merge.
    project(
        &app,
        contact_with("kim-form-2", at_minute(5), "web", &link),
        6,
    )
    .await;
    assert_ne!(
        customer_of(&app, "email=kim@example.com").await,
        customer_of(&app, "phone=%2B31633330003").await
    );
    let conflicts = open_conflicts(&app).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["reason"], "do_not_merge");

    // An agent who knows better merges them by hand after all.
    let (status, body) = post(
        &app,
        &format!("/v1/customers/{by_email}/merge"),
        json!({"other": by_phone}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        open_conflicts(&app).await.is_empty(),
        "settled by the merge"
    );
    assert_eq!(event_ids_of(&app, &by_email).await.len(), 6);
    app.stop().await;
}
