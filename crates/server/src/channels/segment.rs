//! Segment-compatible ingest: the Segment Spec calls as Segment's and
//! RudderStack's SDKs and webhook destinations send them, mapped by
//! `panorama_channels::segment`. A caller proves itself with a Segment
//! write key (HTTP basic auth with the key as the user, as the SDKs do, or
//! `writeKey` in the body) or a channel token. The answer is Segment's
//! `{"success": true}` (with Panorama's own fields beside it), given only
//! once the broker has every event.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use panorama_channels::segment;
use panorama_core::Trust;
use serde::Serialize;

use super::{
    Answer, ChannelSettings, Items, context, header, refused, require_channel_token, settle,
};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::limits::failed_auth::matching_secret;
use crate::limits::{Admission, admit_segment_key};
use crate::payload::read_body;
use crate::{AppState, problem};

/// Segment's answer, with what Panorama did beside it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SegmentAnswer {
    /// Always `true`: what Segment's SDKs look for.
    success: bool,
    /// What was published, ignored or refused.
    #[serde(flatten)]
    answer: Answer,
}

/// The request bodies, for the OpenAPI document only.
pub(crate) mod doc {
    #![allow(dead_code)]

    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::Value;

    /// One call, or a batch.
    #[derive(Serialize, utoipa::ToSchema)]
    #[serde(untagged)]
    pub(crate) enum SegmentBody {
        /// One call.
        One(Box<SegmentCall>),
        /// Up to 1,000 calls.
        Batch(SegmentBatch),
    }

    /// Several calls, as Segment's SDKs send them to `/v1/batch`.
    #[derive(Serialize, utoipa::ToSchema)]
    pub(crate) struct SegmentBatch {
        /// 1 to 1,000 calls of at most 32 KB each.
        #[schema(min_items = 1, max_items = 1000)]
        batch: Vec<SegmentCall>,
        /// When the sender sent the batch, by its clock: corrects the
        /// calls' timestamps.
        #[serde(rename = "sentAt")]
        #[schema(example = "2026-11-24T10:00:05.000Z")]
        sent_at: Option<String>,
        /// Context shared by every call (a call's own keys win).
        context: Option<BTreeMap<String, Value>>,
        /// The write key, where the SDK sends it in the body
        /// (`analytics-python`).
        #[serde(rename = "writeKey")]
        write_key: Option<String>,
    }

    /// A Segment Spec call. Other fields are ignored, as Segment does.
    #[derive(Serialize, utoipa::ToSchema)]
    pub(crate) struct SegmentCall {
        /// `identify`, `track`, `page`, `screen`, `group` or `alias`.
        #[serde(rename = "type")]
        #[schema(example = "identify")]
        call_type: String,
        /// Your id of the user: an `account` identifier. This or
        /// `anonymousId` is required.
        #[serde(rename = "userId")]
        #[schema(example = "C-1001")]
        user_id: Option<String>,
        /// The device's or browser's id: a weak `visitor` identifier.
        #[serde(rename = "anonymousId")]
        anonymous_id: Option<String>,
        /// The idempotency key: a resent call is the same event.
        #[serde(rename = "messageId")]
        message_id: Option<String>,
        /// When it happened, by the sender's clock (ISO 8601).
        timestamp: Option<String>,
        /// When the call was sent, by the same clock.
        #[serde(rename = "sentAt")]
        sent_at: Option<String>,
        /// Set by Segment or RudderStack when they forward a call: its
        /// `timestamp` is then already corrected.
        #[serde(rename = "originalTimestamp")]
        original_timestamp: Option<String>,
        /// `identify`: the user's traits (`email` and `phone` become
        /// identifiers); `group`: the group's.
        traits: Option<BTreeMap<String, Value>>,
        /// `track`, `page`, `screen`: the event's properties.
        properties: Option<BTreeMap<String, Value>>,
        /// The context (`ip` is never kept).
        context: Option<BTreeMap<String, Value>>,
        /// `track`: the event name, such as `Support Ticket Created`.
        event: Option<String>,
        /// `page`, `screen`: the page's or screen's name.
        name: Option<String>,
        /// `group`: the group's id.
        #[serde(rename = "groupId")]
        group_id: Option<String>,
        /// `alias`: the user's previous id.
        #[serde(rename = "previousId")]
        previous_id: Option<String>,
    }
}

