//! The retention job of the projector role (README "Retention"): every
//! interval, [`Store::apply_retention`] with the clock's time. Several
//! projector processes run it at once and share the rows; the store's
//! batches keep every transaction short.

use std::time::Duration;

use panorama_store::{RetentionPolicy, Store};
use tokio::task::JoinHandle;

use crate::metrics::{RETENTION_LAST_RUN, RETENTION_ROWS};

/// What the job applies, and how often.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// The rules and ages.
    pub policy: RetentionPolicy,
    /// Time between two runs (the first runs at start).
    pub interval: Duration,
    /// Most rows changed per transaction.
    pub batch: usize,
}

/// Starts the job on the current runtime: a run at start, then one every
/// interval. A run that fails is logged and tried again at the next.
pub fn spawn_retention(store: Store, settings: RetentionSettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(settings.interval.max(Duration::from_secs(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            run_once(&store, &settings).await;
        }
    })
}

async fn run_once(store: &Store, settings: &RetentionSettings) {
    if settings.policy.is_off() {
        return;
    }
    let now = chrono::Utc::now();
    match store
        .apply_retention(&settings.policy, now, settings.batch)
        .await
    {
        Ok(report) => {
            for (table, rows) in [
                ("events", report.events_anonymised),
                ("audit_log", report.audit_deleted),
                ("dead_letters", report.dead_letters_deleted),
            ] {
                RETENTION_ROWS.with_label_values(&[table]).inc_by(rows);
            }
            RETENTION_LAST_RUN.set(now.timestamp() as f64);
            if report.transactions > 0 {
                tracing::info!(
                    events_anonymised = report.events_anonymised,
                    audit_deleted = report.audit_deleted,
                    dead_letters_deleted = report.dead_letters_deleted,
                    transactions = report.transactions,
                    "retention applied"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "cannot apply retention"),
    }
}
