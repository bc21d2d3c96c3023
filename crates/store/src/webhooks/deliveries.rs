//! The dispatcher's and the sender's statements.
//!
//! The dispatcher turns a batch of changes into one delivery per matching
//! subscription and stores its consumer offsets in the same transaction
//! ([`Store::queue_webhook_deliveries`]), so each change is queued exactly
//! once. Every (subscription, customer) with pending deliveries has a row
//! in `webhook_queues`; a sender claims due queue rows (`SKIP LOCKED`, then
//! a lease) with each one's oldest pending delivery
//! ([`Store::claim_webhook_deliveries`]), so a customer's deliveries go out
//! one at a time, in order, by one sender, while other customers' go on.
//! [`Store::record_webhook_attempt`] stores how an attempt went, moves the
//! queue on or back, and disables a subscription after sustained failure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::WebhookSecret;
use crate::projection::offsets::store_offsets;
use crate::{PartitionOffset, Result, Store};

/// A change from the change feed, ready to deliver: the JSON body is the
/// same for every subscription.
#[derive(Debug, Clone)]
pub struct ChangeToDeliver {
    /// The change's id (the `webhook-id`).
    pub change_id: Uuid,
    /// Its type, such as `customer.merged`.
    pub change_type: String,
    /// The customer it is about: deliveries are ordered per customer.
    pub customer_id: Uuid,
    /// The body to sign and post.
    pub body: String,
}

/// A delivery a sender holds, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub id: Uuid,
    /// Its subscription.
    pub subscription_id: Uuid,
    /// The customer's queue it heads.
    pub customer_id: Uuid,
    /// The `webhook-id`.
    pub change_id: Uuid,
    /// The body.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// When it was queued: retries stop some time after.
    pub created_at: DateTime<Utc>,
    /// Where to post it.
    pub url: String,
    /// The subscription's signing key.
    pub secret: WebhookSecret,
}

/// When a subscription is disabled: after this many failed attempts in a
/// row, the first at least this long ago.
#[derive(Debug, Clone, Copy)]
pub struct DisablePolicy {
    /// Failed attempts in a row.
    pub failures: i32,
    /// How long the failures have lasted.
    pub after: Duration,
}

/// How an attempt went, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its subscription.
    pub subscription_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// The receiver's status code, when it answered.
    pub status_code: Option<i32>,
    /// What went wrong; `None` for a 2xx.
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
    /// When to try again after a failure; `None` gives up.
    pub retry_at: Option<DateTime<Utc>>,
    /// When a failure disables the subscription.
    pub disable: DisablePolicy,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveredOutcome {
    /// The receiver took it.
    Delivered,
    /// It failed and will be tried again.
    Retrying,
    /// It failed for the last time.
    Failed,
    /// Another sender finished it first (its lease had run out): nothing
    /// was recorded.
    Stale,
}

impl DeliveredOutcome {
    /// A label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            DeliveredOutcome::Delivered => "delivered",
            DeliveredOutcome::Retrying => "retrying",
            DeliveredOutcome::Failed => "failed",
            DeliveredOutcome::Stale => "stale",
        }
    }
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAttempt {
    /// The delivery's state now.
    pub outcome: DeliveredOutcome,
    /// Whether this failure disabled the subscription.
    pub disabled: bool,
}

