//! The API's side of erasure: recording a request before it is published,
//! following it to `done`, and lifting a suppression. The projector's side
//! (applying a request) is in `erasure.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::keys::{KEY_BYTES, Subject};
use crate::{Result, Store};

/// Where an erasure request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureState {
    /// Recorded; not on the topic yet (the publish failed, or is under way).
    Received,
    /// On the topic: the projector applies it within moments.
    InProgress,
    /// Applied: the customer's data is gone.
    Done,
}

impl ErasureState {
    /// The name stored in `erasure_requests.status` and shown in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureState::Received => "received",
            ErasureState::InProgress => "in_progress",
            ErasureState::Done => "done",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "received" => ErasureState::Received,
            "in_progress" => ErasureState::InProgress,
            // The table's check constraint allows nothing else.
            _ => ErasureState::Done,
        }
    }
}

/// An erasure request and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErasureStatus {
    /// The request's id.
    pub erasure_id: Uuid,
    /// The customer id the request named (possibly a merged profile).
    pub customer_id: Uuid,
    /// The name of the API token that asked.
    pub requested_by: String,
    /// When it was asked.
    pub requested_at: DateTime<Utc>,
    /// `received`, `in_progress` or `done`.
    pub status: ErasureState,
    /// When it was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    /// Once done: rows deleted (or, for `audit_log`, scrubbed) per table,
    /// subject keys destroyed (`subject_keys`) and subjects suppressed
    /// (`suppressions`); empty when the customer did not exist any more.
    pub counts: BTreeMap<String, u64>,
}

const COLUMNS: &str = "id, customer_id, requested_by, requested_at, status, done_at, counts";

fn status_of(row: &Row) -> ErasureStatus {
    let counts: serde_json::Value = row.get(6);
    let counts = counts
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .filter_map(|(table, rows)| Some((table.clone(), rows.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    ErasureStatus {
        erasure_id: row.get(0),
        customer_id: row.get(1),
        requested_by: row.get(2),
        requested_at: row.get(3),
        status: ErasureState::parse(row.get(4)),
        done_at: row.get(5),
        counts,
    }
}

impl Store {
    /// Records a request to erase the customer `customer` leads to (itself,
    /// the survivor it was merged into, or the customer an alias leads to),
    /// asked by the token `requested_by`; `None` when no customer has that
    /// id. While a request for the same id is not done, that request is
    /// answered instead of a new one, so asking again publishes it again
    /// rather than queueing a second erasure.
    #[tracing::instrument(skip(self))]
    pub async fn request_erasure(
        &self,
        customer: Uuid,
        requested_by: &str,
    ) -> Result<Option<ErasureStatus>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH known AS (
                     SELECT 1 FROM customers WHERE id = $1
                     UNION ALL SELECT 1 FROM customer_aliases WHERE id = $1
                     LIMIT 1
                 ), pending AS (
                     SELECT {COLUMNS} FROM panorama_privacy.erasure_requests
                     WHERE customer_id = $1 AND status <> 'done'
                       AND EXISTS (SELECT 1 FROM known)
                     ORDER BY requested_at LIMIT 1
                 ), made AS (
                     INSERT INTO panorama_privacy.erasure_requests
                         (id, customer_id, requested_by, requested_at, status)
                     SELECT $2, $1, $3, now(), 'received'
                     WHERE EXISTS (SELECT 1 FROM known) AND NOT EXISTS (SELECT 1 FROM pending)
                     RETURNING {COLUMNS}
                 )
                 SELECT * FROM pending UNION ALL SELECT * FROM made"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&customer, &Uuid::now_v7(), &requested_by])
            .await?;
        Ok(row.as_ref().map(status_of))
    }

    /// Marks the request `id` as on the topic: `received` becomes
    /// `in_progress` (a request the projector applied already stays
    /// `done`).
    #[tracing::instrument(skip(self))]
    pub async fn mark_erasure_published(&self, id: Uuid) -> Result<Option<ErasureStatus>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH marked AS (
                     UPDATE panorama_privacy.erasure_requests SET status = 'in_progress'
                     WHERE id = $1 AND status = 'received'
                     RETURNING {COLUMNS}
                 )
                 SELECT * FROM marked
                 UNION ALL
                 SELECT {COLUMNS} FROM panorama_privacy.erasure_requests
                 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM marked)"
            ))
            .await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        Ok(row.as_ref().map(status_of))
    }

    /// The erasure request `id`, `None` when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn erasure_status(&self, id: Uuid) -> Result<Option<ErasureStatus>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM panorama_privacy.erasure_requests WHERE id = $1"
            ))
            .await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        Ok(row.as_ref().map(status_of))
    }

    /// Lifts the suppression of `subject`: events naming it are projected
    /// again (a new key is issued at its next event; records sealed under
    /// the destroyed one stay unreadable). Whether a suppression was in
    /// force; an expired one is removed too, and answers `false`.
    #[tracing::instrument(skip_all)]
    pub async fn lift_suppression(&self, subject: &Subject) -> Result<bool> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "WITH lifted AS (
                     DELETE FROM panorama_privacy.suppressions WHERE subject = $1
                     RETURNING expires_at
                 )
                 SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now())
                 FROM lifted",
            )
            .await?;
        let subject: &[u8] = <[u8; KEY_BYTES]>::as_slice(subject);
        let in_force: i64 = client.query_one(&statement, &[&subject]).await?.get(0);
        Ok(in_force > 0)
    }
}
