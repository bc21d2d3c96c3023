//! A stored offset outside the log stops the projector with a clear error
//! instead of a silent jump: records retention deleted before they were
//! projected are never skipped without an operator saying so, and a replay
//! will not switch to a projection that lacks them.

use panorama::ProcessRole;
use panorama::replay::{ReplayOptions, replay};
use panorama_e2e::{at_minute, contact};
use panorama_testkit::TestApp;

async fn post_calls(app: &TestApp, count: usize) {
    for n in 0..count {
        let event = contact(n, &format!("call-{n}"), at_minute(n as i64), "phone");
        assert_eq!(app.post_events(&event).await.status(), 202);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_offset_past_the_end_of_the_log_stops_the_projector_with_a_clear_error() {
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(1)
        .spawn()
        .await;
    post_calls(&app, 2).await;
    // The database says 1,000 records were projected; the log holds 2 (the
    // topic was recreated, say).
    app.psql(&format!(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)
             VALUES ('{}', '{}', 0, 1000)",
        app.options.kafka.consumer_group, app.options.kafka.topic
    ))
    .await;
    let projector = app.start_role(ProcessRole::Projector).await;
    let error = app
        .unready_because(&projector.base_url(), "projector", "stopped by itself")
        .await;
    assert!(error.contains("past the end of the log"), "{error}");
    assert!(error.contains("stopped by itself"), "{error}");
    assert_eq!(app.store.totals().await.expect("totals").events, 0);
    assert_eq!(
        app.psql(&format!(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = '{}'",
            app.options.kafka.consumer_group
        ))
        .await
        .trim(),
        "1000",
        "nothing moved the stored offset"
    );
    projector.stop().await.expect("stops");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_before_they_were_projected_stop_the_projector_until_the_loss_is_accepted()
{
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(1)
        .spawn()
        .await;
    post_calls(&app, 3).await;
    // Retention deletes the first two records before any projector ran.
    panorama_bus::delete_records_before(
        &app.options.kafka.brokers,
        &app.options.kafka.topic,
        &[(0, 2)],
    )
    .await
    .expect("records deleted");

    let projector = app.start_role(ProcessRole::Projector).await;
    let error = app
        .unready_because(&projector.base_url(), "projector", "stopped by itself")
        .await;
    assert!(error.contains("before the start of the log"), "{error}");
    assert!(error.contains("2 records were deleted"), "{error}");
    assert_eq!(app.store.totals().await.expect("totals").events, 0);
    projector.stop().await.expect("stops");

    // A replay cannot rebuild what the log lost: it refuses to switch.
    let mut switch = ReplayOptions::new("replay_gap");
    switch.switch = true;
    let refused = replay(&app.options, &switch)
        .await
        .expect_err("a switch over an incomplete log is refused");
    assert!(
        refused.to_string().contains("no longer starts at offset 0"),
        "{refused:#}"
    );

    // The operator accepts the loss; the projector goes on from the log start.
    panorama::offsets::run(&app.options, true)
        .await
        .expect("offsets moved");
    let projector = app.start_role(ProcessRole::Projector).await;
    app.wait_for_events(1).await;
    app.wait_for_offsets(3).await;
    app.wait_ready(&projector.base_url()).await;
    projector.stop().await.expect("stops");
    app.stop().await;
}
