//! The change-feed relay of the projector role (docs/event-contract.md,
//! "Change feed"): publishes the outbox rows the projection commits to the
//! topic `panorama.customer-changes.v1`, each exactly once and, per
//! customer, in commit order.
//!
//! - **One relay at a time.** Every projector process runs this task; the
//!   one that holds the lease (a PostgreSQL session advisory lock,
//!   [`Store::try_relay_lease`]) publishes, the others retry every
//!   [`LEASE_RETRY`] and take over when its session ends.
//! - **Claim, produce, delete.** The relay claims rows (each gets the next
//!   `relay_seq` and the partition of its key), produces them with an
//!   idempotent, gapless producer to that partition with the `relay_seq`
//!   in a header, waits for the broker and deletes them.
//! - **Recovery**, on taking the lease and after any failed produce: once
//!   no earlier relay's record can still reach the broker (records expire
//!   after the produce timeout, so a claim older than twice that is
//!   settled), read back the last records of each partition that claimed
//!   rows go to, as many as the claim can have written there
//!   ([`read_back`]); the claimed rows whose `relay_seq` is among them are
//!   on the topic and are deleted, the others are produced again, in
//!   `relay_seq` order ([`settle_claims`]). Not "everything up to the last
//!   record": the gapless guarantee does not cover records that expire, so
//!   an earlier record of a claim can be missing while a later one of the
//!   same partition is there. Producing such a gap again puts it after
//!   those later records: a customer's change can then come after a later
//!   change of the same customer (docs/event-contract.md, "Change feed").
//!
//! A broker that is down never holds the projection back: the batches
//! write the outbox in their own transactions and the backlog grows
//! (`panorama_change_feed_backlog`) until the relay gets through.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use panorama_bus::{
    Connection, ConsumedRecord, OrderedProducer, PartitionedRecord, ProducerSettings,
};
use panorama_core::CrashPoints;
use panorama_proto::v1;
use panorama_store::{ChangeDetail, OutboxRecord, RelayLease, Store};
use prost::Message as _;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::metrics::{CHANGE_FEED_BACKLOG, CHANGE_FEED_LEASE, CHANGE_FEED_RELAYED};

/// How often a process without the lease tries to take it.
pub(crate) const LEASE_RETRY: Duration = Duration::from_secs(1);
/// How long the relay waits after a failure (no topic, broker down).
const FAILURE_BACKOFF: Duration = Duration::from_secs(2);
/// How long an idle relay waits for the outbox's notification before it
/// looks for new rows anyway (a notification is lost with a connection).
const IDLE_FALLBACK: Duration = Duration::from_secs(5);
/// Most rows per claim.
const CLAIM_BATCH: i64 = 500;
/// Records read back per partition on recovery beyond the claimed rows
/// that go there. The records written since the claim began are the
/// claim's own (only the relay writes the topic, and a claim is settled
/// before the next), but the claimed rows left can be fewer: an erasure
/// deletes its person's claimed rows, records already written or not. One
/// claim's size covers all of those, and leaves room for a few records of
/// other writers. Reading too few would publish a change twice, never lose
/// one; reading more costs only a moment of recovery.
const READ_BACK_MARGIN: usize = 500;
/// `ce_source` of every change.
pub const CE_SOURCE: &str = "/panorama/projector";
/// The header that carries a record's `relay_seq`.
pub const RELAY_SEQ_HEADER: &str = "panorama_relay_seq";

/// Where and how the relay publishes.
#[derive(Debug, Clone)]
pub struct ChangeFeedSettings {
    /// The brokers.
    pub connection: Connection,
    /// The change-feed topic.
    pub topic: String,
    /// How long a record may wait for the broker before it expires; a
    /// claim twice this old has settled.
    pub produce_timeout: Duration,
    /// Where to crash on purpose (`change_feed.after_claim`,
    /// `change_feed.after_produce`), for fault tests.
    pub crash_points: CrashPoints,
}

/// Why a relay gave up its round.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] panorama_store::Error),
    #[error(transparent)]
    Bus(#[from] panorama_bus::Error),
    #[error("{0}")]
    Other(String),
}

