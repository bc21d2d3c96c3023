//! A flood of made-up bearer tokens cannot starve the database: the same
//! made-up token costs one lookup however often it comes, and once an
//! address has spent its allowance of failed checks, the made-up tokens it
//! sends are answered 429 (problem+json, `Retry-After`, naming
//! `failed_auth_per_minute`) without a lookup, while clients with live
//! tokens, from the same address, keep getting 2xx answers all along.
//!
//! Lookups are counted by `panorama_http_auth_lookups_total`, which is
//! process-wide: this file holds one test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use panorama_core::Role;
use panorama_e2e::prometheus::Exposition;
use panorama_e2e::{at_minute, contact};
use panorama_store::SECRET_PREFIX;
use panorama_testkit::TestApp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::Value;

/// Failed checks an address may make per minute in this test.
const FAILED_AUTH_PER_MINUTE: u32 = 20;
/// Distinct made-up tokens of the flood.
const MADE_UP: usize = 2_000;
/// Flood requests in flight at once.
const CLIENTS: usize = 32;

/// A secret in the shape of a real one that no token has.
fn made_up_secret(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let random: String = (0..43)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{SECRET_PREFIX}{random}")
}

async fn lookups(app: &TestApp) -> f64 {
    Exposition::parse(&app.metrics_text().await)
        .expect("Prometheus text")
        .sum("panorama_http_auth_lookups_total", &[])
}

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.request(Method::GET, "/v1/tasks", Some(token))
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_are_refused_without_starving_the_database() {
    let app = TestApp::builder()
        .configure(|options| {
            options.limits.failed_auth_per_minute = FAILED_AUTH_PER_MINUTE;
            // Answered at once: this test counts refusals, not their pace.
            options.limits.refusal_delay_ms = 0;
        })
        .spawn()
        .await;
    let agent = app.token(Role::Agent).await;
    let channel = app.token(Role::Channel).await;
    // The live tokens are seen once before the flood: a token this process
    // has not seen is not checked for an address that is over its limit.
    assert_eq!(status_with(&app, &agent).await, 200);
    let first = contact(0, "good-0", at_minute(0), "phone");
    let posted = app
        .request(Method::POST, "/v1/events", Some(&channel))
        .json(&first)
        .send()
        .await
        .expect("an answer");
    assert_eq!(posted.status(), 202);
    let mut rng = StdRng::seed_from_u64(42);

    // The same made-up token, again and again: one lookup.
    let repeated = made_up_secret(&mut rng);
    let before = lookups(&app).await;
    for _ in 0..10 {
        assert_eq!(status_with(&app, &repeated).await, 401);
    }
    assert_eq!(
        lookups(&app).await - before,
        1.0,
        "a refused token is remembered"
    );

    // Well-behaved clients with live tokens, all through the flood.
    let flooding = Arc::new(AtomicBool::new(true));
    let good = tokio::spawn({
        let (http, base) = (app.anonymous.clone(), app.base_url.clone());
        let (agent, channel, flooding) = (agent.clone(), channel.clone(), flooding.clone());
        async move {
            let mut statuses = Vec::new();
            let mut n = 0;
            while flooding.load(Ordering::Acquire) || statuses.is_empty() {
                n += 1;
                let read = http
                    .get(format!("{base}/v1/tasks"))
                    .bearer_auth(&agent)
                    .send()
                    .await
                    .expect("an answer");
                statuses.push(read.status().as_u16());
                let event = contact(n, &format!("good-{n}"), at_minute(n as i64), "phone");
                let post = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&channel)
                    .json(&event)
                    .send()
                    .await
                    .expect("an answer");
                statuses.push(post.status().as_u16());
            }
            statuses
        }
    });

    // Distinct made-up tokens from the same address.
    let before = lookups(&app).await;
    let tokens: Vec<String> = (0..MADE_UP).map(|_| made_up_secret(&mut rng)).collect();
    let answers: Vec<(u16, Option<String>, Value)> = futures::stream::iter(tokens)
        .map(|token| {
            let request = app.request(Method::GET, "/v1/tasks", Some(&token));
            async move {
                let response = request.send().await.expect("an answer");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(content_type, "application/problem+json");
                (
                    status,
                    retry_after,
                    response.json().await.expect("a problem"),
                )
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let flood_lookups = lookups(&app).await - before;
    flooding.store(false, Ordering::Release);
    let good = good.await.expect("the well-behaved client");

    assert!(
        answers
            .iter()
            .all(|(status, ..)| *status == 401 || *status == 429),
        "made-up tokens are refused"
    );
    let throttled: Vec<&(u16, Option<String>, Value)> = answers
        .iter()
        .filter(|(status, ..)| *status == 429)
        .collect();
    assert!(
        throttled.len() >= MADE_UP - 100,
        "{} of {MADE_UP} made-up tokens answered 429",
        throttled.len()
    );
    for (_, retry_after, problem) in &throttled {
        let seconds: u64 = retry_after
            .as_deref()
            .and_then(|value| value.parse().ok())
            .expect("Retry-After in seconds");
        assert!(seconds >= 1);
        assert_eq!(problem["type"], "/problems/too-many-requests");
        assert_eq!(problem["status"], 429);
        assert_eq!(problem["limit"], "failed_auth_per_minute");
    }
    // Without the throttle, every made-up token would be one lookup.
    assert!(
        flood_lookups < 100.0,
        "{flood_lookups} lookups for {MADE_UP} made-up tokens"
    );
    let refused: Vec<&u16> = good
        .iter()
        .filter(|status| !(200..300).contains(*status))
        .collect();
    assert!(
        refused.is_empty(),
        "the well-behaved clients got {refused:?} among {} answers",
        good.len()
    );
    app.stop().await;
}
