//! Identity reads: the survivor of an id, a customer's identity, and the
//! conflicts waiting for review.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::projection::reason_detail;
use crate::{Result, Store};

/// An identifier of a customer, with the profile it came through.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityIdentifier {
    /// Kind.
    pub kind: String,
    /// Normalised value.
    pub value: String,
    /// The source that first brought it.
    pub source: String,
    /// First event carrying it.
    pub first_seen_at: DateTime<Utc>,
    /// Latest event carrying it.
    pub last_seen_at: DateTime<Utc>,
    /// The profile (this customer or one merged into it) it came through.
    pub profile_id: Uuid,
    /// `verified`, or `claimed`: anyone could have typed it, so it never
    /// merges customers; an agent can confirm it.
    pub trust: panorama_core::Trust,
}

/// A profile of a merge tree.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityProfile {
    /// Profile id: the customer's own, or one merged into it.
    pub id: Uuid,
    /// The profile it was merged into; absent for the customer itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<Uuid>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<DateTime<Utc>>,
    /// When the profile was created.
    pub created_at: DateTime<Utc>,
}

/// One entry of the identity history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// `merge`, `refused` or `unmerge`.
    pub action: String,
    /// Merge: the survivor; unmerge: the customer it was taken from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survivor_id: Option<Uuid>,
    /// Merge: the customer merged away; unmerge: the one brought back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_id: Option<Uuid>,
    /// Every customer concerned.
    pub customers: Vec<Uuid>,
    /// The event that caused it (automatic decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Who did it (manual decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why, in the agent's words or the resolver's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The identifiers that linked the customers.
    #[schema(value_type = Vec<panorama_core::Identifier>)]
    pub identifiers: Value,
    /// What moved: profiles, identifiers, event count
    /// (`{"customers": [...], "identifiers": [...], "events": n}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub moved: Option<Value>,
}

/// A customer's identity: identifiers, profiles, history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerIdentity {
    /// The customer (the survivor of the id asked for).
    pub customer_id: Uuid,
    /// Every identifier, by kind then value.
    pub identifiers: Vec<IdentityIdentifier>,
    /// The customer and every profile merged into it, oldest first.
    pub profiles: Vec<IdentityProfile>,
    /// Merges, refusals and unmerges concerning any of them, newest first.
    pub history: Vec<HistoryEntry>,
}

/// A conflict for review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConflictView {
    /// Conflict id.
    pub id: Uuid,
    /// First raised.
    pub created_at: DateTime<Utc>,
    /// Last raised.
    pub last_seen_at: DateTime<Utc>,
    /// How many events raised it.
    pub occurrences: i32,
    /// `open`, `merged` or `dismissed`.
    pub status: String,
    /// `limit`, `weak_link_only` or `do_not_merge`.
    pub reason: String,
    /// For `limit`: the identifier kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The reason in words.
    pub detail: String,
    /// The customers concerned, as they were when it was raised.
    pub customers: Vec<Uuid>,
    /// Their survivors now, in the same order.
    pub survivors: Vec<Uuid>,
    /// The identifiers concerned.
    #[schema(value_type = Vec<panorama_core::Identifier>)]
    pub identifiers: Value,
    /// The first event that raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// The latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<Uuid>,
    /// When it was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// By whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// Where a page of conflicts starts: just older than this conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictCursor(pub Uuid);

impl ConflictCursor {
    /// Opaque text form for URLs.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Reads the text form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Uuid::from_slice(&bytes).ok().map(ConflictCursor)
    }
}

/// Which conflicts to list.
#[derive(Debug, Clone, Default)]
pub struct ConflictQuery {
    /// `open` (the default at the API), `merged` or `dismissed`; `None`: all.
    pub status: Option<String>,
    /// Only conflicts concerning this customer or a profile merged into it.
    pub customer: Option<Uuid>,
    /// Continue after this conflict.
    pub cursor: Option<ConflictCursor>,
    /// Page size.
    pub limit: usize,
}

/// The customer an id leads to: the survivor of the profile with that id,
/// or of the profile an alias from a replaced projection points at.
pub(crate) const SURVIVOR_OF: &str = "SELECT survivor_id FROM customers WHERE id = $1
     UNION ALL
     SELECT c.survivor_id FROM customer_aliases AS a JOIN customers AS c ON c.id = a.customer_id
     WHERE a.id = $1
     LIMIT 1";