/// What the caller proved: which write key, or a channel token.
#[derive(Debug, Clone, Copy)]
enum Credential {
    /// A configured write key: its position among the claimed then the
    /// verified keys, and the trust it gives.
    WriteKey { index: usize, trust: Trust },
    /// A configured channel token or an API token with the `channel` role.
    ChannelToken,
}

/// The write key `given` names, if it is one.
fn write_key(given: &str, channels: &ChannelSettings) -> Option<Credential> {
    let claimed = &channels.segment_write_keys;
    if let Some(index) = matching_secret(given, claimed) {
        return Some(Credential::WriteKey {
            index,
            trust: Trust::Claimed,
        });
    }
    matching_secret(given, &channels.segment_verified_write_keys).map(|index| {
        Credential::WriteKey {
            index: claimed.len() + index,
            trust: Trust::Verified,
        }
    })
}

/// The user of `Authorization: Basic <base64(user:password)>`: the write
/// key, as Segment's SDKs send it. `None` for another scheme.
fn basic_auth_user(request: &HttpRequest) -> Option<String> {
    use base64::Engine as _;
    let value = header(request, "authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    Some(user.to_owned())
}

fn unknown_key() -> ApiError {
    refused(segment::SOURCE)(ApiError::Unauthorized("unknown write key".into()))
}

/// Checks the caller, reads and maps the calls, publishes them.
async fn ingest(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channels = &state.settings.channels;
    let mut admission: Option<Admission> = None;
    let mut admit = |credential: Credential| -> Result<Credential, ApiError> {
        if let Credential::WriteKey { index, .. } = credential {
            admission = Some(admit_segment_key(&request, &state, index)?);
        }
        Ok(credential)
    };
    let credential = if let Some(user) = basic_auth_user(&request) {
        Some(admit(write_key(&user, channels).ok_or_else(unknown_key)?)?)
    } else if bearer_token(request.headers().get(AUTHORIZATION)).is_some() {
        require_channel_token(&request, &state).map_err(refused(segment::SOURCE))?;
        Some(Credential::ChannelToken)
    } else {
        None
    };
    let limit = state.settings.max_body_bytes.min(segment::MAX_BODY_BYTES);
    let body = read_body(payload, limit).await?;
    let read = segment::read(&body);
    let credential = match credential {
        Some(credential) => credential,
        // Some SDKs name the key in the body only: it is read before the
        // caller is known, within the same size limit.
        None => {
            let given = read.as_ref().ok().and_then(segment::Body::write_key);
            let Some(given) = given else {
                return Err(refused(segment::SOURCE)(ApiError::Unauthorized(
                    "a Segment write key (basic auth user or writeKey) or a channel token is required"
                        .into(),
                )));
            };
            admit(write_key(given, channels).ok_or_else(unknown_key)?)?
        }
    };
    let mut outcome = read
        .and_then(|calls| calls.events(&context(&state), &channels.segment_contact_events))
        .map_err(|e| refused(segment::SOURCE)(e.into()))?;
    if let Credential::WriteKey { trust, .. } = credential {
        outcome.cap_trust(trust);
    }
    let answer = settle(&state, segment::SOURCE, outcome, Items::Each).await?;
    drop(admission);
    Ok(HttpResponse::Ok().json(SegmentAnswer {
        success: true,
        answer,
    }))
}

const DESCRIPTION: &str = "Segment Spec calls (`identify`, `track`, `page`, `screen`, `group`, `alias`) as Segment's and RudderStack's SDKs and webhook destinations send them: one call, or `{\"batch\": [...]}` (at most 1,000 calls of at most 32 KB each, 500 KB in all; gzip accepted). Every call becomes one event of channel `web`, source `segment`: `userId` an `account` identifier, `anonymousId` a weak `visitor` one, `traits.email` and `traits.phone` `email` and `phone` identifiers, `messageId` the event id (a resent call is the same event), `timestamp` corrected for the sender's clock with `sentAt`. `track` events named in `PANORAMA_SEGMENT_CONTACT_EVENTS` are `contact.recorded` (customer contacts), the others `activity.tracked`. A call that breaks the event contract is named in `refused` and left out while the others are published, since SDKs do not resend a refused batch; a call or body that is not what the Spec says (an unknown `type`, no `userId` nor `anonymousId`) refuses the request with a 400 naming the field.\n\nAuthenticated by a write key from `PANORAMA_SEGMENT_WRITE_KEYS` (identifiers *claimed*) or `PANORAMA_SEGMENT_VERIFIED_WRITE_KEYS` (identifiers *verified*), sent as the basic auth user name (empty password) or as `writeKey` in the body; or by a bearer token: an API token with the `channel` role (or `admin`), or one of `PANORAMA_CHANNEL_TOKENS` (identifiers verified). An unknown key is 401. Always on.";

/// `POST /v1/segment`: one call or a batch (webhook destinations, curl).
#[utoipa::path(
    post,
    path = "/v1/segment",
    tag = "channels",
    summary = "Segment Spec calls: one call or a batch",
    description = DESCRIPTION,
    security(("segmentWriteKey" = []), ("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = doc::SegmentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`success`, and the events the broker acknowledged (`accepted`), or nothing to publish (`ignored`); `refused` names calls that break the event contract, `warnings` values that do not parse as identifiers", body = SegmentAnswer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn segment_call(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    ingest(request, payload, state).await
}

/// `POST /v1/segment/batch`.
#[utoipa::path(
    post,
    path = "/v1/segment/batch",
    tag = "channels",
    summary = "Segment Spec calls: a batch",
    description = DESCRIPTION,
    security(("segmentWriteKey" = []), ("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = doc::SegmentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "As `POST /v1/segment`", body = SegmentAnswer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn segment_batch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    ingest(request, payload, state).await
}

/// `POST /v1/segment/v1/batch`: where SDKs post when their host is
/// `<Panorama>/v1/segment` (they append `/v1/batch` to it).
#[utoipa::path(
    post,
    path = "/v1/segment/v1/batch",
    tag = "channels",
    summary = "Segment Spec calls: a batch from an SDK",
    description = "The path Segment's and RudderStack's server SDKs post to when their host (`host`, `dataPlaneUrl`) is set to Panorama's base URL followed by `/v1/segment`: they append `/v1/batch`. The same as `POST /v1/segment/batch`.",
    security(("segmentWriteKey" = []), ("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = doc::SegmentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "As `POST /v1/segment`", body = SegmentAnswer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn segment_sdk_batch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    ingest(request, payload, state).await
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_basic_auth_user_is_the_write_key() {
        use base64::Engine as _;
        let encode = |raw: &str| base64::engine::general_purpose::STANDARD.encode(raw);
        for (header, user) in [
            (format!("Basic {}", encode("key-1:")), Some("key-1")),
            (format!("basic {}", encode("key-1")), Some("key-1")),
            (format!("Basic {}", encode("key-1:ignored")), Some("key-1")),
            ("Bearer key-1".to_owned(), None),
            ("Basic !!!".to_owned(), None),
        ] {
            let request = TestRequest::default()
                .insert_header(("authorization", header.as_str()))
                .to_http_request();
            assert_eq!(basic_auth_user(&request).as_deref(), user, "{header}");
        }
    }

    #[test]
    fn verified_keys_come_after_the_claimed_ones() {
        let channels = ChannelSettings {
            segment_write_keys: vec!["a".into(), "b".into()],
            segment_verified_write_keys: vec!["c".into()],
            ..ChannelSettings::default()
        };
        assert!(matches!(
            write_key("b", &channels),
            Some(Credential::WriteKey {
                index: 1,
                trust: Trust::Claimed
            })
        ));
        assert!(matches!(
            write_key("c", &channels),
            Some(Credential::WriteKey {
                index: 2,
                trust: Trust::Verified
            })
        ));
        assert!(write_key("d", &channels).is_none());
    }
}
