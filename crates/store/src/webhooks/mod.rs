//! Outbound webhooks (README "Outbound webhooks"): the subscriptions admins
//! register, and what the API shows of their deliveries. The dispatcher's
//! and the sender's statements are in [`deliveries`].
//!
//! A subscription's signing secret is stored in clear (signing needs it)
//! and leaves the store only as a [`WebhookSecret`], whose `Debug` hides it.

mod deliveries;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

pub use deliveries::{
    AttemptRecord, ChangeToDeliver, DeliveredOutcome, DisablePolicy, DueDelivery, RecordedAttempt,
};

/// Prefix of a signing secret as Standard Webhooks spells it.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a signing secret (the spec asks for 24 to 64).
const WEBHOOK_SECRET_BYTES: usize = 32;

/// A subscription's signing key. Shown once, as `whsec_` and the base64 of
/// its bytes, when the subscription is created.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh key from the operating system's CSPRNG (through `rand`'s
    /// thread generator, seeded and reseeded from it).
    pub fn generate() -> Self {
        let bytes: [u8; WEBHOOK_SECRET_BYTES] = rand::random();
        WebhookSecret(bytes.to_vec())
    }

    /// The key `whsec_<base64>` stands for; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(WEBHOOK_SECRET_PREFIX)?;
        let bytes = STANDARD.decode(encoded).ok()?;
        (!bytes.is_empty()).then_some(WebhookSecret(bytes))
    }

    /// The key's bytes: what HMAC is keyed with.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_` and the base64 of the key, as receivers configure it.
    pub fn encoded(&self) -> String {
        format!("{WEBHOOK_SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }
}

/// A webhook subscription, as admins see it (never with its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookSubscription {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are posted.
    pub url: String,
    /// The change types it receives: types, families (`case.*`) or `*`.
    pub types: Vec<String>,
    /// What it is for, as the admin put it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// False once it was disabled after sustained failure; deliveries wait
    /// (and keep being queued) until an admin enables it again.
    pub enabled: bool,
    /// When it was disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row, across its deliveries.
    pub consecutive_failures: i32,
    /// When the current run of failures began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Its last successful delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Deliveries waiting to be sent or retried.
    pub pending: i64,
    /// The name of the token that created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a new subscription is.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where deliveries go (validated by the caller).
    pub url: String,
    /// Change type patterns (validated by the caller).
    pub types: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Who creates it: the token's name.
    pub created_by: String,
}

/// One change delivered (or to deliver) to one subscription.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// Its id.
    pub id: Uuid,
    /// The change's id, sent as `webhook-id`: the same on every attempt.
    pub change_id: Uuid,
    /// The change type.
    #[serde(rename = "type")]
    pub change_type: String,
    /// The customer the change is about.
    pub customer_id: Uuid,
    /// `pending` (to send, or to retry at `next_attempt_at`), `delivered`,
    /// or `failed` (given up).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due at the earliest (a customer's
    /// deliveries also wait for its earlier ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's status code at the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i32>,
    /// What went wrong at the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Attempts, oldest first (in the answer for one delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<WebhookAttempt>>,
    /// Its place in the listing, for the page cursor.
    #[serde(skip)]
    pub seq: i64,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    /// 1 for the first.
    pub attempt: i32,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The receiver's status code; absent when no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    /// What went wrong (a status other than 2xx, a timeout, a refused
    /// connection); absent for a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i32,
}

/// Which deliveries of a subscription to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`; all when `None`.
    pub status: Option<String>,
    /// Deliveries older than this listing position (a page cursor).
    pub before: Option<i64>,
    /// Most rows.
    pub limit: u32,
}

const SUBSCRIPTION_COLUMNS: &str = "s.id, s.url, s.types, s.description, s.enabled, \
    s.disabled_at, s.disabled_reason, s.consecutive_failures, s.failing_since, \
    s.last_success_at, s.created_by, s.created_at, \
    (SELECT count(*) FROM webhook_deliveries d \
     WHERE d.subscription_id = s.id AND d.status = 'pending')";

fn subscription(row: &tokio_postgres::Row) -> WebhookSubscription {
    WebhookSubscription {
        id: row.get(0),
        url: row.get(1),
        types: row.get(2),
        description: row.get(3),
        enabled: row.get(4),
        disabled_at: row.get(5),
        disabled_reason: row.get(6),
        consecutive_failures: row.get(7),
        failing_since: row.get(8),
        last_success_at: row.get(9),
        created_by: row.get(10),
        created_at: row.get(11),
        pending: row.get(12),
    }
}

const DELIVERY_COLUMNS: &str = "id, change_id, change_type, customer_id, status, attempts, \
    next_attempt_at, last_status_code, last_error, created_at, finished_at, seq";

