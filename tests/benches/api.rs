//! Agent API latency under load: `GET /v1/customers/{id}` and the first
//! timeline page, against a database of 100,000 customers (3 events each),
//! from 8 concurrent clients. The baseline, measured in the same run and the
//! same way, is `GET /healthz` (the HTTP and token path without a query).
//!
//! `cargo bench -p panorama-e2e --bench api` (`BENCH_CUSTOMERS`,
//! `BENCH_REQUESTS` to change the sizes). Prints one line per route.

use std::time::{Duration, Instant};

use panorama::ProcessRole;
use panorama_core::{EventDraft, ValidationContext};
use panorama_e2e::latency::{ms, percentile};
use panorama_e2e::{contact, epoch, phone_of};
use panorama_store::PartitionOffset;
use panorama_testkit::TestApp;
use rand::Rng;
use uuid::Uuid;

const CLIENTS: usize = 8;
const WRITE_BATCH: usize = 6_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Projects `customers` customers with three events each, straight through
/// the store (the projector's own write path, without the broker).
async fn seed(app: &TestApp, customers: usize) {
    let context = ValidationContext::now(None);
    let channels = ["phone", "email", "social"];
    let total = customers * 3;
    for start in (0..total).step_by(WRITE_BATCH) {
        let events: Vec<_> = (start..total.min(start + WRITE_BATCH))
            .map(|n| {
                let customer = n / 3;
                let json = contact(
                    customer,
                    &format!("seed-{n}"),
                    epoch() + chrono::Duration::seconds(n as i64),
                    channels[n % 3],
                );
                serde_json::from_value::<EventDraft>(json)
                    .expect("draft")
                    .validate(&context)
                    .expect("valid")
            })
            .collect();
        let offsets: [PartitionOffset; 0] = [];
        app.store
            .apply_batch("seed", &events, &offsets)
            .await
            .expect("batch");
    }
}

/// `requests` GETs of the paths `path_of` gives, from `CLIENTS` clients;
/// sorted latencies.
async fn load(
    app: &TestApp,
    requests: usize,
    path_of: impl Fn(usize) -> String + Clone + Send + 'static,
) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let http = app.http.clone();
        let base = app.base_url.clone();
        let path_of = path_of.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / CLIENTS);
            for n in 0..requests / CLIENTS {
                let url = format!("{base}{}", path_of(n * CLIENTS + client));
                let started = Instant::now();
                let response = http.get(url).send().await.expect("answer");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await.expect("body");
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    all.sort();
    all
}

fn main() {
    let customers = env("BENCH_CUSTOMERS", 100_000);
    let requests = env("BENCH_REQUESTS", 8_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // One token stands in for every agent desk here: no per-token rate.
        let app = TestApp::builder()
            .role(ProcessRole::Api)
            .configure(|options| options.limits.token_rate = 0)
            .spawn()
            .await;
        let started = Instant::now();
        seed(&app, customers).await;
        println!(
            "seeded {customers} customers, {} events in {:.1} s",
            customers * 3,
            started.elapsed().as_secs_f64()
        );
        let (client, connection) =
            tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute("VACUUM ANALYZE")
            .await
            .expect("analyze");
        let ids: Vec<Uuid> = client
            .query("SELECT id FROM customers", &[])
            .await
            .expect("ids")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(ids.len(), customers);
        // Random customers, the same sequence for every route.
        let mut rng = rand::rng();
        let picks: std::sync::Arc<Vec<Uuid>> = std::sync::Arc::new(
            (0..requests)
                .map(|_| ids[rng.random_range(0..ids.len())])
                .collect(),
        );
        // Warm up connections and caches.
        let warm = picks.clone();
        load(&app, CLIENTS * 50, move |n| format!("/v1/customers/{}", warm[n])).await;

        let baseline = load(&app, requests, |_| "/healthz".to_owned()).await;
        let profile_picks = picks.clone();
        let profile = load(&app, requests, move |n| {
            format!("/v1/customers/{}", profile_picks[n])
        })
        .await;
        let timeline_picks = picks.clone();
        let timeline = load(&app, requests, move |n| {
            format!("/v1/customers/{}/timeline", timeline_picks[n])
        })
        .await;
        let lookup = load(&app, requests, move |n| {
            let phone = phone_of(n * 7919 % customers).replace('+', "%2B");
            format!("/v1/customers/lookup?phone={phone}")
        })
        .await;
        let p50 = percentile(&baseline, 0.5);
        for (name, latencies) in [
            ("GET /healthz (baseline)", &baseline),
            ("GET /v1/customers/{id}", &profile),
            ("GET /v1/customers/{id}/timeline", &timeline),
            ("GET /v1/customers/lookup?phone=", &lookup),
        ] {
            let median = percentile(latencies, 0.5);
            println!(
                "{name}: p50 {} p99 {} ({} requests, {CLIENTS} clients; p50 ratio to baseline {:.1})",
                ms(median),
                ms(percentile(latencies, 0.99)),
                latencies.len(),
                median.as_secs_f64() / p50.as_secs_f64()
            );
        }
        app.stop().await;
    });
}
