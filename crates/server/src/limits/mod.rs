//! Limits that keep one caller, or a flood of made-up callers, from
//! exhausting the service: requests per second and requests in progress
//! per credential (API token, configured channel token, browser write key),
//! failed token checks per client address, bytes of ingest bodies held per
//! process, and live-update streams per token and per process. A `429` is
//! answered only after the time its client should wait anyway ([`slow`]),
//! so a client that ignores `Retry-After` cannot turn refusals into a
//! flood.
//!
//! A request over a limit on its caller is answered `429`
//! `/problems/too-many-requests`, one over a limit of the whole process
//! `503` `/problems/server-busy`; both with `Retry-After` and the limit's
//! setting (its key under `[limits]`) as the problem's `limit`. Nothing
//! was done for a refused request. Refusals are counted in
//! `panorama_http_limited_total` by limit.
//!
//! Where each is enforced: [`admit`] (rate and concurrency) and
//! [`hold_ingest_bytes`] are route middlewares the route table puts in
//! front of the routes that take credentials and bodies (`endpoints.rs`);
//! failed token checks are counted where tokens are checked (`auth.rs`);
//! streams take a [`StreamGuard`] (`live.rs`); refusals are held by
//! [`slow_refusals`], the outermost app middleware.

mod bytes;
mod counting;
pub(crate) mod failed_auth;
pub(crate) mod limit;
pub(crate) mod refusal;
mod slow;
mod streams;

use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use uuid::Uuid;

pub(crate) use bytes::hold_ingest_bytes;
use failed_auth::matching_secret;
pub use limit::Limit;
pub(crate) use refusal::{Limited, refused};
pub(crate) use slow::slow_refusals;
pub(crate) use streams::StreamGuard;

use crate::AppState;
use crate::auth::{Caller, ConfiguredToken};
use crate::error::ApiError;
use counting::{Buckets, Rate, Slot, Slots};

/// The limits of a process. Zero turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Requests per second per API token or configured channel token; a
    /// second's worth may come at once.
    pub token_rate: u32,
    /// Requests in progress at once per API token or configured channel
    /// token.
    pub token_concurrency: u32,
    /// Requests per second per browser write key (every visitor of a site
    /// shares its key).
    pub write_key_rate: u32,
    /// Requests in progress at once per browser write key.
    pub write_key_concurrency: u32,
    /// Failed bearer-token checks per minute per client address (IPv6 by
    /// /64); past it, tokens this process has not seen lately are not
    /// checked for that address until the minute's allowance refills.
    pub failed_auth_per_minute: u32,
    /// Bytes of ingest request bodies (`POST /v1/events`, the webhooks)
    /// this process holds at once.
    pub ingest_inflight_bytes: usize,
    /// Live-update streams open at once per API token.
    pub streams_per_token: u32,
    /// Live-update streams open at once in this process.
    pub streams: u32,
    /// Longest a `429` is held back before it is sent (its `Retry-After`
    /// if shorter); zero answers refusals at once.
    pub refusal_delay: Duration,
}

/// Who a request's limits are counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Credential {
    /// A live API token, by id.
    ApiToken(Uuid),
    /// One of `PANORAMA_CHANNEL_TOKENS`, by position.
    ChannelToken(usize),
    /// One of `PANORAMA_WEB_WRITE_KEYS`, by position.
    WriteKey(usize),
    /// One of the Segment write keys, by position (the claimed keys, then
    /// the verified ones).
    SegmentKey(usize),
}

/// A rate and a concurrency limit on a kind of credential.
#[derive(Debug)]
struct PerCredential {
    rate: Option<Buckets<Credential>>,
    slots: Option<Slots<Credential>>,
    rate_limit: Limit,
    concurrency_limit: Limit,
}

impl PerCredential {
    fn new(rate: u32, concurrency: u32, rate_limit: Limit, concurrency_limit: Limit) -> Self {
        PerCredential {
            rate: Rate::per_second(rate).map(Buckets::new),
            slots: (concurrency > 0).then(|| Slots::new(concurrency)),
            rate_limit,
            concurrency_limit,
        }
    }

    /// Spends one of `credential`'s rate and takes one of its slots (held
    /// until the answer), or refuses.
    fn admit(&self, credential: Credential) -> Result<Option<Slot<Credential>>, ApiError> {
        if let Some(rate) = &self.rate {
            rate.take(credential)
                .map_err(|wait| refused(self.rate_limit, wait))?;
        }
        match &self.slots {
            None => Ok(None),
            Some(slots) => slots
                .acquire(credential)
                .map(Some)
                .ok_or_else(|| refused(self.concurrency_limit, Duration::from_secs(1))),
        }
    }
}

/// The limits' state in a process.
#[derive(Debug)]
pub(crate) struct Limits {
    tokens: PerCredential,
    write_keys: PerCredential,
    ingest_bytes: Option<std::sync::Arc<bytes::ByteBudget>>,
    streams: streams::StreamLimits,
    slow: slow::SlowRefusals,
}

