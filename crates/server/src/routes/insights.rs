//! `GET /v1/insights`: the figures ops dashboards show, for a period and
//! optionally one channel.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_core::Channel;
use panorama_store::InsightsQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{self, invalid};
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// The query parameters of `GET /v1/insights`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InsightsParams {
    /// From this day (RFC 3339); default 30 days before `until`
    #[serde(default, deserialize_with = "params::time")]
    since: Option<DateTime<Utc>>,
    /// Up to this time (RFC 3339), after `since`; default now
    #[serde(default, deserialize_with = "params::time")]
    until: Option<DateTime<Utc>>,
    /// Only this channel
    #[serde(default, deserialize_with = "params::parsed")]
    channel: Option<Channel>,
}

impl From<InsightsParams> for InsightsQuery {
    fn from(given: InsightsParams) -> Self {
        InsightsQuery {
            since: given.since,
            until: given.until,
            channel: given.channel.map(|channel| channel.as_str().to_owned()),
        }
    }
}

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
        optionally of one channel.",
    params(InsightsParams),
    responses(
        (status = 200, description = "The figures", body = panorama_store::Insights),
        problem::List,
    ),
)]
pub(crate) async fn insights(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let wanted = InsightsQuery::from(params::query::<InsightsParams>(request.query_string())?);
    if let (Some(since), Some(until)) = (wanted.since, wanted.until) {
        if since >= until {
            return Err(invalid("until", "must be after since"));
        }
    }
    Ok(HttpResponse::Ok().json(store(&state)?.insights(&wanted).await?))
}
