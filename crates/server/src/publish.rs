//! Publishing canonical events to the contact-event topic: what every
//! ingest route (`POST /v1/events`, the provider webhooks) and every agent
//! action ends with.

use panorama_bus::{OutboundRecord, Producer};
use panorama_core::ContactEvent;

use crate::error::ApiError;
use crate::{AppState, metrics};

/// Publishes canonical events to the contact-event topic, sealed (see
/// [`crate::sealing`]) and keyed by their first subject, and counts them as
/// accepted once the broker has them, under `source`: the route that took
/// them (an adapter's source, [`metrics::SOURCE_EVENTS`]), one of a fixed
/// few, never the events' own free-text `source`. Events naming an erased
/// (suppressed) person are not published and are counted as
/// `suppressed`; the caller is answered as for the others, so a sender
/// neither retries them nor learns who was erased. Shared by every ingest
/// route.
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
    let sealed = state.sealer.seal(events).await?;
    let records: Vec<OutboundRecord> = sealed
        .records
        .into_iter()
        .map(|(index, record)| OutboundRecord {
            key: record.key,
            payload: record.payload,
            headers: events[index]
                .traceparent
                .iter()
                .map(|trace| ("traceparent".to_owned(), trace.as_bytes().to_vec()))
                .collect(),
        })
        .collect();
    if !records.is_empty() {
        let started = std::time::Instant::now();
        let result = producer.publish(&state.settings.topic, &records).await;
        metrics::PUBLISH_SECONDS.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::PUBLISH_FAILURES.inc();
        }
        result?;
    }
    state.settings.crash_points.reach("gateway.after_publish");
    for (index, event) in events.iter().enumerate() {
        let outcome = if sealed.suppressed.contains(&index) {
            "suppressed"
        } else {
            "accepted"
        };
        metrics::INGESTED
            .with_label_values(&[event.channel.as_str(), source, outcome])
            .inc();
    }
    Ok(())
}

/// Publishes one record that is not a contact event (an erasure request,
/// `panorama_proto::sealed::encode_erasure`) to the contact-event topic
/// with `producer`, under `key`. Nothing in it is sealed: it carries no
/// personal data.
pub(crate) async fn publish_record(
    state: &AppState,
    producer: Option<&Producer>,
    key: String,
    payload: Vec<u8>,
) -> Result<(), ApiError> {
    let Some(producer) = producer else {
        return Err(ApiError::Internal);
    };
    let record = OutboundRecord {
        key,
        payload,
        headers: Vec::new(),
    };
    let started = std::time::Instant::now();
    let result = producer
        .publish(&state.settings.topic, std::slice::from_ref(&record))
        .await;
    metrics::PUBLISH_SECONDS.observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::PUBLISH_FAILURES.inc();
    }
    result?;
    Ok(())
}
