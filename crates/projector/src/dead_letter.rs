//! Dead letters: records the projector gives up on go to the dead-letter
//! topic, with headers saying why and where they came from, and into the
//! ledger (`dead_letters`) in the same transaction as the offsets that move
//! past them.

use chrono::{SecondsFormat, Utc};
use panorama_bus::{ConsumedRecord, OutboundRecord};
use panorama_store::DeadLetter;
use uuid::Uuid;

/// DLQ header holding why a record was dead-lettered: `undecodable`,
/// `invalid` (breaks the event contract) or `rejected` (PostgreSQL refused
/// the event).
pub const DLQ_REASON_HEADER: &str = "panorama-dlq-reason";
/// DLQ header holding the decoder's or PostgreSQL's message.
pub const DLQ_ERROR_HEADER: &str = "panorama-dlq-error";
/// DLQ header holding PostgreSQL's error code, for `rejected` records.
pub const DLQ_SQLSTATE_HEADER: &str = "panorama-dlq-sqlstate";
/// DLQ header holding `topic/partition/offset` of the original record.
pub const DLQ_ORIGIN_HEADER: &str = "panorama-dlq-origin";
/// DLQ header holding the original record's topic.
pub const DLQ_TOPIC_HEADER: &str = "panorama-dlq-topic";
/// DLQ header holding the original record's partition.
pub const DLQ_PARTITION_HEADER: &str = "panorama-dlq-partition";
/// DLQ header holding the original record's offset.
pub const DLQ_OFFSET_HEADER: &str = "panorama-dlq-offset";
/// DLQ header holding the event id, when the record decoded.
pub const DLQ_EVENT_ID_HEADER: &str = "panorama-dlq-event-id";
/// DLQ header holding when the record was dead-lettered (RFC 3339).
pub const DLQ_AT_HEADER: &str = "panorama-dlq-at";

/// Longest error message kept in a header or the ledger.
const MAX_ERROR_CHARS: usize = 500;

/// Why one record of a batch is dead-lettered.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Index of the record in the batch.
    pub(crate) record: usize,
    /// The event's id, when it decoded.
    pub(crate) event_id: Option<Uuid>,
    /// `undecodable`, `invalid` or `rejected`.
    pub(crate) reason: &'static str,
    /// PostgreSQL's error code, for `rejected`.
    pub(crate) sqlstate: Option<String>,
    /// What went wrong.
    pub(crate) error: String,
}

impl Verdict {
    /// The ledger row for this verdict about `record`.
    pub(crate) fn ledger_entry(&self, record: &ConsumedRecord) -> DeadLetter {
        DeadLetter {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            event_id: self.event_id,
            reason: self.reason.to_owned(),
            sqlstate: self.sqlstate.clone(),
            error: bounded(&self.error),
        }
    }

    /// The dead-letter topic's copy of `record`: its key, value and headers,
    /// and headers saying why and where from.
    pub(crate) fn outbound(&self, record: &ConsumedRecord) -> OutboundRecord {
        let mut headers = record.headers.clone();
        let mut add =
            |name: &str, value: String| headers.push((name.to_owned(), value.into_bytes()));
        add(DLQ_REASON_HEADER, self.reason.to_owned());
        add(DLQ_ERROR_HEADER, bounded(&self.error));
        if let Some(sqlstate) = &self.sqlstate {
            add(DLQ_SQLSTATE_HEADER, sqlstate.clone());
        }
        add(
            DLQ_ORIGIN_HEADER,
            format!("{}/{}/{}", record.topic, record.partition, record.offset),
        );
        add(DLQ_TOPIC_HEADER, record.topic.clone());
        add(DLQ_PARTITION_HEADER, record.partition.to_string());
        add(DLQ_OFFSET_HEADER, record.offset.to_string());
        if let Some(event_id) = self.event_id {
            add(DLQ_EVENT_ID_HEADER, event_id.to_string());
        }
        add(
            DLQ_AT_HEADER,
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        OutboundRecord {
            key: record
                .key
                .as_deref()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .unwrap_or_default(),
            payload: record.payload.clone().unwrap_or_default(),
            headers,
        }
    }
}

fn bounded(message: &str) -> String {
    message.chars().take(MAX_ERROR_CHARS).collect()
}
