//! End-to-end pipeline benchmark: HTTP ingest → broker → projector →
//! visible in the API, against a baseline measured in the same run on the
//! same PostgreSQL (raw `COPY` of the same rows into an equally indexed
//! table), so the figures read as ratios on a noisy machine.
//!
//! `cargo bench -p panorama-e2e --bench pipeline` (`BENCH_EVENTS=50000` to
//! change the size). Prints one line per figure.

use std::io::Write as _;
use std::time::{Duration, Instant};

use panorama_e2e::latency::{ms, percentile};
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::{TestApp, eventually, postgres};
use serde_json::json;

const BATCH: usize = 1000;
const CONCURRENT_REQUESTS: usize = 4;
const LATENCY_SAMPLES: usize = 300;

/// Raw COPY of `count` event-shaped rows into a table indexed like
/// `events`; rows per second.
fn copy_baseline(database: &str, count: usize) -> f64 {
    let path = std::env::temp_dir().join(format!("panorama-bench-{}.csv", std::process::id()));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("csv"));
        for n in 0..count {
            let customer = uuid::Uuid::from_u128(n as u128 / 10 + 1);
            writeln!(
                file,
                "{},{customer},{},{},phone,bench,call.ended,inbound,\"[{{\"\"kind\"\":\"\"phone\"\",\"\"value\"\":\"\"{}\"\"}}]\",my order did not arrive,Customer,{{}}",
                uuid::Uuid::now_v7(),
                at_minute(n as i64).to_rfc3339(),
                at_minute(n as i64).to_rfc3339(),
                phone_of(n / 10),
            )
            .expect("write csv");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    }
    let cluster = postgres();
    cluster
        .psql(
            database,
            "CREATE TABLE copy_baseline (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES)",
        )
        .expect("baseline table");
    let started = Instant::now();
    cluster
        .psql(
            database,
            &format!(
                "COPY copy_baseline (event_id, customer_id, occurred_at, received_at, channel, source, type, direction, identifiers, contact_reason, display_name, attributes) FROM '{}' WITH (FORMAT csv)",
                path.display()
            ),
        )
        .expect("copy");
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    count as f64 / elapsed.as_secs_f64()
}

/// Posts `count` events after `already` were projected; events per second
/// from the first POST until all are visible.
async fn throughput(app: &TestApp, count: usize, already: usize) -> f64 {
    let bodies: Vec<serde_json::Value> = (0..count)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|chunk| {
            let events: Vec<_> = chunk
                .iter()
                .map(|n| contact(n / 10, &format!("bench-{n}"), at_minute(*n as i64), "phone"))
                .collect();
            json!({ "events": events })
        })
        .collect();
    let started = Instant::now();
    for group in bodies.chunks(CONCURRENT_REQUESTS) {
        let posts = group.iter().map(|body| app.post_events(body));
        for response in futures::future::join_all(posts).await {
            assert_eq!(response.status(), 202);
        }
    }
    let acknowledged = started.elapsed();
    app.wait_for_events((already + count) as i64).await;
    let visible = started.elapsed();
    println!(
        "ingest acknowledged: {count} events in {} ({:.0} events/s)",
        ms(acknowledged),
        count as f64 / acknowledged.as_secs_f64()
    );
    count as f64 / visible.as_secs_f64()
}

async fn latency(app: &TestApp) -> (Vec<Duration>, Vec<Duration>) {
    let mut acknowledged = Vec::with_capacity(LATENCY_SAMPLES);
    let mut visible = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES {
        let customer = 1_000_000 + n;
        let body = contact(
            customer,
            &format!("latency-{n}"),
            at_minute(n as i64),
            "phone",
        );
        let lookup = format!(
            "/v1/customers/lookup?phone={}",
            phone_of(customer).replace('+', "%2B")
        );
        let started = Instant::now();
        assert_eq!(app.post_events(&body).await.status(), 202);
        acknowledged.push(started.elapsed());
        eventually("event visible", Duration::from_secs(10), || async {
            (app.get(&lookup).await.status() == 200).then_some(())
        })
        .await;
        visible.push(started.elapsed());
    }
    acknowledged.sort();
    visible.sort();
    (acknowledged, visible)
}

fn main() {
    let count: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = TestApp::spawn().await;
        let (acknowledged, visible) = latency(&app).await;
        println!(
            "single event, POST to 202: p50 {} p99 {}",
            ms(percentile(&acknowledged, 0.5)),
            ms(percentile(&acknowledged, 0.99))
        );
        println!(
            "single event, POST to visible in the API: p50 {} p99 {}",
            ms(percentile(&visible, 0.5)),
            ms(percentile(&visible, 0.99))
        );
        let end_to_end = throughput(&app, count, LATENCY_SAMPLES).await;
        let database = app.database.name.clone();
        let baseline = tokio::task::spawn_blocking(move || copy_baseline(&database, count))
            .await
            .expect("baseline");
        println!("end to end (POST to visible): {end_to_end:.0} events/s");
        println!("baseline raw COPY, same rows and indexes: {baseline:.0} rows/s");
        println!("ratio end-to-end / COPY: {:.3}", end_to_end / baseline);
        app.stop().await;
    });
}
