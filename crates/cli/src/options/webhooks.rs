//! `[webhooks]`: outbound webhooks, delivered by the projector role
//! (README "Outbound webhooks").

use std::time::Duration;

use panorama_bus::{Connection, ConsumerSettings};
use panorama_store::DisablePolicy;
use panorama_webhooks::{Backoff, WebhookSettings};
use serde::{Deserialize, Serialize};

use super::forms;

/// `[webhooks]`: the change feed's consumer, the sender's limits, the retry
/// schedule and when a failing subscription is disabled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookOptions {
    /// The dispatcher's consumer group (its offsets are stored in
    /// PostgreSQL with the deliveries).
    pub consumer_group: String,
    /// Longest a delivery attempt may take, connecting included.
    #[serde(
        rename = "timeout_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 1>"
    )]
    pub timeout: Duration,
    /// Most delivery attempts in flight per process.
    #[serde(deserialize_with = "forms::positive")]
    pub concurrency: usize,
    /// How often an idle sender looks for due deliveries.
    #[serde(
        rename = "poll_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 1>"
    )]
    pub poll: Duration,
    /// The wait after a delivery's first failure; it doubles after each.
    #[serde(
        rename = "first_retry_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 1>"
    )]
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    #[serde(
        rename = "max_retry_secs",
        serialize_with = "forms::duration::serialize::<_, 1000>",
        deserialize_with = "forms::duration::deserialize::<_, 1000, 1>"
    )]
    pub max_retry: Duration,
    /// How long after it was queued a failing delivery is given up.
    #[serde(
        rename = "give_up_hours",
        serialize_with = "forms::duration::serialize::<_, 3_600_000>",
        deserialize_with = "forms::duration::deserialize::<_, 3_600_000, 1>"
    )]
    pub give_up_after: Duration,
    /// Failed attempts in a row (over all its deliveries) before a
    /// subscription may be disabled.
    #[serde(deserialize_with = "forms::positive")]
    pub disable_after_failures: u32,
    /// How long a subscription's attempts must have failed, every one,
    /// before it is disabled.
    #[serde(
        rename = "disable_after_hours",
        serialize_with = "forms::duration::serialize::<_, 3_600_000>",
        deserialize_with = "forms::duration::deserialize::<_, 3_600_000, 0>"
    )]
    pub disable_after: Duration,
    /// Whether webhook URLs may name loopback, private and link-local
    /// addresses, and deliveries reach them.
    pub allow_private_addresses: bool,
    /// How long delivered and failed deliveries are kept.
    #[serde(
        rename = "retention_days",
        serialize_with = "forms::duration::serialize::<_, 86_400_000>",
        deserialize_with = "forms::duration::deserialize::<_, 86_400_000, 1>"
    )]
    pub retention: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        let backoff = Backoff::default();
        WebhookOptions {
            consumer_group: "panorama-webhooks".into(),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            poll: Duration::from_millis(500),
            first_retry: backoff.first,
            max_retry: backoff.max,
            give_up_after: backoff.give_up_after,
            disable_after_failures: 20,
            disable_after: Duration::from_secs(24 * 3600),
            allow_private_addresses: false,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl WebhookOptions {
    /// The webhooks' settings, consuming the change feed `topic` over
    /// `connection`.
    pub fn settings(&self, connection: Connection, topic: &str) -> WebhookSettings {
        WebhookSettings {
            consumer: ConsumerSettings::new(connection, &self.consumer_group, topic),
            timeout: self.timeout,
            concurrency: self.concurrency.max(1),
            poll: self.poll,
            backoff: Backoff {
                first: self.first_retry,
                max: self.max_retry.max(self.first_retry),
                give_up_after: self.give_up_after,
            },
            disable: DisablePolicy {
                failures: i32::try_from(self.disable_after_failures).unwrap_or(i32::MAX),
                after: self.disable_after,
            },
            allow_private_addresses: self.allow_private_addresses,
            retention: self.retention,
        }
    }
}
