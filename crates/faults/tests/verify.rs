//! The harness's checks against a real projection: silent on a healthy
//! one, and each planted fault (a lost event, one nobody sent, a doubled
//! one, a dead letter, an aggregate off by one in any table) found and
//! named.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use panorama_faults::events::Generator;
use panorama_faults::verify::{self, Checked};
use panorama_testkit::TestApp;
use serde_json::Value;
use uuid::Uuid;

const EVENTS: u64 = 800;

/// An app holding the projection of `EVENTS` events of the harness's
/// traffic, and their ids.
async fn projected() -> (TestApp, HashSet<Uuid>) {
    let app = TestApp::spawn().await;
    let mut generator = Generator::new(11, EVENTS, 60, chrono::Utc::now());
    let mut sent = HashSet::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    while let Some(request) = generator.next_request(now_ms) {
        let body: Value = serde_json::from_str(&request.body).expect("JSON");
        let response = app.post_events(&body).await;
        let status = response.status();
        assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
        sent.extend(request.ids);
    }
    app.wait_for_events(EVENTS as i64).await;
    (app, sent)
}

async fn check(app: &TestApp, attempted: &HashSet<Uuid>, acknowledged: &HashSet<Uuid>) -> Checked {
    let dir = tempfile::tempdir().expect("run dir");
    let checked = verify::check(&app.database.url, attempted, acknowledged, dir.path())
        .await
        .expect("checks run");
    // Keep the directory's files readable in a failure message.
    let files: BTreeMap<String, String> = std::fs::read_dir(dir.path())
        .expect("run dir")
        .flatten()
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(entry.path()).unwrap_or_default(),
            )
        })
        .collect();
    eprintln!("{files:#?}");
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_projection_passes_and_planted_losses_strangers_and_doubles_are_found() {
    let (app, sent) = projected().await;
    let healthy = check(&app, &sent, &sent).await;
    assert_eq!(
        (
            healthy.lost,
            healthy.duplicated,
            healthy.unexpected,
            healthy.dead_lettered,
            healthy.mismatched_aggregates
        ),
        (0, 0, 0, 0, 0),
        "{healthy:?}"
    );
    assert!(healthy.max_visible_wait_ms >= healthy.p99_visible_wait_ms);
    let behind = verify::offsets_behind(
        &app.options.kafka.brokers,
        &app.database.url,
        &app.options.kafka.topic,
        &app.options.kafka.consumer_group,
    )
    .await
    .expect("offsets");
    assert_eq!(behind, 0);

    // Acknowledged but nowhere: lost. Projected but never sent: unexpected.
    // Acknowledged and dead-lettered with a reason: accounted for, not lost.
    // Projected and dead-lettered too: doubled.
    let ghost = Uuid::now_v7();
    let dead = Uuid::now_v7();
    let mut ids = sent.iter().copied();
    let stranger = ids.next().expect("an event");
    let doubled = ids.next().expect("another event");
    let attempted: HashSet<Uuid> = sent
        .iter()
        .copied()
        .filter(|id| *id != stranger)
        .chain([ghost, dead])
        .collect();
    let client = verify::connect(&app.database.url).await.expect("connect");
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (
                 consumer_group text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
                 \"offset\" bigint NOT NULL, event_id uuid, reason text NOT NULL, sqlstate text,
                 error text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (consumer_group, topic, partition, \"offset\"))",
        )
        .await
        .expect("dead letters");
    client
        .execute(
            "INSERT INTO dead_letters (consumer_group, topic, partition, \"offset\", event_id, reason, error)
             VALUES ('planted', 'planted', 0, 1, $1, 'rejected', 'planted'),
                    ('planted', 'planted', 0, 2, $2, 'invalid', 'planted')",
            &[&dead, &doubled],
        )
        .await
        .expect("plant dead letters");
    let planted = check(&app, &attempted, &attempted).await;
    assert_eq!(planted.lost, 1, "{planted:?}");
    assert_eq!(planted.unexpected, 1, "{planted:?}");
    assert_eq!(planted.duplicated, 1, "{planted:?}");
    assert_eq!(planted.dead_lettered, 1, "{planted:?}");
    assert_eq!(planted.dead_letter_reasons.get("rejected"), Some(&1));
    assert_eq!(planted.mismatched_aggregates, 0, "{planted:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_off_in_any_table_is_found_and_named() {
    let (app, sent) = projected().await;
    let client = verify::connect(&app.database.url).await.expect("connect");
    let survivor = "(SELECT customer_id FROM customer_channels AS x JOIN customers AS c ON c.id = x.customer_id
                     WHERE c.merged_into IS NULL ORDER BY 1 LIMIT 1)";
    let plants = [
        ("customers", format!("UPDATE customers SET event_count = event_count + 1 WHERE id = {survivor}")),
        (
            "customer_channels",
            format!(
                "UPDATE customer_channels SET event_count = event_count + 1
                 WHERE (customer_id, channel) IN (SELECT customer_id, channel FROM customer_channels
                                                   WHERE customer_id = {survivor} LIMIT 1)"
            ),
        ),
        (
            "customer_daily_contacts",
            "DELETE FROM customer_daily_contacts WHERE (customer_id, day) IN
                 (SELECT customer_id, day FROM customer_daily_contacts ORDER BY 1, 2 LIMIT 1)"
                .to_owned(),
        ),
        (
            "customer_feedback",
            "UPDATE customer_feedback SET score_sum = score_sum + 1 WHERE (customer_id, metric) IN
                 (SELECT customer_id, metric FROM customer_feedback ORDER BY 1, 2 LIMIT 1)"
                .to_owned(),
        ),
        (
            "customer_attributes",
            "UPDATE customer_attributes SET value = 'planted' WHERE (customer_id, key) IN
                 (SELECT customer_id, key FROM customer_attributes ORDER BY 1, 2 LIMIT 1)"
                .to_owned(),
        ),
        (
            "cases",
            "UPDATE cases SET contact_count = contact_count + 1 WHERE id IN
                 (SELECT id FROM cases WHERE merged_into IS NULL AND contact_count > 0 ORDER BY id LIMIT 1)"
                .to_owned(),
        ),
        (
            "daily_channel_contacts",
            "UPDATE daily_channel_contacts SET contacts = contacts + 1 WHERE (day, channel, shard) IN
                 (SELECT day, channel, shard FROM daily_channel_contacts ORDER BY 1, 2, 3 LIMIT 1)"
                .to_owned(),
        ),
        (
            "daily_feedback",
            "UPDATE daily_feedback SET responses = responses + 1
                 WHERE (day, channel, metric, score, shard) IN
                 (SELECT day, channel, metric, score, shard FROM daily_feedback
                  ORDER BY 1, 2, 3, 4, 5 LIMIT 1)"
                .to_owned(),
        ),
    ];
    for (table, plant) in &plants {
        let changed = client.execute(plant.as_str(), &[]).await.expect("plant");
        assert_eq!(changed, 1, "{table}: the traffic left a row to change");
    }
    let checked = check(&app, &sent, &sent).await;
    for (table, _) in &plants {
        assert_eq!(
            checked.mismatches_by_table.get(*table),
            Some(&1),
            "{table}: {:?}",
            checked.mismatches_by_table
        );
    }
    assert_eq!(checked.mismatched_aggregates, plants.len() as u64);
    assert_eq!(
        (checked.lost, checked.duplicated, checked.unexpected),
        (0, 0, 0)
    );
    app.stop().await;
}
