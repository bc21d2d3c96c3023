//! The events themselves. A batch first drops its own duplicates and the
//! events projected before, so nothing counts twice; the fresh ones are
//! inserted once identity and cases are decided, each under the profile it
//! came through and with its case.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::Result;
use crate::fingerprint::fingerprint;

/// The events of the batch, each id once (the first occurrence: first
/// wins), and how many later ones reused an id with another payload
/// (idempotency conflicts, dropped like any duplicate); with each kept
/// event's fingerprint by id, which the insert stores.
pub(super) fn unique_by_id(
    events: &[ContactEvent],
) -> (Vec<&ContactEvent>, usize, HashMap<Uuid, [u8; 32]>) {
    let mut seen: HashMap<Uuid, [u8; 32]> = HashMap::with_capacity(events.len());
    let mut conflicts = 0;
    let unique = events
        .iter()
        .filter(|event| match seen.get(&event.event_id) {
            Some(first) => {
                conflicts += usize::from(*first != fingerprint(event));
                false
            }
            None => {
                seen.insert(event.event_id, fingerprint(event));
                true
            }
        })
        .collect();
    (unique, conflicts, seen)
}

/// The events not projected yet, and how many of those projected already
/// came again with another payload (idempotency conflicts: the stored event
/// stays, the later one is dropped).
pub(super) async fn skip_existing<'a>(
    transaction: &Transaction<'_>,
    events: Vec<&'a ContactEvent>,
) -> Result<(Vec<&'a ContactEvent>, usize)> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let statement = transaction
        // A join against unnest plans as one index probe per id; `= ANY($1)`
        // with thousands of ids got a generic plan that scanned the table.
        .prepare_cached(
            "SELECT e.event_id, e.fingerprint FROM unnest($1::uuid[]) AS q (id)
             JOIN events AS e ON e.event_id = q.id",
        )
        .await?;
    let existing: HashMap<Uuid, Option<Vec<u8>>> = transaction
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut conflicts = 0;
    let fresh = events
        .into_iter()
        .filter(|event| match existing.get(&event.event_id) {
            None => true,
            Some(stored) => {
                // An event projected before fingerprints were kept has none.
                conflicts += usize::from(
                    stored
                        .as_deref()
                        .is_some_and(|stored| stored != fingerprint(event).as_slice()),
                );
                false
            }
        })
        .collect();
    Ok((fresh, conflicts))
}

/// The columns [`insert_events`] copies, in the order of its rows.
const EVENT_COLUMNS: &str = "COPY events (
    event_id, customer_id, occurred_at, received_at, channel, source, type,
    direction, identifiers, conversation_id, contact_reason, subject, summary,
    agent_id, queue, duration_seconds, outcome, sentiment, feedback_metric,
    feedback_score, feedback_comment, display_name, attributes, case_id,
    fingerprint, consent) FROM STDIN (FORMAT binary)";

/// The types of [`EVENT_COLUMNS`], in order.
const EVENT_TYPES: [Type; 26] = [
    Type::UUID,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::FLOAT4,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::UUID,
    Type::BYTEA,
    Type::JSONB,
];

/// Inserts `events`, each with the profile it came through (`customers`)
/// and its case, with one binary `COPY`: the cheapest way into an indexed
/// table, and the batch's largest write. Events already projected were
/// filtered out before, so nothing here needs `ON CONFLICT`: the rare event
/// inserted by a concurrent projector since then fails the whole statement
/// with a unique violation, and the retry filters it out. `fingerprints`
/// holds each event's fingerprint by id, computed when the batch was
/// deduplicated.
pub(super) async fn insert_events(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    customers: &[Uuid],
    cases: &[Option<Uuid>],
    fingerprints: &HashMap<Uuid, [u8; 32]>,
) -> Result<()> {
    let sink = transaction.copy_in(EVENT_COLUMNS).await?;
    let writer = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
    futures::pin_mut!(writer);
    for ((event, customer), case) in events.iter().zip(customers).zip(cases) {
        let stored = fingerprints
            .get(&event.event_id)
            .copied()
            .unwrap_or_else(|| fingerprint(event));
        let fingerprint: &[u8] = &stored;
        let identifiers = serde_json::to_value(&event.identifiers).unwrap_or_default();
        let attributes = serde_json::to_value(&event.attributes).unwrap_or_default();
        let consent = (!event.consent.is_empty())
            .then(|| serde_json::to_value(&event.consent).unwrap_or_default());
        let duration = event
            .duration_seconds
            .map(|d| i32::try_from(d).unwrap_or(i32::MAX));
        let feedback = event.feedback.as_ref();
        writer
            .as_mut()
            .write(&[
                &event.event_id,
                customer,
                &event.occurred_at,
                &event.received_at,
                &event.channel.as_str(),
                &event.source.as_str(),
                &event.event_type.as_str(),
                &event.direction.map(|d| d.as_str()),
                &identifiers,
                &event.conversation_id.as_deref(),
                &event.contact_reason.as_deref(),
                &event.subject.as_deref(),
                &event.summary.as_deref(),
                &event.agent_id.as_deref(),
                &event.queue.as_deref(),
                &duration,
                &event.outcome.as_deref(),
                &event.sentiment,
                &feedback.map(|f| f.metric.as_str()),
                &feedback.map(|f| f.score as i16),
                &feedback.and_then(|f| f.comment.as_deref()),
                &event.display_name.as_deref(),
                &attributes,
                case,
                &fingerprint,
                &consent,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}
