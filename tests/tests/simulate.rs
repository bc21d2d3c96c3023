//! `panorama simulate` through the real webhooks, broker, projector and
//! PostgreSQL: a seeded burst ends with exactly the customers, merges and
//! cases (resolved ones too) its plan predicts, and the same seed gives the
//! same customers.

use std::collections::BTreeSet;

use panorama_simulator::{expect, run};
use panorama_testkit::TestApp;

/// A seed whose first requests hold merges (second numbers linked later)
/// and repeat contacts: checked by the assertions below.
const SEED: u64 = 20_261_123;
const CUSTOMERS: usize = 12;
const REQUESTS: u64 = 300;

/// One partition: the projector then reads the events in the order they
/// were sent, which is the order the plan's prediction assumes. Which
/// profiles merge into which (and so the merge count) depends on the order
/// the projector reads events in; with several partitions it may read one
/// partition ahead of another.
async fn app() -> TestApp {
    TestApp::builder()
        .partitions(1)
        .simulated_channels()
        .spawn()
        .await
}

/// Every customer (survivor) as the set of its identifiers, `kind:value`.
async fn canonical_customers(app: &TestApp) -> BTreeSet<BTreeSet<String>> {
    let rows = query(
        app,
        "SELECT COALESCE(c.survivor_id, c.id)::text, i.kind || ':' || i.value
         FROM identifiers i JOIN customers c ON c.id = i.customer_id",
    )
    .await;
    let mut by_customer: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for row in rows {
        by_customer
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1));
    }
    by_customer.into_values().collect()
}

async fn query(app: &TestApp, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await.expect("query");
    drop(client);
    let _ = driver.await;
    rows
}

async fn count(app: &TestApp, sql: &str) -> usize {
    let rows = query(app, sql).await;
    usize::try_from(rows[0].get::<_, i64>(0)).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_run_ends_with_the_customers_merges_and_cases_its_plan_predicts() {
    let first = app().await;
    let options = first.simulation(SEED, CUSTOMERS, REQUESTS);
    let expected = expect(&options.planned(), None).expect("a valid plan");
    assert!(
        expected.merges > 0,
        "the burst links second numbers: {expected:?}"
    );
    assert!(expected.cases > 0, "{expected:?}");

    let report = run(&options).await.expect("the simulation runs");
    let total = report.total();
    assert_eq!(total.errors, 0, "{report:?}");
    assert_eq!(total.skipped, 0, "every provider is configured: {report:?}");
    assert_eq!(total.sent, REQUESTS, "{report:?}");
    assert!(
        report.providers.len() >= 8,
        "traffic through (nearly) every provider: {report:?}"
    );
    first.wait_for_events(expected.events as i64).await;

    let profiles = count(&first, "SELECT count(*) FROM customers").await;
    let merged = count(
        &first,
        "SELECT count(*) FROM customers WHERE COALESCE(survivor_id, id) <> id",
    )
    .await;
    let cases = count(
        &first,
        "SELECT count(*) FROM cases WHERE merged_into IS NULL",
    )
    .await;
    assert_eq!(
        (profiles, merged, profiles - merged, cases),
        (
            expected.profiles,
            expected.merges,
            expected.customers,
            expected.cases
        ),
        "profiles, merges, customers and cases as predicted: {expected:?}"
    );
    let resolved = count(
        &first,
        "SELECT count(*) FROM cases WHERE merged_into IS NULL AND status = 'resolved'",
    )
    .await;
    assert_eq!(
        resolved, expected.resolved,
        "settled matters' cases resolved by the agent: {expected:?}"
    );
    assert!(expected.resolved > 0, "{expected:?}");
    let customers = canonical_customers(&first).await;
    assert_eq!(customers.len(), expected.customers);
    first.stop().await;

    // The same seed against a fresh app: the same customers, by identifiers.
    let second = app().await;
    let burst = second.simulate_burst(SEED, CUSTOMERS, REQUESTS).await;
    assert_eq!(burst.expectation, expected);
    assert_eq!(canonical_customers(&second).await, customers);
    let phone = burst.a_phone_number().replace('+', "%2B");
    let found = second
        .get_json(&format!("/v1/customers/lookup?phone={phone}"))
        .await;
    assert!(found["event_count"].as_i64().unwrap_or(0) > 0, "{found}");
    second.stop().await;
}
