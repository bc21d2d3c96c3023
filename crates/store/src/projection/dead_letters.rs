//! The dead-letter ledger: one row per record the projector gave up on,
//! written in the same transaction as the offsets that move past it.

use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::Result;

/// A record the projector dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Topic of the record.
    pub topic: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// The event's id, when the record decoded.
    pub event_id: Option<Uuid>,
    /// `undecodable`, `invalid` or `rejected`.
    pub reason: String,
    /// PostgreSQL's error code when it refused the event.
    pub sqlstate: Option<String>,
    /// What went wrong, without the record's content.
    pub error: String,
}

/// Records `letters` for `group`; a record recorded before (a batch redone
/// after a crash) is kept as it was.
pub(crate) async fn record_dead_letters(
    transaction: &Transaction<'_>,
    group: &str,
    letters: &[DeadLetter],
) -> Result<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = letters.iter().map(|l| l.topic.as_str()).collect();
    let partitions: Vec<i32> = letters.iter().map(|l| l.partition).collect();
    let offsets: Vec<i64> = letters.iter().map(|l| l.offset).collect();
    let events: Vec<Option<Uuid>> = letters.iter().map(|l| l.event_id).collect();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    let sqlstates: Vec<Option<&str>> = letters.iter().map(|l| l.sqlstate.as_deref()).collect();
    let errors: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
    let statement = transaction
        .prepare_cached(
            "INSERT INTO dead_letters
                 (consumer_group, topic, partition, \"offset\", event_id, reason, sqlstate, error)
             SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::int8[], $5::uuid[],
                                      $6::text[], $7::text[], $8::text[])
             ON CONFLICT DO NOTHING",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &group,
                &topics,
                &partitions,
                &offsets,
                &events,
                &reasons,
                &sqlstates,
                &errors,
            ],
        )
        .await?;
    Ok(())
}
