//! The HTTP load generator: `panorama-bench loadgen`, run by the benchmark
//! as its own process so that its CPU is not the server's. Posts a
//! workload in batches from several connections, retries what was not
//! acknowledged, and prints one JSON line: when it started and finished,
//! the batches' acknowledgement latencies and its own CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::procstat;
use crate::stats::{quantile, sorted};
use crate::workload::Workload;

/// Attempts per batch before the run fails.
const ATTEMPTS: u32 = 8;

/// What the load generator reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoadReport {
    /// Unix time of the first request, seconds.
    pub(crate) started_unix: f64,
    /// Unix time of the last acknowledgement, seconds.
    pub(crate) finished_unix: f64,
    /// Events acknowledged.
    pub(crate) events: u64,
    /// Batches acknowledged.
    pub(crate) batches: u64,
    /// Attempts answered with something other than 202 and retried.
    pub(crate) retries: u64,
    /// Median acknowledgement latency of a batch, ms.
    pub(crate) ack_p50_ms: f64,
    /// 99th percentile acknowledgement latency of a batch, ms.
    pub(crate) ack_p99_ms: f64,
    /// The load generator's own CPU time, seconds.
    pub(crate) cpu_seconds: f64,
}

/// Unix time now, in seconds.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Posts `workload` to `url`/v1/events in batches of `batch` from `clients`
/// connections.
pub(crate) async fn run(
    url: &str,
    token: &str,
    workload: Workload,
    batch: u64,
    clients: usize,
) -> anyhow::Result<LoadReport> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let endpoint = format!("{}/v1/events", url.trim_end_matches('/'));
    let started_unix = unix_now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (http, next, retries, endpoint) = (
            http.clone(),
            Arc::clone(&next),
            Arc::clone(&retries),
            endpoint.clone(),
        );
        let authorization = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= workload.count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let body = serde_json::to_vec(&workload.batch(first, batch))?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let sent = Instant::now();
                    let answer = http
                        .post(&endpoint)
                        .header("authorization", &authorization)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let status = match answer {
                        Ok(response) => {
                            let status = response.status();
                            // Read the answer to the end so the connection is reused.
                            let _ = response.bytes().await;
                            Ok(status)
                        }
                        Err(error) => Err(error),
                    };
                    match status {
                        Ok(status) if status.as_u16() == 202 || status.as_u16() == 200 => {
                            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                            break;
                        }
                        Ok(status) if status.is_client_error() && status.as_u16() != 429 => {
                            bail!("POST /v1/events refused a batch: {status}");
                        }
                        other if attempt >= ATTEMPTS => {
                            bail!("POST /v1/events failed {ATTEMPTS} times, last: {other:?}");
                        }
                        _ => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
                        }
                    }
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("a client task")??);
    }
    let finished_unix = unix_now();
    let latencies = sorted(&latencies);
    let hz = procstat::ticks_per_second();
    let cpu_seconds =
        procstat::stat(std::process::id()).map_or(0.0, |stat| stat.own() as f64 / hz as f64);
    Ok(LoadReport {
        started_unix,
        finished_unix,
        events: workload.count,
        batches: latencies.len() as u64,
        retries: retries.load(Ordering::Relaxed),
        ack_p50_ms: quantile(&latencies, 0.5),
        ack_p99_ms: quantile(&latencies, 0.99),
        cpu_seconds,
    })
}