/// Starts the relay on the current runtime; it runs until aborted.
pub fn spawn_change_feed(store: Store, settings: ChangeFeedSettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.try_relay_lease().await {
                Ok(Some(lease)) => {
                    CHANGE_FEED_LEASE.set(1);
                    tracing::info!(topic = %settings.topic, "change feed relay took the lease");
                    let outcome = relay(&store, lease, &settings).await;
                    CHANGE_FEED_LEASE.set(0);
                    if let Err(error) = outcome {
                        tracing::warn!(%error, "change feed relay lost its lease");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot try the change feed lease"),
            }
            if let Ok(backlog) = store.outbox_backlog().await {
                CHANGE_FEED_BACKLOG.set(backlog);
            }
            tokio::time::sleep(LEASE_RETRY).await;
        }
    })
}

/// Relays while `lease` holds: recovery, then claim rounds; a failed
/// produce starts over with recovery and a new producer. Returns when the
/// lease's session is gone.
async fn relay(
    store: &Store,
    mut lease: RelayLease,
    settings: &ChangeFeedSettings,
) -> Result<(), RelayError> {
    loop {
        if lease.is_lost() {
            return Err(RelayError::Other("the lease's session ended".into()));
        }
        match relay_session(store, &mut lease, settings).await {
            Ok(()) => {}
            // The session is gone: so is the lease.
            Err(RelayError::Store(error)) if lease.is_lost() => {
                return Err(RelayError::Store(error));
            }
            Err(error) => {
                tracing::warn!(%error, "change feed relay failed; recovering");
                if let Ok(backlog) = store.outbox_backlog().await {
                    CHANGE_FEED_BACKLOG.set(backlog);
                }
                tokio::time::sleep(FAILURE_BACKOFF).await;
            }
        }
    }
}

/// One producer's life: recover, then relay until something fails.
async fn relay_session(
    store: &Store,
    lease: &mut RelayLease,
    settings: &ChangeFeedSettings,
) -> Result<(), RelayError> {
    let mut producer_settings = ProducerSettings::new(settings.connection.clone());
    producer_settings.timeout = settings.produce_timeout;
    let producer = OrderedProducer::new(&producer_settings)?;
    let partitions = recover(lease, &producer, settings).await?;
    let mut last_count = Instant::now();
    loop {
        let claimed = lease
            .claim(CLAIM_BATCH, |customer| partition_for(customer, partitions))
            .await?;
        let claimed_at = Instant::now();
        if claimed.is_empty() {
            // Nothing unclaimed, and what this relay claimed it deleted:
            // the outbox is empty, no need to count it every idle poll.
            CHANGE_FEED_BACKLOG.set(0);
            lease.wait_for_rows(IDLE_FALLBACK).await;
            continue;
        }
        if last_count.elapsed() > LEASE_RETRY {
            if let Ok(backlog) = store.outbox_backlog().await {
                CHANGE_FEED_BACKLOG.set(backlog);
            }
            last_count = Instant::now();
        }
        settings.crash_points.reach("change_feed.after_claim");
        // A relay paused past the produce timeout since its claim may have
        // been replaced: what it claimed is another relay's to settle.
        if claimed_at.elapsed() >= settings.produce_timeout {
            return Err(RelayError::Other("claim went stale before produce".into()));
        }
        publish(lease, &producer, settings, &claimed).await?;
    }
}

/// Produces `claimed` in order and deletes them once every one is
/// acknowledged; fails (deleting nothing) when any is not.
async fn publish(
    lease: &RelayLease,
    producer: &OrderedProducer,
    settings: &ChangeFeedSettings,
    claimed: &[OutboxRecord],
) -> Result<(), RelayError> {
    let records: Vec<PartitionedRecord> = claimed.iter().map(kafka_record).collect();
    let outcomes = producer.send_all(&settings.topic, &records).await;
    if let Some(error) = outcomes.into_iter().find_map(Result::err) {
        return Err(error.into());
    }
    settings.crash_points.reach("change_feed.after_produce");
    let seqs: Vec<i64> = claimed.iter().map(|record| record.seq).collect();
    lease.delete(&seqs).await?;
    CHANGE_FEED_RELAYED.inc_by(claimed.len() as u64);
    Ok(())
}

