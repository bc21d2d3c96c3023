//! A well-behaved agent's latency with and without a concurrent flood: one
//! client reads a customer profile with its own token, one request at a
//! time, first alone, then while other clients flood the same process with
//! made-up bearer tokens (distinct, well-formed) and with one abusive live
//! token, as fast as they are answered. Run with the default limits, with
//! them but refusals sent at once (`refusal_delay_ms = 0`), and with every
//! limit off.
//!
//! The flood runs two ways: inside the bench's own process (its clients
//! share the well-behaved client's runtime and the cores at the same
//! priority), and from a child process at the lowest CPU priority
//! (`nice -n 19`), which stands for attackers on machines of their own:
//! there the well-behaved client competes only with the server's work of
//! refusing the flood, not with the flood's own clients.
//!
//! `cargo bench -p panorama-e2e --bench flood` (`BENCH_REQUESTS` for the
//! well-behaved client's requests per phase, `BENCH_FLOODERS` for the
//! flooding clients of each kind). Prints p50 and p99 of each phase and
//! their ratio, and what the flood got.

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use panorama::LimitOptions;
use panorama_core::Role;
use panorama_e2e::latency::{ms, percentile};
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
    base_url: &str,
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
            let url = format!("{base_url}{path}");
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

/// Bearer-token checks so far, whatever their outcome.
async fn auth_checks(app: &TestApp) -> f64 {
    let text = app.metrics_text().await;
    panorama_e2e::prometheus::Exposition::parse(&text)
        .map(|metrics| metrics.sum("panorama_http_auth_total", &[]))
        .unwrap_or(f64::NAN)
}

async fn lookups(app: &TestApp) -> f64 {
    let text = app.metrics_text().await;
    panorama_e2e::prometheus::Exposition::parse(&text)
        .map(|metrics| metrics.sum("panorama_http_auth_lookups_total", &[]))
        .unwrap_or(f64::NAN)
}

/// Where the flood comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    /// Tasks of this process.
    Inside,
    /// A child process at the lowest CPU priority.
    Child,
}

/// Flooder mode of this binary (`BENCH_FLOOD_URL` set): floods until its
/// standard input closes, then prints `sent 429 401 other`.
fn flood_child(url: &str) {
    let abusive = std::env::var("BENCH_FLOOD_TOKEN").unwrap_or_default();
    let flooders = env("BENCH_FLOODERS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        let (base, path) = url.split_at(url.find("/v1/").expect("a /v1/ path"));
        let tasks = flood(base, path, &abusive, flooders, &stop, &tally);
        tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {})
            .await
            .expect("stdin");
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
    });
    println!(
        "{} {} {} {}",
        tally.sent.load(Ordering::Relaxed),
        tally.refused_429.load(Ordering::Relaxed),
        tally.refused_401.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed)
    );
}

async fn scenario(name: &str, limits: LimitOptions, requests: usize, flooders: usize, from: From) {
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
    let (tasks, child) = match from {
        From::Inside => (
            flood(&app.base_url, &path, &abusive, flooders, &stop, &tally),
            None,
        ),
        From::Child => {
            let child = Command::new("nice")
                .args(["-n", "19"])
                .arg(std::env::current_exe().expect("this binary"))
                .env("BENCH_FLOOD_URL", format!("{}{path}", app.base_url))
                .env("BENCH_FLOOD_TOKEN", &abusive)
                .env("BENCH_FLOODERS", flooders.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the flooding process starts (nice is in coreutils)");
            (Vec::new(), Some(child))
        }
    };
    // The measured phase starts once the flood is going.
    let checks_before = auth_checks(&app).await;
    panorama_testkit::eventually("the flood under way", panorama_testkit::WAIT, || async {
        (auth_checks(&app).await > checks_before + 100.0).then_some(())
    })
    .await;
    let started = Instant::now();
    let flooded = well_behaved(&app, &agent, &path, requests).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    if let Some(mut child) = child {
        let _ = child.stdin.take().map(|mut stdin| stdin.flush());
        let output = child.wait_with_output().expect("the flood ends");
        let text = String::from_utf8_lossy(&output.stdout);
        let counts: Vec<u64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if let [sent, refused_429, refused_401, other] = counts[..] {
            tally.sent.store(sent, Ordering::Relaxed);
            tally.refused_429.store(refused_429, Ordering::Relaxed);
            tally.refused_401.store(refused_401, Ordering::Relaxed);
            tally.other.store(other, Ordering::Relaxed);
        }
    }
    let lookups = lookups(&app).await - lookups_before;

    let (p50, p99) = (percentile(&alone, 0.5), percentile(&alone, 0.99));
    let (f50, f99) = (percentile(&flooded, 0.5), percentile(&flooded, 0.99));
    let origin = match from {
        From::Inside => "flood from this process",
        From::Child => "flood from a nice 19 process",
    };
    println!(
        "{name}, {origin}: GET /v1/customers/{{id}}, one request at a time, {requests} per phase"
    );
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
    if let Ok(url) = std::env::var("BENCH_FLOOD_URL") {
        flood_child(&url);
        return;
    }
    let requests = env("BENCH_REQUESTS", 2_000);
    let flooders = env("BENCH_FLOODERS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for from in [From::Inside, From::Child] {
            scenario(
                "default limits",
                LimitOptions::default(),
                requests,
                flooders,
                from,
            )
            .await;
            let at_once = LimitOptions {
                refusal_delay_ms: 0,
                ..LimitOptions::default()
            };
            scenario(
                "default limits, refusals sent at once",
                at_once,
                requests,
                flooders,
                from,
            )
            .await;
            scenario("limits off", LimitOptions::off(), requests, flooders, from).await;
        }
    });
}
