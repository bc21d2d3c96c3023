//! Joining projected events to the trace of the request that brought them.

use std::collections::HashMap;

use chrono::Utc;
use panorama_bus::ConsumedRecord;
use panorama_core::TraceContext;

/// An event that arrived with a trace context, to be joined to its trace
/// once projected.
#[derive(Debug)]
pub(crate) struct Traced {
    pub(crate) event_id: uuid::Uuid,
    pub(crate) context: TraceContext,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// The trace context of a record: its `traceparent` header, else the
/// event's own (`traceparent`); only sampled contexts are followed.
pub(crate) fn trace_context(
    record: &ConsumedRecord,
    traceparent: Option<&str>,
) -> Option<TraceContext> {
    let from_header = record
        .header("traceparent")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(TraceContext::parse);
    from_header
        .or_else(|| traceparent.and_then(TraceContext::parse))
        .filter(TraceContext::sampled)
}

/// Opens one span per traced event, a child of the gateway's span through
/// the event's `traceparent`, so the event can be followed end to end.
pub(crate) fn trace_projected(
    traced: &[Traced],
    outcome: &panorama_store::BatchOutcome,
    now: chrono::DateTime<Utc>,
) {
    if traced.is_empty() {
        return;
    }
    let inserted: HashMap<uuid::Uuid, (uuid::Uuid, chrono::DateTime<Utc>)> = outcome
        .inserted
        .iter()
        .map(|(event, customer, received)| (*event, (*customer, *received)))
        .collect();
    for traced in traced {
        let own = traced.context.child();
        let (customer, visible_ms) = match inserted.get(&traced.event_id) {
            Some((customer, received)) => (
                Some(customer.to_string()),
                Some((now - *received).num_milliseconds()),
            ),
            None => (None, None),
        };
        let span = tracing::info_span!(
            "project_event",
            event_id = %traced.event_id,
            trace_id = %traced.context.trace_id(),
            parent_span_id = %traced.context.span_id(),
            span_id = %own.span_id(),
            partition = traced.partition,
            offset = traced.offset,
            customer_id = customer.as_deref(),
            duplicate = customer.is_none(),
            visible_ms,
        );
        panorama_core::link_span(&span, &traced.context);
        span.in_scope(|| tracing::debug!("event projected"));
    }
}
