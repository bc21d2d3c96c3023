//! The sender: claims due deliveries (each customer's oldest pending one,
//! per subscription), posts them signed, records each attempt, and
//! schedules retries. At most `concurrency` attempts are in flight per
//! process, each bounded by the timeout, and a claim is a lease, so several
//! projector processes share the work and a crashed one's deliveries are
//! picked up again once its leases run out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use panorama_core::webhook::WebhookUrl;
use panorama_store::{AttemptRecord, DeliveredOutcome, DueDelivery, Store};

use crate::http::Client;
use crate::signing::sign;
use crate::{WebhookSettings, metrics};

/// How often the backlog gauge is refreshed and old deliveries pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);

/// Runs the sender until the task is aborted; `queued` wakes it when this
/// process queued deliveries.
pub(crate) async fn run(
    store: Store,
    settings: WebhookSettings,
    client: Client,
    queued: Arc<tokio::sync::Notify>,
) {
    let lease = settings.timeout + Duration::from_secs(30);
    let mut housekeeping = Instant::now() - HOUSEKEEPING_EVERY;
    loop {
        if housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            housekeeping = Instant::now();
            housekeep(&store, &settings).await;
        }
        let due = match store
            .claim_webhook_deliveries(settings.concurrency, lease)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot claim webhook deliveries");
                tokio::time::sleep(settings.poll.max(Duration::from_secs(1))).await;
                continue;
            }
        };
        let full = due.len() >= settings.concurrency;
        let attempts = due
            .into_iter()
            .map(|delivery| attempt(&store, &settings, &client, delivery));
        futures::future::join_all(attempts).await;
        if !full {
            tokio::select! {
                () = tokio::time::sleep(settings.poll) => {}
                () = queued.notified() => {}
            }
        }
    }
}

/// Refreshes the backlog gauge and prunes old deliveries.
async fn housekeep(store: &Store, settings: &WebhookSettings) {
    match store.webhook_backlog().await {
        Ok(backlog) => metrics::BACKLOG.set(backlog),
        Err(error) => tracing::warn!(%error, "cannot count the webhook backlog"),
    }
    match store.prune_webhook_deliveries(settings.retention).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "old webhook deliveries pruned"),
        Err(error) => tracing::warn!(%error, "cannot prune webhook deliveries"),
    }
}

/// One attempt at `delivery`, recorded.
async fn attempt(
    store: &Store,
    settings: &WebhookSettings,
    client: &Client,
    delivery: DueDelivery,
) {
    let at = Utc::now();
    let started = Instant::now();
    let (status_code, error) = post(settings, client, &delivery, at.timestamp()).await;
    let duration = started.elapsed();
    metrics::ATTEMPT_SECONDS.observe(duration.as_secs_f64());
    let retry_at = match error {
        None => None,
        Some(_) => {
            let failures = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
            settings
                .backoff
                .next_attempt(failures, delivery.created_at, Utc::now(), rand::random())
        }
    };
    let record = AttemptRecord {
        delivery_id: delivery.id,
        subscription_id: delivery.subscription_id,
        customer_id: delivery.customer_id,
        at,
        status_code,
        error,
        duration,
        retry_at,
        disable: settings.disable,
    };
    match store.record_webhook_attempt(&record).await {
        Ok(recorded) => {
            metrics::DELIVERIES
                .with_label_values(&[recorded.outcome.label()])
                .inc();
            if recorded.outcome != DeliveredOutcome::Delivered {
                tracing::debug!(
                    delivery = %delivery.id,
                    subscription = %delivery.subscription_id,
                    outcome = recorded.outcome.label(),
                    status = status_code,
                    error = record.error.as_deref(),
                    "webhook attempt failed"
                );
            }
            if recorded.disabled {
                metrics::DISABLED.with_label_values(&["failing"]).inc();
                tracing::warn!(
                    subscription = %delivery.subscription_id,
                    "webhook subscription disabled after sustained failure"
                );
            }
        }
        // The lease runs out and the delivery is sent again: at least once.
        Err(error) => {
            tracing::warn!(%error, delivery = %delivery.id, "cannot record a webhook attempt")
        }
    }
}

/// Posts `delivery` signed at `timestamp`: the status code when the
/// receiver answered, and what went wrong unless it answered 2xx.
async fn post(
    settings: &WebhookSettings,
    client: &Client,
    delivery: &DueDelivery,
    timestamp: i64,
) -> (Option<i32>, Option<String>) {
    // Checked again here: the process that registered the URL may have
    // allowed what this one does not.
    if let Err(error) = WebhookUrl::parse(&delivery.url, settings.allow_private_addresses) {
        return (None, Some(format!("url refused: {error}")));
    }
    let id = delivery.change_id.to_string();
    let signature = sign(&delivery.secret, &id, timestamp, delivery.body.as_bytes());
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let body = bytes::Bytes::from(delivery.body.clone().into_bytes());
    let answer = match client
        .post(&delivery.url, &headers, body, settings.timeout)
        .await
    {
        Ok(answer) => answer,
        Err(error) => return (None, Some(error)),
    };
    let code = Some(i32::from(answer.status));
    if (200..300).contains(&answer.status) {
        return (code, None);
    }
    let mut error = format!("HTTP {}", answer.status);
    if !answer.excerpt.is_empty() {
        error.push_str(": ");
        error.push_str(&answer.excerpt);
    }
    (code, Some(error))
}
