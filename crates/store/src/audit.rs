//! The audit trail: who read or changed which customer, when, through which
//! endpoint. Written by the HTTP side's audit pipeline (a read's entry
//! before the read is answered), listed newest first by admins.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// UUIDv7, so ids sort by time.
    pub id: Uuid,
    /// When the request was answered.
    pub at: DateTime<Utc>,
    /// The token's name.
    pub actor: String,
    /// The token's role.
    pub role: String,
    /// HTTP method.
    pub method: String,
    /// The route template, e.g. `/v1/customers/{id}/timeline`.
    pub route: String,
    /// The customer the request was about: the id in the path or the
    /// `customer` parameter, as asked for, or the customer a lookup found.
    pub customer_id: Option<Uuid>,
    /// HTTP status of the answer.
    pub status: i32,
    /// The kind of identifier a lookup (or an identifier's note) named,
    /// such as `phone`; never its value.
    pub identifier_kind: Option<String>,
}

/// Where a page of the audit log starts: just older than this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor(pub Uuid);

impl AuditCursor {
    /// Opaque text form for URLs.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Reads the text form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Uuid::from_slice(&bytes).ok().map(AuditCursor)
    }
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries about this id or any profile of its customer's merge tree,
    /// including the ids those profiles had before a replay.
    pub customer: Option<Uuid>,
    /// Entries by this token name.
    pub actor: Option<String>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this entry.
    pub cursor: Option<AuditCursor>,
    /// Page size.
    pub limit: usize,
}

impl Store {
    /// Writes audit entries in one statement; they are committed when it
    /// returns `Ok`.
    #[tracing::instrument(skip_all, fields(entries = records.len()))]
    pub async fn record_audit(&self, records: &[AuditRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let ats: Vec<DateTime<Utc>> = records.iter().map(|r| r.at).collect();
        let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
        let roles: Vec<&str> = records.iter().map(|r| r.role.as_str()).collect();
        let methods: Vec<&str> = records.iter().map(|r| r.method.as_str()).collect();
        let routes: Vec<&str> = records.iter().map(|r| r.route.as_str()).collect();
        let customers: Vec<Option<Uuid>> = records.iter().map(|r| r.customer_id).collect();
        let statuses: Vec<i32> = records.iter().map(|r| r.status).collect();
        let kinds: Vec<Option<&str>> = records
            .iter()
            .map(|r| r.identifier_kind.as_deref())
            .collect();
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/audit_insert.sql"))
            .await?;
        client
            .execute(
                &statement,
                &[
                    &ids, &ats, &actors, &roles, &methods, &routes, &customers, &statuses, &kinds,
                ],
            )
            .await?;
        Ok(())
    }

    /// One page of the audit log, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let customers = match query.customer {
            Some(asked) => Some(self.audit_subjects(asked).await?),
            None => None,
        };
        let client = self.pool.get().await?;
        let far_future =
            DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::UNIX_EPOCH);
        let since = query.since.unwrap_or(DateTime::UNIX_EPOCH);
        let until = query.until.unwrap_or(far_future);
        let before = query.cursor.map_or(Uuid::max(), |cursor| cursor.0);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let statement = client
            .prepare_cached(include_str!("../sql/audit_list.sql"))
            .await?;
        let rows = client
            .query(
                &statement,
                &[&customers, &query.actor, &since, &until, &before, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| AuditRecord {
                id: row.get(0),
                at: row.get(1),
                actor: row.get(2),
                role: row.get(3),
                method: row.get(4),
                route: row.get(5),
                customer_id: row.get(6),
                status: row.get(7),
                identifier_kind: row.get(8),
            })
            .collect())
    }

    /// The ids audit entries about `asked` may name: every id of the
    /// customer it leads to (`audit_subjects.sql`), and `asked` itself even
    /// when no customer has it (a request for an unknown id is audited too).
    async fn audit_subjects(&self, asked: Uuid) -> Result<Vec<Uuid>> {
        let mut ids: Vec<Uuid> = match self.survivor_of(asked).await? {
            Some(survivor) => {
                let client = self.pool.get().await?;
                let statement = client
                    .prepare_cached(include_str!("../sql/audit_subjects.sql"))
                    .await?;
                client
                    .query(&statement, &[&survivor])
                    .await?
                    .iter()
                    .map(|row| row.get(0))
                    .collect()
            }
            None => Vec::new(),
        };
        if !ids.contains(&asked) {
            ids.push(asked);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = AuditCursor(Uuid::now_v7());
        assert_eq!(AuditCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(AuditCursor::decode("nope"), None);
    }
}