/// Settles what an earlier relay (or this one, before a failure) claimed:
/// waits until none of its records can still reach the broker, deletes the
/// claimed rows found on the topic and produces the others again.
/// Returns the topic's partition count.
async fn recover(
    lease: &RelayLease,
    producer: &OrderedProducer,
    settings: &ChangeFeedSettings,
) -> Result<i32, RelayError> {
    let settle = lease
        .claims_settle_in(settings.produce_timeout * 2 + Duration::from_secs(1))
        .await?;
    if !settle.is_zero() {
        tracing::info!(
            wait_ms = settle.as_millis() as u64,
            "change feed relay waits for earlier claims to settle"
        );
        tokio::time::sleep(settle).await;
    }
    let claimed = lease.claimed().await?;
    let (partitions, found) = read_back(settings, &claimed).await?;
    let settlement = settle_claims(claimed, &found);
    let forgotten = lease.forget_relayed(&settlement.on_topic).await?;
    lease.renew_claims().await?;
    if forgotten > 0 || !settlement.to_produce.is_empty() {
        tracing::info!(
            on_topic = forgotten,
            to_produce = settlement.to_produce.len(),
            "change feed relay recovered its claims"
        );
    }
    CHANGE_FEED_RELAYED.inc_by(forgotten);
    if !settlement.to_produce.is_empty() {
        // A gap produced again lands after the later records of its
        // partition: per customer, that change can come after later ones.
        publish(lease, producer, settings, &settlement.to_produce).await?;
    }
    Ok(partitions)
}

/// Reads back, for each partition `claimed` rows go to, the last records:
/// as many as there are such rows, plus [`READ_BACK_MARGIN`]. Returns the
/// topic's partition count and the `relay_seq`s of the records read.
async fn read_back(
    settings: &ChangeFeedSettings,
    claimed: &[OutboxRecord],
) -> Result<(i32, HashSet<i64>), RelayError> {
    let mut wanted: HashMap<i32, usize> = HashMap::new();
    for record in claimed {
        *wanted.entry(record.partition).or_insert(READ_BACK_MARGIN) += 1;
    }
    let connection = settings.connection.clone();
    let topic = settings.topic.clone();
    let timeout = settings.produce_timeout.max(Duration::from_secs(5));
    let tails = tokio::task::spawn_blocking(move || {
        panorama_bus::last_records(connection, &topic, &wanted, timeout)
    })
    .await
    .map_err(|error| RelayError::Other(error.to_string()))??;
    let partitions = i32::try_from(tails.len()).unwrap_or(i32::MAX);
    let found = relay_seqs_on_topic(tails.iter().flat_map(|(_, records)| records));
    Ok((partitions, found))
}

/// The `relay_seq` headers of `records`. A record without one was not
/// written by the relay (the topic is the relay's, but nothing stops
/// another producer): it is skipped, with a warning.
fn relay_seqs_on_topic<'a>(records: impl IntoIterator<Item = &'a ConsumedRecord>) -> HashSet<i64> {
    let mut found = HashSet::new();
    for record in records {
        let relay_seq = record
            .header(RELAY_SEQ_HEADER)
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|text| text.parse::<i64>().ok());
        match relay_seq {
            Some(relay_seq) => {
                found.insert(relay_seq);
            }
            None => tracing::warn!(
                partition = record.partition,
                offset = record.offset,
                header = RELAY_SEQ_HEADER,
                "change feed record without a relay_seq header; skipped"
            ),
        }
    }
    found
}

/// What recovery does with the claimed rows.
#[derive(Debug, PartialEq, Eq)]
struct ClaimSettlement {
    /// The `relay_seq`s of claimed rows whose records are on the topic:
    /// deleted.
    on_topic: Vec<i64>,
    /// The claimed rows not found, in `relay_seq` order: produced again.
    to_produce: Vec<OutboxRecord>,
}

/// Splits `claimed` by whether its `relay_seq` is among the records read
/// back (`found`; `relay_seq`s of rows deleted long ago may be among them
/// too, and never name a claimed row: the counter never goes back).
fn settle_claims(mut claimed: Vec<OutboxRecord>, found: &HashSet<i64>) -> ClaimSettlement {
    claimed.sort_by_key(|record| record.relay_seq);
    let (on_topic, to_produce): (Vec<OutboxRecord>, Vec<OutboxRecord>) = claimed
        .into_iter()
        .partition(|record| found.contains(&record.relay_seq));
    ClaimSettlement {
        on_topic: on_topic.iter().map(|record| record.relay_seq).collect(),
        to_produce,
    }
}

