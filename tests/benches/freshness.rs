//! Single-event freshness on a running stack: one event at a time, the time
//! to the ingest acknowledgement (POST → 202) and to visibility, taken when
//! the projector's commit notifies the live-update channel
//! (`panorama_store::CHANGES_CHANNEL`): the moment the event can be read,
//! not the next tick of a polling loop.
//!
//! It measures whatever stack it is pointed at, typically the dev stack
//! (`make run SIMULATE=off`) on an idle machine:
//!
//! ```text
//! FRESHNESS_URL=http://127.0.0.1:8080 FRESHNESS_TOKEN=<admin or channel token> \
//! FRESHNESS_DATABASE_URL=postgres://panorama@127.0.0.1:55432/panorama \
//! cargo bench -p panorama-e2e --bench freshness
//! ```
//!
//! `FRESHNESS_SAMPLES` (default 300) sets the number of events and
//! `FRESHNESS_GAP_MS` (default 50) the pause between them, so each event
//! meets an idle pipeline.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use panorama_e2e::latency::{ms, percentile};
use panorama_e2e::{at_minute, contact};
use panorama_store::CHANGES_CHANNEL;
use tokio_postgres::AsyncMessage;

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name} (see the top of this file)"))
}

fn number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: p50 {} p90 {} p99 {} max {} ({} samples)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
        samples.len()
    );
}

fn main() {
    let url = setting("FRESHNESS_URL");
    let token = setting("FRESHNESS_TOKEN");
    let database = setting("FRESHNESS_DATABASE_URL");
    let samples = number("FRESHNESS_SAMPLES", 300) as usize;
    let gap = Duration::from_millis(number("FRESHNESS_GAP_MS", 50));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, mut connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
            .await
            .expect("connect to the database");
        let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(_) = message {
                    let _ = notified.send(Instant::now());
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await
            .expect("listen");
        let http = reqwest::Client::new();
        let run = uuid::Uuid::now_v7();
        let mut acknowledged = Vec::with_capacity(samples);
        let mut visible = Vec::with_capacity(samples);
        for n in 0..samples {
            tokio::time::sleep(gap).await;
            while notifications.try_recv().is_ok() {}
            let body = contact(
                2_000_000 + n,
                &format!("freshness-{run}-{n}"),
                at_minute(n as i64),
                "phone",
            );
            let started = Instant::now();
            let response = http
                .post(format!("{url}/v1/events"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .expect("post");
            acknowledged.push(started.elapsed());
            assert_eq!(
                response.status(),
                202,
                "{}",
                response.text().await.unwrap_or_default()
            );
            let seen = tokio::time::timeout(Duration::from_secs(10), notifications.recv())
                .await
                .expect("the event became visible within 10 s")
                .expect("notification stream open");
            visible.push(seen.saturating_duration_since(started));
        }
        report("single event, POST to 202", acknowledged);
        report("single event, POST to visible (commit notified)", visible);
    });
}
