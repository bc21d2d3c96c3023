//! Customer reads for agent desktops: lookup by identifier, the profile, and
//! the keyset-paginated timeline. Every route needs the `agent` role.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use panorama_core::{Channel, EventType, Identifier, IdentifierKind, Role};
use panorama_store::{Store, TimelineCursor, TimelineEntry, TimelineQuery};
use serde::Serialize;
use uuid::Uuid;

use super::params::{
    DEFAULT_PAGE, MAX_PAGE, cursor, customer_in_path, invalid, next_page, page_limit,
    parse_customer_id, parse_time,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// `GET /v1/customers/lookup?phone=|email=|account=|whatsapp=|...` — the
/// profile of the customer owning that identifier.
#[utoipa::path(
    get,
    path = "/v1/customers/lookup",
    tag = "customers",
    summary = "Find a customer by an identifier",
    description = "Give exactly one identifier; it is normalised as events' identifiers are \
        (phone numbers to E.164, national ones in `PANORAMA_DEFAULT_REGION`; email \
        addresses to lower case). Answers the profile of the customer that owns it.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("phone" = Option<String>, Query, description = "A phone number", example = "+31612345678"),
        ("email" = Option<String>, Query, description = "An email address"),
        ("account" = Option<String>, Query, description = "A CRM or customer number"),
        ("whatsapp" = Option<String>, Query, description = "A WhatsApp `wa_id`"),
        ("messenger" = Option<String>, Query, description = "A Messenger page-scoped id"),
        ("instagram" = Option<String>, Query, description = "An Instagram-scoped id"),
        ("x" = Option<String>, Query, description = "An X handle"),
        ("visitor" = Option<String>, Query, description = "A web visitor id"),
    ),
    responses(
        (status = 200, description = "The profile", body = panorama_store::CustomerProfile),
        problem::Read,
    ),
)]
pub(crate) async fn lookup(
    caller: Caller,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut given = query.iter();
    let (name, raw) = match (given.next(), given.next()) {
        (Some(pair), None) => pair,
        _ => {
            return Err(invalid(
                "query",
                "give exactly one identifier: phone, email, account, whatsapp, messenger, instagram, x or visitor",
            ));
        }
    };
    let kind = name
        .parse::<IdentifierKind>()
        .map_err(|error| invalid(name, error.to_string()))?;
    let identifier = Identifier::parse(kind, raw, state.settings.default_region)
        .map_err(|error| invalid(name, error.to_string()))?;
    let store = store(&state)?;
    let Some(id) = store.lookup(&identifier).await? else {
        return Err(ApiError::NotFound(format!("no customer has {identifier}")));
    };
    profile_response(store, id).await
}

/// `GET /v1/customers/{id}` — the 360 profile.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "customers",
    summary = "A customer's profile",
    description = "Identifiers, per-channel counts, recent contact windows, open cases, \
        feedback and signals. The id of a merged customer answers for the survivor: `id` is \
        the survivor, `requested_id` the id asked for.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(("id" = Uuid, Path, description = "Customer id (a merged one works too)")),
    responses(
        (status = 200, description = "The profile", body = panorama_store::CustomerProfile),
        problem::Read,
    ),
)]
pub(crate) async fn profile(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let id = parse_customer_id(&path)?;
    profile_response(store(&state)?, id).await
}

async fn profile_response(store: &Store, id: Uuid) -> Result<HttpResponse, ApiError> {
    match store.profile(id).await? {
        Some(profile) => Ok(HttpResponse::Ok().json(profile)),
        None => Err(ApiError::NotFound(format!("no customer {id}"))),
    }
}

/// A page of a customer's timeline.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TimelinePage {
    /// The customer (the survivor of the id asked for).
    customer_id: Uuid,
    /// The id asked for.
    requested_id: Uuid,
    /// Newest first.
    entries: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /v1/customers/{id}/timeline?channel=&type=&since=&until=&limit=&cursor=`
/// — newest first by `occurred_at`, then `event_id`.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/timeline",
    tag = "customers",
    summary = "A customer's timeline",
    description = "Every event of the customer and of every profile merged into it, newest \
        first by `occurred_at`, then `event_id`, in keyset pages. Unknown parameters are \
        refused.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
        ("channel" = Option<panorama_core::Channel>, Query, description = "Only this channel"),
        ("type" = Option<panorama_core::EventType>, Query, description = "Only this event type"),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "From this time (RFC 3339)"),
        ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = TimelinePage),
        problem::Read,
    ),
)]
pub(crate) async fn timeline(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut wanted = timeline_query(&query)?;
    let page = wanted.limit;
    wanted.limit = page + 1;
    let in_path = customer_in_path(&state, &path).await?;
    let mut entries = store(&state)?.timeline(in_path.customer, &wanted).await?;
    let next_cursor = next_page(&mut entries, page, |last| {
        TimelineCursor::after(last).encode()
    });
    Ok(HttpResponse::Ok().json(TimelinePage {
        customer_id: in_path.customer,
        requested_id: in_path.requested,
        entries,
        next_cursor,
    }))
}

fn timeline_query(query: &HashMap<String, String>) -> Result<TimelineQuery, ApiError> {
    let mut parsed = TimelineQuery {
        limit: DEFAULT_PAGE,
        ..TimelineQuery::default()
    };
    for (name, value) in query {
        match name.as_str() {
            "channel" => {
                parsed.channel = Some(value.parse::<Channel>().map_err(|e| invalid(name, e))?)
            }
            "type" => {
                parsed.event_type = Some(value.parse::<EventType>().map_err(|e| invalid(name, e))?)
            }
            "since" => parsed.since = Some(parse_time(name, value)?),
            "until" => parsed.until = Some(parse_time(name, value)?),
            "limit" => parsed.limit = page_limit(name, value, MAX_PAGE)?,
            "cursor" => parsed.cursor = Some(cursor(name, TimelineCursor::decode(value))?),
            _ => {
                return Err(invalid(
                    name,
                    "unknown parameter; expected channel, type, since, until, limit or cursor",
                ));
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn bad_field(pairs: &[(&str, &str)]) -> String {
        match timeline_query(&query(pairs)) {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn timeline_parameters_parse_and_bad_ones_are_named() {
        let parsed = timeline_query(&query(&[
            ("channel", "email"),
            ("limit", "10"),
            ("since", "2026-01-01T00:00:00Z"),
        ]))
        .expect("valid");
        assert_eq!(parsed.channel, Some(Channel::Email));
        assert_eq!(parsed.limit, 10);
        assert_eq!(
            timeline_query(&query(&[])).expect("defaults").limit,
            DEFAULT_PAGE
        );
        assert_eq!(bad_field(&[("limit", "0")]), "limit");
        assert_eq!(bad_field(&[("limit", "201")]), "limit");
        assert_eq!(bad_field(&[("channel", "fax")]), "channel");
        assert_eq!(bad_field(&[("type", "call.exploded")]), "type");
        assert_eq!(bad_field(&[("until", "tomorrow")]), "until");
        assert_eq!(bad_field(&[("cursor", "xyz")]), "cursor");
        assert_eq!(bad_field(&[("colour", "red")]), "colour");
    }
}
