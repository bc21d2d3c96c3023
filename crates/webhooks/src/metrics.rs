//! The outbound webhooks' Prometheus metrics.

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounterVec, IntGauge, exponential_buckets, histogram_opts, opts,
    register_histogram, register_int_counter_vec, register_int_gauge,
};

/// Changes read from the change feed, by outcome: `dispatched` (turned
/// into a delivery for each subscription asking for the type, if any),
/// `undecodable` (skipped).
pub(crate) static CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_webhook_changes_total",
            "Changes read from the change feed by the webhook dispatcher, by outcome (dispatched, undecodable)"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// Delivery attempts, by outcome.
pub(crate) static DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (delivered, retrying, failed, stale)"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// Time to an answer (or a failure) of one attempt.
pub(crate) static ATTEMPT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_webhook_attempt_seconds",
        "Duration of webhook delivery attempts",
        exponential_buckets(0.005, 2.5, 10).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// Deliveries waiting to be sent or retried.
pub(crate) static BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_webhook_backlog",
        "Webhook deliveries waiting to be sent or retried, over every subscription"
    ))
    .expect("metric registers once")
});

/// Subscriptions disabled after sustained failure.
pub(crate) static DISABLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_webhook_subscriptions_disabled_total",
            "Webhook subscriptions disabled after sustained failure, by reason (failing)"
        ),
        &["reason"]
    )
    .expect("metric registers once")
});

/// Registers every metric with its labels, so each series is on `/metrics`
/// from the first scrape.
pub fn register() {
    for outcome in ["dispatched", "undecodable"] {
        CHANGES.with_label_values(&[outcome]);
    }
    for outcome in ["delivered", "retrying", "failed", "stale"] {
        DELIVERIES.with_label_values(&[outcome]);
    }
    DISABLED.with_label_values(&["failing"]);
    LazyLock::force(&ATTEMPT_SECONDS);
    LazyLock::force(&BACKLOG);
}