impl Store {
    /// The customer `id` leads to: itself, the survivor it was merged into,
    /// or the customer that took over its identifiers when a replay
    /// replaced the projection. `None` when no customer ever had this id.
    #[tracing::instrument(skip(self))]
    pub async fn survivor_of(&self, id: Uuid) -> Result<Option<Uuid>> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(SURVIVOR_OF).await?;
        Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| row.get(0)))
    }

    /// The identity of the customer `id` leads to.
    #[tracing::instrument(skip(self))]
    pub async fn identity(&self, id: Uuid) -> Result<Option<CustomerIdentity>> {
        let Some(survivor) = self.survivor_of(id).await? else {
            return Ok(None);
        };
        let client = self.pool.get().await?;
        let profiles = client
            .prepare_cached(
                "SELECT id, merged_into, merged_at, created_at FROM customers
                 WHERE survivor_id = $1 ORDER BY id",
            )
            .await?;
        let identifiers = client
            .prepare_cached(
                "SELECT i.kind, i.value, i.source, i.first_seen_at, i.last_seen_at, i.customer_id,
                        i.trust
                 FROM customers AS c JOIN identifiers AS i ON i.customer_id = c.id
                 WHERE c.survivor_id = $1 ORDER BY i.kind, i.value",
            )
            .await?;
        let history = client
            .prepare_cached(
                "SELECT id, at, action, survivor_id, merged_id, customers, event_id, actor,
                        reason, identifiers, moved
                 FROM identity_history
                 WHERE customers && ARRAY(SELECT id FROM customers WHERE survivor_id = $1)
                 ORDER BY id DESC LIMIT 200",
            )
            .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&survivor];
        let (profiles, identifiers, history) = futures::try_join!(
            client.query(&profiles, &params),
            client.query(&identifiers, &params),
            client.query(&history, &params),
        )?;
        Ok(Some(CustomerIdentity {
            customer_id: survivor,
            identifiers: identifiers
                .iter()
                .map(|row| IdentityIdentifier {
                    kind: row.get(0),
                    value: row.get(1),
                    source: row.get(2),
                    first_seen_at: row.get(3),
                    last_seen_at: row.get(4),
                    profile_id: row.get(5),
                    trust: super::profile::stored_trust(row.get(6)),
                })
                .collect(),
            profiles: profiles
                .iter()
                .map(|row| IdentityProfile {
                    id: row.get(0),
                    merged_into: row.get(1),
                    merged_at: row.get(2),
                    created_at: row.get(3),
                })
                .collect(),
            history: history
                .iter()
                .map(|row| HistoryEntry {
                    id: row.get(0),
                    at: row.get(1),
                    action: row.get(2),
                    survivor_id: row.get(3),
                    merged_id: row.get(4),
                    customers: row.get(5),
                    event_id: row.get(6),
                    actor: row.get(7),
                    reason: row.get(8),
                    identifiers: row.get(9),
                    moved: row.get(10),
                })
                .collect(),
        }))
    }

    /// One page of conflicts, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn conflicts(&self, query: &ConflictQuery) -> Result<Vec<ConflictView>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT ic.id, ic.created_at, ic.last_seen_at, ic.occurrences, ic.status,
                        ic.reason, ic.kind, ic.customers, ic.identifiers, ic.event_id,
                        ic.last_event_id, ic.resolved_at, ic.resolved_by,
                        ARRAY(SELECT c.survivor_id
                              FROM unnest(ic.customers) WITH ORDINALITY AS u (id, position)
                              JOIN customers AS c ON c.id = u.id ORDER BY u.position)
                 FROM identity_conflicts AS ic
                 WHERE ic.id < $1
                   AND ($2::text IS NULL OR ic.status = $2)
                   AND ($3::uuid IS NULL OR ic.customers
                        && ARRAY(SELECT id FROM customers WHERE survivor_id = $3))
                 ORDER BY ic.id DESC LIMIT $4",
            )
            .await?;
        let before = query.cursor.map_or(Uuid::max(), |cursor| cursor.0);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[&before, &query.status, &query.customer, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let reason: String = row.get(5);
                let kind: String = row.get(6);
                ConflictView {
                    id: row.get(0),
                    created_at: row.get(1),
                    last_seen_at: row.get(2),
                    occurrences: row.get(3),
                    status: row.get(4),
                    detail: reason_detail(&reason, &kind),
                    reason,
                    kind: (!kind.is_empty()).then_some(kind),
                    customers: row.get(7),
                    identifiers: row.get(8),
                    event_id: row.get(9),
                    last_event_id: row.get(10),
                    resolved_at: row.get(11),
                    resolved_by: row.get(12),
                    survivors: row.get(13),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_cursors_round_trip_and_reject_garbage() {
        let cursor = ConflictCursor(Uuid::now_v7());
        assert_eq!(ConflictCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(ConflictCursor::decode("nope!"), None);
        assert_eq!(ConflictCursor::decode(""), None);
    }
}
