//! Path and query parameters of the agent routes: the customer id in a
//! path and the customer it leads to, page sizes, cursors and times. Every
//! refusal is a 400 `/problems/invalid-parameter` naming the parameter.

use chrono::{DateTime, Utc};
use panorama_store::TimelineCursor;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::{AppState, store};

/// Largest page of a list: a timeline, cases, tasks, conflicts, the audit
/// trail.
pub(crate) const MAX_PAGE: usize = 200;
/// Page size when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 50;

/// A 400 naming `field`: a path or query parameter that is wrong.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A customer id in a path; refused naming `id` when it is no UUID.
pub(crate) fn parse_customer_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| invalid("id", "customer ids are UUIDs"))
}

/// The customer id in a path and the customer it leads to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InPath {
    /// The id in the path: the customer's, a profile merged into it, or an
    /// alias from before a replay.
    pub(crate) requested: Uuid,
    /// The customer (the survivor).
    pub(crate) customer: Uuid,
}

impl InPath {
    /// `fields` with `customer_id` and `requested_id` added, for an answer.
    pub(crate) fn answer(self, mut fields: serde_json::Value) -> serde_json::Value {
        if let Some(object) = fields.as_object_mut() {
            object.insert("customer_id".into(), json!(self.customer));
            object.insert("requested_id".into(), json!(self.requested));
        }
        fields
    }
}

/// The customer the id in the path leads to, or 404.
pub(crate) async fn customer_in_path(state: &AppState, raw: &str) -> Result<InPath, ApiError> {
    let requested = parse_customer_id(raw)?;
    let customer = store(state)?
        .survivor_of(requested)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {requested}")))?;
    Ok(InPath {
        requested,
        customer,
    })
}

/// A page size parameter: a whole number from 1 to `max`.
pub(crate) fn page_limit(name: &str, value: &str, max: usize) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|limit| (1..=max).contains(limit))
        .ok_or_else(|| invalid(name, format!("must be a whole number from 1 to {max}")))
}

/// Trims a page read with one row more than `page` and gives the cursor
/// of the next page, if there is one.
pub(crate) fn next_page<T>(
    items: &mut Vec<T>,
    page: usize,
    cursor_after: impl Fn(&T) -> String,
) -> Option<String> {
    if items.len() <= page {
        return None;
    }
    items.truncate(page);
    items.last().map(cursor_after)
}

/// A cursor parameter, decoded; refused when it is not one this API handed
/// out.
pub(crate) fn cursor<T>(name: &str, decoded: Option<T>) -> Result<T, ApiError> {
    decoded.ok_or_else(|| invalid(name, "not a cursor this API handed out"))
}

/// The opaque cursor of a (time, id) position.
pub(crate) fn position(at: DateTime<Utc>, id: Uuid) -> String {
    TimelineCursor {
        occurred_at: at,
        event_id: id,
    }
    .encode()
}

/// A time parameter in RFC 3339.
pub(crate) fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            invalid(
                name,
                "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z",
            )
        })
}
