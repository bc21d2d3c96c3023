//! `panorama replay`: rebuilds the projection from the topic into a fresh
//! schema, and switches over to it once it has caught up.
//!
//! 1. Creates schema `NAME` (or resumes it: offsets live in it), runs the
//!    migrations into it, and runs the ordinary projector against it under
//!    a consumer group of its own, from offset 0, without dead-lettering
//!    again (the live projector did that already).
//! 2. Shows progress until the stored offsets reach the topic's high
//!    watermarks.
//! 3. With `--switch`, and only while no live projector is in the group:
//!    catches up once more, stops, and in one transaction copies the API
//!    tokens over, hands its offsets to the live group, renames `public` to
//!    `panorama_old_<unix time>` and `NAME` to `public`.

use std::time::Duration;

use anyhow::Context as _;
use panorama_projector::Projector;
use panorama_simulator::progress::{Progress, Rate};
use panorama_store::{Store, Switched};

use crate::Options;

/// What `panorama replay` was asked to do.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The fresh schema to project into.
    pub schema: String,
    /// Switch over to it once caught up.
    pub switch: bool,
    /// Switch even though people merged, unmerged or settled conflicts by
    /// hand in the live projection (those decisions are not on the topic and
    /// are lost).
    pub discard_manual_identity: bool,
    /// Switch even when the broker cannot say whether live projectors are
    /// still in their group (the operator vouches they are stopped).
    pub force: bool,
    /// Switch even when the log no longer starts at offset 0: retention
    /// deleted its oldest records, which the rebuilt projection lacks.
    pub allow_incomplete_log: bool,
    /// How often progress is shown on a terminal; log lines come every ten
    /// of these.
    pub progress_interval: Duration,
}

