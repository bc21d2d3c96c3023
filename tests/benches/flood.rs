//! A well-behaved agent's latency with and without a concurrent flood: one
//! client reads a customer profile with its own token, one request at a
//! time, first alone, then while other clients flood the same process with
//! made-up bearer tokens (distinct, well-formed) and with one abusive live
//! token, as fast as they are answered. Run once with the default limits
//! and once with every limit off.
//!
//! `cargo bench -p panorama-e2e --bench flood` (`BENCH_REQUESTS` for the
//! well-behaved client's requests per phase, `BENCH_FLOODERS` for the
//! flooding clients of each kind). Prints p50 and p99 of each phase and
//! their ratio, and what the flood got.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use panorama::LimitOptions;
use panorama_core::Role;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_store::SECRET_PREFIX;
use panorama_testkit::TestApp;
use rand::Rng;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// A secret in the shape of a real one that no token has.
fn made_up_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let random: String = (0..43)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{SECRET_PREFIX}{random}")
}

/// `requests` sequential profile reads with `token`; sorted latencies.
async fn well_behaved(app: &TestApp, token: &str, path: &str, requests: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let response = app
            .request(reqwest::Method::GET, path, Some(token))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            response.status(),
            200,
            "the well-behaved client was refused"
        );
        let _ = response.bytes().await.expect("a body");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

/// What the flooding clients got, by status class.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused_429: AtomicU64,
    refused_401: AtomicU64,
    other: AtomicU64,
}

/// Starts `flooders` clients sending made-up tokens and `flooders` sending
/// `abusive`'s, until `stop`.
fn flood(
    app: &TestApp,
    path: &str,
    abusive: &str,
    flooders: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for kind in 0..2 {
        for _ in 0..flooders {
            let http = reqwest::Client::new();
            let url = format!("{}{path}", app.base_url);
            let abusive = abusive.to_owned();
            let (stop, tally) = (stop.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let token = if kind == 0 {
                        made_up_secret()
                    } else {
                        abusive.clone()
                    };
                    let Ok(response) = http.get(&url).bearer_auth(token).send().await else {
                        continue;
                    };
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let counter = match response.status().as_u16() {
                        429 => &tally.refused_429,
                        401 => &tally.refused_401,
                        _ => &tally.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = response.bytes().await;
                }
            }));
        }
    }
    tasks
}

async fn lookups(app: &TestApp) -> f64 {
    let text = app.metrics_text().await;
    panorama_e2e::prometheus::Exposition::parse(&text)
        .map(|metrics| metrics.sum("panorama_http_auth_lookups_total", &[]))
        .unwrap_or(f64::NAN)
}

async fn scenario(name: &str, limits: LimitOptions, requests: usize, flooders: usize) {
    let app = TestApp::builder()
        .configure(move |options| options.limits = limits)
        .spawn()
        .await;
    assert_eq!(
        app.post_events(&contact(1, "bench-flood-1", at_minute(1), "phone"))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let phone = phone_of(1).replace('+', "%2B");
    let id = app
        .get_json(&format!("/v1/customers/lookup?phone={phone}"))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let path = format!("/v1/customers/{id}");
    let agent = app.token(Role::Agent).await;
    let abusive = app.token(Role::Agent).await;
    // Warm up the connections and the token cache.
    well_behaved(&app, &agent, &path, 200).await;

    let alone = well_behaved(&app, &agent, &path, requests).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let lookups_before = lookups(&app).await;
    let tasks = flood(&app, &path, &abusive, flooders, &stop, &tally);
    let started = Instant::now();
    let flooded = well_behaved(&app, &agent, &path, requests).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let lookups = lookups(&app).await - lookups_before;

    let (p50, p99) = (percentile(&alone, 0.5), percentile(&alone, 0.99));
    let (f50, f99) = (percentile(&flooded, 0.5), percentile(&flooded, 0.99));
    println!("{name}: GET /v1/customers/{{id}}, one request at a time, {requests} per phase");
    println!("  alone:        p50 {} p99 {}", ms(p50), ms(p99));
    println!(
        "  during flood: p50 {} p99 {} (ratio p50 {:.1}, p99 {:.1})",
        ms(f50),
        ms(f99),
        f50.as_secs_f64() / p50.as_secs_f64(),
        f99.as_secs_f64() / p99.as_secs_f64()
    );
    let sent = tally.sent.load(Ordering::Relaxed);
    println!(
        "  flood: {sent} requests in {:.1} s ({:.0}/s) from {} clients: {} answered 429, {} 401, {} other; {lookups} token lookups reached the database",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        flooders * 2,
        tally.refused_429.load(Ordering::Relaxed),
        tally.refused_401.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    app.stop().await;
}

fn main() {
    let requests = env("BENCH_REQUESTS", 2_000);
    let flooders = env("BENCH_FLOODERS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        scenario(
            "default limits",
            LimitOptions::default(),
            requests,
            flooders,
        )
        .await;
        scenario("limits off", LimitOptions::off(), requests, flooders).await;
    });
}
