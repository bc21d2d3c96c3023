//! `[webhooks]`'s flags and `PANORAMA_WEBHOOK_*` variables.

use clap::Args;
use serde::Serialize;

/// `[webhooks]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Outbound webhooks [webhooks]")]
pub(super) struct WebhookArgs {
    /// Consumer group of the projector role's webhook dispatcher, which
    /// consumes the change feed (its offsets are stored in
    /// PostgreSQL with the deliveries it queues)
    #[arg(
        id = "webhooks.consumer_group",
        long = "webhook-consumer-group",
        env = "PANORAMA_WEBHOOK_CONSUMER_GROUP",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_group: Option<String>,
    /// Longest a webhook delivery attempt may take, connecting included, in
    /// milliseconds; past it the attempt failed
    #[arg(
        id = "webhooks.timeout_ms",
        long = "webhook-timeout-ms",
        env = "PANORAMA_WEBHOOK_TIMEOUT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    /// Most webhook delivery attempts in flight per projector process
    #[arg(
        id = "webhooks.concurrency",
        long = "webhook-concurrency",
        env = "PANORAMA_WEBHOOK_CONCURRENCY",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    /// How often an idle webhook sender looks for due deliveries, in
    /// milliseconds
    #[arg(
        id = "webhooks.poll_ms",
        long = "webhook-poll-ms",
        env = "PANORAMA_WEBHOOK_POLL_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    poll_ms: Option<u64>,
    /// Wait after a webhook delivery's first failure, in milliseconds; it
    /// doubles after each failure (less up to a fifth of jitter)
    #[arg(
        id = "webhooks.first_retry_ms",
        long = "webhook-first-retry-ms",
        env = "PANORAMA_WEBHOOK_FIRST_RETRY_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    first_retry_ms: Option<u64>,
    /// Longest wait between two attempts at a webhook delivery, in seconds
    #[arg(
        id = "webhooks.max_retry_secs",
        long = "webhook-max-retry-secs",
        env = "PANORAMA_WEBHOOK_MAX_RETRY_SECS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retry_secs: Option<u64>,
    /// Hours after it was queued that a failing webhook delivery is given
    /// up (`failed`), and the customer's next one is sent
    #[arg(
        id = "webhooks.give_up_hours",
        long = "webhook-give-up-hours",
        env = "PANORAMA_WEBHOOK_GIVE_UP_HOURS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    give_up_hours: Option<u64>,
    /// Failed attempts in a row (over all its deliveries) after which a
    /// webhook subscription is disabled, once they have also lasted
    /// `disable_after_hours`
    #[arg(
        id = "webhooks.disable_after_failures",
        long = "webhook-disable-after-failures",
        env = "PANORAMA_WEBHOOK_DISABLE_AFTER_FAILURES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_after_failures: Option<u32>,
    /// Hours every attempt of a webhook subscription must have failed
    /// before it is disabled (an admin enables it again)
    #[arg(
        id = "webhooks.disable_after_hours",
        long = "webhook-disable-after-hours",
        env = "PANORAMA_WEBHOOK_DISABLE_AFTER_HOURS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_after_hours: Option<u64>,
    /// Whether webhook URLs may name loopback, private and link-local
    /// addresses (and names resolving to them): `true` for receivers inside
    /// your own network, at the price of letting admins reach it
    #[arg(
        id = "webhooks.allow_private_addresses",
        long = "webhook-allow-private-addresses",
        env = "PANORAMA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_private_addresses: Option<bool>,
    /// Days delivered and failed webhook deliveries (with their attempts)
    /// are kept
    #[arg(
        id = "webhooks.retention_days",
        long = "webhook-retention-days",
        env = "PANORAMA_WEBHOOK_RETENTION_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_days: Option<u64>,
}
