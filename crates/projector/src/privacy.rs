//! Opening a batch's sealed events and applying its erasure requests, in
//! the batch's transaction (docs/privacy.md).
//!
//! The keys and suppressions of every subject the batch names are read in
//! one statement, under the privacy lock taken shared, so an erasure is
//! either wholly before the batch or wholly after it. A sealed event whose
//! subject's key is gone, and any event (sealed or in clear) naming a
//! suppressed subject, is skipped and counted, never dead-lettered: it is
//! what erasure asked for. A sealed record that does not open is
//! dead-lettered as `invalid`.

use std::collections::{BTreeSet, HashMap};

use panorama_core::ContactEvent;
use panorama_proto::sealed::{OpenError, Subject, SubjectKey, SubjectSecret};
use panorama_store::{BatchTransaction, ErasureInput, ErasureOutcome};

use crate::batch::Batch;
use crate::dead_letter::Verdict;

/// A batch's events once opened: what to project, in the order consumed.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// The events to project.
    pub(crate) events: Vec<ContactEvent>,
    /// The record each came from (an index into the batch's records).
    pub(crate) event_records: Vec<usize>,
    /// Records that did not decode or open: to dead-letter.
    pub(crate) undecodable: Vec<Verdict>,
    /// What was skipped because of an erasure.
    pub(crate) skipped: Skipped,
}

/// Events skipped because of an erasure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Sealed events whose subject's key was destroyed.
    pub(crate) erased: u64,
    /// Events naming a suppressed subject.
    pub(crate) suppressed: u64,
}

/// Opens `batch`'s sealed events and drops the events of suppressed
/// subjects.
pub(crate) async fn open(
    transaction: &mut BatchTransaction<'_>,
    batch: &Batch,
    secret: &SubjectSecret,
) -> Result<Opened, panorama_store::Error> {
    let clear_subjects: Vec<Vec<Subject>> = batch
        .events
        .iter()
        .map(|event| secret.subjects(event))
        .collect();
    let wanted: BTreeSet<Subject> = clear_subjects
        .iter()
        .flatten()
        .chain(batch.sealed.iter().flat_map(|(_, sealed)| &sealed.subjects))
        .copied()
        .collect();
    let wanted: Vec<[u8; 32]> = wanted.iter().map(|subject| *subject.as_bytes()).collect();
    let found = transaction.subject_keys(&wanted).await?;
    let suppressed = |subjects: &[Subject]| {
        subjects
            .iter()
            .any(|subject| found.suppressed.contains(subject.as_bytes()))
    };
    let keys: HashMap<Subject, SubjectKey> = found
        .keys
        .iter()
        .filter_map(|(subject, key)| {
            Some((Subject::from_slice(subject)?, SubjectKey::from_slice(key)?))
        })
        .collect();

    let mut opened = Opened {
        undecodable: batch.undecodable.clone(),
        ..Opened::default()
    };
    let mut in_order: Vec<(usize, ContactEvent)> =
        Vec::with_capacity(batch.events.len() + batch.sealed.len());
    for ((event, record), subjects) in batch
        .events
        .iter()
        .zip(&batch.event_records)
        .zip(&clear_subjects)
    {
        if suppressed(subjects) {
            opened.skipped.suppressed += 1;
        } else {
            in_order.push((*record, event.clone()));
        }
    }
    for (record, sealed) in &batch.sealed {
        if suppressed(&sealed.subjects) {
            opened.skipped.suppressed += 1;
            continue;
        }
        match sealed.open(secret, &keys) {
            Ok(event) => in_order.push((*record, event)),
            Err(OpenError::Erased) => opened.skipped.erased += 1,
            Err(OpenError::Invalid(error)) => {
                let record_at = &batch.records[*record];
                tracing::warn!(
                    event_id = %sealed.event_id,
                    partition = record_at.partition,
                    offset = record_at.offset,
                    %error,
                    "sealed record does not open; dead-lettering it"
                );
                opened.undecodable.push(Verdict {
                    record: *record,
                    event_id: Some(sealed.event_id),
                    reason: error.reason(),
                    sqlstate: None,
                    error: error.to_string(),
                });
            }
        }
    }
    in_order.sort_by_key(|(record, _)| *record);
    opened.undecodable.sort_by_key(|verdict| verdict.record);
    for (record, event) in in_order {
        opened.events.push(event);
        opened.event_records.push(record);
    }
    Ok(opened)
}

/// Applies `batch`'s erasure requests, after its events.
pub(crate) async fn apply_erasures(
    transaction: &mut BatchTransaction<'_>,
    batch: &Batch,
    secret: &SubjectSecret,
) -> Result<Vec<ErasureOutcome>, panorama_store::Error> {
    let subject_of =
        |identifier: &panorama_core::Identifier| *secret.subject(identifier).as_bytes();
    let mut outcomes = Vec::with_capacity(batch.erasures.len());
    for request in &batch.erasures {
        let input = ErasureInput {
            request_id: request.request_id,
            customer_id: request.customer_id,
            requested_by: request.requested_by.clone(),
            requested_at: request.requested_at,
        };
        outcomes.push(transaction.apply_erasure(&input, &subject_of).await?);
    }
    Ok(outcomes)
}
