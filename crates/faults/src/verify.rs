//! The end of a run: wait for the stack to settle (every service ready,
//! the consumer group's stored offsets at the topic's log end), then check
//! with SQL that every acknowledged event took effect exactly once and
//! every aggregate equals a recount from the history.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::schedule::Service;
use crate::stack::Stack;

/// How many ids per statement when loading the client's ledger.
const CHUNK: usize = 20_000;

/// How many ids of each finding the run directory keeps.
const SAMPLE: i64 = 1_000;

/// How often settling is polled.
const POLL: Duration = Duration::from_millis(250);

/// Connects to `url`, the connection driven by a task of its own.
///
/// # Errors
///
/// When the server cannot be reached.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "harness database connection ended");
        }
    });
    Ok(client)
}

/// How far consumer group `group`'s stored offsets (in the database at
/// `database_url`) are from the log end of `topic` on the broker at
/// `bootstrap`: the sum over partitions of the distance, either way,
/// between each partition's high watermark and its stored next offset.
///
/// # Errors
///
/// When the broker or the database does not answer.
pub async fn offsets_behind(
    bootstrap: &str,
    database_url: &str,
    topic: &str,
    group: &str,
) -> Result<i64> {
    let marks = {
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            panorama_bus::high_watermarks(&bootstrap, &topic, Duration::from_secs(5))
        })
        .await??
    };
    let client = connect(database_url).await?;
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets
             WHERE consumer_group = $1 AND topic = $2",
            &[&group, &topic],
        )
        .await?;
    let stored: BTreeMap<i32, i64> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    Ok(marks
        .iter()
        .map(|(partition, high)| (high - stored.get(partition).copied().unwrap_or(0)).abs())
        .sum())
}

/// How settling went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Whether the stack settled (instead of making no progress for the
    /// settle timeout).
    pub settled: bool,
    /// Offsets behind at the end.
    pub offsets_behind: i64,
    /// How long it took (or the timeout).
    pub took: Duration,
}

/// How often settling reports how far behind the projection is.
const SETTLE_REPORT: Duration = Duration::from_secs(30);