impl Limits {
    pub(crate) fn new(settings: &LimitSettings) -> Self {
        Limits {
            tokens: PerCredential::new(
                settings.token_rate,
                settings.token_concurrency,
                Limit::TokenRate,
                Limit::TokenConcurrency,
            ),
            write_keys: PerCredential::new(
                settings.write_key_rate,
                settings.write_key_concurrency,
                Limit::WriteKeyRate,
                Limit::WriteKeyConcurrency,
            ),
            ingest_bytes: bytes::ByteBudget::new(settings.ingest_inflight_bytes),
            streams: streams::StreamLimits::new(settings.streams_per_token, settings.streams),
            slow: slow::SlowRefusals::new(settings.refusal_delay),
        }
    }

    fn admit(&self, credential: Credential) -> Result<Option<Slot<Credential>>, ApiError> {
        match credential {
            Credential::WriteKey(_) | Credential::SegmentKey(_) => {
                self.write_keys.admit(credential)
            }
            Credential::ApiToken(_) | Credential::ChannelToken(_) => self.tokens.admit(credential),
        }
    }
}

/// The credential a request's limits are counted against: its live API
/// token, its configured channel token, or its configured write key.
/// Anything else (no credential, a wrong one, a provider signature) is
/// counted against nobody: it is refused, or checked without the database.
fn credential(request: &ServiceRequest, state: &AppState) -> Option<Credential> {
    if let Ok(caller) = Caller::of(request.request()) {
        return Some(Credential::ApiToken(caller.principal().token_id));
    }
    if let Some(ConfiguredToken(index)) = request.extensions().get::<ConfiguredToken>() {
        return Some(Credential::ChannelToken(*index));
    }
    let keys = &state.settings.channels.web_write_keys;
    if keys.is_empty() {
        return None;
    }
    let header = request
        .headers()
        .get("x-panorama-write-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let key = header.or_else(|| {
        let query = request.query_string();
        if !query.contains("write_key") {
            return None;
        }
        panorama_channels::form::Form::parse(query.as_bytes())
            .ok()?
            .pairs()
            .iter()
            .find(|(name, _)| name == "write_key")
            .map(|(_, value)| value.clone())
    })?;
    matching_secret(&key, keys).map(Credential::WriteKey)
}

/// A request's hold on a slot of its credential (released when dropped).
#[derive(Debug)]
pub(crate) struct Admission {
    _slot: Option<Slot<Credential>>,
}

/// Admits a request with the Segment write key at `index` (claimed keys
/// first, then verified ones) within the write key limits: a Segment SDK
/// may name its key in the body, which the route middleware does not
/// read, so the route admits it itself once it knows the key. A refusal
/// is marked on `request` like the middleware's.
pub(crate) fn admit_segment_key(
    request: &actix_web::HttpRequest,
    state: &AppState,
    index: usize,
) -> Result<Admission, ApiError> {
    match state.limits.admit(Credential::SegmentKey(index)) {
        Ok(slot) => Ok(Admission { _slot: slot }),
        Err(refusal) => {
            request.extensions_mut().insert(Limited);
            Err(refusal)
        }
    }
}

/// Route middleware of every route that takes credentials: the request's
/// credential must be within its rate and have a slot free; the slot is
/// held until the answer (a stream's head, not its body: streams have
/// their own limits).
pub(crate) async fn admit(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let admitted = match request.app_data::<web::Data<AppState>>() {
        Some(state) => match credential(&request, state) {
            Some(credential) => state.limits.admit(credential),
            None => Ok(None),
        },
        None => Ok(None),
    };
    let _slot = match admitted {
        Ok(slot) => slot,
        Err(refusal) => {
            request.extensions_mut().insert(Limited);
            return Ok(request.error_response(refusal).map_into_right_body());
        }
    };
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_credential_has_its_own_rate_and_slots() {
        let limits = PerCredential::new(2, 1, Limit::TokenRate, Limit::TokenConcurrency);
        let first = Credential::ApiToken(Uuid::nil());
        let second = Credential::ChannelToken(0);
        let slot = limits.admit(first).expect("within the rate");
        assert!(matches!(
            limits.admit(first),
            Err(ApiError::TooManyRequests {
                limit: Limit::TokenConcurrency,
                retry_after: 1
            })
        ));
        drop(slot);
        assert!(matches!(
            limits.admit(first),
            Err(ApiError::TooManyRequests {
                limit: Limit::TokenRate,
                ..
            })
        ));
        assert!(limits.admit(second).is_ok());
        let unlimited = PerCredential::new(0, 0, Limit::TokenRate, Limit::TokenConcurrency);
        for _ in 0..1000 {
            assert!(matches!(unlimited.admit(first), Ok(None)));
        }
    }

    #[test]
    fn process_limits_are_503_and_caller_limits_429() {
        use actix_web::ResponseError as _;
        for limit in Limit::ALL {
            let status = refused(limit, Duration::from_millis(1500)).status_code();
            let expected = if matches!(limit, Limit::IngestBytes | Limit::Streams) {
                503
            } else {
                429
            };
            assert_eq!(status.as_u16(), expected, "{limit:?}");
        }
    }
}
