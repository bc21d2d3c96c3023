//! A live-update stream ends when its client goes away: the server notices
//! at the latest at the next heartbeat and stops counting it. In a file of
//! its own because `panorama_api_sse_connections` is per process.

use std::time::Duration;

use panorama_core::Role;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::{TestApp, WAIT, eventually};

async fn open_streams(app: &TestApp) -> Option<i64> {
    let metrics = app.get("/metrics").await.text().await.ok()?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("panorama_api_sse_connections "))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_left_is_closed_and_uncounted() {
    let app = TestApp::builder()
        .configure(|options| options.live.heartbeat = Duration::from_millis(100))
        .spawn()
        .await;
    assert_eq!(
        app.post_events(&contact(1, "gone-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let phone = phone_of(1).replace('+', "%2B");
    let customer = app
        .get_json(&format!("/v1/customers/lookup?phone={phone}"))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let agent = app.token(Role::Agent).await;

    let stream = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/stream?customer={customer}"),
            Some(&agent),
        )
        .send()
        .await
        .expect("the stream answers");
    assert_eq!(stream.status(), 200);
    assert_eq!(open_streams(&app).await, Some(1));

    drop(stream);
    eventually("the server to close the stream", WAIT, || async {
        (open_streams(&app).await == Some(0)).then_some(())
    })
    .await;
}
