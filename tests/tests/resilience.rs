//! Nothing lost, nothing doubled: a projector restarted mid-stream resumes
//! exactly at the stored offsets, and a poison record goes to the
//! dead-letter topic without stalling the stream.

use panorama::ProcessRole;
use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_e2e::{at_minute, contact};
use panorama_projector::{DLQ_ORIGIN_HEADER, DLQ_REASON_HEADER, Projector};
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::json;

#[path = "support/topic.rs"]
mod topic;
use topic::read_records;

fn dlq_producer(app: &TestApp) -> Producer {
    Producer::new(&ProducerSettings::new(&app.options.kafka.brokers)).expect("producer")
}

async fn stop(projector: Projector) {
    tokio::task::spawn_blocking(move || projector.stop())
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_projector_resumes_at_the_stored_offset_inside_a_record_batch() {
    // Gateway only: projectors are started by hand. One partition, and the
    // 1,000 events go in one request, so the producer writes them in a few
    // large record batches and a 7-record projector batch ends inside one.
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(1)
        .spawn()
        .await;
    let events: Vec<_> = (0..1000)
        .map(|n| {
            contact(
                n % 50,
                &format!("restart-{n}"),
                at_minute(n as i64),
                "phone",
            )
        })
        .collect();
    assert_eq!(
        app.post_events(&json!({ "events": events })).await.status(),
        202
    );

    let mut small_batches = app.options.projector_settings().expect("settings");
    small_batches.max_batch = 7;
    let first =
        Projector::spawn(small_batches, app.store.clone(), dlq_producer(&app)).expect("projector");
    let first_stats = first.stats();
    eventually("the first projector stored some offsets", WAIT, || async {
        (app.stored_offsets().await > 0).then_some(())
    })
    .await;
    stop(first).await;

    let processed = first_stats.records() as i64;
    assert!(
        processed > 0 && processed < 1000,
        "stopped mid-stream, after {processed} records"
    );
    assert_eq!(
        app.stored_offsets().await,
        processed,
        "stored offset = records processed"
    );
    assert_eq!(app.store.totals().await.expect("totals").events, processed);

    let second = Projector::spawn(
        app.options.projector_settings().expect("settings"),
        app.store.clone(),
        dlq_producer(&app),
    )
    .expect("projector");
    let second_stats = second.stats();
    app.wait_for_offsets(1000).await;
    stop(second).await;

    assert_eq!(
        second_stats.records() as i64,
        1000 - processed,
        "resumed exactly at the stored offset"
    );
    assert_eq!(second_stats.duplicates(), 0, "nothing processed twice");
    assert_eq!(first_stats.duplicates(), 0);
    assert_eq!(app.store.totals().await.expect("totals").events, 1000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_dead_lettered_and_the_stream_moves_on() {
    let app = TestApp::builder().partitions(1).spawn().await;
    let producer = dlq_producer(&app);
    let garbage = OutboundRecord {
        key: "phone:+31600000000".into(),
        payload: b"\xde\xad\xbe\xef this is not a contact event".to_vec(),
        headers: vec![("origin".into(), b"test".to_vec())],
    };
    producer
        .publish(&app.options.kafka.topic, &[garbage])
        .await
        .expect("garbage written");
    assert_eq!(
        app.post_events(&contact(3, "after-poison", at_minute(1), "email"))
            .await
            .status(),
        202
    );

    app.wait_for_events(1).await;
    app.wait_for_offsets(2).await;
    assert_eq!(app.records_in(&app.options.kafka.dlq_topic).await, 1);

    let dead = read_records(&app, &app.options.kafka.dlq_topic, 1)
        .await
        .into_iter()
        .next()
        .expect("one dead letter");
    assert_eq!(dead.header(DLQ_REASON_HEADER), Some(&b"undecodable"[..]));
    let origin = format!("{}/0/0", app.options.kafka.topic);
    assert_eq!(dead.header(DLQ_ORIGIN_HEADER), Some(origin.as_bytes()));
    assert_eq!(
        dead.header("origin"),
        Some(&b"test"[..]),
        "original headers kept"
    );
    assert_eq!(
        dead.payload.as_deref(),
        Some(&b"\xde\xad\xbe\xef this is not a contact event"[..])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_in_one_group_share_the_partitions_without_loss_or_double_work() {
    // Gateway only; two projector members of one group over 3 partitions.
    // The second joins while the first is working, so the group rebalances
    // mid-stream: each record must be stored by exactly one member.
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(3)
        .spawn()
        .await;
    let mut settings = app.options.projector_settings().expect("settings");
    settings.max_batch = 50;
    let first = Projector::spawn(settings.clone(), app.store.clone(), dlq_producer(&app))
        .expect("projector");
    let first_stats = first.stats();

    let events: Vec<_> = (0..2000)
        .map(|n| contact(n % 200, &format!("group-{n}"), at_minute(n as i64), "web"))
        .collect();
    let (before, after) = events.split_at(1000);
    for chunk in before.chunks(500) {
        assert_eq!(
            app.post_events(&json!({ "events": chunk })).await.status(),
            202
        );
    }
    eventually("the first member started storing", WAIT, || async {
        (first_stats.records() > 0).then_some(())
    })
    .await;
    let second =
        Projector::spawn(settings, app.store.clone(), dlq_producer(&app)).expect("projector");
    let second_stats = second.stats();
    eventually("the group rebalanced onto both members", WAIT, || async {
        (second.is_assigned() && first.is_assigned()).then_some(())
    })
    .await;
    // Keys spread over every partition, so both members get records now.
    for chunk in after.chunks(500) {
        assert_eq!(
            app.post_events(&json!({ "events": chunk })).await.status(),
            202
        );
    }

    app.wait_for_offsets(2000).await;
    app.wait_for_events(2000).await;
    stop(first).await;
    stop(second).await;

    assert_eq!(
        first_stats.records() + second_stats.records(),
        2000,
        "every record stored once: first {} + second {}",
        first_stats.records(),
        second_stats.records()
    );
    assert_eq!(
        first_stats.duplicates() + second_stats.duplicates(),
        0,
        "no record projected twice"
    );
    assert!(
        second_stats.records() > 0,
        "the second member took over partitions"
    );
    assert_eq!(app.store.totals().await.expect("totals").events, 2000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bounded_in_bytes_as_well_as_records() {
    // Gateway only: nothing consumes but the consumer under test.
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(1)
        .spawn()
        .await;
    let producer = dlq_producer(&app);
    let big: Vec<OutboundRecord> = (0..20)
        .map(|n| OutboundRecord {
            key: format!("k{n}"),
            payload: vec![b'x'; 50_000],
            headers: vec![],
        })
        .collect();
    producer
        .publish(&app.options.kafka.topic, &big)
        .await
        .expect("records written");
    let settings = panorama_bus::ConsumerSettings::new(
        &app.options.kafka.brokers,
        panorama_testkit::random_name("bounded"),
        &app.options.kafka.topic,
    );
    let sizes = tokio::task::spawn_blocking(move || {
        let mut consumer =
            panorama_bus::BatchConsumer::new(&settings, topic::from_start()).expect("consumer");
        let deadline = std::time::Instant::now() + WAIT;
        let mut sizes = Vec::new();
        while sizes.iter().sum::<usize>() < 20 {
            assert!(std::time::Instant::now() < deadline, "read {sizes:?}");
            let batch = consumer
                .next_batch(1000, 120_000, std::time::Duration::from_millis(500))
                .expect("poll");
            if !batch.is_empty() {
                sizes.push(batch.len());
            }
        }
        sizes
    })
    .await
    .expect("reader");
    // 120,000 bytes hold two 50,000-byte records and the third crosses the
    // bound: never more than three in a batch, however many are waiting.
    assert!(sizes.iter().all(|size| *size <= 3), "batch sizes {sizes:?}");
    assert!(sizes.len() >= 7, "batch sizes {sizes:?}");
    app.stop().await;
}