fn delivery(row: &tokio_postgres::Row) -> WebhookDelivery {
    WebhookDelivery {
        id: row.get(0),
        change_id: row.get(1),
        change_type: row.get(2),
        customer_id: row.get(3),
        status: row.get(4),
        attempts: row.get(5),
        next_attempt_at: row.get(6),
        last_status_code: row.get(7),
        last_error: row.get(8),
        created_at: row.get(9),
        finished_at: row.get(10),
        attempt_log: None,
        seq: row.get(11),
    }
}

impl Store {
    /// Registers a subscription; returns it with its new secret.
    #[tracing::instrument(skip_all)]
    pub async fn create_webhook(
        &self,
        new: &NewWebhook,
    ) -> Result<(WebhookSubscription, WebhookSecret)> {
        let secret = WebhookSecret::generate();
        let id = Uuid::now_v7();
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO webhook_subscriptions AS s
                         (id, url, types, description, secret, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     RETURNING {SUBSCRIPTION_COLUMNS}"
                ),
                &[
                    &id,
                    &new.url,
                    &new.types,
                    &new.description,
                    &secret.as_bytes(),
                    &new.created_by,
                ],
            )
            .await?;
        let created = subscription(&row);
        Ok((created, secret))
    }

    /// Every subscription, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn webhooks(&self) -> Result<Vec<WebhookSubscription>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions s ORDER BY s.created_at, s.id"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(subscription).collect())
    }

    /// One subscription.
    #[tracing::instrument(skip(self))]
    pub async fn webhook(&self, id: Uuid) -> Result<Option<WebhookSubscription>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions s WHERE s.id = $1"
                ),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(subscription))
    }

    /// Deletes a subscription with its deliveries; false when there was
    /// none.
    #[tracing::instrument(skip(self))]
    pub async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        let deleted = client
            .execute("DELETE FROM webhook_subscriptions WHERE id = $1", &[&id])
            .await?;
        Ok(deleted > 0)
    }

    /// Enables a subscription again (after it was disabled for sustained
    /// failure): its run of failures starts over and its waiting
    /// deliveries are due at once. `None` when there is no such
    /// subscription.
    #[tracing::instrument(skip(self))]
    pub async fn enable_webhook(&self, id: Uuid) -> Result<Option<WebhookSubscription>> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let updated = transaction
            .execute(
                "UPDATE webhook_subscriptions SET enabled = true, disabled_at = NULL,
                     disabled_reason = NULL, consecutive_failures = 0, failing_since = NULL
                 WHERE id = $1",
                &[&id],
            )
            .await?;
        if updated == 0 {
            return Ok(None);
        }
        transaction
            .execute(
                "UPDATE webhook_queues SET next_attempt_at = now() WHERE subscription_id = $1",
                &[&id],
            )
            .await?;
        transaction.commit().await?;
        drop(client);
        self.webhook(id).await
    }

    /// A page of a subscription's deliveries, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn webhook_deliveries(
        &self,
        subscription_id: Uuid,
        query: &DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE subscription_id = $1
                       AND ($2::text IS NULL OR status = $2)
                       AND ($3::int8 IS NULL OR seq < $3)
                     ORDER BY seq DESC LIMIT $4"
                ),
                &[
                    &subscription_id,
                    &query.status,
                    &query.before,
                    &i64::from(query.limit),
                ],
            )
            .await?;
        Ok(rows.iter().map(delivery).collect())
    }

    /// One delivery of a subscription, with its attempts.
    #[tracing::instrument(skip(self))]
    pub async fn webhook_delivery(
        &self,
        subscription_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<WebhookDelivery>> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE subscription_id = $1 AND id = $2"
                ),
                &[&subscription_id, &delivery_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut found = delivery(&row);
        let attempts = client
            .query(
                "SELECT attempt, at, status_code, error, duration_ms FROM webhook_attempts
                 WHERE delivery_id = $1 ORDER BY attempt",
                &[&delivery_id],
            )
            .await?;
        found.attempt_log = Some(
            attempts
                .iter()
                .map(|row| WebhookAttempt {
                    attempt: row.get(0),
                    at: row.get(1),
                    status_code: row.get(2),
                    error: row.get(3),
                    duration_ms: row.get(4),
                })
                .collect(),
        );
        Ok(Some(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_hide() {
        let secret = WebhookSecret::generate();
        let encoded = secret.encoded();
        assert!(encoded.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&encoded), Some(secret.clone()));
        assert_eq!(secret.as_bytes().len(), 32);
        assert!(!format!("{secret:?}").contains(&encoded[6..]));
        assert_eq!(WebhookSecret::parse("whsec_"), None);
        assert_eq!(WebhookSecret::parse("MfKQ"), None);
    }
}
