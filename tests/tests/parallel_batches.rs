//! Two projector transactions at once, driven by hand so that they overlap:
//! the first holds its transaction open after projecting, the second runs.
//!
//! Batches whose new identifiers are disjoint must not wait for each other
//! (no lock covers a whole batch), and batches that meet the same new
//! identifier must still create one customer for it: the second waits for
//! the first at the identifier's primary key, finds it created, and decides
//! again as if it had come after.

use panorama_core::{
    ContactEvent, EventDraft, Identifier, IdentifierDraft, IdentifierKind, ValidationContext,
};
use panorama_store::{BatchOutcome, Error, Store};
use panorama_testkit::{TestDatabase, WAIT, eventually, migrated_database, random_name};
use tokio::sync::oneshot;
use tokio_postgres::NoTls;

/// Customers each batch of the disjoint test creates.
const CUSTOMERS_PER_BATCH: usize = 500;

/// An event `name` on day `day` through `channel`, carrying `identifiers`.
fn event(
    name: &str,
    day: u32,
    channel: &str,
    identifiers: &[(IdentifierKind, String)],
) -> ContactEvent {
    EventDraft {
        event_id: Some(name.to_owned()),
        occurred_at: Some(format!("2026-03-{:02}T10:00:00Z", day + 1)),
        channel: Some(channel.to_owned()),
        event_type: Some("message.received".into()),
        identifiers: identifiers
            .iter()
            .map(|(kind, value)| IdentifierDraft::new(*kind, value.clone()))
            .collect(),
        ..EventDraft::default()
    }
    .validate(&ValidationContext::now(None))
    .unwrap_or_else(|error| panic!("event {name} is invalid: {error}"))
}

fn identifier(kind: IdentifierKind, value: &str) -> Identifier {
    Identifier::parse(kind, value, None).expect("valid identifier")
}

/// A batch transaction that projects `events`, says so on `applied`, and
/// keeps its transaction open until `commit` is sent (or dropped).
fn hold_open(
    store: &Store,
    group: &str,
    events: Vec<ContactEvent>,
    applied: oneshot::Sender<()>,
    commit: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<Result<BatchOutcome, Error>> {
    let (store, group) = (store.clone(), group.to_owned());
    tokio::spawn(async move {
        store
            .in_batch(&group, &[], async move |batch| {
                let outcome = batch.apply(&events).await?;
                let _ = applied.send(());
                let _ = commit.await;
                Ok::<_, Error>(outcome)
            })
            .await
    })
}

/// How many sessions of `database` wait for a lock.
async fn sessions_waiting_for_locks(database: &TestDatabase) -> i64 {
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// The second batch meets the first's new identifier while the first is
/// still open; `isolated`: the second projects it as a part of a batch
/// being isolated, inside a savepoint of its own.
async fn one_new_identifier_met_by_two_open_batches(isolated: bool) {
    let (database, store) = migrated_database(4).await;
    let group = random_name("group");
    let phone = "+31612340001";
    let first = event(
        "first",
        0,
        "phone",
        &[(IdentifierKind::Phone, phone.into())],
    );
    // The second also brings an identifier nobody has seen: once it finds
    // the phone taken, that one must join the phone's customer.
    let second = event(
        "second",
        1,
        "email",
        &[
            (IdentifierKind::Phone, phone.into()),
            (IdentifierKind::Email, "anna@example.nl".into()),
        ],
    );
    let (applied, first_applied) = oneshot::channel();
    let (commit, committing) = oneshot::channel();
    let holder = hold_open(&store, &group, vec![first], applied, committing);
    first_applied.await.expect("the first batch projects");

    let second_batch = tokio::spawn({
        let (store, group) = (store.clone(), group.clone());
        async move {
            store
                .in_batch(&group, &[], async move |batch| {
                    if isolated {
                        batch.apply_isolated(&[second]).await
                    } else {
                        batch.apply(&[second]).await
                    }
                })
                .await
        }
    });
    eventually(
        "the second batch to wait for the first's transaction",
        WAIT,
        || async { (sessions_waiting_for_locks(&database).await > 0).then_some(()) },
    )
    .await;
    assert!(!second_batch.is_finished(), "the second batch waits");
    commit.send(()).expect("the first batch is open");

    let first = holder
        .await
        .expect("task")
        .expect("the first batch commits");
    let second = second_batch
        .await
        .expect("task")
        .expect("the second batch commits without an error");
    assert_eq!(first.new_customers, 1);
    assert_eq!(second.new_customers, 0, "the phone's customer was found");
    let customer = first.inserted[0].1;
    assert_eq!(
        second.inserted[0].1, customer,
        "both events on one customer"
    );
    for owned in [
        identifier(IdentifierKind::Phone, phone),
        identifier(IdentifierKind::Email, "anna@example.nl"),
    ] {
        assert_eq!(
            store.lookup(&owned).await.expect("lookup"),
            Some(customer),
            "{owned:?} belongs to the one customer"
        );
    }
    let totals = store.totals().await.expect("totals");
    assert_eq!(
        (totals.customers, totals.events, totals.identifiers),
        (1, 2, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_open_batches_that_meet_one_new_identifier_create_one_customer() {
    one_new_identifier_met_by_two_open_batches(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_isolated_in_a_savepoint_decides_again_too() {
    one_new_identifier_met_by_two_open_batches(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_with_disjoint_new_identifiers_do_not_wait_for_each_other() {
    let (_database, store) = migrated_database(4).await;
    let group = random_name("group");
    // Each batch on a day and channel of its own, so that the only rows
    // the two could share are identity's.
    let batch = |offset: usize, day: u32, channel: &str| -> Vec<ContactEvent> {
        (offset..offset + CUSTOMERS_PER_BATCH)
            .map(|n| {
                event(
                    &format!("disjoint-{n}"),
                    day,
                    channel,
                    &[
                        (IdentifierKind::Phone, format!("+3161{:07}", 1_000_000 + n)),
                        (IdentifierKind::Email, format!("person{n}@example.com")),
                    ],
                )
            })
            .collect()
    };
    let (applied, first_applied) = oneshot::channel();
    let (commit, committing) = oneshot::channel();
    let holder = hold_open(&store, &group, batch(0, 0, "phone"), applied, committing);
    first_applied.await.expect("the first batch projects");

    let second = batch(CUSTOMERS_PER_BATCH, 1, "email");
    let second = tokio::time::timeout(WAIT, store.apply_batch(&group, &second, &[]))
        .await
        .unwrap_or_else(|_| {
            panic!("the second batch waited {WAIT:?} for the first's open transaction")
        })
        .expect("the second batch commits");
    assert_eq!(second.new_customers, CUSTOMERS_PER_BATCH);
    assert!(!holder.is_finished(), "the first batch was open all along");

    commit.send(()).expect("the first batch is open");
    let first = holder
        .await
        .expect("task")
        .expect("the first batch commits");
    assert_eq!(first.new_customers, CUSTOMERS_PER_BATCH);
    let totals = store.totals().await.expect("totals");
    let customers = 2 * CUSTOMERS_PER_BATCH as i64;
    assert_eq!(
        (totals.customers, totals.events, totals.identifiers),
        (customers, customers, 2 * customers)
    );
}