impl Store {
    /// Queues one delivery per (subscription asking for its type, change),
    /// in the order given, and stores `offsets` for `group` in the same
    /// transaction. A change queued before (a batch read again) is not
    /// queued twice. Returns the deliveries queued.
    #[tracing::instrument(skip_all, fields(changes = changes.len()))]
    pub async fn queue_webhook_deliveries(
        &self,
        group: &str,
        changes: &[ChangeToDeliver],
        offsets: &[PartitionOffset],
    ) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let mut queued = 0;
        if !changes.is_empty() {
            let ids: Vec<Uuid> = changes.iter().map(|_| Uuid::now_v7()).collect();
            let change_ids: Vec<Uuid> = changes.iter().map(|c| c.change_id).collect();
            let types: Vec<&str> = changes.iter().map(|c| c.change_type.as_str()).collect();
            let customers: Vec<Uuid> = changes.iter().map(|c| c.customer_id).collect();
            let bodies: Vec<&str> = changes.iter().map(|c| c.body.as_str()).collect();
            // The delivery ids are drawn per change; a change matching
            // several subscriptions gets a fresh one for each but the
            // first, so they stay unique. Queue rows are upserted sorted,
            // so two dispatchers lock them in one order.
            let statement = transaction
                .prepare_cached(
                    "WITH changes AS (
                         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[])
                             WITH ORDINALITY AS c (id, change_id, change_type, customer_id, body, ord)
                     ), matched AS (
                         SELECT c.*, s.id AS subscription_id,
                                row_number() OVER (PARTITION BY c.ord ORDER BY s.id) AS nth
                         FROM changes c
                         JOIN webhook_subscriptions s ON EXISTS (
                             SELECT 1 FROM unnest(s.types) AS t
                             WHERE t = '*' OR t = c.change_type
                                OR (right(t, 2) = '.*' AND starts_with(c.change_type, left(t, -1))))
                     ), inserted AS (
                         INSERT INTO webhook_deliveries
                             (id, subscription_id, change_id, change_type, customer_id, body)
                         SELECT CASE WHEN nth = 1 THEN id ELSE gen_random_uuid() END,
                                subscription_id, change_id, change_type, customer_id, body
                         FROM matched ORDER BY ord, subscription_id
                         ON CONFLICT (subscription_id, change_id) DO NOTHING
                         RETURNING subscription_id, customer_id
                     ), queues AS (
                         INSERT INTO webhook_queues AS q
                             (subscription_id, customer_id, pending, next_attempt_at)
                         SELECT subscription_id, customer_id, count(*), now()
                         FROM inserted GROUP BY subscription_id, customer_id
                         ORDER BY subscription_id, customer_id
                         ON CONFLICT (subscription_id, customer_id)
                         DO UPDATE SET pending = q.pending + excluded.pending
                     )
                     SELECT count(*) FROM inserted",
                )
                .await?;
            let row = transaction
                .query_one(
                    &statement,
                    &[&ids, &change_ids, &types, &customers, &bodies],
                )
                .await?;
            queued = row.get::<_, i64>(0) as u64;
        }
        store_offsets(&transaction, group, offsets).await?;
        transaction.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due customer queues of enabled subscriptions
    /// for `lease`, and returns the oldest pending delivery of each. A
    /// claimed queue is not handed out again until the attempt is recorded
    /// or the lease runs out (a sender that died).
    #[tracing::instrument(skip(self))]
    pub async fn claim_webhook_deliveries(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "WITH due AS (
                     SELECT q.subscription_id, q.customer_id FROM webhook_queues q
                     JOIN webhook_subscriptions s ON s.id = q.subscription_id AND s.enabled
                     WHERE q.next_attempt_at <= now()
                       AND (q.lease_until IS NULL OR q.lease_until < now())
                     ORDER BY q.next_attempt_at
                     LIMIT $1
                     FOR UPDATE OF q SKIP LOCKED
                 ), leased AS (
                     UPDATE webhook_queues q
                     SET lease_until = now() + make_interval(secs => $2)
                     FROM due
                     WHERE q.subscription_id = due.subscription_id
                       AND q.customer_id = due.customer_id
                     RETURNING q.subscription_id, q.customer_id
                 )
                 SELECT d.id, d.subscription_id, d.customer_id, d.change_id, d.body, d.attempts,
                        d.created_at, s.url, s.secret
                 FROM leased l
                 JOIN webhook_subscriptions s ON s.id = l.subscription_id
                 JOIN LATERAL (
                     SELECT * FROM webhook_deliveries d
                     WHERE d.subscription_id = l.subscription_id
                       AND d.customer_id = l.customer_id AND d.status = 'pending'
                     ORDER BY d.seq LIMIT 1
                 ) d ON true",
            )
            .await?;
        let rows = client
            .query(&statement, &[&(limit as i64), &lease.as_secs_f64()])
            .await?;
        Ok(rows
            .iter()
            .map(|row| DueDelivery {
                id: row.get(0),
                subscription_id: row.get(1),
                customer_id: row.get(2),
                change_id: row.get(3),
                body: row.get(4),
                attempts: row.get(5),
                created_at: row.get(6),
                url: row.get(7),
                secret: WebhookSecret(row.get(8)),
            })
            .collect())
    }

    /// Records an attempt: the attempt row, the delivery's state, the
    /// customer's queue (on to the next delivery, or back to wait for the
    /// retry) and the subscription's run of failures, in one transaction.
    #[tracing::instrument(skip_all, fields(delivery = %record.delivery_id))]
    pub async fn record_webhook_attempt(&self, record: &AttemptRecord) -> Result<RecordedAttempt> {
        let success = record.error.is_none();
        let (status, outcome) = match (success, record.retry_at) {
            (true, _) => ("delivered", DeliveredOutcome::Delivered),
            (false, Some(_)) => ("pending", DeliveredOutcome::Retrying),
            (false, None) => ("failed", DeliveredOutcome::Failed),
        };
        let duration_ms = i32::try_from(record.duration.as_millis()).unwrap_or(i32::MAX);
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let updated = transaction
            .query_opt(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2,
                     next_attempt_at = $3, last_status_code = $4, last_error = $5,
                     finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $6::timestamptz END
                 WHERE id = $1 AND status = 'pending'
                 RETURNING attempts",
                &[
                    &record.delivery_id,
                    &status,
                    &record.retry_at,
                    &record.status_code,
                    &record.error,
                    &(record.at + chrono::Duration::milliseconds(i64::from(duration_ms))),
                ],
            )
            .await?;
        let Some(updated) = updated else {
            return Ok(RecordedAttempt {
                outcome: DeliveredOutcome::Stale,
                disabled: false,
            });
        };
        let attempt: i32 = updated.get(0);
        transaction
            .execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &record.delivery_id,
                    &attempt,
                    &record.at,
                    &record.status_code,
                    &record.error,
                    &duration_ms,
                ],
            )
            .await?;
        if outcome == DeliveredOutcome::Retrying {
            transaction
                .execute(
                    "UPDATE webhook_queues SET next_attempt_at = $3, lease_until = NULL
                     WHERE subscription_id = $1 AND customer_id = $2",
                    &[
                        &record.subscription_id,
                        &record.customer_id,
                        &record.retry_at,
                    ],
                )
                .await?;
        } else {
            // Two statements: one statement cannot both update a row and
            // delete what the update left (the delete would see the row
            // as it was, and do nothing).
            let emptied = transaction
                .execute(
                    "DELETE FROM webhook_queues
                     WHERE subscription_id = $1 AND customer_id = $2 AND pending <= 1",
                    &[&record.subscription_id, &record.customer_id],
                )
                .await?;
            if emptied == 0 {
                transaction
                    .execute(
                        "UPDATE webhook_queues SET pending = pending - 1,
                             next_attempt_at = now(), lease_until = NULL
                         WHERE subscription_id = $1 AND customer_id = $2",
                        &[&record.subscription_id, &record.customer_id],
                    )
                    .await?;
            }
        }
        let disabled = if success {
            transaction
                .execute(
                    "UPDATE webhook_subscriptions SET consecutive_failures = 0,
                         failing_since = NULL, last_success_at = $2
                     WHERE id = $1",
                    &[&record.subscription_id, &record.at],
                )
                .await?;
            false
        } else {
            let row = transaction
                .query_opt(
                    "WITH before AS (
                         SELECT id, enabled, consecutive_failures + 1 AS failures,
                                coalesce(failing_since, $2) AS since
                         FROM webhook_subscriptions WHERE id = $1 FOR UPDATE)
                     UPDATE webhook_subscriptions s SET
                         consecutive_failures = before.failures,
                         failing_since = before.since,
                         enabled = s.enabled AND NOT (before.failures >= $3
                             AND before.since <= $2 - make_interval(secs => $4)),
                         disabled_at = CASE WHEN s.enabled AND before.failures >= $3
                             AND before.since <= $2 - make_interval(secs => $4)
                             THEN $2 ELSE s.disabled_at END,
                         disabled_reason = CASE WHEN s.enabled AND before.failures >= $3
                             AND before.since <= $2 - make_interval(secs => $4)
                             THEN before.failures || ' failed attempts in a row since '
                                  || to_char(before.since AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                             ELSE s.disabled_reason END
                     FROM before WHERE s.id = before.id
                     RETURNING before.enabled AND NOT s.enabled",
                    &[
                        &record.subscription_id,
                        &record.at,
                        &record.disable.failures,
                        &record.disable.after.as_secs_f64(),
                    ],
                )
                .await?;
            row.is_some_and(|row| row.get::<_, bool>(0))
        };
        transaction.commit().await?;
        Ok(RecordedAttempt { outcome, disabled })
    }

    /// Deliveries waiting to be sent or retried, over every subscription.
    #[tracing::instrument(skip(self))]
    pub async fn webhook_backlog(&self) -> Result<i64> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(pending), 0)::int8 FROM webhook_queues",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Deletes deliveries (with their attempts) finished longer than
    /// `retention` ago, and customer queues left without a pending
    /// delivery; returns the deliveries deleted.
    #[tracing::instrument(skip(self))]
    pub async fn prune_webhook_deliveries(&self, retention: Duration) -> Result<u64> {
        let client = self.pool.get().await?;
        let deleted = client
            .execute(
                "DELETE FROM webhook_deliveries
                 WHERE status <> 'pending' AND finished_at < now() - make_interval(secs => $1)",
                &[&retention.as_secs_f64()],
            )
            .await?;
        client
            .execute(
                "DELETE FROM webhook_queues q WHERE NOT EXISTS (
                     SELECT 1 FROM webhook_deliveries d
                     WHERE d.subscription_id = q.subscription_id
                       AND d.customer_id = q.customer_id AND d.status = 'pending')
                   AND (q.lease_until IS NULL OR q.lease_until < now())",
                &[],
            )
            .await?;
        Ok(deleted)
    }
}
