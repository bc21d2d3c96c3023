//! Customer reads for agent desktops: lookup by identifier, the profile, and
//! the keyset-paginated timeline.

use std::collections::BTreeMap;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_core::{Channel, EventType, Identifier, IdentifierKind};
use panorama_store::{TimelineCursor, TimelineQuery, TimelineRows};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::params::{self, invalid, parse_customer_id};
use crate::audit::subject;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// The parameters of `GET /v1/customers/lookup`: one identifier, named by
/// its kind.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LookupParams {
    /// A phone number
    #[param(example = "+31612345678")]
    phone: Option<String>,
    /// An email address
    email: Option<String>,
    /// A CRM or customer number
    account: Option<String>,
    /// A WhatsApp `wa_id`
    whatsapp: Option<String>,
    /// A Messenger page-scoped id
    messenger: Option<String>,
    /// An Instagram-scoped id
    instagram: Option<String>,
    /// An X handle
    x: Option<String>,
    /// A web visitor id
    visitor: Option<String>,
    /// Any other parameter: refused as an unknown identifier kind once it
    /// is the only one given (two parameters are refused as such first).
    #[serde(flatten)]
    #[param(ignore)]
    other: BTreeMap<String, String>,
}

impl LookupParams {
    /// The one parameter given: its name, the identifier kind it names and
    /// its raw value. No parameter or several are refused as the query.
    fn only(&self) -> Result<(&str, IdentifierKind, &str), ApiError> {
        let mut given = self.given().into_iter();
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
        Ok((name, kind, raw))
    }

    /// Every parameter given, known or not, with its value.
    fn given(&self) -> Vec<(&str, &str)> {
        let known = [
            ("phone", &self.phone),
            ("email", &self.email),
            ("account", &self.account),
            ("whatsapp", &self.whatsapp),
            ("messenger", &self.messenger),
            ("instagram", &self.instagram),
            ("x", &self.x),
            ("visitor", &self.visitor),
        ];
        known
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_deref()?)))
            .chain(
                self.other
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .collect()
    }
}

/// `GET /v1/customers/lookup?phone=|email=|account=|whatsapp=|...` — the
/// profile of the customer owning that identifier.
#[utoipa::path(
    get,
    path = "/v1/customers/lookup",
    tag = "customers",
    summary = "Find a customer by an identifier",
    description = "Give exactly one identifier; it is normalised as events' identifiers are \
        (phone numbers to E.164, national ones in `PANORAMA_DEFAULT_REGION`; email \
        addresses to lower case). Answers the profile of the customer that owns it. The \
        audit trail records the customer found, or that nobody was, with the identifier's \
        kind and never its value.",
    params(LookupParams),
    responses(
        (status = 200, description = "The profile", body = panorama_store::CustomerProfile,
            links(
                ("profile" = (operation_id = "profile", parameters(("id" = "$response.body#/id")),
                    description = "The customer found, by id")),
                ("timeline" = (operation_id = "timeline", parameters(("id" = "$response.body#/id")),
                    description = "Their timeline")),
                ("identity" = (operation_id = "identity", parameters(("id" = "$response.body#/id")),
                    description = "Their identity")),
                ("cases" = (operation_id = "list_cases", parameters(("id" = "$response.body#/id")),
                    description = "Their cases")),
                ("open_case" = (operation_id = "open_case", parameters(("id" = "$response.body#/id")),
                    description = "Open a case for them")),
                ("add_note" = (operation_id = "add_note", parameters(("id" = "$response.body#/id")),
                    description = "Add a note to their timeline")),
                ("create_task" = (operation_id = "create_task", parameters(("id" = "$response.body#/id")),
                    description = "Plan a follow-up")),
                ("stream" = (operation_id = "stream", parameters(("customer" = "$response.body#/id")),
                    description = "Follow their live updates")),
            )),
        problem::Read,
    ),
)]
pub(crate) async fn lookup(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: LookupParams = params::query(request.query_string())?;
    let (name, kind, raw) = query.only()?;
    subject::note_identifier_kind(&request, kind);
    let identifier = Identifier::parse(kind, raw, state.settings.default_region)
        .map_err(|error| invalid(name, error.to_string()))?;
    // The identifier's owner and its profile in one round trip.
    let Some(profile) = store(&state)?.lookup_profile(&identifier).await? else {
        return Err(ApiError::NotFound(format!("no customer has {identifier}")));
    };
    subject::note_customer(&request, profile.id);
    Ok(HttpResponse::Ok().json(profile))
}

/// `GET /v1/customers/{id}` — the 360 profile.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "customers",
    summary = "A customer's profile",
    description = "Identifiers, per-channel counts, recent contact windows, open cases, \
        feedback, consent, traits and signals. The id of a merged customer answers for the \
        survivor: `id` is the survivor, `requested_id` the id asked for. `traits` holds, per \
        `customer.*` event attribute (by its name without the prefix), the latest value by \
        when the events happened, typed (`string`, `number`, `boolean` or `timestamp`, \
        recognised from the attribute's text), with the time, source, channel and event that \
        set it; at most 100 per customer.",
    params(("id" = Uuid, Path, description = "Customer id (a merged one works too)")),
    responses(
        (status = 200, description = "The profile", body = panorama_store::CustomerProfile),
        problem::Read,
    ),
)]
pub(crate) async fn profile(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_customer_id(&path)?;
    match store(&state)?.profile(id).await? {
        Some(profile) => Ok(HttpResponse::Ok().json(profile)),
        None => Err(ApiError::NotFound(format!("no customer {id}"))),
    }
}

