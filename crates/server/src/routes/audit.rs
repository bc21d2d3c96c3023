//! `GET /v1/audit`: the audit trail for admins, newest first.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use panorama_core::Role;
use panorama_store::{AuditCursor, AuditQuery, AuditRecord};
use serde::Serialize;
use uuid::Uuid;

use super::params::{DEFAULT_PAGE, MAX_PAGE, cursor, invalid, next_page, page_limit, parse_time};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// Longest actor (token name) accepted as a filter.
const MAX_ACTOR: usize = 200;

/// A page of the audit trail.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /v1/audit?customer=&actor=&since=&until=&limit=&cursor=` — who read
/// or changed which customer; `customer` covers its whole merge tree and the
/// ids it had before a replay.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    summary = "The audit trail",
    description = "Every request with a valid token to a customer or identity route, and \
        every stream opened: who, when, which route template, the customer asked for, the \
        status. Newest first, in keyset pages. Entries are written in the background within \
        about 100 ms.\n\n\
        Needs the `admin` role.",
    security(("bearer" = ["admin"])),
    params(
        ("customer" = Option<Uuid>, Query, description = "That id, every profile of its merge tree, and the ids they had before a replay"),
        ("actor" = Option<String>, Query, description = "A token name (1 to 200 characters)"),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "From this time (RFC 3339)"),
        ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        problem::List,
    ),
)]
pub(crate) async fn audit(
    caller: Caller,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let mut wanted = audit_query(&query)?;
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut entries = store(&state)?.audit(&wanted).await?;
    let next_cursor = next_page(&mut entries, page, |last| AuditCursor(last.id).encode());
    Ok(HttpResponse::Ok().json(AuditPage {
        entries,
        next_cursor,
    }))
}

fn audit_query(query: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    let mut parsed = AuditQuery {
        limit: DEFAULT_PAGE,
        ..AuditQuery::default()
    };
    for (name, value) in query {
        match name.as_str() {
            "customer" => {
                parsed.customer = Some(
                    Uuid::parse_str(value).map_err(|_| invalid(name, "customer ids are UUIDs"))?,
                );
            }
            "actor" => {
                if value.is_empty() || value.len() > MAX_ACTOR {
                    return Err(invalid(name, format!("1 to {MAX_ACTOR} characters")));
                }
                parsed.actor = Some(value.clone());
            }
            "since" => parsed.since = Some(parse_time(name, value)?),
            "until" => parsed.until = Some(parse_time(name, value)?),
            "limit" => parsed.limit = page_limit(name, value, MAX_PAGE)?,
            "cursor" => parsed.cursor = Some(cursor(name, AuditCursor::decode(value))?),
            _ => {
                return Err(invalid(
                    name,
                    "unknown parameter; expected customer, actor, since, until, limit or cursor",
                ));
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(pairs: &[(&str, &str)]) -> Option<String> {
        let query = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match audit_query(&query) {
            Err(ApiError::InvalidParameter { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(field_of(&[("customer", "x")]).as_deref(), Some("customer"));
        assert_eq!(field_of(&[("limit", "0")]).as_deref(), Some("limit"));
        assert_eq!(field_of(&[("cursor", "??")]).as_deref(), Some("cursor"));
        assert_eq!(
            field_of(&[("since", "yesterday")]).as_deref(),
            Some("since")
        );
        assert_eq!(field_of(&[("who", "me")]).as_deref(), Some("who"));
        assert_eq!(field_of(&[("actor", "desk-12"), ("limit", "5")]), None);
    }
}
