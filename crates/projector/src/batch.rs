//! A batch of consumed records, decoded: the events to project (in clear or
//! sealed), the erasure requests, the records that did not decode, and the
//! offsets that storing the batch moves to.

use std::collections::BTreeMap;

use panorama_bus::ConsumedRecord;
use panorama_core::ContactEvent;
use panorama_proto::Checks;
use panorama_proto::sealed::{ErasureRequest, Record, SealedEvent};
use panorama_store::PartitionOffset;

use crate::dead_letter::Verdict;
use crate::trace::{Traced, trace_context};

/// Records of one batch, sorted into what to project and what to
/// dead-letter.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Every record, in the order consumed.
    pub(crate) records: Vec<ConsumedRecord>,
    /// The events that decoded in clear, in the order consumed.
    pub(crate) events: Vec<ContactEvent>,
    /// The record each event came from (an index into `records`).
    pub(crate) event_records: Vec<usize>,
    /// Sealed events, with the record each came from, in the order
    /// consumed: they are opened in the batch's transaction.
    pub(crate) sealed: Vec<(usize, SealedEvent)>,
    /// Erasure requests, in the order consumed.
    pub(crate) erasures: Vec<ErasureRequest>,
    /// Records that did not decode.
    pub(crate) undecodable: Vec<Verdict>,
    /// Where each partition's stored offset moves once the batch is stored.
    pub(crate) offsets: Vec<PartitionOffset>,
    /// The first offset of each partition in the batch: where to rewind
    /// when the batch cannot be stored.
    pub(crate) starts: Vec<(i32, i64)>,
    /// Events whose sender asked for tracing (sampled `traceparent`).
    pub(crate) traced: Vec<Traced>,
}

impl Batch {
    /// Decodes `records`; `epoch_of` gives the claim each partition was read
    /// under.
    pub(crate) fn sort(
        records: Vec<ConsumedRecord>,
        epoch_of: impl Fn(i32) -> Option<i64>,
    ) -> Batch {
        let mut bounds: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        let mut events = Vec::with_capacity(records.len());
        let mut event_records = Vec::with_capacity(records.len());
        let mut sealed = Vec::new();
        let mut erasures = Vec::new();
        let mut undecodable = Vec::new();
        let mut traced = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let bound = bounds
                .entry((record.topic.clone(), record.partition))
                .or_insert((record.offset, record.offset + 1));
            bound.0 = bound.0.min(record.offset);
            bound.1 = bound.1.max(record.offset + 1);
            let decoded = match record.payload.as_deref() {
                // Only the gateway writes the topic: its records are
                // checked for integrity, not parsed again (a sealed one
                // once opened, in `privacy`).
                Some(payload) => {
                    panorama_proto::sealed::decode_record_with(payload, Checks::Normalised)
                        .map_err(|e| (e.reason(), e.to_string()))
                }
                None => Err(("undecodable", "record has no value".to_owned())),
            };
            let mut trace = |event_id, traceparent: Option<&str>| {
                if let Some(context) = trace_context(record, traceparent) {
                    traced.push(Traced {
                        event_id,
                        context,
                        partition: record.partition,
                        offset: record.offset,
                    });
                }
            };
            match decoded {
                Ok(Record::Event(event)) => {
                    trace(event.event_id, event.traceparent.as_deref());
                    events.push(*event);
                    event_records.push(index);
                }
                Ok(Record::Sealed(event)) => {
                    trace(event.event_id, event.traceparent());
                    sealed.push((index, *event));
                }
                Ok(Record::Erasure(request)) => erasures.push(request),
                Err((reason, error)) => {
                    tracing::warn!(
                        partition = record.partition,
                        offset = record.offset,
                        reason,
                        "record does not decode; dead-lettering it"
                    );
                    undecodable.push(Verdict {
                        record: index,
                        event_id: None,
                        reason,
                        sqlstate: None,
                        error,
                    });
                }
            }
        }
        let starts = bounds
            .iter()
            .map(|((_, partition), (first, _))| (*partition, *first))
            .collect();
        let offsets = bounds
            .into_iter()
            .map(|((topic, partition), (_, next_offset))| PartitionOffset {
                topic,
                partition,
                next_offset,
                epoch: epoch_of(partition),
            })
            .collect();
        Batch {
            records,
            events,
            event_records,
            sealed,
            erasures,
            undecodable,
            offsets,
            starts,
            traced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, payload: &[u8]) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition,
            offset,
            key: Some(b"k".to_vec()),
            payload: Some(payload.to_vec()),
            headers: vec![],
        }
    }

    #[test]
    fn a_record_in_a_form_the_gateway_never_writes_is_dead_lettered_as_invalid() {
        let event = panorama_core::EventDraft {
            channel: Some("phone".into()),
            event_type: Some("call.ended".into()),
            identifiers: vec![panorama_core::IdentifierDraft::new(
                panorama_core::IdentifierKind::Phone,
                "+31612345678",
            )],
            ..panorama_core::EventDraft::default()
        }
        .validate(&panorama_core::ValidationContext::now(None))
        .expect("valid");
        let good = panorama_proto::encode(&event);
        // The same number as people write it: the gateway normalises it
        // before producing, so only a forged record carries it.
        let mut message = panorama_proto::to_proto(&event);
        message.identifiers[0].value = "+31 6 1234 5678".into();
        let forged = prost::Message::encode_to_vec(&message);
        let batch = Batch::sort(vec![record(0, 0, &forged), record(0, 1, &good)], |_| None);
        assert_eq!(batch.events, vec![event]);
        assert_eq!(batch.event_records, vec![1]);
        assert_eq!(batch.undecodable.len(), 1);
        assert_eq!(batch.undecodable[0].record, 0);
        assert_eq!(batch.undecodable[0].reason, "invalid");
        assert!(
            batch.undecodable[0].error.contains("identifiers[0].value"),
            "{}",
            batch.undecodable[0].error
        );
    }

    #[test]
    fn garbage_is_dead_lettered_and_offsets_move_past_it() {
        let batch = Batch::sort(
            vec![
                record(0, 7, b"garbage"),
                record(1, 3, b"\x08\x01"),
                record(0, 8, b"junk"),
            ],
            |partition| (partition == 0).then_some(4),
        );
        assert!(batch.events.is_empty());
        assert_eq!(batch.undecodable.len(), 3);
        assert!(batch.undecodable.iter().all(|v| v.reason == "undecodable"));
        assert_eq!(
            batch.offsets,
            vec![
                PartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    next_offset: 9,
                    epoch: Some(4),
                },
                PartitionOffset {
                    topic: "t".into(),
                    partition: 1,
                    next_offset: 4,
                    epoch: None,
                },
            ]
        );
        assert_eq!(batch.starts, vec![(0, 7), (1, 3)]);
        let first = batch.undecodable[0].outbound(&batch.records[0]);
        let header = |name: &str| {
            first
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(
            header(crate::DLQ_REASON_HEADER).as_deref(),
            Some("undecodable")
        );
        assert_eq!(header(crate::DLQ_ORIGIN_HEADER).as_deref(), Some("t/0/7"));
        assert_eq!(header(crate::DLQ_PARTITION_HEADER).as_deref(), Some("0"));
        assert_eq!(header(crate::DLQ_OFFSET_HEADER).as_deref(), Some("7"));
        assert!(header(crate::DLQ_AT_HEADER).is_some());
        assert_eq!(first.payload, b"garbage");
    }
}
