//! A stalled projector is visible: readiness turns unready (saying why) and
//! the progress gauge the stall alert reads keeps growing; a statement stuck
//! behind a lock times out and is retried.

use std::time::Duration;

use panorama_e2e::prometheus::Exposition;
use panorama_e2e::{at_minute, contact};
use panorama_testkit::{TestApp, WAIT, eventually, postgres};

/// The value of the series `name` with `labels` on the app's `/metrics`.
async fn metric(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    Exposition::parse(&app.metrics_text().await)
        .expect("valid exposition")
        .value(name, labels)
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_that_cannot_commit_turns_unready_and_recovers() {
    let app = TestApp::builder()
        .configure(|options| options.projector.stall_after = Duration::from_secs(2))
        .spawn()
        .await;
    let base_url = app.base_url.clone();
    app.wait_ready(&base_url).await;
    // Every insert fails the way a serialization failure does: a transient
    // error the projector retries for as long as it lasts.
    app.psql(
        "CREATE FUNCTION always_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'held up by the test' USING ERRCODE = '40001'; END $$;
         CREATE TRIGGER always_conflict BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION always_conflict();",
    )
    .await;
    for n in 0..3 {
        let event = contact(n, &format!("held-{n}"), at_minute(n as i64), "email");
        assert_eq!(app.post_events(&event).await.status(), 202);
    }

    let error = app
        .unready_because(&base_url, "projector", "no progress")
        .await;
    assert!(error.contains("no progress"), "{error}");
    assert!(error.contains("records wait"), "{error}");
    assert!(
        error.contains("40001"),
        "the last failure is named: {error}"
    );
    assert!(
        metric(&app, "panorama_projector_seconds_since_progress", &[]).await >= 2.0,
        "the stall gauge grows while nothing is committed"
    );
    assert!(
        metric(
            &app,
            "panorama_projector_batch_retries_total",
            &[("class", "serialization")]
        )
        .await
            > 0.0
    );
    assert_eq!(app.store.totals().await.expect("totals").events, 0);

    app.psql("DROP TRIGGER always_conflict ON events").await;
    app.wait_for_events(3).await;
    app.wait_ready(&base_url).await;
    eventually("the stall gauge back down", WAIT, || async {
        (metric(&app, "panorama_projector_seconds_since_progress", &[]).await < 2.0).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_times_out_and_is_retried() {
    let app = TestApp::builder()
        .configure(|options| options.database.statement_timeout = Some(Duration::from_millis(300)))
        .spawn()
        .await;
    // Someone holds a lock the projector needs for 3 s, ten times its
    // statement timeout.
    let database = app.database.name.clone();
    let holder = tokio::task::spawn_blocking(move || {
        postgres().psql(
            &database,
            "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;",
        )
    });
    eventually("the lock is held", WAIT, || async {
        let held = app
            .psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'events' AND l.mode = 'AccessExclusiveLock' AND l.granted",
            )
            .await;
        (held.trim() == "1").then_some(())
    })
    .await;
    let timeouts_before = metric(
        &app,
        "panorama_projector_batch_retries_total",
        &[("class", "timeout")],
    )
    .await;
    assert_eq!(
        app.post_events(&contact(1, "behind-a-lock", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    eventually("the projector's statement timed out", WAIT, || async {
        let now = metric(
            &app,
            "panorama_projector_batch_retries_total",
            &[("class", "timeout")],
        )
        .await;
        (now > timeouts_before).then_some(())
    })
    .await;
    holder
        .await
        .expect("lock holder")
        .expect("lock holder's psql");
    app.wait_for_events(1).await;
    app.stop().await;
}
