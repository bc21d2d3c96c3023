//! Posting an event and finding its customer, for tests that build a
//! history one event at a time.

use panorama_testkit::TestApp;
use serde_json::Value;

/// Posts one event and waits until the projection holds `total` events, so
/// the next event is resolved against this one's outcome.
pub(crate) async fn project(app: &TestApp, event: Value, total: i64) {
    assert_eq!(app.post_events(&event).await.status(), 202);
    app.wait_for_events(total).await;
}

/// The id of the customer `GET /v1/customers/lookup?{lookup}` finds.
pub(crate) async fn customer_of(app: &TestApp, lookup: &str) -> String {
    app.get_json(&format!("/v1/customers/lookup?{lookup}"))
        .await["id"]
        .as_str()
        .expect("customer id")
        .to_owned()
}
