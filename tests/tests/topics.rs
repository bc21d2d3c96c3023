//! `panorama topics` asks for durability the cluster can give: it refuses a
//! replication factor the cluster cannot honour instead of creating a topic
//! that silently has fewer copies, and reports what a topic really has.

use std::time::Duration;

use panorama_bus::{Error, TopicSpec, ensure_topics, topic_partition_count};
use panorama_testkit::{broker, random_name};

fn spec(name: &str, replication_factor: i32, min_insync_replicas: i32) -> TopicSpec {
    TopicSpec {
        name: name.to_owned(),
        partitions: 3,
        replication_factor,
        min_insync_replicas,
        retention_ms: 3_600_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_only_as_durable_as_the_cluster_can_make_them() {
    let bootstrap = tokio::task::spawn_blocking(|| broker().bootstrap())
        .await
        .expect("broker");
    let name = random_name("durable");

    // The test broker is one broker: three copies cannot be had.
    match ensure_topics(&bootstrap, &[spec(&name, 3, 2)]).await {
        Err(Error::Topic { topic, problem }) => {
            assert_eq!(topic, name);
            assert!(problem.contains("needs as many brokers"), "{problem}");
            assert!(problem.contains("has 1"), "{problem}");
        }
        other => panic!("a replication factor of 3 on one broker must be refused: {other:?}"),
    }
    match ensure_topics(&bootstrap, &[spec(&name, 1, 2)]).await {
        Err(Error::Topic { problem, .. }) => assert!(problem.contains("exceeds"), "{problem}"),
        other => panic!("min.insync.replicas above the replicas must be refused: {other:?}"),
    }
    let lookup = (bootstrap.clone(), name.clone());
    let partitions = tokio::task::spawn_blocking(move || {
        topic_partition_count(&lookup.0, &lookup.1, Duration::from_secs(5))
    })
    .await
    .expect("task")
    .expect("metadata");
    assert_eq!(partitions, 0, "nothing was created");

    let reports = ensure_topics(&bootstrap, &[spec(&name, 1, 1)])
        .await
        .expect("one copy on one broker");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].partitions, 3);
    assert_eq!(reports[0].replication_factor, 1);
    assert_eq!(reports[0].brokers, 1);
    // Again: the topic exists and has what is asked.
    let again = ensure_topics(&bootstrap, &[spec(&name, 1, 1)])
        .await
        .expect("an existing topic that has what is asked");
    assert_eq!(again[0].partitions, 3);
}
