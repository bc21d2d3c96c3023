//! Retention with a clock the test controls: events past their rule's age
//! (`chat=90d,call.*=730d`) keep their rows, counts and aggregates and lose
//! every personal field; the others keep everything; the audit log and the
//! dead-letter ledger lose their old rows; two runs at once share the work
//! without counting a row twice; batches bound every transaction; and the
//! projector role's job does it on its own clock and counts it in metrics.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use panorama_core::retention::RetentionRules;
use panorama_store::{RetentionPolicy, RetentionReport};
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

/// What every personal field of the test's events carries, to search for.
const MARKER: &str = "RETAINED-SECRET";

/// A UUID for test event `n` (kept as the event id: it is a UUID).
fn event_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// An event of customer `customer` through `channel`/`event_type`, `days`
/// before `now`, with every personal field filled.
fn event(
    n: u32,
    customer: u32,
    now: DateTime<Utc>,
    days: i64,
    channel: &str,
    event_type: &str,
) -> Value {
    let mut event = json!({
        "event_id": event_id(n),
        "occurred_at": (now - chrono::Duration::days(days)).to_rfc3339(),
        "channel": channel,
        "source": "e2e",
        "type": event_type,
        "direction": "inbound",
        "identifiers": [
            {"kind": "phone", "value": format!("+3161{:07}", 4_200_000 + customer)},
            {"kind": "email", "value": format!("retained{customer}@example.com")}
        ],
        "display_name": format!("{MARKER} name {n}"),
        "contact_reason": format!("{MARKER} my order {n} did not arrive"),
        "subject": format!("{MARKER} subject"),
        "summary": format!("{MARKER} transcript"),
        "conversation_id": format!("thread-{customer}-{channel}"),
        "attributes": {"order": format!("{MARKER}-order"), "customer.tier": "gold"},
    });
    if event_type == "feedback.submitted" {
        event["feedback"] =
            json!({"metric": "csat", "score": 4, "comment": format!("{MARKER} comment")});
    }
    event
}