/// The timeline's answer, for the OpenAPI document only: [`timeline`]
/// writes it straight from the rows ([`TimelineRows`]).
mod doc {
    // Never constructed: the type exists for its `ToSchema` derive.
    #![allow(dead_code)]

    use panorama_store::TimelineEntry;
    use serde::Serialize;
    use uuid::Uuid;

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
}

pub(crate) use doc::TimelinePage;

/// The JSON of a timeline page, as serialising [`TimelinePage`] with
/// these values would write it (`next_cursor` left out on the last page).
fn timeline_page_json(requested: Uuid, page: &TimelineRows) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(b"{\"customer_id\":\"");
    body.extend_from_slice(
        page.customer()
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    body.extend_from_slice(b"\",\"requested_id\":\"");
    body.extend_from_slice(
        requested
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    body.extend_from_slice(b"\",\"entries\":");
    page.write_entries(&mut body);
    if let Some(cursor) = page.next_cursor() {
        // The cursor is URL-safe base64: nothing in it needs escaping.
        body.extend_from_slice(b",\"next_cursor\":\"");
        body.extend_from_slice(cursor.encode().as_bytes());
        body.push(b'"');
    }
    body.push(b'}');
    body
}

/// The query parameters of `GET /v1/customers/{id}/timeline`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TimelineParams {
    /// Only this channel
    #[serde(default, deserialize_with = "params::parsed")]
    channel: Option<Channel>,
    /// Only this event type
    #[serde(rename = "type", default, deserialize_with = "params::parsed")]
    event_type: Option<EventType>,
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
    #[serde(default, deserialize_with = "params::timeline_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<TimelineCursor>,
}

impl From<TimelineParams> for TimelineQuery {
    fn from(given: TimelineParams) -> Self {
        TimelineQuery {
            channel: given.channel,
            event_type: given.event_type,
            since: given.since,
            until: given.until,
            cursor: given.cursor,
            limit: params::page(given.limit),
        }
    }
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
        refused.",
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
        TimelineParams,
    ),
    responses(
        (status = 200, description = "A page", body = TimelinePage),
        problem::Read,
    ),
)]
pub(crate) async fn timeline(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let wanted = TimelineQuery::from(params::query::<TimelineParams>(request.query_string())?);
    let requested = parse_customer_id(&path)?;
    // The survivor lookup is part of the page's statement: one connection
    // and one round trip per request.
    let Some(page) = store(&state)?.timeline_page(requested, &wanted).await? else {
        return Err(ApiError::NotFound(format!("no customer {requested}")));
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(timeline_page_json(requested, &page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline_query(query: &str) -> Result<TimelineQuery, ApiError> {
        params::query::<TimelineParams>(query).map(TimelineQuery::from)
    }

    fn bad_field(query: &str) -> String {
        match timeline_query(query) {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    fn refused(query: &str) -> (String, String) {
        let only = params::query::<LookupParams>(query)
            .and_then(|given| given.only().map(|(name, _, _)| name.to_owned()));
        match only {
            Err(ApiError::InvalidParameter { field, message }) => (field, message),
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn lookup_takes_exactly_one_identifier_of_a_known_kind() {
        for kind in IdentifierKind::ALL {
            let given = params::query::<LookupParams>(&format!("{kind}=x")).expect("known");
            let (name, found, raw) = given.only().expect("one identifier");
            assert_eq!((name, found, raw), (kind.as_str(), kind, "x"));
        }
        let given = params::query::<LookupParams>("phone=1&phone=2").expect("repeated");
        assert_eq!(given.only().expect("one").2, "2", "the last value counts");
        assert_eq!(refused("").0, "query");
        assert_eq!(refused("phone=1&email=a").0, "query");
        assert_eq!(refused("fax=1&phone=2").0, "query");
        let (field, message) = refused("fax=1");
        assert_eq!(field, "fax");
        assert!(message.starts_with("unknown identifier kind"), "{message}");
    }

    #[test]
    fn timeline_parameters_parse_and_bad_ones_are_named() {
        let parsed =
            timeline_query("channel=email&limit=10&since=2026-01-01T00:00:00Z").expect("valid");
        assert_eq!(parsed.channel, Some(Channel::Email));
        assert_eq!(parsed.limit, 10);
        assert_eq!(
            timeline_query("").expect("defaults").limit,
            params::DEFAULT_PAGE
        );
        assert_eq!(bad_field("limit=0"), "limit");
        assert_eq!(bad_field("limit=201"), "limit");
        assert_eq!(bad_field("channel=fax"), "channel");
        assert_eq!(bad_field("type=call.exploded"), "type");
        assert_eq!(bad_field("until=tomorrow"), "until");
        assert_eq!(bad_field("cursor=xyz"), "cursor");
        assert_eq!(bad_field("colour=red"), "colour");
        match timeline_query("colour=red") {
            Err(ApiError::InvalidParameter { message, .. }) => assert_eq!(
                message,
                "unknown parameter; expected channel, type, since, until, limit or cursor"
            ),
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }
}
