//! The daily roll-ups under concurrent projectors: every batch adds to the
//! same few rows of the day (contacts per channel, answers per score), so
//! two batches in flight at once must not queue on them. A batch still open
//! after its aggregates must not hold up another batch of the same day and
//! channel, and the insights, a recount and an erasure still add up
//! afterwards.

use std::time::Duration;

use panorama_core::{
    ContactEvent, EventDraft, FeedbackDraft, Identifier, IdentifierDraft, IdentifierKind,
    ValidationContext,
};
use panorama_proto::sealed::SubjectSecret;
use panorama_store::{ErasureInput, InsightsQuery, PartitionOffset, Store};
use panorama_testkit::{TestDatabase, aggregate_mismatches, migrated_database, random_name};
use tokio::sync::oneshot;
use tokio_postgres::NoTls;

/// Longer than a batch of two events takes on a loaded machine, far
/// shorter than the test's own timeout: a batch still waiting then is
/// queued behind the open one.
const DEADLINE: Duration = Duration::from_secs(20);

/// A call and a survey answer from `phone`, on the same day and channel
/// as every other call of this test.
fn batch(phone: &str, name: &str) -> Vec<ContactEvent> {
    let context = ValidationContext::now(None);
    let draft = |kind: &str, feedback: Option<FeedbackDraft>| EventDraft {
        event_id: Some(format!("{name}-{kind}")),
        occurred_at: Some("2026-03-01T10:00:00Z".to_owned()),
        channel: Some("phone".into()),
        event_type: Some(kind.into()),
        identifiers: vec![IdentifierDraft::new(
            IdentifierKind::Phone,
            phone.to_owned(),
        )],
        feedback,
        ..EventDraft::default()
    };
    vec![
        draft("call.ended", None)
            .validate(&context)
            .expect("valid call"),
        draft(
            "feedback.submitted",
            Some(FeedbackDraft {
                metric: "nps".to_owned(),
                score: 9,
                comment: None,
            }),
        )
        .validate(&context)
        .expect("valid answer"),
    ]
}

