//! The events themselves. A batch first drops its own duplicates and the
//! events projected before, so nothing counts twice; the fresh ones are
//! inserted once identity and cases are decided, each under the profile it
//! came through and with its case.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use uuid::Uuid;

use crate::Result;
use crate::fingerprint::fingerprint;

/// The events of the batch, each id once (the first occurrence: first
/// wins), and how many later ones reused an id with another payload
/// (idempotency conflicts, dropped like any duplicate).
pub(super) fn unique_by_id(events: &[ContactEvent]) -> (Vec<&ContactEvent>, usize) {
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
    (unique, conflicts)
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

/// Inserts `events`, each with the profile it came through (`customers`)
/// and its case.
pub(super) async fn insert_events(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
    customers: &[Uuid],
    cases: &[Option<Uuid>],
) -> Result<()> {
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut occurred = Vec::with_capacity(n);
    let mut received = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut directions = Vec::with_capacity(n);
    let mut identifiers = Vec::with_capacity(n);
    let mut conversations = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut summaries = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut sentiments = Vec::with_capacity(n);
    let mut metrics = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut comments = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut attributes = Vec::with_capacity(n);
    let mut fingerprints = Vec::with_capacity(n);
    let mut consent = Vec::with_capacity(n);
    for event in events {
        ids.push(event.event_id);
        occurred.push(event.occurred_at);
        received.push(event.received_at);
        channels.push(event.channel.as_str());
        sources.push(event.source.as_str());
        types.push(event.event_type.as_str());
        directions.push(event.direction.map(|d| d.as_str()));
        identifiers.push(serde_json::to_value(&event.identifiers).unwrap_or_default());
        conversations.push(event.conversation_id.as_deref());
        reasons.push(event.contact_reason.as_deref());
        subjects.push(event.subject.as_deref());
        summaries.push(event.summary.as_deref());
        agents.push(event.agent_id.as_deref());
        queues.push(event.queue.as_deref());
        durations.push(
            event
                .duration_seconds
                .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
        );
        outcomes.push(event.outcome.as_deref());
        sentiments.push(event.sentiment);
        metrics.push(event.feedback.as_ref().map(|f| f.metric.as_str()));
        scores.push(event.feedback.as_ref().map(|f| f.score as i16));
        comments.push(event.feedback.as_ref().and_then(|f| f.comment.as_deref()));
        names.push(event.display_name.as_deref());
        attributes.push(serde_json::to_value(&event.attributes).unwrap_or_default());
        fingerprints.push(fingerprint(event).to_vec());
        consent.push(
            (!event.consent.is_empty())
                .then(|| serde_json::to_value(&event.consent).unwrap_or_default()),
        );
    }
    let statement = transaction
        .prepare_cached(include_str!("../../sql/insert_events.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &ids,
                &customers,
                &occurred,
                &received,
                &channels,
                &sources,
                &types,
                &directions,
                &identifiers,
                &conversations,
                &reasons,
                &subjects,
                &summaries,
                &agents,
                &queues,
                &durations,
                &outcomes,
                &sentiments,
                &metrics,
                &scores,
                &comments,
                &names,
                &attributes,
                &cases,
                &fingerprints,
                &consent,
            ],
        )
        .await?;
    Ok(())
}
