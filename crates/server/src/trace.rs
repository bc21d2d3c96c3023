//! One span per request, a request id on every answer, and the trace
//! context the gateway hands on to the events it publishes.
//!
//! The request's `traceparent` (W3C) is honoured when valid; otherwise the
//! request starts a new, unsampled trace. The request's own span gets a new
//! span id in that trace, and events published by the request carry it, so
//! the projector's span for an event is a child of the gateway's span.
//! Logged per request: method, route template, status and time; never the
//! query string (it may hold a webhook secret) nor the body.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use panorama_core::TraceContext;
use tracing::Instrument as _;

/// Header carrying the request id, in requests (kept when well-formed) and
/// in every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the middleware learnt about a request, in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestTrace {
    /// The request's own span context: the caller's trace, a new span id.
    pub(crate) context: TraceContext,
    /// Whether the caller sent a valid `traceparent`.
    pub(crate) propagated: bool,
}

impl RequestTrace {
    /// The `traceparent` to put on published events: only when the caller
    /// is tracing, so untraced traffic does not grow every record.
    pub(crate) fn outbound(&self) -> Option<String> {
        self.propagated.then(|| self.context.to_string())
    }
}

/// The tracing middleware (outermost: it also times the other middlewares).
pub(crate) async fn trace(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let incoming = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse);
    let context = incoming.map_or_else(TraceContext::new_root, |parent| parent.child());
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_request_id(value))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let method = request.method().to_string();
    let span = tracing::info_span!(
        "http_request",
        method = %method,
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        request_id = %request_id,
        trace_id = %context.trace_id(),
        span_id = %context.span_id(),
        parent_span_id = incoming.map(|parent| parent.span_id()),
    );
    if let Some(parent) = &incoming {
        panorama_core::link_span(&span, parent);
    }
    request.extensions_mut().insert(RequestTrace {
        context,
        propagated: incoming.is_some(),
    });
    let mut response = next.call(request).instrument(span.clone()).await?;
    let route = crate::endpoints::template_of(response.request()).unwrap_or("unmatched");
    let status = response.status().as_u16();
    span.record("route", route);
    span.record("status", status);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "panorama::http",
            method = %method,
            route = %route,
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request served"
        );
    });
    Ok(response)
}

/// A caller's request id is kept when it is short and plain: letters,
/// digits, `-`, `_`, `.`, at most 64 of them.
fn is_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(is_request_id("abc-123_x.y"));
        assert!(!is_request_id(""));
        assert!(!is_request_id("a b"));
        assert!(!is_request_id("é"));
        assert!(!is_request_id(&"a".repeat(65)));
    }
}
