//! An idle process leaves the broker and PostgreSQL alone and still sees
//! new work at once: a consumer with nothing to read stops fetching and a
//! write by its own process wakes it; the change-feed relay waits for the
//! outbox's notification rather than polling for rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use panorama_bus::{BatchConsumer, ConsumerSettings, OutboundRecord, Producer, ProducerSettings};
use panorama_e2e::{at_minute, contact};
use panorama_testkit::{TestApp, WAIT, broker, random_name};

#[path = "support/topic.rs"]
mod topic;

/// Far longer than any wait below: a consumer that finds records before it
/// was woken by its own process's write, not by its probe.
const NEVER: Duration = Duration::from_secs(600);

fn record(n: usize) -> OutboundRecord {
    OutboundRecord {
        key: format!("key-{}", n % 3),
        payload: format!("record {n}").into_bytes(),
        headers: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_is_woken_by_a_write_of_its_process_and_loses_nothing() {
    let broker = broker();
    let topic = random_name("idle");
    broker.create_topic(&topic, 3).expect("topic");
    let producer = Producer::new(&ProducerSettings::new(broker.bootstrap())).expect("producer");
    let mut settings = ConsumerSettings::new(broker.bootstrap(), random_name("idle"), &topic);
    settings.idle_probe = NEVER;
    let (to_reader, rounds) = std::sync::mpsc::channel::<usize>();
    let (to_writer, read) = tokio::sync::mpsc::unbounded_channel::<Vec<(i32, i64)>>();
    let reader = std::thread::spawn(move || {
        let mut consumer = BatchConsumer::new(&settings, topic::from_start()).expect("consumer");
        let deadline = Instant::now() + WAIT;
        while !consumer.has_assignment() {
            consumer
                .next_batch(100, usize::MAX, Duration::from_millis(50))
                .expect("poll");
            assert!(Instant::now() < deadline, "no assignment after {WAIT:?}");
        }
        // Each round: idle long enough to stop fetching, then read what
        // the writer wrote meanwhile.
        while let Ok(expected) = rounds.recv() {
            let idle_until = Instant::now() + Duration::from_millis(500);
            let mut positions = Vec::new();
            while Instant::now() < idle_until {
                let batch = consumer
                    .next_batch(100, usize::MAX, Duration::from_millis(20))
                    .expect("poll");
                positions.extend(batch.iter().map(|r| (r.partition, r.offset)));
            }
            assert!(positions.is_empty(), "nothing written yet: {positions:?}");
            let _ = to_writer.send(Vec::new());
            let deadline = Instant::now() + Duration::from_secs(10);
            while positions.len() < expected {
                let batch = consumer
                    .next_batch(100, usize::MAX, Duration::from_millis(20))
                    .expect("poll");
                positions.extend(batch.iter().map(|r| (r.partition, r.offset)));
                assert!(
                    Instant::now() < deadline,
                    "an idle consumer did not see this process's write within 10 s \
                     ({} of {expected} records)",
                    positions.len()
                );
            }
            let _ = to_writer.send(positions);
        }
    });
    let mut read = read;
    let mut seen: Vec<(i32, i64)> = Vec::new();
    let mut written = 0;
    for round in [1usize, 5, 2] {
        to_reader.send(round).expect("reader alive");
        // The reader is idle now (it says so before it waits).
        read.recv().await.expect("reader idle");
        let records: Vec<OutboundRecord> = (written..written + round).map(record).collect();
        producer.publish(&topic, &records).await.expect("published");
        written += round;
        seen.extend(read.recv().await.expect("reader read"));
    }
    drop(to_reader);
    reader.join().expect("reader");
    // Every record once: offsets 0..n of each partition, no gap, no repeat.
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, offset) in &seen {
        by_partition.entry(*partition).or_default().push(*offset);
    }
    for offsets in by_partition.values() {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &expected, "each record once, in order: {seen:?}");
    }
    assert_eq!(seen.len(), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_wakes_when_rows_reach_the_outbox() {
    let app = TestApp::spawn().await;
    let topic = app.options.kafka.changes_topic.clone();
    let settings = ConsumerSettings::new(&app.options.kafka.brokers, random_name("feed"), &topic);
    let (to_reader, mut changes) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut consumer =
                BatchConsumer::new(&settings, topic::from_start()).expect("consumer");
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let batch = consumer
                    .next_batch(500, usize::MAX, Duration::from_millis(50))
                    .expect("poll");
                if !batch.is_empty() && to_reader.send(batch.len()).is_err() {
                    return;
                }
            }
        })
    };
    // The first event: the relay has its lease and relayed once, so it is
    // idle from here on.
    let post = async |n: usize| {
        let body = contact(n, &format!("idle-relay-{n}"), at_minute(n as i64), "phone");
        assert_eq!(app.post_events(&body).await.status(), 202);
    };
    post(1).await;
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("the first change relayed");
    // Each next event right after the last change was relayed: the relay
    // has just begun to wait. Polling, it would find the rows at its next
    // look (5 s later); notified, it takes them at once.
    for n in 2..5 {
        while changes.try_recv().is_ok() {}
        let started = Instant::now();
        post(n).await;
        let relayed = tokio::time::timeout(Duration::from_secs(3), changes.recv()).await;
        assert!(
            relayed.is_ok(),
            "change {n} not relayed {:?} after its event",
            started.elapsed()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().expect("reader");
    app.stop().await;
}