async fn connect(database: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// The roll-up rows of the test's day and channel, as (shard, contacts),
/// and the survey rows as (shard, responses).
async fn rollup_rows(client: &tokio_postgres::Client) -> (Vec<(i16, i64)>, Vec<(i16, i64)>) {
    let rows = |table: &str, column: &str| {
        format!(
            "SELECT shard, {column} FROM {table}
             WHERE day = '2026-03-01' AND channel = 'phone' ORDER BY shard"
        )
    };
    let mut out = Vec::new();
    for query in [
        rows("daily_channel_contacts", "contacts"),
        rows("daily_feedback", "responses"),
    ] {
        out.push(
            client
                .query(&query, &[])
                .await
                .expect("roll-up rows")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect::<Vec<_>>(),
        );
    }
    let feedback = out.pop().unwrap_or_default();
    (out.pop().unwrap_or_default(), feedback)
}

/// Projects the calls and answers of `+31611000001` and `+31611000002`
/// in two batches, the second run while the first is open after its
/// aggregates; panics when the second waits for the first.
async fn overlapping_batches(store: &Store) {
    let (group, topic) = (random_name("group"), random_name("topic"));
    let offsets = |partition: i32| {
        vec![PartitionOffset {
            topic: topic.clone(),
            partition,
            next_offset: 1,
            epoch: None,
        }]
    };

    // The first batch projects its events, then stays open until released.
    let (applied_tx, applied_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let first = {
        let (store, offsets, group) = (store.clone(), offsets(0), group.clone());
        tokio::spawn(async move {
            store
                .in_batch(&group, &offsets, async move |transaction| {
                    let outcome = transaction.apply(&batch("+31611000001", "first")).await?;
                    let _ = applied_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, panorama_store::Error>(outcome)
                })
                .await
        })
    };
    applied_rx
        .await
        .expect("the first batch applied its events");

    // The second batch, same day, channel, metric and score, on another
    // partition, commits while the first is still open.
    let second = {
        let (store, offsets, group) = (store.clone(), offsets(1), group.clone());
        tokio::spawn(async move {
            store
                .apply_batch(&group, &batch("+31611000002", "second"), &offsets)
                .await
        })
    };
    let waited = tokio::time::timeout(DEADLINE, second).await;
    let _ = release_tx.send(());
    let first = first.await.expect("first task").expect("first batch");
    let second = waited
        .expect("the second batch waited on the first: a roll-up row is shared")
        .expect("second task")
        .expect("second batch");
    assert_eq!((first.inserted.len(), second.inserted.len()), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_does_not_wait_for_another_open_batch_of_the_same_day() {
    let (database, store) = migrated_database(4).await;
    overlapping_batches(&store).await;

    // The two batches wrote different shards; readers add them up.
    let insights = store
        .insights(&InsightsQuery {
            since: Some("2026-03-01T00:00:00Z".parse().expect("time")),
            until: Some("2026-03-02T00:00:00Z".parse().expect("time")),
            channel: None,
        })
        .await
        .expect("insights");
    assert_eq!(insights.contacts_per_channel.get("phone"), Some(&2));
    assert_eq!(insights.responses.get("nps"), Some(&2));
    let client = connect(&database).await;
    assert_eq!(
        rollup_rows(&client).await,
        (vec![(0, 1), (1, 1)], vec![(0, 1), (1, 1)]),
        "a shard per batch open at the same time"
    );
    let mismatches = aggregate_mismatches(&client).await.expect("recount");
    assert!(mismatches.is_empty(), "{mismatches:?}");

    // Batches one after the other take the lowest shard again.
    store
        .apply_batch(
            &random_name("group"),
            &batch("+31611000003", "third"),
            &[] as &[PartitionOffset],
        )
        .await
        .expect("third batch");
    assert_eq!(
        rollup_rows(&client).await,
        (vec![(0, 2), (1, 1)], vec![(0, 2), (1, 1)])
    );
}

/// An erasure lowers a key spread over shards by what the person counted
/// there, leaving one row with the rest, which a recount agrees with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_folds_the_shards_of_a_lowered_day_into_what_is_left() {
    let (database, store) = migrated_database(4).await;
    overlapping_batches(&store).await;
    let client = connect(&database).await;
    let profile: uuid::Uuid = client
        .query_one(
            "SELECT customer_id FROM identifiers WHERE kind = 'phone' AND value = '+31611000002'",
            &[],
        )
        .await
        .expect("the second caller's profile")
        .get(0);

    let request = store
        .request_erasure(profile, "admin")
        .await
        .expect("request")
        .expect("a known customer");
    store
        .mark_erasure_published(request.erasure_id)
        .await
        .expect("mark")
        .expect("the request");
    let secret = SubjectSecret::new(&store.subject_secret().await.expect("secret"));
    let subject_of = |identifier: &Identifier| *secret.subject(identifier).as_bytes();
    let input = ErasureInput {
        request_id: request.erasure_id,
        customer_id: profile,
        requested_by: request.requested_by.clone(),
        requested_at: request.requested_at,
    };
    let outcome = store
        .in_batch("test", &[] as &[PartitionOffset], async |batch| {
            batch.apply_erasure(&input, &subject_of).await
        })
        .await
        .expect("erasure");
    assert!(outcome.applied);
    let counts: std::collections::BTreeMap<String, u64> = outcome.counts.iter().cloned().collect();
    assert_eq!(
        (counts["daily_channel_contacts"], counts["daily_feedback"]),
        (1, 1),
        "one key lowered in each: {counts:?}"
    );

    assert_eq!(
        rollup_rows(&client).await,
        (vec![(0, 1)], vec![(0, 1)]),
        "the shards of the lowered key folded into one row"
    );
    let mismatches = aggregate_mismatches(&client).await.expect("recount");
    assert!(mismatches.is_empty(), "{mismatches:?}");
}