/// Waits until every service answers `/readyz` with 200 and the stored
/// offsets equal the log end. A projection that is behind but catching up
/// is waited for (a run that posted faster than the projectors write ends
/// with a backlog); one that makes no progress for `stuck_after` has not
/// settled.
///
/// # Errors
///
/// When the harness cannot restart a process.
pub async fn settle(stack: &Stack, stuck_after: Duration) -> Result<Settled> {
    let started = Instant::now();
    let mut behind = -1;
    let mut least_behind = i64::MAX;
    let mut progress = Instant::now();
    let mut reported = Instant::now();
    loop {
        stack.supervise()?;
        let mut ready = true;
        for service in Service::EVERY {
            ready &= stack.is_ready(service).await;
        }
        match offsets_behind(
            stack.bootstrap(),
            stack.database_url(),
            &stack.topic,
            &stack.group,
        )
        .await
        {
            Ok(now) => behind = now,
            Err(error) => tracing::debug!(%error, "offsets not readable yet"),
        }
        if ready && behind == 0 {
            return Ok(Settled {
                settled: true,
                offsets_behind: 0,
                took: started.elapsed(),
            });
        }
        if behind >= 0 && behind < least_behind {
            least_behind = behind;
            progress = Instant::now();
        }
        if reported.elapsed() >= SETTLE_REPORT {
            reported = Instant::now();
            tracing::info!(ready, offsets_behind = behind, "settling");
        }
        if progress.elapsed() >= stuck_after {
            tracing::error!(ready, offsets_behind = behind, "the stack did not settle");
            return Ok(Settled {
                settled: false,
                offsets_behind: behind,
                took: started.elapsed(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Checked {
    /// Acknowledged ids neither in `events` nor dead-lettered.
    pub lost: u64,
    /// Extra copies: ids in `events` more than once, in both `events` and
    /// `dead_letters`, or dead-lettered more than once.
    pub duplicated: u64,
    /// Ids in `events` or `dead_letters` the client never sent.
    pub unexpected: u64,
    /// Acknowledged ids dead-lettered instead of projected.
    pub dead_lettered: u64,
    /// Dead letters by reason and SQLSTATE.
    pub dead_letter_reasons: BTreeMap<String, u64>,
    /// Aggregate rows that differ from the recount.
    pub mismatched_aggregates: u64,
    /// The same, by table.
    pub mismatches_by_table: BTreeMap<String, u64>,
    /// Longest `projected_at - received_at`, ms.
    pub max_visible_wait_ms: u64,
    /// Its 99th percentile, ms.
    pub p99_visible_wait_ms: u64,
}

/// Checks the database at `url` against the client's ledger, writing the
/// ids of each finding (`lost.ids`, `duplicated.ids`, `unexpected.ids`,
/// `dead_lettered.ids`) and the aggregate mismatches
/// (`mismatches.txt`) into `run_dir`.
///
/// # Errors
///
/// When a query fails or a file cannot be written.
pub async fn check(
    url: &str,
    attempted: &HashSet<Uuid>,
    acknowledged: &HashSet<Uuid>,
    run_dir: &Path,
) -> Result<Checked> {
    let client = connect(url).await?;
    client
        .batch_execute(
            "CREATE TEMPORARY TABLE faults_attempted (event_id uuid PRIMARY KEY);
             CREATE TEMPORARY TABLE faults_acknowledged (event_id uuid PRIMARY KEY);",
        )
        .await?;
    for (table, ids) in [
        ("faults_attempted", attempted),
        ("faults_acknowledged", acknowledged),
    ] {
        let ids: Vec<Uuid> = ids.iter().copied().collect();
        let insert = format!("INSERT INTO {table} SELECT unnest($1::uuid[])");
        for chunk in ids.chunks(CHUNK) {
            client.execute(&insert, &[&chunk]).await?;
        }
        client.batch_execute(&format!("ANALYZE {table}")).await?;
    }
    // The dead-letter ledger's records that decoded.
    let dead_letters =
        "(SELECT event_id, reason, sqlstate FROM dead_letters WHERE event_id IS NOT NULL)";

    let queries = [
        (
            "lost",
            format!(
                "SELECT a.event_id FROM faults_acknowledged AS a
                 WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.event_id = a.event_id)
                   AND NOT EXISTS (SELECT 1 FROM {dead_letters} AS d
                                   WHERE d.event_id = a.event_id AND d.reason <> '')"
            ),
        ),
        (
            "duplicated",
            format!(
                "SELECT event_id FROM (
                     SELECT event_id FROM events
                     UNION ALL SELECT event_id FROM {dead_letters} AS d
                 ) AS copies
                 GROUP BY event_id HAVING count(*) > 1"
            ),
        ),
        (
            "unexpected",
            format!(
                "SELECT c.event_id FROM (
                     SELECT event_id FROM events UNION SELECT event_id FROM {dead_letters} AS d
                 ) AS c
                 WHERE NOT EXISTS (SELECT 1 FROM faults_attempted AS a WHERE a.event_id = c.event_id)"
            ),
        ),
        (
            "dead_lettered",
            format!(
                "SELECT DISTINCT d.event_id FROM {dead_letters} AS d
                 JOIN faults_acknowledged AS a ON a.event_id = d.event_id
                 WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.event_id = d.event_id)"
            ),
        ),
    ];
    let mut counts = BTreeMap::new();
    for (name, query) in &queries {
        let counted = format!("SELECT count(*) FROM ({query}) AS found");
        let count: i64 = client.query_one(&counted, &[]).await?.get(0);
        counts.insert(*name, count.max(0) as u64);
        if count > 0 {
            let sample = format!("SELECT event_id::text FROM ({query}) AS found LIMIT {SAMPLE}");
            let mut text = String::new();
            for row in client.query(&sample, &[]).await? {
                let _ = writeln!(text, "{}", row.get::<_, String>(0));
            }
            let path = run_dir.join(format!("{name}.ids"));
            fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
        }
    }
    // Extra copies, not ids: an id three times counts two.
    let duplicated: i64 = client
        .query_one(
            &format!(
                "SELECT COALESCE(sum(copies - 1), 0)::int8 FROM (
                     SELECT count(*) AS copies FROM (
                         SELECT event_id FROM events
                         UNION ALL SELECT event_id FROM {dead_letters} AS d
                     ) AS all_copies GROUP BY event_id HAVING count(*) > 1
                 ) AS doubled"
            ),
            &[],
        )
        .await?
        .get(0);
    let mut reasons = BTreeMap::new();
    for row in client
        .query(
            "SELECT reason || COALESCE(' ' || sqlstate, ''), count(*) FROM dead_letters GROUP BY 1",
            &[],
        )
        .await?
    {
        reasons.insert(row.get::<_, String>(0), row.get::<_, i64>(1).max(0) as u64);
    }

    let mismatches = panorama_testkit::aggregate_mismatches(&client).await?;
    let mut by_table: BTreeMap<String, u64> = BTreeMap::new();
    let mut text = String::new();
    for mismatch in &mismatches {
        *by_table.entry(mismatch.table.clone()).or_default() += 1;
        if text.len() < 1_000_000 {
            let _ = writeln!(text, "{mismatch}");
        }
    }
    if !mismatches.is_empty() {
        let path = run_dir.join("mismatches.txt");
        fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
    }

    let visible = client
        .query_one(
            "SELECT COALESCE(extract(epoch FROM max(projected_at - received_at)) * 1000, 0)::float8,
                    COALESCE(extract(epoch FROM percentile_disc(0.99)
                        WITHIN GROUP (ORDER BY projected_at - received_at)) * 1000, 0)::float8
             FROM events",
            &[],
        )
        .await?;
    let millis = |value: f64| value.max(0.0).round() as u64;
    Ok(Checked {
        lost: counts["lost"],
        duplicated: duplicated.max(0) as u64,
        unexpected: counts["unexpected"],
        dead_lettered: counts["dead_lettered"],
        dead_letter_reasons: reasons,
        mismatched_aggregates: mismatches.len() as u64,
        mismatches_by_table: by_table,
        max_visible_wait_ms: millis(visible.get(0)),
        p99_visible_wait_ms: millis(visible.get(1)),
    })
}