impl ReplayOptions {
    /// Replay into `schema` without switching.
    pub fn new(schema: impl Into<String>) -> Self {
        ReplayOptions {
            schema: schema.into(),
            switch: false,
            discard_manual_identity: false,
            force: false,
            allow_incomplete_log: false,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The consumer group the replay consumed with.
    pub group: String,
    /// Records projected (or skipped as undecodable) into the schema.
    pub records: i64,
    /// Set when the replay switched over.
    pub switched: Option<Switched>,
}

/// The replay's consumer group for `schema`.
pub fn replay_group(options: &Options, schema: &str) -> String {
    format!("{}-replay-{schema}", options.kafka.consumer_group)
}

/// Runs a replay; see the module documentation.
pub async fn replay(options: &Options, replay: &ReplayOptions) -> anyhow::Result<ReplayReport> {
    let schema = replay.schema.as_str();
    anyhow::ensure!(
        panorama_store::valid_schema_name(schema),
        "invalid schema name {schema:?}: lower-case letters, digits and _, starting with a letter"
    );
    let live = Store::connect(&options.database.url, 2).context("invalid database url")?;
    if live.schema_exists(schema).await? {
        tracing::info!(
            schema,
            "schema exists; resuming the replay from its stored offsets"
        );
    }
    live.create_schema(schema).await?;
    let target = Store::connect_with(
        &options.database.url,
        &panorama_store::ConnectSettings {
            schema: Some(schema.to_owned()),
            application_name: Some("panorama-replay".to_owned()),
            ..options.connect_settings(crate::ProcessRole::Projector)
        },
    )?
    .with_identity_rules(options.identity_rules.clone())
    .with_suppression_days(options.privacy.suppression_days);
    target
        .migrate()
        .await
        .context("cannot migrate the replay schema")?;

    if replay.switch {
        check_switch_allowed(options, replay, &live).await?;
    }

    let trimmed = log_start(options).await?;
    if let Some((partition, start)) = trimmed {
        if replay.switch && !replay.allow_incomplete_log {
            anyhow::bail!(
                "the log of {} no longer starts at offset 0 (partition {partition} starts at \
                 {start}): retention deleted records, so a replay cannot rebuild everything the \
                 live projection holds and a switch would lose it for good. Replay without \
                 --switch to inspect, or pass --allow-incomplete-log to accept the loss",
                options.kafka.topic
            );
        }
        tracing::warn!(
            partition,
            log_start = start,
            "the log no longer starts at offset 0; the replay starts at the log start and lacks what retention deleted"
        );
    }

    let group = replay_group(options, schema);
    let mut settings = options.projector_settings()?;
    settings.consumer.group = group.clone();
    settings.consumer.accept_log_gap = true;
    settings.publish_dead_letters = false;
    let projector = Projector::spawn(settings, target.clone(), options.producer()?)
        .context("cannot start the replay projector")?;
    tracing::info!(schema, group = %group, topic = %options.kafka.topic, "replay started");
    let caught_up = follow(options, replay, &target, &group, &projector).await;
    let _ = tokio::task::spawn_blocking(move || projector.stop()).await;
    let records = caught_up?;

    let switched = if replay.switch {
        // The live projectors were checked before; check again now that the
        // replay is done, in case one was started meanwhile.
        check_switch_allowed(options, replay, &live).await?;
        let switched = live
            .switch_schema(schema, &options.kafka.consumer_group, &group)
            .await
            .context("switch-over failed; nothing was changed")?;
        tracing::info!(
            previous = %switched.previous_schema,
            carried_over = ?switched.carried_over,
            aliases = switched.aliases,
            "switched over: the replayed projection is live; restart every panorama process"
        );
        Some(switched)
    } else {
        tracing::info!(
            schema,
            "replay caught up; run again with --switch (projectors stopped) to make it live"
        );
        None
    };
    Ok(ReplayReport {
        group,
        records,
        switched,
    })
}

/// The first partition whose log no longer starts at offset 0, with where
/// it starts.
async fn log_start(options: &Options) -> anyhow::Result<Option<(i32, i64)>> {
    Ok(crate::offsets::watermarks(options)
        .await?
        .into_iter()
        .find(|(_, low, _)| *low > 0)
        .map(|(partition, low, _)| (partition, low)))
}

/// Refuses a switch while live projectors are in their group, or while the
/// live projection holds identity decisions people made, unless told to.
async fn check_switch_allowed(
    options: &Options,
    replay: &ReplayOptions,
    live: &Store,
) -> anyhow::Result<()> {
    let manual = live.manual_identity_decisions().await?;
    if manual > 0 && !replay.discard_manual_identity {
        anyhow::bail!(
            "the live projection holds {manual} identity decisions made by people (manual merges, \
             unmerges, separations, settled conflicts); they are not on the topic and a replay \
             drops them: pass --discard-manual-identity to switch anyway"
        );
    }
    let connection = options.kafka.connection()?;
    let group = options.kafka.consumer_group.clone();
    let members = tokio::task::spawn_blocking(move || {
        panorama_bus::group_member_count(connection, &group, Duration::from_secs(5))
    })
    .await?;
    match members {
        Ok(0) => Ok(()),
        Ok(count) => anyhow::bail!(
            "{count} live projector(s) are in group {}: stop them (e.g. scale the projector \
             deployment to 0) before switching",
            options.kafka.consumer_group
        ),
        Err(error) if replay.force => {
            tracing::warn!(%error, "cannot list the live group's members; switching as forced");
            Ok(())
        }
        Err(error) => Err(anyhow::anyhow!(
            "cannot tell whether live projectors are running ({error}); stop them and pass --force"
        )),
    }
}

/// Waits until the replay's stored offsets reach the topic's high
/// watermarks, showing progress; returns the records stored.
async fn follow(
    options: &Options,
    replay: &ReplayOptions,
    target: &Store,
    group: &str,
    projector: &Projector,
) -> anyhow::Result<i64> {
    let mut progress = Progress::new(replay.progress_interval * 10);
    let mut rate = Rate::default();
    loop {
        anyhow::ensure!(projector.is_running(), "the replay projector stopped");
        let connection = options.kafka.connection()?;
        let topic = options.kafka.topic.clone();
        let marks = tokio::task::spawn_blocking(move || {
            panorama_bus::high_watermarks(connection, &topic, Duration::from_secs(5))
        })
        .await?
        .context("cannot read the topic's high watermarks")?;
        let partitions: Vec<i32> = marks.iter().map(|(partition, _)| *partition).collect();
        let stored = target
            .next_offsets(group, &options.kafka.topic, &partitions)
            .await?;
        let total: i64 = marks.iter().map(|(_, high)| *high).sum();
        let done: i64 = marks
            .iter()
            .map(|(partition, high)| stored.get(partition).copied().unwrap_or(0).min(*high))
            .sum();
        let rate = rate.sample(done);
        if progress.show(&progress_line(done, total, rate)) {
            tracing::info!(
                records = done,
                total,
                rate = rate.round(),
                eta_seconds = eta(done, total, rate).map(|eta| eta.as_secs()),
                "replay progress"
            );
        }
        if done >= total {
            progress.finish();
            tracing::info!(
                records = done,
                seconds = progress.elapsed().as_secs(),
                "replay caught up with the topic"
            );
            return Ok(done);
        }
        tokio::time::sleep(replay.progress_interval).await;
    }
}

fn eta(done: i64, total: i64, rate: f64) -> Option<Duration> {
    (rate > 0.0).then(|| Duration::from_secs_f64((total - done).max(0) as f64 / rate))
}

/// `replaying 1200/5000 records (24.0%), 800 records/s, ETA 4s`.
fn progress_line(done: i64, total: i64, rate: f64) -> String {
    let percent = if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        100.0
    };
    let eta = match eta(done, total, rate) {
        Some(eta) => format!("{}s", eta.as_secs()),
        None => "unknown".to_owned(),
    };
    format!(
        "replaying {done}/{total} records ({percent:.1}%), {} records/s, ETA {eta}",
        rate.round()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_share_rate_and_eta() {
        assert_eq!(
            progress_line(1200, 5000, 800.0),
            "replaying 1200/5000 records (24.0%), 800 records/s, ETA 4s"
        );
        assert_eq!(
            progress_line(0, 0, 0.0),
            "replaying 0/0 records (100.0%), 0 records/s, ETA unknown"
        );
    }
}
