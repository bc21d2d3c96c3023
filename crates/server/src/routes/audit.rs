//! `GET /v1/audit`: the audit trail for admins, newest first.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_store::{AuditCursor, AuditQuery, AuditRecord};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use super::params::{self, next_page};
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// A page of the audit trail.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The query parameters of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// That id, every profile of its merge tree, and the ids they had before a replay
    #[serde(default, deserialize_with = "params::customer_id")]
    customer: Option<Uuid>,
    /// A token name (1 to 200 characters, no control characters)
    #[serde(default, deserialize_with = "params::name")]
    #[param(min_length = 1, max_length = 200)]
    actor: Option<String>,
    /// From this time (RFC 3339)
    #[serde(default, deserialize_with = "params::time")]
    since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339)
    #[serde(default, deserialize_with = "params::time")]
    until: Option<DateTime<Utc>>,
    /// Page size, default 50
    #[serde(default, deserialize_with = "params::page_size")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`
    #[serde(default, deserialize_with = "params::audit_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<AuditCursor>,
}

impl From<AuditParams> for AuditQuery {
    fn from(given: AuditParams) -> Self {
        AuditQuery {
            customer: given.customer,
            actor: given.actor,
            since: given.since,
            until: given.until,
            cursor: given.cursor,
            limit: params::page(given.limit),
        }
    }
}

/// `GET /v1/audit?customer=&actor=&since=&until=&limit=&cursor=` — who read
/// or changed which customer; `customer` covers its whole merge tree and the
/// ids it had before a replay. Reading the trail is audited too.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    summary = "The audit trail",
    description = "Every request with a valid token to a route of the agent API (customers \
        and lookups, identity, cases, notes, tasks, streams opened, the insights and this \
        trail itself): who, when, which route template, the customer asked for or found, the \
        identifier kind a lookup named (never its value), the status. Newest first, in keyset \
        pages. A read is answered only once its entry is written (else 503 \
        `/problems/audit-unavailable`), so it is listed at once; so is a change, unless its \
        entry could not be written at that moment and is written in the background.",
    params(AuditParams),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        problem::List,
    ),
)]
pub(crate) async fn audit(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut wanted = AuditQuery::from(params::query::<AuditParams>(request.query_string())?);
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut entries = store(&state)?.audit(&wanted).await?;
    let next_cursor = next_page(&mut entries, page, |last| AuditCursor(last.id).encode());
    Ok(HttpResponse::Ok().json(AuditPage {
        entries,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(query: &str) -> Option<String> {
        match params::query::<AuditParams>(query) {
            Err(ApiError::InvalidParameter { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(field_of("customer=x").as_deref(), Some("customer"));
        assert_eq!(field_of("limit=0").as_deref(), Some("limit"));
        assert_eq!(field_of("cursor=%3F%3F").as_deref(), Some("cursor"));
        assert_eq!(field_of("since=yesterday").as_deref(), Some("since"));
        assert_eq!(field_of("who=me").as_deref(), Some("who"));
        assert_eq!(field_of("actor="), Some("actor".to_owned()));
        // PostgreSQL refuses NUL in text: a 400, not a 500.
        assert_eq!(field_of("actor=desk%0012"), Some("actor".to_owned()));
        assert_eq!(
            field_of(&format!("actor={}", "a".repeat(201))),
            Some("actor".to_owned())
        );
        assert_eq!(field_of("actor=desk-12&limit=5"), None);
    }
}
