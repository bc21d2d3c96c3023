//! `/readyz` follows its dependencies: unready while PostgreSQL is down and
//! ready again once it is back, unready when the projector leaves its group;
//! `/healthz` answers throughout.

use std::sync::Arc;

use panorama_testkit::{PgCluster, TestApp, WAIT, eventually};
use serde_json::Value;

fn failing(body: &Value) -> Vec<String> {
    body["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|check| check["ok"] == false)
        .filter_map(|check| check["name"].as_str().map(str::to_owned))
        .collect()
}

async fn healthy(app: &TestApp) -> bool {
    app.anonymous
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_postgres_and_the_projector_group() {
    let cluster = tokio::task::spawn_blocking(PgCluster::private)
        .await
        .expect("task")
        .map(Arc::new)
        .expect("private cluster");
    let database = cluster.create_database().expect("database");
    let url = database.url.clone();
    let mut app = TestApp::builder()
        .configure(move |options| options.database.url = url)
        .spawn()
        .await;

    eventually("ready at start", WAIT, || async {
        let (status, body) = app.readyz(&app.base_url).await;
        (status == 200 && body["ready"] == true).then_some(())
    })
    .await;
    let (_, body) = app.readyz(&app.base_url).await;
    let names: Vec<&str> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|check| check["name"].as_str())
        .collect();
    assert_eq!(names, ["postgres", "kafka", "projector"]);

    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.stop()
    })
    .await
    .expect("task")
    .expect("PostgreSQL stops");
    eventually("unready without PostgreSQL", WAIT, || async {
        let (status, body) = app.readyz(&app.base_url).await;
        (status == 503 && failing(&body).contains(&"postgres".to_owned())).then_some(())
    })
    .await;
    assert!(
        healthy(&app).await,
        "healthz answers while PostgreSQL is down"
    );

    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.start()
    })
    .await
    .expect("task")
    .expect("PostgreSQL starts");
    eventually("ready once PostgreSQL is back", WAIT, || async {
        let (status, _) = app.readyz(&app.base_url).await;
        (status == 200).then_some(())
    })
    .await;

    app.running
        .as_mut()
        .expect("running")
        .stop_projector()
        .await;
    eventually(
        "unready once the projector left its group",
        WAIT,
        || async {
            let (status, body) = app.readyz(&app.base_url).await;
            (status == 503 && failing(&body) == ["projector"]).then_some(())
        },
    )
    .await;
    assert!(healthy(&app).await);
    app.stop().await;
}
