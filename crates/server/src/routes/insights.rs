//! `GET /v1/insights`: the figures ops dashboards show, for a period and
//! optionally one channel.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use panorama_core::{Channel, Role};
use panorama_store::InsightsQuery;

use super::params::{invalid, parse_time};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// `GET /v1/insights?since=&until=&channel=` — contacts per channel,
/// repeat-contact, first-contact-resolution and channel-hop rates, NPS,
/// CSAT and CES. Defaults to the last 30 days.
#[utoipa::path(
    get,
    path = "/v1/insights",
    tag = "insights",
    summary = "Figures for ops dashboards",
    description = "Contacts per channel, repeat-contact, first-contact-resolution and \
        channel-hop rates, NPS, CSAT and CES for a period (default: the last 30 days), \
        optionally of one channel.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "From this day (RFC 3339); default 30 days before `until`"),
        ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Up to this time (RFC 3339), after `since`; default now"),
        ("channel" = Option<Channel>, Query, description = "Only this channel"),
    ),
    responses(
        (status = 200, description = "The figures", body = panorama_store::Insights),
        problem::List,
    ),
)]
pub(crate) async fn insights(
    caller: Caller,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut wanted = InsightsQuery::default();
    for (name, value) in query.iter() {
        match name.as_str() {
            "since" => wanted.since = Some(parse_time(name, value)?),
            "until" => wanted.until = Some(parse_time(name, value)?),
            "channel" => {
                let channel = value
                    .parse::<Channel>()
                    .map_err(|error| invalid(name, error.to_string()))?;
                wanted.channel = Some(channel.as_str().to_owned());
            }
            _ => {
                return Err(invalid(
                    name,
                    "unknown parameter; expected since, until or channel",
                ));
            }
        }
    }
    if let (Some(since), Some(until)) = (wanted.since, wanted.until) {
        if since >= until {
            return Err(invalid("until", "must be after since"));
        }
    }
    Ok(HttpResponse::Ok().json(store(&state)?.insights(&wanted).await?))
}
