//! No client can grow `/metrics`: 10,000 requests with made-up methods and
//! made-up event `source` values leave the series exactly as a warm-up
//! left them. Label values come from closed sets only: the known methods or
//! `other`, route templates or `unmatched`, and for ingested events the
//! route that took them (`events` for `POST /v1/events`), never the
//! event's own free-text `source`.
//!
//! Metrics are process-wide, so this file holds one test.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt as _;
use panorama_e2e::contact;
use panorama_e2e::prometheus::Exposition;
use panorama_testkit::TestApp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;

/// Requests of the flood: half with made-up methods, half events with
/// made-up sources.
const REQUESTS: usize = 10_000;
/// Requests in flight at once.
const CLIENTS: usize = 16;

/// Every series of the exposition: name and labels.
/// Series labelled by a topic partition are left out: their set is the
/// topic's partitions (closed), and a partition's series appears when the
/// consumer first sees a record on it, which the warm-up cannot arrange for
/// every partition.
async fn series(app: &TestApp) -> BTreeSet<String> {
    let text = app.metrics_text().await;
    let exposition = Exposition::parse(&text).expect("Prometheus text");
    exposition
        .samples
        .iter()
        .filter(|sample| !sample.labels.contains_key("partition"))
        .map(|sample| format!("{}{:?}", sample.name, sample.labels))
        .collect()
}

/// A method token no standard method is: `Q` and eight lowercase letters.
fn made_up_method(rng: &mut StdRng) -> Method {
    let letters: String = (0..8)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect();
    Method::from_bytes(format!("Q{letters}").as_bytes()).expect("a method token")
}

/// A valid event `source` nobody configured: twelve of a-z and 0-9.
fn made_up_source(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Request `n`: a made-up method on a path no route has, or an event of
/// customer `n` with a made-up source. Returns the status.
async fn send(app: &TestApp, n: usize, method: Method, source: String) -> u16 {
    let request = if n % 2 == 0 {
        app.request(method, &format!("/r/{n}"), None)
    } else {
        let mut event = contact(
            n,
            &uuid::Uuid::now_v7().to_string(),
            chrono::Utc::now(),
            "phone",
        );
        event["source"] = source.into();
        app.request(Method::POST, "/v1/events", Some(&app.admin_token))
            .json(&event)
    };
    request.send().await.expect("an answer").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_sources_add_no_series() {
    let app = TestApp::builder()
        .configure(|options| {
            // The insights gauges are computed on a timer, not by requests.
            options.insights.refresh = Duration::ZERO;
            // One admin token posts the flood: its rate is not under test.
            options.limits.token_rate = 0;
        })
        .spawn()
        .await;
    app.wait_ready(&app.base_url).await;
    let mut rng = StdRng::seed_from_u64(20_251_202);

    // Warm-up: each kind of request once per answer it can get, every
    // standard method on a path no route has, and events on every
    // partition, projected.
    let mut posted = 0;
    for n in 0..64 {
        let status = send(&app, n, made_up_method(&mut rng), made_up_source(&mut rng)).await;
        if n % 2 == 1 {
            assert_eq!(status, 202);
            posted += 1;
        } else {
            assert_eq!(status, 405);
        }
    }
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
    ] {
        let status = app
            .request(method.clone(), "/r/warm-up", None)
            .send()
            .await
            .expect("an answer")
            .status();
        assert!(status.is_client_error(), "{method}: {status}");
    }
    app.wait_for_events(posted).await;
    app.wait_for_offsets(posted).await;
    // The first scrape adds its own series; the second is the baseline.
    series(&app).await;
    let before = series(&app).await;

    let requests: Vec<(usize, Method, String)> = (0..REQUESTS)
        .map(|n| (n + 64, made_up_method(&mut rng), made_up_source(&mut rng)))
        .collect();
    let statuses: Vec<u16> = futures::stream::iter(requests)
        .map(|(n, method, source)| send(&app, n, method, source))
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let flooded = (REQUESTS / 2) as i64;
    assert_eq!(
        statuses.iter().filter(|status| **status == 202).count() as i64,
        flooded,
        "every event accepted"
    );
    assert_eq!(
        statuses.iter().filter(|status| **status == 405).count() as i64,
        flooded,
        "every made-up method refused"
    );
    app.wait_for_events(posted + flooded).await;
    app.wait_for_offsets(posted + flooded).await;

    series(&app).await;
    let after = series(&app).await;
    let added: Vec<&String> = after.difference(&before).take(20).collect();
    let gone: Vec<&String> = before.difference(&after).take(20).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "{} series before, {} after; added: {added:#?}; gone: {gone:#?}",
        before.len(),
        after.len()
    );

    // The flood was seen, under the closed label values.
    let metrics = Exposition::parse(&app.metrics_text().await).expect("Prometheus text");
    assert!(
        metrics.sum(
            "panorama_http_request_duration_seconds_count",
            &[("method", "other"), ("route", "unmatched")]
        ) >= flooded as f64
    );
    assert_eq!(
        metrics.sum(
            "panorama_ingest_events_total",
            &[("channel", "phone"), ("source", "events")]
        ),
        (posted + flooded) as f64
    );
    app.stop().await;
}
