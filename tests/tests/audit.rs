//! The audit trail end to end: reads and changes of customers are recorded
//! with the token's name and the route template, and admins list them by
//! customer (its whole merge tree) and actor, newest first, page by page.

use panorama_core::Role;
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

/// The audit entries for `query`, once there are at least `count`.
async fn entries(app: &TestApp, query: &str, count: usize) -> Vec<Value> {
    eventually(
        &format!("{count} audit entries for ?{query}"),
        WAIT,
        || async {
            let page = app.get_json(&format!("/v1/audit?{query}")).await;
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            (entries.len() >= count).then_some(entries)
        },
    )
    .await
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

    let name = random_name("desk");
    let (_, secret) = app
        .store
        .create_token(&name, Role::Agent)
        .await
        .expect("token");
    let agent = secret.expose();
    for path in [
        format!("/v1/customers/{newer}"),
        format!("/v1/customers/{newer}/timeline"),
    ] {
        let response = app
            .request(reqwest::Method::GET, &path, Some(agent))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{path}");
    }
    let merged = app
        .post_json(
            &format!("/v1/customers/{older}/merge"),
            &json!({"other": newer}),
        )
        .await;
    assert_eq!(merged.status(), 200);

    // The agent's two reads, newest first, with the route templates.
    let by_agent = entries(&app, &format!("actor={name}"), 2).await;
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
    // and the merge itself, by the admin.
    let tree = entries(&app, &format!("customer={older}"), 3).await;
    let routes: Vec<&str> = tree.iter().filter_map(|e| e["route"].as_str()).collect();
    assert_eq!(
        routes,
        [
            "/v1/customers/{id}/merge",
            "/v1/customers/{id}/timeline",
            "/v1/customers/{id}",
        ],
        "{tree:?}"
    );
    assert_eq!(tree[0]["role"], "admin");
    assert_eq!(tree[0]["method"], "POST");
    assert_eq!(tree[0]["customer_id"], older.as_str());

    // Keyset pages of one entry walk the same list.
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
    assert_eq!(walked, tree);

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
