//! Refusals answered slowly: a `429` is held back for the time its client
//! should wait anyway (its `Retry-After`, at most
//! `limits.refusal_delay_ms`) before it is sent.
//!
//! **Why.** A refusal is cheap, but not free: a client that ignores
//! `Retry-After` and asks again as soon as it is answered turns refusals
//! into a flood of their own, and on a small machine the CPU they take is
//! what slows everyone else. Most such clients (HTTP client pools, retry
//! loops, scripts) send their next request when the last one is answered,
//! so answering a refusal later slows them down to a few requests per
//! connection per second, at the cost of a timer each. A client that obeys
//! `Retry-After` loses nothing: it would have waited that long anyway.
//!
//! Held refusals are bounded per process ([`MAX_HELD`]); past it they are
//! answered at once, so a flood that opens ever more connections cannot
//! make the process hold ever more of them. Only `429` (a limit of the
//! caller's) is held; `503` (a limit of the process's) is answered at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::middleware::Next;
use actix_web::web;

use crate::AppState;

/// Most refusals a process holds back at once.
pub(crate) const MAX_HELD: usize = 4096;

/// The refusals a process holds back right now, and for how long at most.
#[derive(Debug)]
pub(crate) struct SlowRefusals {
    longest: Duration,
    held: AtomicUsize,
}

/// One held refusal; gives its place back when dropped.
#[derive(Debug)]
pub(crate) struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SlowRefusals {
    /// Refusals held for at most `longest` (zero: answered at once).
    pub(crate) fn new(longest: Duration) -> Self {
        SlowRefusals {
            longest,
            held: AtomicUsize::new(0),
        }
    }

    /// How long to hold a refusal whose client should retry after
    /// `retry_after`, and its place among the held ones; `None` to answer
    /// at once (holding is off, or [`MAX_HELD`] are held already).
    pub(crate) fn hold(&self, retry_after: Duration) -> Option<(Duration, Held<'_>)> {
        let delay = retry_after.min(self.longest);
        if delay.is_zero() {
            return None;
        }
        let taken = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held < MAX_HELD).then_some(held + 1)
            });
        taken.ok().map(|_| (delay, Held(&self.held)))
    }
}

/// The `Retry-After` of a response, in whole seconds as the limits write it.
fn retry_after<B>(response: &ServiceResponse<B>) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// App middleware, outermost: holds a `429` back before it is sent (see
/// the module documentation). Outside the metrics and tracing middlewares,
/// so request durations do not count the hold.
pub(crate) async fn slow_refusals(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(request).await?;
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        return Ok(response);
    }
    let Some(state) = state else {
        return Ok(response);
    };
    let wait = retry_after(&response).unwrap_or(Duration::from_secs(1));
    if let Some((delay, _held)) = state.limits.slow.hold(wait) {
        tokio::time::sleep(delay).await;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_held_for_its_retry_after_at_most_the_setting() {
        let slow = SlowRefusals::new(Duration::from_millis(1500));
        let (delay, _held) = slow.hold(Duration::from_secs(1)).expect("held");
        assert_eq!(delay, Duration::from_secs(1));
        let (delay, _held) = slow.hold(Duration::from_secs(60)).expect("held");
        assert_eq!(delay, Duration::from_millis(1500));
        assert!(
            SlowRefusals::new(Duration::ZERO)
                .hold(Duration::from_secs(1))
                .is_none()
        );
    }

    #[test]
    fn past_the_bound_refusals_are_answered_at_once_until_one_is_sent() {
        let slow = SlowRefusals::new(Duration::from_secs(1));
        let held: Vec<_> = (0..MAX_HELD)
            .map(|_| slow.hold(Duration::from_secs(1)).expect("room"))
            .collect();
        assert!(slow.hold(Duration::from_secs(1)).is_none());
        drop(held);
        assert!(slow.hold(Duration::from_secs(1)).is_some());
    }
}
