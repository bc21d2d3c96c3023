//! The audit trail end to end: reads and changes of customers are recorded
//! with the token's name and the route template, lookups with the customer
//! they found or only the kind of identifier they named, reads of the
//! insights and of the trail itself too; admins list them by customer (its
//! whole merge tree) and actor, newest first, page by page. A read's entry
//! is written before it is answered: listed at once, and a read that cannot
//! be recorded is not answered.

use panorama_core::Role;
use panorama_e2e::prometheus::Exposition;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::{TestApp, WAIT, eventually, random_name};
use serde_json::{Value, json};

async fn customer_id(app: &TestApp, index: usize) -> String {
    let phone = phone_of(index).replace('+', "%2B");
    app.get_json(&format!("/v1/customers/lookup?phone={phone}"))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// The audit entries for `query`, as they are now: no waiting, since every
/// entry below is written before its request is answered.
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let page = app.get_json(&format!("/v1/audit?{query}")).await;
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// A token of `role` under a fresh name: (name, secret).
async fn named_token(app: &TestApp, prefix: &str, role: Role) -> (String, String) {
    let name = random_name(prefix);
    let (_, secret) = app.store.create_token(&name, role).await.expect("token");
    (name, secret.expose().to_owned())
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.request(reqwest::Method::GET, path, Some(token))
        .send()
        .await
        .expect("answer")
}

/// (route, customer id, status, identifier kind) of each entry.
fn lookups(entries: &[Value]) -> Vec<(String, String, i64, String)> {
    entries
        .iter()
        .map(|entry| {
            (
                entry["route"].as_str().unwrap_or_default().to_owned(),
                entry["customer_id"].as_str().unwrap_or_default().to_owned(),
                entry["status"].as_i64().unwrap_or_default(),
                entry["identifier_kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn summary(entries: &[Value]) -> Vec<(String, String, String, i64)> {
    entries
        .iter()
        .map(|entry| {
            (
                entry["method"].as_str().unwrap_or_default().to_owned(),
                entry["route"].as_str().unwrap_or_default().to_owned(),
                entry["customer_id"].as_str().unwrap_or_default().to_owned(),
                entry["status"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_merges_are_audited_and_listed_by_customer_and_actor() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_events(&contact(1, "audit-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    assert_eq!(
        app.post_events(&contact(2, "audit-2", at_minute(2), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(2).await;
    let older = customer_id(&app, 1).await;
    let newer = customer_id(&app, 2).await;

    let (name, agent) = named_token(&app, "desk", Role::Agent).await;
    for path in [
        format!("/v1/customers/{newer}"),
        format!("/v1/customers/{newer}/timeline"),
    ] {
        assert_eq!(get_as(&app, &agent, &path).await.status(), 200, "{path}");
    }
    let merged = app
        .post_json(
            &format!("/v1/customers/{older}/merge"),
            &json!({"other": newer}),
        )
        .await;
    assert_eq!(merged.status(), 200);

    // The agent's two reads, newest first, with the route templates.
    let by_agent = entries(&app, &format!("actor={name}")).await;
    assert_eq!(
        summary(&by_agent),
        vec![
            (
                "GET".into(),
                "/v1/customers/{id}/timeline".into(),
                newer.clone(),
                200
            ),
            (
                "GET".into(),
                "/v1/customers/{id}".into(),
                newer.clone(),
                200
            ),
        ]
    );
    assert!(
        by_agent
            .iter()
            .all(|e| e["actor"] == name.as_str() && e["role"] == "agent")
    );

    // The survivor's trail includes what was asked of the merged customer,
    // the lookups that found either, and the merge itself, by the admin.
    let tree = entries(&app, &format!("customer={older}")).await;
    assert_eq!(
        summary(&tree),
        vec![
            (
                "POST".into(),
                "/v1/customers/{id}/merge".into(),
                older.clone(),
                200
            ),
            (
                "GET".into(),
                "/v1/customers/{id}/timeline".into(),
                newer.clone(),
                200
            ),
            (
                "GET".into(),
                "/v1/customers/{id}".into(),
                newer.clone(),
                200
            ),
            (
                "GET".into(),
                "/v1/customers/lookup".into(),
                newer.clone(),
                200
            ),
            (
                "GET".into(),
                "/v1/customers/lookup".into(),
                older.clone(),
                200
            ),
        ],
        "{tree:?}"
    );
    assert_eq!(tree[0]["role"], "admin");

    // Keyset pages of one entry walk the same list, behind the reads of
    // the trail itself, each of which is audited as it is answered.
    let mut walked = Vec::new();
    let mut query = format!("customer={older}&limit=1");
    loop {
        let page = app.get_json(&format!("/v1/audit?{query}")).await;
        walked.extend(page["entries"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("customer={older}&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    let (reads_of_the_trail, walked): (Vec<Value>, Vec<Value>) = walked
        .into_iter()
        .partition(|entry| entry["route"] == "/v1/audit");
    assert_eq!(walked, tree);
    assert!(!reads_of_the_trail.is_empty());
    assert!(
        reads_of_the_trail
            .iter()
            .all(|e| e["customer_id"] == older.as_str() && e["role"] == "admin"),
        "{reads_of_the_trail:?}"
    );

    // Time bounds and an unknown actor.
    let none = app.get_json("/v1/audit?actor=nobody").await;
    assert_eq!(none["entries"], json!([]));
    let future = app
        .get_json(&format!(
            "/v1/audit?customer={older}&since=2999-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(future["entries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_audited_with_the_customer_found_or_only_the_kind_of_identifier() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_events(&contact(1, "lookup-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let (name, agent) = named_token(&app, "desk", Role::Agent).await;
    let phone = phone_of(1).replace('+', "%2B");
    let found = get_as(&app, &agent, &format!("/v1/customers/lookup?phone={phone}")).await;
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.expect("profile");
    let id = found["id"].as_str().expect("id").to_owned();
    let nobody = "nobody.audited@example.org";
    for (query, status) in [
        (format!("email={nobody}"), 404),
        ("phone=%2B31-not-a-number".to_owned(), 400),
        ("fax=0201234567".to_owned(), 400),
    ] {
        let path = format!("/v1/customers/lookup?{query}");
        assert_eq!(get_as(&app, &agent, &path).await.status(), status, "{path}");
    }

    // Listed as soon as they were answered, newest first.
    let trail = entries(&app, &format!("actor={name}")).await;
    let lookup = "/v1/customers/lookup".to_owned();
    assert_eq!(
        lookups(&trail),
        vec![
            (lookup.clone(), String::new(), 400, String::new()),
            (lookup.clone(), String::new(), 400, "phone".into()),
            (lookup.clone(), String::new(), 404, "email".into()),
            (lookup.clone(), id.clone(), 200, "phone".into()),
        ],
        "{trail:?}"
    );
    // The customer found has the lookup in their trail.
    let about = entries(&app, &format!("customer={id}")).await;
    assert_eq!(about.len(), 1, "{about:?}");
    assert_eq!(about[0]["route"], "/v1/customers/lookup");

    // No looked-up value is kept, in the answer or in the table.
    let stored = app.psql("SELECT * FROM audit_log").await;
    for value in [nobody, "not-a-number", "0201234567", &phone_of(1)[1..]] {
        assert!(
            !stored.contains(value),
            "{value} in the audit log: {stored}"
        );
        assert!(
            !serde_json::to_string(&trail).expect("json").contains(value),
            "{value} in the audit trail"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_the_insights_the_task_list_and_the_trail_itself_are_audited() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_events(&contact(1, "insights-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let id = customer_id(&app, 1).await;
    let (agent_name, agent) = named_token(&app, "desk", Role::Agent).await;
    let (admin_name, admin) = named_token(&app, "ops", Role::Admin).await;
    assert_eq!(get_as(&app, &agent, "/v1/insights").await.status(), 200);
    let tasks = format!("/v1/tasks?customer={id}");
    assert_eq!(get_as(&app, &agent, &tasks).await.status(), 200);
    let trail = format!("/v1/audit?customer={id}");
    assert_eq!(get_as(&app, &admin, &trail).await.status(), 200);
    assert_eq!(get_as(&app, &agent, &trail).await.status(), 403);

    assert_eq!(
        summary(&entries(&app, &format!("actor={agent_name}")).await),
        vec![
            ("GET".into(), "/v1/audit".into(), id.clone(), 403),
            ("GET".into(), "/v1/tasks".into(), id.clone(), 200),
            ("GET".into(), "/v1/insights".into(), String::new(), 200),
        ]
    );
    assert_eq!(
        summary(&entries(&app, &format!("actor={admin_name}")).await),
        vec![("GET".into(), "/v1/audit".into(), id.clone(), 200)]
    );
}

async fn audit_dropped(app: &TestApp) -> f64 {
    Exposition::parse(&app.metrics_text().await)
        .expect("Prometheus text")
        .sum("panorama_audit_dropped_total", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_audit_entry_cannot_be_written_is_not_answered() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_events(&contact(1, "refused-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let id = customer_id(&app, 1).await;
    let agent = app.token(Role::Agent).await;
    // PostgreSQL refuses every audit entry from now on.
    app.psql(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
           FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .await;

    let phone = phone_of(1).replace('+', "%2B");
    for path in [
        format!("/v1/customers/{id}"),
        format!("/v1/customers/{id}/timeline"),
        format!("/v1/customers/lookup?phone={phone}"),
        format!("/v1/stream?customer={id}"),
        "/v1/insights".to_owned(),
    ] {
        let response = get_as(&app, &agent, &path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5"),
            "{path}"
        );
        let body = response.text().await.expect("body");
        let problem: Value = serde_json::from_str(&body).expect("problem+json");
        assert_eq!(problem["type"], "/problems/audit-unavailable", "{path}");
        for personal in [&phone_of(1)[1..], "Customer 1"] {
            assert!(!body.contains(personal), "{path} answered {body}");
        }
    }

    // A change has happened by then: it is answered, and its entry is left
    // to the background writer, which gives up on it and counts it.
    let before = audit_dropped(&app).await;
    let note = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/customers/{id}/notes"),
            Some(&agent),
        )
        .json(&json!({"text": "called back"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(note.status(), 202);
    eventually("the change's entry counted as dropped", WAIT, || async {
        (audit_dropped(&app).await > before).then_some(())
    })
    .await;

    // Once entries can be written again, reads are answered and listed.
    app.psql("DROP TRIGGER refuse_audit ON audit_log").await;
    let response = get_as(&app, &agent, &format!("/v1/customers/{id}")).await;
    assert_eq!(response.status(), 200);
    let trail = entries(&app, &format!("customer={id}")).await;
    assert_eq!(trail[0]["route"], "/v1/customers/{id}", "{trail:?}");
    assert_eq!(trail[0]["status"], 200);
    assert!(
        trail
            .iter()
            .all(|e| e["route"] != "/v1/customers/{id}/notes"),
        "the change's entry was lost, and counted: {trail:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_the_audit_trail() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent).await;
    let forbidden = app
        .request(reqwest::Method::GET, "/v1/audit", Some(&agent))
        .send()
        .await
        .expect("answer");
    assert_eq!(forbidden.status(), 403);
    let anonymous = app
        .request(reqwest::Method::GET, "/v1/audit", None)
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401);
    let bad = app.get("/v1/audit?customer=nope").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(app.get("/v1/audit").await.status(), 200);
}
