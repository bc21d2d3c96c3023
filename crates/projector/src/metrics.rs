//! The projector's Prometheus metrics.

use std::sync::LazyLock;

use prometheus::{
    Gauge, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, exponential_buckets,
    histogram_opts, opts, register_gauge, register_histogram, register_int_counter,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
};

/// Records consumed from the topic.
pub(crate) static RECORDS_CONSUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_projector_records_consumed_total",
        "Records consumed from the contact-event topic"
    ))
    .expect("metric registers once")
});

/// Events written to the history for the first time, and duplicates skipped.
pub(crate) static EVENTS_PROJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_projector_events_total",
            "Events projected, by outcome (inserted, duplicate)"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// Events dropped because their id was projected (or came earlier in the
/// batch) with another payload: a reused idempotency key the gateway could
/// not refuse, because the first was still in flight. The first wins.
pub(crate) static IDEMPOTENCY_CONFLICTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_projector_idempotency_conflicts_total",
        "Events dropped because their id was projected before with another payload"
    ))
    .expect("metric registers once")
});

/// New customer traits (`customer.*` keys) dropped by batches because
/// their customer holds the most it may: the keys held keep updating.
pub(crate) static TRAITS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_projector_traits_dropped_total",
        "New customer traits dropped because their customer holds the most it may"
    ))
    .expect("metric registers once")
});

/// Events skipped because of an erasure: `erased` (a sealed event whose
/// subject's key was destroyed), `suppressed` (an event naming a
/// suppressed subject).
pub(crate) static ERASED_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_projector_erased_records_total",
            "Events skipped because a person they name was erased, by reason (erased, suppressed)"
        ),
        &["reason"]
    )
    .expect("metric registers once")
});

/// Erasure requests applied.
pub(crate) static ERASURES_APPLIED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_projector_erasures_total",
        "Erasure requests applied to the projection"
    ))
    .expect("metric registers once")
});

/// Records sent to the dead-letter topic.
pub(crate) static DLQ_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_projector_dlq_records_total",
            "Records sent to the dead-letter topic, by reason"
        ),
        &["reason"]
    )
    .expect("metric registers once")
});

/// Identity decisions: customers merged, and conflicts raised for review.
pub(crate) static IDENTITY_DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_identity_decisions_total",
            "Automatic identity decisions, by outcome (merged, conflict)"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// Records per batch.
pub(crate) static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_projector_batch_size",
        "Records per projected batch",
        exponential_buckets(1.0, 2.0, 14).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// Time to write one batch, transaction included.
pub(crate) static BATCH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_projector_batch_seconds",
        "Time to project one batch (one PostgreSQL transaction)",
        exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// From gateway receipt to projection commit.
pub(crate) static EVENT_TO_VISIBLE: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_event_to_visible_seconds",
        "Time from gateway receipt to the event being visible in the API",
        exponential_buckets(0.001, 2.0, 16).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// Batch transactions that failed and were retried (or isolated, or
/// dropped when fenced), by what failed.
pub(crate) static BATCH_RETRIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_projector_batch_retries_total",
            "Batch transactions that failed, by class: connection, pool, serialization, deadlock, conflict, shutdown, timeout, resources, broker, record, systemic, fenced"
        ),
        &["class"]
    )
    .expect("metric registers once")
});

/// Time since the projector last committed a batch or was caught up.
pub(crate) static SECONDS_SINCE_PROGRESS: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(opts!(
        "panorama_projector_seconds_since_progress",
        "Seconds since this process's projector last committed a batch or had nothing to do; grows while it is stuck or its thread is gone"
    ))
    .expect("metric registers once")
});

/// The failure classes `BATCH_RETRIES` is registered with at start.
const RETRY_CLASSES: [&str; 12] = [
    "connection",
    "pool",
    "serialization",
    "deadlock",
    "conflict",
    "shutdown",
    "timeout",
    "resources",
    "broker",
    "record",
    "systemic",
    "fenced",
];