/// The partition of a customer's changes: Kafka's default partitioner
/// (murmur2 of the key, made positive, modulo the partition count), so a
/// client that keys by customer id agrees with the relay.
pub fn partition_for(customer: &Uuid, partitions: i32) -> i32 {
    let key = customer.hyphenated().to_string();
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's `Utils.murmur2`.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Kafka record of a change: the protobuf value, the customer id as
/// key, the CloudEvents attributes and the `relay_seq` as headers.
fn kafka_record(record: &OutboxRecord) -> PartitionedRecord {
    let customer = record.customer_id.hyphenated().to_string();
    let headers = vec![
        ("ce_specversion".to_owned(), b"1.0".to_vec()),
        (
            "ce_id".to_owned(),
            record.change_id.hyphenated().to_string().into_bytes(),
        ),
        (
            "ce_type".to_owned(),
            record.change_type.clone().into_bytes(),
        ),
        ("ce_source".to_owned(), CE_SOURCE.as_bytes().to_vec()),
        (
            "ce_time".to_owned(),
            record
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into_bytes(),
        ),
        ("ce_subject".to_owned(), customer.clone().into_bytes()),
        ("content-type".to_owned(), b"application/protobuf".to_vec()),
        (
            RELAY_SEQ_HEADER.to_owned(),
            record.relay_seq.to_string().into_bytes(),
        ),
    ];
    PartitionedRecord {
        partition: record.partition,
        key: customer,
        payload: to_proto(record).encode_to_vec(),
        headers,
    }
}

fn uuid_bytes(id: &Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The contract's message of a change.
fn to_proto(record: &OutboxRecord) -> v1::CustomerChange {
    use v1::customer_change::Detail;
    let detail = match &record.detail {
        ChangeDetail::None => None,
        ChangeDetail::Updated {
            display_name,
            attributes,
        } => Some(Detail::Updated(v1::ProfileUpdate {
            display_name: display_name.clone(),
            attributes: attributes
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        })),
        ChangeDetail::Merged { survivor_id } => Some(Detail::Merged(v1::Merge {
            survivor_id: uuid_bytes(survivor_id),
        })),
        ChangeDetail::Unmerged { restored_ids } => Some(Detail::Unmerged(v1::Unmerge {
            restored_ids: restored_ids.iter().map(uuid_bytes).collect(),
        })),
        ChangeDetail::IdentifierAdded(identifier) => Some(Detail::IdentifierAdded(
            panorama_proto::identifier_to_proto(
                &identifier.kind,
                &identifier.value,
                &identifier.trust,
            ),
        )),
        ChangeDetail::Case {
            case_id,
            reason,
            status,
        } => Some(Detail::Case(v1::CaseChange {
            case_id: uuid_bytes(case_id),
            reason: reason.clone().unwrap_or_default(),
            status: status.clone(),
        })),
        ChangeDetail::Task {
            task_id,
            status,
            due_at,
            channel,
            assignee,
        } => Some(Detail::Task(v1::TaskChange {
            task_id: uuid_bytes(task_id),
            status: status.clone(),
            due_at: due_at.map(timestamp),
            channel: channel.clone().unwrap_or_default(),
            assignee: assignee.clone().unwrap_or_default(),
        })),
        ChangeDetail::Conflict {
            conflict_id,
            identifiers,
            customers,
            status,
        } => Some(Detail::Conflict(v1::ConflictChange {
            conflict_id: uuid_bytes(conflict_id),
            identifiers: identifiers
                .iter()
                .map(|i| panorama_proto::identifier_to_proto(&i.kind, &i.value, &i.trust))
                .collect(),
            customers: customers.iter().map(uuid_bytes).collect(),
            status: status.clone(),
        })),
    };
    v1::CustomerChange {
        change_id: uuid_bytes(&record.change_id),
        r#type: record.change_type.clone(),
        time: Some(timestamp(record.at)),
        customer_id: uuid_bytes(&record.customer_id),
        event_id: record.event_id.as_ref().map(uuid_bytes).unwrap_or_default(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
        }
    }

    #[test]
    fn a_customer_always_goes_to_the_same_partition_within_range() {
        for n in 0..200u128 {
            let customer = Uuid::from_u128(n * 7919);
            let partition = partition_for(&customer, 3);
            assert!((0..3).contains(&partition));
            assert_eq!(partition, partition_for(&customer, 3));
        }
        assert_eq!(partition_for(&Uuid::nil(), 0), 0);
    }

    fn claimed_row(relay_seq: i64, partition: i32) -> OutboxRecord {
        OutboxRecord {
            seq: relay_seq + 1000,
            relay_seq,
            partition,
            change_id: Uuid::from_u128(relay_seq as u128),
            change_type: "customer.updated".into(),
            customer_id: Uuid::from_u128(u128::from(partition.unsigned_abs())),
            event_id: None,
            at: chrono::Utc::now(),
            detail: ChangeDetail::None,
        }
    }

    fn read_back(partition: i32, offset: i64, relay_seq: Option<&str>) -> ConsumedRecord {
        ConsumedRecord {
            topic: "changes".into(),
            partition,
            offset,
            key: None,
            payload: Some(Vec::new()),
            headers: relay_seq
                .map(|seq| vec![(RELAY_SEQ_HEADER.to_owned(), seq.as_bytes().to_vec())])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_claimed_row_missing_before_a_later_record_is_produced_again() {
        // Partition 0: record 3 expired while 4 and 5 were written.
        // Partition 1: only 6 got through. 2 and 99 are long gone rows.
        let claimed: Vec<OutboxRecord> = [(7, 1), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 1)]
            .into_iter()
            .map(|(seq, partition)| claimed_row(seq, partition))
            .collect();
        let found: HashSet<i64> = [1, 2, 4, 5, 6, 99].into_iter().collect();
        let settlement = settle_claims(claimed, &found);
        assert_eq!(settlement.on_topic, vec![1, 2, 4, 5, 6]);
        let again: Vec<(i64, i32)> = settlement
            .to_produce
            .iter()
            .map(|record| (record.relay_seq, record.partition))
            .collect();
        assert_eq!(again, vec![(3, 0), (7, 1)], "in relay_seq order");
    }

    #[test]
    fn nothing_found_produces_every_claimed_row_and_nothing_claimed_does_nothing() {
        let claimed = vec![claimed_row(11, 2), claimed_row(10, 2)];
        let settlement = settle_claims(claimed, &HashSet::new());
        assert!(settlement.on_topic.is_empty());
        let again: Vec<i64> = settlement.to_produce.iter().map(|r| r.relay_seq).collect();
        assert_eq!(again, vec![10, 11]);
        let found: HashSet<i64> = [10, 11].into_iter().collect();
        assert_eq!(
            settle_claims(Vec::new(), &found),
            ClaimSettlement {
                on_topic: Vec::new(),
                to_produce: Vec::new(),
            }
        );
    }

    #[test]
    fn records_without_a_relay_seq_header_are_skipped() {
        let records = [
            read_back(0, 10, Some("41")),
            read_back(0, 11, None),
            read_back(0, 12, Some("not a number")),
            read_back(1, 3, Some("42")),
        ];
        let found = relay_seqs_on_topic(&records);
        assert_eq!(found, [41, 42].into_iter().collect::<HashSet<i64>>());
        assert!(relay_seqs_on_topic(&[]).is_empty());
    }

    #[test]
    fn records_carry_the_cloudevents_headers_and_decode() {
        let record = OutboxRecord {
            seq: 7,
            relay_seq: 42,
            partition: 1,
            change_id: Uuid::from_u128(9),
            change_type: "customer.merged".into(),
            customer_id: Uuid::from_u128(2),
            event_id: None,
            at: chrono::Utc::now(),
            detail: ChangeDetail::Merged {
                survivor_id: Uuid::from_u128(1),
            },
        };
        let kafka = kafka_record(&record);
        let header = |name: &str| {
            kafka
                .headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        };
        assert_eq!(header("ce_specversion").as_deref(), Some("1.0"));
        assert_eq!(header("ce_type").as_deref(), Some("customer.merged"));
        assert_eq!(header("ce_source").as_deref(), Some(CE_SOURCE));
        assert_eq!(header("ce_subject"), Some(Uuid::from_u128(2).to_string()));
        assert_eq!(header("ce_id"), Some(Uuid::from_u128(9).to_string()));
        assert_eq!(header(RELAY_SEQ_HEADER).as_deref(), Some("42"));
        assert_eq!(kafka.key, Uuid::from_u128(2).to_string());
        let decoded = v1::CustomerChange::decode(kafka.payload.as_slice()).expect("decodes");
        assert_eq!(decoded.r#type, "customer.merged");
        assert!(decoded.event_id.is_empty());
        match decoded.detail {
            Some(v1::customer_change::Detail::Merged(merge)) => {
                assert_eq!(merge.survivor_id, Uuid::from_u128(1).as_bytes().to_vec());
            }
            other => panic!("unexpected detail {other:?}"),
        }
    }
}
