//! Publishing canonical events to the contact-event topic: what every
//! ingest route (`POST /v1/events`, the provider webhooks) and every agent
//! action ends with.

use panorama_bus::{OutboundRecord, Producer};
use panorama_core::ContactEvent;

use crate::error::ApiError;
use crate::{AppState, metrics};

/// Publishes canonical events to the contact-event topic, keyed by their
/// first identifier, and counts them as accepted once the broker has them,
/// under `source`: the route that took them (an adapter's source,
/// [`metrics::SOURCE_EVENTS`]), one of a fixed few, never the events' own
/// free-text `source`. Shared by every ingest route.
pub(crate) async fn publish(
    state: &AppState,
    source: &'static str,
    events: &[ContactEvent],
) -> Result<(), ApiError> {
    publish_with(state, state.producer.as_ref(), source, events).await
}

/// Publishes with `producer`: the gateway's, or the API's for agent
/// actions.
pub(crate) async fn publish_with(
    state: &AppState,
    producer: Option<&Producer>,
    source: &'static str,
    events: &[ContactEvent],
) -> Result<(), ApiError> {
    let Some(producer) = producer else {
        return Err(ApiError::Internal);
    };
    let records: Vec<OutboundRecord> = events
        .iter()
        .map(|event| OutboundRecord {
            key: event.partition_key(),
            payload: panorama_proto::encode(event),
            headers: event
                .traceparent
                .iter()
                .map(|trace| ("traceparent".to_owned(), trace.as_bytes().to_vec()))
                .collect(),
        })
        .collect();
    let started = std::time::Instant::now();
    let result = producer.publish(&state.settings.topic, &records).await;
    metrics::PUBLISH_SECONDS.observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::PUBLISH_FAILURES.inc();
    }
    result?;
    state.settings.crash_points.reach("gateway.after_publish");
    for event in events {
        metrics::INGESTED
            .with_label_values(&[event.channel.as_str(), source, "accepted"])
            .inc();
    }
    Ok(())
}