/// High watermark minus stored offset, per partition this process owns.
pub(crate) static CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_projector_consumer_lag",
            "Records on the topic not yet projected (high watermark minus stored offset), per partition this process owns"
        ),
        &["partition"]
    )
    .expect("metric registers once")
});

/// Whether this process's projector holds its place in the consumer group.
pub(crate) static GROUP_MEMBER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_projector_group_member",
        "1 while this process's projector is a member of its consumer group, else 0"
    ))
    .expect("metric registers once")
});

/// Next offset stored per partition.
pub(crate) static STORED_OFFSET: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_projector_stored_offset",
            "Next offset stored per partition"
        ),
        &["partition"]
    )
    .expect("metric registers once")
});

/// Rows retention changed, by table: `events` (anonymised), `audit_log`
/// and `dead_letters` (deleted).
pub(crate) static RETENTION_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_retention_rows_total",
            "Rows retention changed, by table (events anonymised; audit_log, dead_letters deleted)"
        ),
        &["table"]
    )
    .expect("metric registers once")
});

/// The tables [`RETENTION_ROWS`] counts.
pub(crate) const RETENTION_TABLES: [&str; 3] = ["events", "audit_log", "dead_letters"];

/// When retention last ran to the end without an error (Unix seconds).
pub(crate) static RETENTION_LAST_RUN: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(opts!(
        "panorama_retention_last_run_timestamp_seconds",
        "When retention last completed a run, Unix seconds (0: not yet)"
    ))
    .expect("metric registers once")
});

/// Change-feed rows waiting in the outbox, as the relay last counted them.
pub(crate) static CHANGE_FEED_BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_change_feed_backlog",
        "Changes in the outbox not yet acknowledged on the change-feed topic"
    ))
    .expect("metric registers once")
});

/// Changes the relay published and the broker acknowledged.
pub(crate) static CHANGE_FEED_RELAYED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_change_feed_relayed_total",
        "Changes published to the change-feed topic and acknowledged by the broker"
    ))
    .expect("metric registers once")
});

/// Whether this process holds the change-feed relay's lease.
pub(crate) static CHANGE_FEED_LEASE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_change_feed_lease",
        "1 while this process holds the change-feed relay's lease, else 0"
    ))
    .expect("metric registers once")
});

/// Registers every projector metric, with its fixed label values at zero, so
/// a scrape shows each series before the first batch.
pub fn register() {
    RECORDS_CONSUMED.inc_by(0);
    for outcome in ["inserted", "duplicate"] {
        EVENTS_PROJECTED.with_label_values(&[outcome]).inc_by(0);
    }
    IDEMPOTENCY_CONFLICTS.inc_by(0);
    TRAITS_DROPPED.inc_by(0);
    for reason in ["erased", "suppressed"] {
        ERASED_RECORDS.with_label_values(&[reason]).inc_by(0);
    }
    ERASURES_APPLIED.inc_by(0);
    for reason in ["undecodable", "invalid", "rejected"] {
        DLQ_RECORDS.with_label_values(&[reason]).inc_by(0);
    }
    for outcome in ["merged", "conflict"] {
        IDENTITY_DECISIONS.with_label_values(&[outcome]).inc_by(0);
    }
    LazyLock::force(&BATCH_SIZE);
    LazyLock::force(&BATCH_SECONDS);
    LazyLock::force(&EVENT_TO_VISIBLE);
    for class in RETRY_CLASSES {
        BATCH_RETRIES.with_label_values(&[class]).inc_by(0);
    }
    SECONDS_SINCE_PROGRESS.set(0.0);
    LazyLock::force(&CONSUMER_LAG);
    LazyLock::force(&STORED_OFFSET);
    GROUP_MEMBER.set(0);
    for table in RETENTION_TABLES {
        RETENTION_ROWS.with_label_values(&[table]).inc_by(0);
    }
    LazyLock::force(&RETENTION_LAST_RUN);
    CHANGE_FEED_BACKLOG.set(0);
    CHANGE_FEED_RELAYED.inc_by(0);
    CHANGE_FEED_LEASE.set(0);
}
