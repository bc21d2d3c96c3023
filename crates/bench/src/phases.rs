//! The measured phases on a running stack: P (projector alone draining a
//! pre-filled topic), B (the binary COPY of the same rows), E (end to end
//! from a separate HTTP load generator), P2 (two projectors of one group
//! draining a pre-filled topic, with the lock waits PostgreSQL shows
//! meanwhile), single-event freshness, and idle CPU.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use tokio_postgres::{AsyncMessage, Client};

use crate::copy::copy_rows;
use crate::loadgen::{LoadReport, unix_now};
use crate::lockwaits::{LockSampler, LockWaits};
use crate::procstat::{Snapshot, ticks_per_second};
use crate::stack::{GROUP, Role, Stack, TOPIC};
use crate::statements::{self, Profile};
use crate::stats::{quantile, sorted};
use crate::workload::Workload;

/// Events per POST of the batched phases.
pub(crate) const BATCH: u64 = 100;

/// How often completion is checked: one query over the few rows of
/// `consumer_offsets`.
const POLL: Duration = Duration::from_millis(10);

/// How long the projector may take to catch up before the phase fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1800);

/// CPU microseconds per event by process name.
pub(crate) type CpuPerEvent = BTreeMap<String, f64>;

/// One round's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Round {
    /// B: rows/s of the binary COPY.
    pub(crate) copy_rows_per_s: f64,
    /// P: events/s from the projector's claim to its offsets at the log end.
    pub(crate) project_events_per_s: f64,
    /// P: the projector process's start to its claim, seconds.
    pub(crate) project_startup_s: f64,
    /// P: CPU µs per event.
    pub(crate) project_cpu: CpuPerEvent,
    /// E: events/s from the first POST until every event is projected.
    pub(crate) e2e_events_per_s: f64,
    /// E: events/s the gateway acknowledged.
    pub(crate) e2e_ack_events_per_s: f64,
    /// E: batch acknowledgement latency p50 and p99, ms.
    pub(crate) e2e_ack_ms: (f64, f64),
    /// E: CPU µs per event (the load generator included).
    pub(crate) e2e_cpu: CpuPerEvent,
    /// P: lock waits while the projector drained the topic.
    pub(crate) project_locks: LockWaits,
    /// P2: events/s of two projectors, from the first partition claim
    /// until the offsets reach the log end; `None` when P2 did not run.
    pub(crate) two_events_per_s: Option<f64>,
    /// P2: lock waits while the two projectors drained the topic.
    pub(crate) two_locks: Option<LockWaits>,
}

/// Single events on an idle system.
#[derive(Debug, Clone, Default)]
pub(crate) struct Freshness {
    /// Samples.
    pub(crate) samples: usize,
    /// POST → 202, p50 and p99, ms.
    pub(crate) ack_ms: (f64, f64),
    /// POST → committed and notified, p50 and p99, ms.
    pub(crate) visible_ms: (f64, f64),
}

/// Runs the load generator (this binary's `loadgen` subcommand) against
/// the gateway and returns its report.
pub(crate) async fn post_workload(
    stack: &Stack,
    workload: Workload,
    clients: usize,
) -> anyhow::Result<LoadReport> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut command = Command::new(exe);
    command
        .args(["loadgen", "--url", &stack.url(Role::Gateway), "--batch"])
        .arg(BATCH.to_string())
        .arg("--clients")
        .arg(clients.to_string())
        .arg("--workload")
        .arg(serde_json::to_string(&workload)?)
        .env("PANORAMA_BENCH_TOKEN", &stack.token)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    if !output.status.success() {
        bail!("the load generator failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .with_context(|| format!("reading the load generator's report {line:?}"))
}

/// `(sum of next_offset, sum of epoch)` of the projector group's stored
/// offsets: one query over a row per partition.
async fn offsets(client: &Client) -> anyhow::Result<(i64, i64)> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(next_offset), 0)::int8, coalesce(sum(epoch), 0)::int8
             FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
            &[&GROUP, &TOPIC],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Waits until the stored offsets reach `end`; returns when the claim's