async fn connect(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&app.database.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Every aggregate the events feed, as JSON text, to compare before and
/// after retention.
async fn aggregates(client: &tokio_postgres::Client) -> Vec<String> {
    let mut tables = Vec::new();
    for table in [
        "customers",
        "customer_channels",
        "customer_daily_contacts",
        "customer_feedback",
        "customer_attributes",
        "cases",
        "daily_channel_contacts",
        "daily_feedback",
    ] {
        let row = client
            .query_one(
                &format!(
                    "SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text
                     FROM {table} AS t"
                ),
                &[],
            )
            .await
            .expect("aggregate rows");
        tables.push(format!("{table}: {}", row.get::<_, String>(0)));
    }
    tables
}

/// The ids of the events whose row (every column but the name, as JSON)
/// mentions any personal value of the test, and of those marked
/// anonymised. (An anonymised event keeps the name the profile shows,
/// checked apart.)
async fn personal_and_anonymised(
    client: &tokio_postgres::Client,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let rows = client
        .query(
            "SELECT event_id::text, (to_jsonb(e) - 'display_name')::text ~ $1, anonymised_at IS NOT NULL FROM events AS e",
            &[&format!("{MARKER}|\\+3161|retained[0-9]+@")],
        )
        .await
        .expect("events");
    let pick = |column: usize| {
        rows.iter()
            .filter(|row| row.get::<_, bool>(column))
            .map(|row| row.get::<_, String>(0))
            .collect()
    };
    (pick(1), pick(2))
}

async fn no_mismatches(client: &tokio_postgres::Client) {
    let mismatches = panorama_testkit::aggregate_mismatches(client)
        .await
        .expect("recount");
    assert!(
        mismatches.is_empty(),
        "{}",
        mismatches
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn sum(a: RetentionReport, b: RetentionReport) -> RetentionReport {
    RetentionReport {
        events_anonymised: a.events_anonymised + b.events_anonymised,
        audit_deleted: a.audit_deleted + b.audit_deleted,
        dead_letters_deleted: a.dead_letters_deleted + b.dead_letters_deleted,
        transactions: a.transactions + b.transactions,
    }
}

#[tokio::test]
async fn old_events_lose_personal_fields_and_keep_their_counts() {
    let app = TestApp::spawn().await;
    let client = connect(&app).await;
    // The time the events are dated from: the real clock, to the second,
    // so the contract's bounds accept them; retention runs at chosen times.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");

    // (n, customer, days old, channel, type, anonymised by the rules at `now`)
    let plan: Vec<(u32, u32, i64, &str, &str, bool)> = vec![
        (1, 1, 100, "chat", "message.received", true),
        (2, 1, 10, "chat", "message.received", false),
        (3, 1, 800, "phone", "call.ended", true),
        (4, 1, 100, "phone", "call.ended", false),
        (5, 1, 1000, "email", "email.received", false),
        (6, 1, 200, "chat", "feedback.submitted", true),
        (7, 2, 95, "chat", "message.received", true),
        (8, 2, 1, "chat", "message.received", false),
        (9, 2, 731, "phone", "call.started", true),
        (10, 2, 729, "phone", "call.ended", false),
    ];
    // Many old chat messages of a third customer, for batches and two runs
    // at once.
    let crowd: Vec<(u32, u32, i64, &str, &str, bool)> = (0..16)
        .map(|i| {
            (
                100 + i,
                3,
                91 + i64::from(i),
                "chat",
                "message.received",
                true,
            )
        })
        .collect();
    let plan: Vec<_> = plan.into_iter().chain(crowd).collect();
    for (n, customer, days, channel, event_type, _) in &plan {
        let response = app
            .post_events(&event(*n, *customer, now, *days, channel, event_type))
            .await;
        assert_eq!(response.status(), 202, "event {n}");
    }
    app.wait_for_events(i64::try_from(plan.len()).expect("count"))
        .await;
    let expected: BTreeSet<String> = plan
        .iter()
        .filter(|step| step.5)
        .map(|step| event_id(step.0))
        .collect();
    let everything: BTreeSet<String> = plan.iter().map(|step| event_id(step.0)).collect();

    // Old and recent audit and dead-letter rows.
    client
        .batch_execute(&format!(
            "INSERT INTO audit_log (id, at, actor, role, method, route, status)
             SELECT gen_random_uuid(), '{now}'::timestamptz - make_interval(days => d),
                    'e2e', 'admin', 'GET', '/v1/customers/{{id}}', 200
             FROM unnest(ARRAY[500, 401, 399, 1]) AS d;
             INSERT INTO dead_letters (consumer_group, topic, partition, \"offset\", reason, error, at)
             SELECT 'e2e', 'retention', 0, d, 'invalid', 'bad', '{now}'::timestamptz - make_interval(days => d)
             FROM unnest(ARRAY[40, 31, 29, 2]) AS d;",
            now = now.to_rfc3339()
        ))
        .await
        .expect("old audit and dead-letter rows");

    no_mismatches(&client).await;
    let before = aggregates(&client).await;
    let (personal, anonymised) = personal_and_anonymised(&client).await;
    assert_eq!(personal, everything, "every event holds personal data");
    assert!(anonymised.is_empty());

    let policy = RetentionPolicy {
        events: RetentionRules::parse("chat=90d,call.*=730d").expect("rules"),
        audit_log: Some(Duration::from_secs(400 * 86_400)),
        dead_letters: Some(Duration::from_secs(30 * 86_400)),
    };
    // Nothing is old enough a year before.
    let early = app
        .store
        .apply_retention(&policy, now - chrono::Duration::days(1200), 2)
        .await
        .expect("retention");
    assert_eq!(early, RetentionReport::default());

    // Two runs at once, in batches of two.
    let (first, second) = tokio::join!(
        app.store.apply_retention(&policy, now, 2),
        app.store.apply_retention(&policy, now, 2),
    );
    let (first, second) = (first.expect("first run"), second.expect("second run"));
    let both = sum(first, second);
    assert_eq!(
        both.events_anonymised,
        expected.len() as u64,
        "{first:?} {second:?}"
    );
    assert_eq!(both.audit_deleted, 2, "{first:?} {second:?}");
    assert_eq!(both.dead_letters_deleted, 2, "{first:?} {second:?}");
    // Batches of at most two rows: at least one transaction per two rows.
    assert!(
        both.transactions >= (expected.len() as u64).div_ceil(2) + 2,
        "{first:?} {second:?}"
    );
    assert!(first.transactions > 0 || second.transactions > 0);

    let (personal, anonymised) = personal_and_anonymised(&client).await;
    assert_eq!(anonymised, expected, "exactly the events past their rule");
    assert_eq!(
        personal,
        everything.difference(&expected).cloned().collect(),
        "the anonymised events hold no personal value, the others all of theirs"
    );
    // An anonymised event keeps a name only when the profile shows it: the
    // latest naming event of customer 3 (all of whose events are past
    // their rule), so that a recount finds the profile's name.
    let named = client
        .query(
            "SELECT e.event_id::text FROM events AS e
             JOIN customers AS c ON c.id = e.customer_id JOIN customers AS s ON s.id = c.survivor_id
             WHERE e.anonymised_at IS NOT NULL AND e.display_name IS NOT NULL
               AND e.display_name = s.display_name",
            &[],
        )
        .await
        .expect("named");
    let named: Vec<String> = named.iter().map(|row| row.get(0)).collect();
    assert_eq!(named, vec![event_id(100)]);
    let unnamed = client
        .query_one(
            "SELECT count(*) FROM events WHERE anonymised_at IS NOT NULL AND display_name IS NOT NULL",
            &[],
        )
        .await
        .expect("names")
        .get::<_, i64>(0);
    assert_eq!(unnamed, 1, "no other anonymised event keeps a name");
    // What is kept of an anonymised event.
    let row = client
        .query_one(
            "SELECT identifiers::text, attributes::text, feedback_metric, feedback_score,
                    feedback_comment, channel, type, conversation_id, display_name, contact_reason
             FROM events WHERE event_id = $1::text::uuid",
            &[&event_id(6)],
        )
        .await
        .expect("anonymised feedback");
    assert_eq!(row.get::<_, String>(0), "[]");
    assert_eq!(row.get::<_, String>(1), r#"{"customer.tier": "gold"}"#);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("csat"));
    assert_eq!(row.get::<_, Option<i16>>(3), Some(4));
    assert_eq!(row.get::<_, Option<String>>(4), None);
    assert_eq!(row.get::<_, String>(5), "chat");
    assert_eq!(row.get::<_, String>(6), "feedback.submitted");
    assert_eq!(
        row.get::<_, Option<String>>(7).as_deref(),
        Some("thread-1-chat")
    );
    assert_eq!(row.get::<_, Option<String>>(8), None);
    assert_eq!(row.get::<_, Option<String>>(9), None);

    // Counts, roll-ups, cases and profiles are as they were, and equal to a
    // recount from the events.
    assert_eq!(aggregates(&client).await, before);
    no_mismatches(&client).await;

    // The audit log and the ledger kept their recent rows only.
    let kept = client
        .query_one(
            "SELECT (SELECT array_agg(extract(day FROM $1 - at)::int ORDER BY at) FROM audit_log
                     WHERE actor = 'e2e'),
                    (SELECT array_agg(\"offset\" ORDER BY \"offset\") FROM dead_letters)",
            &[&now],
        )
        .await
        .expect("kept rows");
    assert_eq!(kept.get::<_, Vec<i32>>(0), vec![399, 1]);
    assert_eq!(kept.get::<_, Vec<i64>>(1), vec![2, 29]);

    // A second run finds nothing left.
    let again = app
        .store
        .apply_retention(&policy, now, 2)
        .await
        .expect("again");
    assert_eq!(again, RetentionReport::default());

    // The timeline still answers, showing which entries were anonymised.
    let customer: String = client
        .query_one(
            "SELECT customer_id::text FROM events WHERE event_id = $1::text::uuid",
            &[&event_id(1)],
        )
        .await
        .expect("customer")
        .get(0);
    let timeline = app
        .get_json(&format!("/v1/customers/{customer}/timeline?limit=50"))
        .await;
    let entries = timeline["entries"]
        .as_array()
        .or_else(|| timeline["items"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 6, "{timeline}");
    for entry in &entries {
        let id = entry["event_id"].as_str().expect("id");
        assert_eq!(
            entry.get("anonymised_at").is_some(),
            expected.contains(id),
            "{entry}"
        );
    }
    // So does the export, with every column.
    let export = app.get(&format!("/v1/customers/{customer}/export")).await;
    assert_eq!(export.status(), 200);
    let export: Value = export.json().await.expect("export");
    let anonymised_in_export = export["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| !event["anonymised_at"].is_null())
        .count();
    assert_eq!(anonymised_in_export, 3);
}

#[tokio::test]
async fn the_projector_job_applies_the_rules_on_its_clock_and_counts_it() {
    let app = TestApp::builder()
        .configure(|options| {
            options.privacy.retention = RetentionRules::parse("chat=90d").expect("rules");
            options.privacy.retention_interval = Duration::from_secs(1);
        })
        .spawn()
        .await;
    let client = connect(&app).await;
    let now = Utc::now();
    for (n, days) in [(1, 120), (2, 5)] {
        let response = app
            .post_events(&event(n, 1, now, days, "chat", "message.received"))
            .await;
        assert_eq!(response.status(), 202);
    }
    app.wait_for_events(2).await;
    let counted = eventually("the job anonymised the old chat", WAIT, || {
        let app = &app;
        let client = &client;
        async move {
            let (_, anonymised) = personal_and_anonymised(client).await;
            let metrics = app.metrics_text().await;
            let counted = metrics
                .lines()
                .find(|line| line.starts_with("panorama_retention_rows_total{table=\"events\"}"))
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|value| value.parse::<f64>().ok())?;
            (anonymised == BTreeSet::from([event_id(1)]) && counted >= 1.0).then_some(metrics)
        }
    })
    .await;
    let last_run = counted
        .lines()
        .find(|line| line.starts_with("panorama_retention_last_run_timestamp_seconds "))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .expect("last run gauge");
    assert!(last_run >= now.timestamp() as f64 - 1.0, "{last_run}");
    no_mismatches(&client).await;
    // Stopped while its runtime runs, as every test does: dropped after it,
    // the webhook dispatcher's thread would wait for the database forever.
    app.stop().await;
}
