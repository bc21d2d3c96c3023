//! Live-update streams (`GET /v1/stream`): how many one token and the
//! whole process hold open, and the end of a stream whose token is revoked.
//! A stream holds its [`StreamGuard`] for as long as it lives.

use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpMessage as _, HttpRequest, web};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use uuid::Uuid;

use super::counting::{Slot, Slots};
use super::{Limit, refused};
use crate::AppState;
use crate::auth::{Caller, bearer_token};
use crate::error::ApiError;

/// How long a refused client should wait: streams end when agents close
/// what they were looking at.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How often an open stream asks whether its token is still live. The
/// answer comes from the token cache, so a revoked token's streams end
/// within the cache's lifetime and this period.
const REVOCATION_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Streams per token and per process.
#[derive(Debug)]
pub(crate) struct StreamLimits {
    per_token: Option<Slots<Uuid>>,
    total: Option<Slots<()>>,
}

impl StreamLimits {
    /// `per_token` and `total` streams at once; 0 is no limit.
    pub(crate) fn new(per_token: u32, total: u32) -> Self {
        StreamLimits {
            per_token: (per_token > 0).then(|| Slots::new(per_token)),
            total: (total > 0).then(|| Slots::new(total)),
        }
    }

    fn open(&self, token: Uuid) -> Result<Places, ApiError> {
        let mine = match &self.per_token {
            None => None,
            Some(slots) => Some(
                slots
                    .acquire(token)
                    .ok_or_else(|| refused(Limit::StreamsPerToken, RETRY_AFTER))?,
            ),
        };
        let all = match &self.total {
            None => None,
            Some(slots) => Some(
                slots
                    .acquire(())
                    .ok_or_else(|| refused(Limit::Streams, RETRY_AFTER))?,
            ),
        };
        Ok(Places {
            _token: mine,
            _process: all,
        })
    }
}

/// A stream's places under the limits, given back when dropped.
#[derive(Debug)]
struct Places {
    _token: Option<Slot<Uuid>>,
    _process: Option<Slot<()>>,
}

/// What an open stream holds: its places under the stream limits, and what
/// it needs to notice that its token was revoked.
pub(crate) struct StreamGuard {
    _places: Places,
    state: web::Data<AppState>,
    /// The secret the stream was opened with.
    token: Option<String>,
    every: Interval,
}

impl std::fmt::Debug for StreamGuard {
    // The token is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamGuard").finish_non_exhaustive()
    }
}

impl StreamGuard {
    /// A place for one more stream of the request's caller, or the refusal:
    /// 429 past the token's streams, 503 past the process's.
    pub(crate) fn open(
        state: &web::Data<AppState>,
        request: &HttpRequest,
    ) -> Result<StreamGuard, ApiError> {
        let caller = Caller::of(request)?;
        let places = state
            .limits
            .streams
            .open(caller.principal().token_id)
            .inspect_err(|_| {
                request
                    .extensions_mut()
                    .insert(crate::limits::refusal::Limited);
            })?;
        let token = bearer_token(request.headers().get(AUTHORIZATION)).map(str::to_owned);
        let mut every = tokio::time::interval_at(
            Instant::now() + REVOCATION_CHECK_EVERY,
            REVOCATION_CHECK_EVERY,
        );
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(StreamGuard {
            _places: places,
            state: state.clone(),
            token,
            every,
        })
    }

    /// Resolves once the stream's token is found revoked. Cancel-safe: a
    /// stream selects on it beside its other wake-ups.
    pub(crate) async fn revoked(&mut self) {
        let StreamGuard {
            state,
            token,
            every,
            ..
        } = self;
        let Some(token) = token.as_deref() else {
            return std::future::pending().await;
        };
        loop {
            every.tick().await;
            if state.auth.revoked(token).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_bounded_per_token_then_per_process() {
        let limits = StreamLimits::new(2, 3);
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let first = limits.open(one).expect("first");
        let _second = limits.open(one).expect("second");
        assert!(matches!(
            limits.open(one),
            Err(ApiError::TooManyRequests {
                limit: Limit::StreamsPerToken,
                retry_after: 5
            })
        ));
        let _third = limits.open(two).expect("another token");
        assert!(matches!(
            limits.open(two),
            Err(ApiError::ServerBusy {
                limit: Limit::Streams,
                ..
            })
        ));
        drop(first);
        assert!(limits.open(two).is_ok(), "a closed stream frees its place");
        let unlimited = StreamLimits::new(0, 0);
        let held: Vec<_> = (0..100).map(|_| unlimited.open(one)).collect();
        assert!(held.iter().all(Result::is_ok));
    }
}