/// epoch first moved past `epoch_before` (if it did) and when the offsets
/// reached the end.
async fn wait_projected(
    client: &Client,
    end: i64,
    epoch_before: Option<i64>,
) -> anyhow::Result<(Option<Instant>, Instant)> {
    let started = Instant::now();
    let mut claimed = None;
    loop {
        let (next, epoch) = offsets(client).await?;
        let now = Instant::now();
        if claimed.is_none() && epoch_before.is_some_and(|before| epoch > before) {
            claimed = Some(now);
        }
        if next >= end {
            return Ok((
                claimed.or(Some(now)).filter(|_| epoch_before.is_some()),
                now,
            ));
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!("the projector's offsets stopped at {next} of {end} after {DRAIN_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CPU µs per event by process between two snapshots.
fn per_event(before: &Snapshot, after: &Snapshot, events: u64) -> CpuPerEvent {
    after
        .cpu_seconds_since(before, ticks_per_second())
        .into_iter()
        .map(|(name, seconds)| (name, seconds * 1e6 / events.max(1) as f64))
        .collect()
}

/// One round: P, then B on the rows P wrote, then E, then P2 when given
/// its workload. With a `profile`, the statements PostgreSQL ran during P
/// are added to it.
pub(crate) async fn round(
    stack: &mut Stack,
    client: &Client,
    (p_load, e_load, p2_load): (Workload, Workload, Option<Workload>),
    clients: usize,
    profile: Option<&mut Profile>,
) -> anyhow::Result<Round> {
    let mut round = Round::default();

    // P: fill the topic with the projector stopped, then start it alone.
    stack.stop(Role::Projector).await;
    let (_, epoch_before) = offsets(client).await?;
    post_workload(stack, p_load, clients).await?;
    let end = stack.log_end().await?;
    let before = Snapshot::take(&stack.probes());
    let sampler = LockSampler::start(stack).await?;
    if profile.is_some() {
        statements::reset(client).await?;
    }
    stack.spawn(Role::Projector)?;
    let spawned = Instant::now();
    let (claimed, done) = wait_projected(client, end, Some(epoch_before)).await?;
    let after = Snapshot::take(&stack.probes());
    if let Some(profile) = profile {
        profile.add_phase(client, p_load.count).await?;
    }
    round.project_locks = sampler.finish().await?;
    let claimed = claimed.unwrap_or(spawned);
    round.project_startup_s = claimed.duration_since(spawned).as_secs_f64();
    round.project_events_per_s =
        p_load.count as f64 / done.duration_since(claimed).as_secs_f64().max(1e-6);
    round.project_cpu = per_event(&before, &after, p_load.count);
    stack.wait_ready(Role::Projector).await?;

    // B: the same rows, byte for byte, with one binary COPY.
    let (rows, seconds) = copy_rows(client, &p_load.event_ids(), "bench_copy").await?;
    if rows != p_load.count {
        eprintln!(
            "panorama-bench: COPY took {rows} rows of {} events (the rest were not projected)",
            p_load.count
        );
    }
    round.copy_rows_per_s = rows as f64 / seconds.max(1e-6);

    // E: the load generator against the gateway, until projected.
    let before = Snapshot::take(&stack.probes());
    let load = post_workload(stack, e_load, clients).await?;
    let end = stack.log_end().await?;
    wait_projected(client, end, None).await?;
    let visible = unix_now();
    let mut after = Snapshot::take(&stack.probes());
    after.ticks.insert(
        "loadgen".to_owned(),
        (load.cpu_seconds * ticks_per_second() as f64).round() as u64,
    );
    round.e2e_events_per_s = e_load.count as f64 / (visible - load.started_unix).max(1e-6);
    round.e2e_ack_events_per_s =
        e_load.count as f64 / (load.finished_unix - load.started_unix).max(1e-6);
    round.e2e_ack_ms = (load.ack_p50_ms, load.ack_p99_ms);
    round.e2e_cpu = per_event(&before, &after, e_load.count);
    stack.note_peak_rss();

    if let Some(load) = p2_load {
        let (events_per_s, locks) = two_projectors(stack, client, load, clients).await?;
        round.two_events_per_s = Some(events_per_s);
        round.two_locks = Some(locks);
    }
    Ok(round)
}

/// P2: P with two projector processes of the same group sharing the
/// topic's partitions. Timed from the first partition claim, so the
/// rebalance that splits the partitions when the second one joins is
/// part of it. Leaves one projector running, as P does.
async fn two_projectors(
    stack: &mut Stack,
    client: &Client,
    load: Workload,
    clients: usize,
) -> anyhow::Result<(f64, LockWaits)> {
    stack.stop(Role::Projector).await;
    let (_, epoch_before) = offsets(client).await?;
    post_workload(stack, load, clients).await?;
    let end = stack.log_end().await?;
    let sampler = LockSampler::start(stack).await?;
    stack.spawn(Role::Projector)?;
    stack.spawn(Role::SecondProjector)?;
    let spawned = Instant::now();
    let (claimed, done) = wait_projected(client, end, Some(epoch_before)).await?;
    let locks = sampler.finish().await?;
    let claimed = claimed.unwrap_or(spawned);
    let events_per_s = load.count as f64 / done.duration_since(claimed).as_secs_f64().max(1e-6);
    stack.note_peak_rss();
    stack.stop(Role::SecondProjector).await;
    stack.stop(Role::Projector).await;
    stack.spawn(Role::Projector)?;
    stack.wait_ready(Role::Projector).await?;
    Ok((events_per_s, locks))
}

/// The longest [`settle`] waits for autovacuum to finish.
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

/// Makes the server idle before single events are timed: the rounds before
/// leave dirty pages and tables due for autovacuum, whose work would share
/// the cores with the events. A `CHECKPOINT` writes the pages; then it
/// waits (polling, up to [`SETTLE_WITHIN`]) until no autovacuum worker
/// runs. One that is still running then is only logged.
async fn settle(client: &Client) -> anyhow::Result<()> {
    client.batch_execute("CHECKPOINT").await?;
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
                &[],
            )
            .await?
            .get(0);
        if running == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "panorama-bench: {running} autovacuum worker(s) still running after {} s; timing single events anyway",
                SETTLE_WITHIN.as_secs()
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Single events posted one at a time on an idle system: the POST's
/// acknowledgement, and the moment the projector's commit notifies
/// `panorama_changes` (received on a LISTEN connection) with the event
/// stored.
pub(crate) async fn freshness(
    stack: &Stack,
    client: &Client,
    workload: Workload,
) -> anyhow::Result<Freshness> {
    settle(client).await?;
    let (listener, mut connection) =
        tokio_postgres::connect(&stack.database.url, tokio_postgres::NoTls).await?;
    let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(_) = message {
                if notified.send(Instant::now()).is_err() {
                    break;
                }
            }
        }
    });
    listener.batch_execute("LISTEN panorama_changes").await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let endpoint = format!("{}/v1/events", stack.url(Role::Gateway));
    let authorization = format!("Bearer {}", stack.token);
    let (mut acks, mut visible) = (Vec::new(), Vec::new());
    for index in 0..workload.count {
        tokio::time::sleep(Duration::from_millis(50)).await;
        while notifications.try_recv().is_ok() {}
        let id = workload.event_id(index);
        let body = serde_json::to_vec(&workload.event(index))?;
        let sent = Instant::now();
        let response = http
            .post(&endpoint)
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let acked = sent.elapsed();
        let status = response.status();
        let _ = response.bytes().await;
        if status.as_u16() != 202 && status.as_u16() != 200 {
            bail!("a single event was answered {status}");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let Ok(Some(at)) = tokio::time::timeout_at(deadline, notifications.recv()).await else {
                bail!("event {id} was not visible 10 s after its POST");
            };
            let stored = client
                .query_opt("SELECT 1 FROM events WHERE event_id = $1", &[&id])
                .await?
                .is_some();
            if stored {
                break at;
            }
        };
        acks.push(acked.as_secs_f64() * 1000.0);
        visible.push(seen.duration_since(sent).as_secs_f64() * 1000.0);
    }
    let (acks, visible) = (sorted(&acks), sorted(&visible));
    Ok(Freshness {
        samples: acks.len(),
        ack_ms: (quantile(&acks, 0.5), quantile(&acks, 0.99)),
        visible_ms: (quantile(&visible, 0.5), quantile(&visible, 0.99)),
    })
}

/// CPU of each process, % of one core, over `seconds` with no traffic.
pub(crate) async fn idle_cpu(stack: &Stack, seconds: u64) -> BTreeMap<String, f64> {
    let probes = stack.probes();
    let before = Snapshot::take(&probes);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = Snapshot::take(&probes);
    let elapsed = after.at.duration_since(before.at).as_secs_f64().max(1e-6);
    after
        .cpu_seconds_since(&before, ticks_per_second())
        .into_iter()
        .map(|(name, used)| (name, used / elapsed * 100.0))
        .collect()
}
