//! The bytes of ingest bodies one process holds at once: a request whose
//! body would take the process past [`super::LimitSettings::ingest_inflight_bytes`]
//! is answered 503 instead of growing memory.
//!
//! A body with a `Content-Length` is reserved whole before a byte is read
//! (at most the largest body a route accepts, since the route refuses
//! anything longer after that much), so a refused client has sent nothing
//! the server keeps. A chunked body is reserved chunk by chunk as it
//! arrives (again up to the largest body a route accepts); the chunk that
//! does not fit ends the body, and the answer is 503 whatever the handler
//! made of the cut body. The reservation is given back when the answer is
//! ready: by then the handler has published the events or refused them,
//! and dropped the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};
use futures::StreamExt as _;

use super::{Limit, refused};
use crate::{AppState, metrics};

/// How long a refused client should wait: bodies in flight are usually
/// done within a second.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A request body as actix boxes it.
type BoxedPayload =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>>;

/// The process's allowance of ingest body bytes.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    max: usize,
    used: AtomicUsize,
}

impl ByteBudget {
    /// A budget of `max` bytes; `None` (no limit) for 0.
    pub(crate) fn new(max: usize) -> Option<Arc<ByteBudget>> {
        (max > 0).then(|| {
            Arc::new(ByteBudget {
                max,
                used: AtomicUsize::new(0),
            })
        })
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .is_ok();
        if reserved {
            metrics::INGEST_INFLIGHT_BYTES.add(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        reserved
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        metrics::INGEST_INFLIGHT_BYTES.sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

/// What one request holds of the budget; given back when dropped.
#[derive(Debug)]
struct Hold {
    budget: Arc<ByteBudget>,
    held: AtomicUsize,
    overdrawn: AtomicBool,
}

impl Hold {
    fn reserve(&self, bytes: usize) -> bool {
        if self.budget.try_reserve(bytes) {
            self.held.fetch_add(bytes, Ordering::AcqRel);
            true
        } else {
            self.overdrawn.store(true, Ordering::Release);
            false
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.release(*self.held.get_mut());
    }
}

/// Route middleware of the ingest routes: holds the request's body bytes
/// against the process's budget until the answer, or answers 503.
pub(crate) async fn hold_ingest_bytes(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let Some((state, budget)) = state.and_then(|state| {
        state
            .limits
            .ingest_bytes
            .clone()
            .map(|budget| (state, budget))
    }) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let hold = Arc::new(Hold {
        budget,
        held: AtomicUsize::new(0),
        overdrawn: AtomicBool::new(false),
    });
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<usize>().ok());
    // A route keeps no more than its limit: past it the body is refused
    // and the rest read and thrown away.
    let largest = state
        .settings
        .max_body_bytes
        .max(state.settings.max_email_body_bytes);
    match declared {
        Some(length) => {
            if !hold.reserve(length.min(largest)) {
                request
                    .extensions_mut()
                    .insert(crate::limits::refusal::Limited);
                let refusal = refused(Limit::IngestBytes, RETRY_AFTER);
                return Ok(request.error_response(refusal).map_into_right_body());
            }
        }
        None => {
            let counted = hold.clone();
            let payload = request.take_payload().map(move |chunk| {
                let chunk = chunk?;
                let kept = chunk
                    .len()
                    .min(largest.saturating_sub(counted.held.load(Ordering::Acquire)));
                if kept == 0 || counted.reserve(kept) {
                    Ok(chunk)
                } else {
                    Err(PayloadError::Io(std::io::Error::other(
                        "the ingest byte budget is spent",
                    )))
                }
            });
            let boxed: BoxedPayload = Box::pin(payload);
            request.set_payload(Payload::from(boxed));
        }
    }
    let response = next.call(request).await?;
    if hold.overdrawn.load(Ordering::Acquire) {
        let refusal = refused(Limit::IngestBytes, RETRY_AFTER);
        let (request, _) = response.into_parts();
        return Ok(ServiceResponse::new(request, refusal.error_response()).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_never_overdrawn_and_holds_give_back_what_they_took() {
        let budget = ByteBudget::new(100).expect("a budget");
        let first = Hold {
            budget: budget.clone(),
            held: AtomicUsize::new(0),
            overdrawn: AtomicBool::new(false),
        };
        assert!(first.reserve(60));
        assert!(first.reserve(30));
        let second = Hold {
            budget: budget.clone(),
            held: AtomicUsize::new(0),
            overdrawn: AtomicBool::new(false),
        };
        assert!(!second.reserve(20));
        assert!(second.overdrawn.load(Ordering::Acquire));
        assert!(second.reserve(10));
        drop(first);
        assert_eq!(budget.used.load(Ordering::Acquire), 10);
        drop(second);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert!(ByteBudget::new(0).is_none(), "0 is no limit");
    }
}
