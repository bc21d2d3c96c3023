//! A projector frozen past its group session (SIGSTOP, a stalled VM) comes
//! back with a batch it read before another member took its partitions: it
//! must not commit that stale work. Claims fence it off: each assignment
//! bumps the partition's epoch, and offsets are stored only under the epoch
//! the batch was read with.

use panorama_core::{EventDraft, IdentifierDraft, IdentifierKind, ValidationContext};
use panorama_store::{Error, PartitionOffset};
use panorama_testkit::{migrated_database, random_name};

fn event(n: u32) -> panorama_core::ContactEvent {
    EventDraft {
        event_id: Some(format!("fenced-{n}")),
        channel: Some("phone".into()),
        event_type: Some("call.ended".into()),
        identifiers: vec![IdentifierDraft::new(
            IdentifierKind::Phone,
            format!("+3161{:07}", 1_000_000 + n),
        )],
        ..EventDraft::default()
    }
    .validate(&ValidationContext::now(None))
    .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_read_under_a_claim_another_consumer_replaced_stores_nothing() {
    let (_database, store) = migrated_database(2).await;
    let (group, topic) = (random_name("group"), random_name("topic"));

    let zombie = store
        .claim_partitions(&group, &topic, &[0, 1])
        .await
        .expect("first claim");
    assert_eq!(zombie[&0].next_offset, 0);
    let owner = store
        .claim_partitions(&group, &topic, &[0])
        .await
        .expect("second claim");
    assert!(owner[&0].epoch > zombie[&0].epoch);

    let offsets = |partition: i32, epoch: i64| {
        vec![PartitionOffset {
            topic: topic.clone(),
            partition,
            next_offset: 10,
            epoch: Some(epoch),
        }]
    };
    let stale = store
        .in_batch(&group, &offsets(0, zombie[&0].epoch), async |batch| {
            batch.apply(&[event(1)]).await
        })
        .await;
    match stale {
        Err(Error::Fenced { partitions, .. }) => assert_eq!(partitions, [0]),
        other => panic!("a stale claim must be fenced off, got {other:?}"),
    }
    assert_eq!(
        store.totals().await.expect("totals").events,
        0,
        "nothing written"
    );
    assert_eq!(
        store
            .next_offsets(&group, &topic, &[0])
            .await
            .expect("offsets")[&0],
        0,
        "the offset did not move"
    );

    // The zombie's claim on partition 1 still holds: nobody took it over.
    store
        .in_batch(&group, &offsets(1, zombie[&1].epoch), async |batch| {
            batch.apply(&[event(2)]).await
        })
        .await
        .expect("a live claim stores");
    store
        .in_batch(&group, &offsets(0, owner[&0].epoch), async |batch| {
            batch.apply(&[event(1)]).await
        })
        .await
        .expect("the new owner stores");
    assert_eq!(store.totals().await.expect("totals").events, 2);
    let stored = store
        .next_offsets(&group, &topic, &[0, 1])
        .await
        .expect("offsets");
    assert_eq!((stored[&0], stored[&1]), (10, 10));
}
