//! The change feed (`panorama.customer-changes.v1`): what the projection
//! commits reaches the topic as typed changes with CloudEvents headers,
//! each exactly once and, per customer, in commit order, even when the
//! projector process is killed again and again while events flow.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use panorama::{Options, ProcessRole};
use panorama_bus::{BatchConsumer, ConsumedRecord, ConsumerSettings};
use panorama_core::{ContactEvent, EventDraft, IdentifierDraft, IdentifierKind, ValidationContext};
use panorama_e2e::{at_minute, contact_with};
use panorama_proto::v1;
use panorama_proto::v1::customer_change::Detail;
use panorama_store::{ErasureInput, PartitionOffset};
use panorama_testkit::{
    TestApp, WAIT, eventually, kill_when_parent_exits, migrated_database, postgres, random_name,
};
use prost::Message as _;
use serde_json::{Value, json};
use uuid::Uuid;

#[path = "support/customers.rs"]
mod customers;
#[path = "support/topic.rs"]
mod topic;

use customers::{customer_of, project};

/// The variable that turns [`child_projector`] into a projector process.
const CHILD_OPTIONS: &str = "CHANGE_FEED_CHILD_OPTIONS";

/// A change as read from the topic.
#[derive(Debug, Clone)]
struct Change {
    partition: i32,
    offset: i64,
    key: String,
    headers: HashMap<String, String>,
    message: v1::CustomerChange,
}

impl Change {
    fn kind(&self) -> &str {
        &self.message.r#type
    }

    fn customer(&self) -> Uuid {
        uuid(&self.message.customer_id)
    }

    fn id(&self) -> Uuid {
        uuid(&self.message.change_id)
    }
}

fn uuid(bytes: &[u8]) -> Uuid {
    Uuid::from_slice(bytes).expect("16-byte uuid")
}

fn decode(record: ConsumedRecord) -> Change {
    let message = v1::CustomerChange::decode(record.payload.as_deref().unwrap_or_default())
        .expect("a CustomerChange");
    Change {
        partition: record.partition,
        offset: record.offset,
        key: String::from_utf8(record.key.clone().unwrap_or_default()).expect("utf-8 key"),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect(),
        message,
    }
}

/// Reads the whole change feed of `app` until `done` holds for what was
/// read (failing after `wait`), in partition and offset order.
async fn read_feed(
    app: &TestApp,
    wait: Duration,
    done: impl Fn(&[Change]) -> bool + Send + 'static,
) -> Vec<Change> {
    let settings = ConsumerSettings::new(
        &app.options.kafka.brokers,
        random_name("feed_reader"),
        &app.options.kafka.changes_topic,
    );
    tokio::task::spawn_blocking(move || {
        let mut consumer = BatchConsumer::new(&settings, topic::from_start()).expect("consumer");
        let deadline = Instant::now() + wait;
        let mut changes: Vec<Change> = Vec::new();
        loop {
            let batch = consumer
                .next_batch(500, usize::MAX, Duration::from_millis(200))
                .expect("poll");
            changes.extend(batch.into_iter().map(decode));
            changes.sort_by_key(|change| (change.partition, change.offset));
            if done(&changes) {
                return changes;
            }
            assert!(
                Instant::now() < deadline,
                "the feed did not get there in {wait:?}: {:#?}",
                changes
                    .iter()
                    .map(|c| (c.kind().to_owned(), c.customer()))
                    .collect::<Vec<_>>()
            );
        }
    })
    .await
    .expect("feed reader")
}

/// Whether `changes` hold one of `kind` about `customer`.
fn has(changes: &[Change], kind: &str, customer: &str) -> bool {
    changes
        .iter()
        .any(|change| change.kind() == kind && change.customer().to_string() == customer)
}

fn of_kind<'a>(changes: &'a [Change], kind: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
    changes.iter().filter(move |change| change.kind() == kind)
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.post_json(path, &body).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_publishes_typed_changes_with_cloudevents_headers() {
    let app = TestApp::spawn().await;
    let mut anna = contact_with(
        "feed-anna-1",
        at_minute(0),
        "phone",
        &[("phone", "+31611110001"), ("account", "A-1")],
    );
    anna["display_name"] = json!("Anna de Vries");
    anna["attributes"] = json!({"customer.tier": "gold", "campaign": "spring"});
    project(&app, anna, 1).await;
    let anna_id = customer_of(&app, "account=A-1").await;
    project(
        &app,
        contact_with(
            "feed-mail-1",
            at_minute(1),
            "email",
            &[("email", "anna@example.nl")],
        ),
        2,
    )
    .await;
    let mail_id = customer_of(&app, "email=anna@example.nl").await;
    assert_ne!(anna_id, mail_id);

    // Created, identifiers, profile fields, the case the call opened.
    let first = anna_id.clone();
    let changes = read_feed(&app, WAIT, move |changes| {
        has(changes, "customer.updated", &first) && has(changes, "case.opened", &first)
    })
    .await;
    let created = of_kind(&changes, "customer.created")
        .find(|change| change.customer().to_string() == anna_id)
        .expect("customer.created");
    assert_eq!(created.key, anna_id, "keyed by the customer id");
    assert_eq!(created.headers["ce_specversion"], "1.0");
    assert_eq!(created.headers["ce_type"], "customer.created");
    assert_eq!(created.headers["ce_source"], "/panorama/projector");
    assert_eq!(created.headers["ce_subject"], anna_id);
    assert_eq!(created.headers["ce_id"], created.id().to_string());
    assert_eq!(created.headers["content-type"], "application/protobuf");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&created.headers["ce_time"]).is_ok(),
        "ce_time is RFC 3339: {:?}",
        created.headers
    );
    assert!(!created.message.event_id.is_empty(), "names its event");
    let added: Vec<(i32, String)> = of_kind(&changes, "identifier.added")
        .filter(|change| change.customer().to_string() == anna_id)
        .filter_map(|change| match &change.message.detail {
            Some(Detail::IdentifierAdded(identifier)) => {
                Some((identifier.kind, identifier.value.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(
        added.contains(&(v1::IdentifierKind::Phone as i32, "+31611110001".into())),
        "{added:?}"
    );
    assert!(
        added.contains(&(v1::IdentifierKind::Account as i32, "A-1".into())),
        "{added:?}"
    );
    let updated = of_kind(&changes, "customer.updated")
        .find(|change| change.customer().to_string() == anna_id)
        .expect("customer.updated");
    match &updated.message.detail {
        Some(Detail::Updated(update)) => {
            assert_eq!(update.display_name.as_deref(), Some("Anna de Vries"));
            assert_eq!(
                update.attributes,
                HashMap::from([("tier".to_owned(), "gold".to_owned())]),
                "customer.* attributes only, without the prefix"
            );
        }
        other => panic!("customer.updated detail: {other:?}"),
    }

    // The phone and the address in one event: a merge into the older.
    project(
        &app,
        contact_with(
            "feed-link-1",
            at_minute(2),
            "phone",
            &[("phone", "+31611110001"), ("email", "anna@example.nl")],
        ),
        3,
    )
    .await;
    let survivor = customer_of(&app, "email=anna@example.nl").await;
    let merged = if survivor == anna_id {
        &mail_id
    } else {
        &anna_id
    };
    let wanted = merged.clone();
    let changes = read_feed(&app, WAIT, move |changes| {
        has(changes, "customer.merged", &wanted)
    })
    .await;
    let merge = of_kind(&changes, "customer.merged")
        .find(|change| change.customer().to_string() == *merged)
        .expect("customer.merged");
    match &merge.message.detail {
        Some(Detail::Merged(detail)) => {
            assert_eq!(uuid(&detail.survivor_id).to_string(), survivor);
        }
        other => panic!("customer.merged detail: {other:?}"),
    }

    // An admin unmerge.
    post(
        &app,
        &format!("/v1/customers/{survivor}/unmerge"),
        json!({"merged": merged}),
    )
    .await;
    let wanted = survivor.clone();
    let changes = read_feed(&app, WAIT, move |changes| {
        has(changes, "customer.unmerged", &wanted)
    })
    .await;
    let unmerge = of_kind(&changes, "customer.unmerged")
        .find(|change| change.customer().to_string() == survivor)
        .expect("customer.unmerged");
    match &unmerge.message.detail {
        Some(Detail::Unmerged(detail)) => {
            assert_eq!(uuid(&detail.restored_ids[0]).to_string(), *merged);
        }
        other => panic!("customer.unmerged detail: {other:?}"),
    }

    // Cases and tasks from agent actions.
    let opened = post(
        &app,
        &format!("/v1/customers/{anna_id}/cases"),
        json!({"reason": "Boiler service visit"}),
    )
    .await;
    let case_id = opened["case_id"].as_str().expect("case id").to_owned();
    app.wait_for_events(4).await;
    let due = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let task = post(
        &app,
        &format!("/v1/customers/{anna_id}/tasks"),
        json!({"title": "Call back", "due_at": due, "channel": "phone", "assignee": "desk-12"}),
    )
    .await;
    let task_id = task["task_id"].as_str().expect("task id").to_owned();
    app.wait_for_events(5).await;
    post(
        &app,
        &format!("/v1/cases/{case_id}/resolve"),
        json!({"outcome": "engineer booked"}),
    )
    .await;
    app.wait_for_events(6).await;
    let response = app
        .http
        .patch(format!("{}/v1/tasks/{task_id}", app.base_url))
        .json(&json!({"status": "done"}))
        .send()
        .await
        .expect("PATCH answers");
    assert!(response.status().is_success(), "{}", response.status());
    let (case, task) = (case_id.clone(), task_id.clone());
    let changes = read_feed(&app, WAIT, move |changes| {
        let case_is = |kind: &str| {
            of_kind(changes, kind).any(|change| {
                matches!(&change.message.detail,
                    Some(Detail::Case(detail)) if uuid(&detail.case_id).to_string() == case)
            })
        };
        let task_is = |kind: &str| {
            of_kind(changes, kind).any(|change| {
                matches!(&change.message.detail,
                    Some(Detail::Task(detail)) if uuid(&detail.task_id).to_string() == task)
            })
        };
        case_is("case.opened")
            && case_is("case.resolved")
            && task_is("task.created")
            && task_is("task.completed")
    })
    .await;
    let created_task = of_kind(&changes, "task.created")
        .find_map(|change| match &change.message.detail {
            Some(Detail::Task(detail)) if uuid(&detail.task_id).to_string() == task_id => {
                Some((change.customer().to_string(), detail.clone()))
            }
            _ => None,
        })
        .expect("task.created");
    assert_eq!(created_task.0, anna_id);
    assert_eq!(
        (
            created_task.1.status.as_str(),
            created_task.1.channel.as_str()
        ),
        ("open", "phone")
    );
    assert_eq!(created_task.1.assignee, "desk-12");

    // Another account on Anna's phone: a conflict, dismissed by an admin.
    project(
        &app,
        contact_with(
            "feed-conflict-1",
            at_minute(3),
            "phone",
            &[("phone", "+31611110001"), ("account", "A-2")],
        ),
        // The four agent actions above are events too.
        8,
    )
    .await;
    let changes = read_feed(&app, WAIT, |changes| {
        of_kind(changes, "conflict.opened").next().is_some()
    })
    .await;
    let conflict = of_kind(&changes, "conflict.opened")
        .find_map(|change| match &change.message.detail {
            Some(Detail::Conflict(detail))
                if detail.identifiers.iter().any(|i| i.value == "A-2") =>
            {
                Some(detail.clone())
            }
            _ => None,
        })
        .expect("conflict.opened naming the second account");
    let conflict_id = uuid(&conflict.conflict_id);
    post(
        &app,
        &format!("/v1/identity/conflicts/{conflict_id}/resolve"),
        json!({"action": "dismiss"}),
    )
    .await;
    read_feed(&app, WAIT, move |changes| {
        of_kind(changes, "conflict.resolved").any(|change| {
            matches!(&change.message.detail,
                Some(Detail::Conflict(detail))
                    if uuid(&detail.conflict_id) == conflict_id && detail.status == "dismissed")
        })
    })
    .await;

    // Erasure: customer.erased, the last change of the customer.
    let response = app
        .post_json(&format!("/v1/customers/{anna_id}/erasure"), &json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let wanted = anna_id.clone();
    let changes = read_feed(&app, WAIT, move |changes| {
        has(changes, "customer.erased", &wanted)
    })
    .await;
    let last = changes
        .iter()
        .rfind(|change| change.key == anna_id)
        .expect("changes of Anna");
    assert_eq!(last.kind(), "customer.erased");
}

fn event(event_id: &str, identifiers: &[(IdentifierKind, &str)]) -> ContactEvent {
    EventDraft {
        event_id: Some(event_id.into()),
        channel: Some("phone".into()),
        event_type: Some("call.ended".into()),
        identifiers: identifiers
            .iter()
            .map(|(kind, value)| IdentifierDraft::new(*kind, *value))
            .collect(),
        ..EventDraft::default()
    }
    .validate(&ValidationContext::now(None))
    .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_withdraws_the_changes_not_yet_relayed() {
    // No relay runs here: the outbox keeps every change.
    let (database, store) = migrated_database(2).await;
    let offsets: [PartitionOffset; 0] = [];
    let events = [
        event("bea-1", &[(IdentifierKind::Phone, "+31611112222")]),
        event(
            "bea-2",
            &[
                (IdentifierKind::Phone, "+31611112222"),
                (IdentifierKind::Email, "bea@example.nl"),
            ],
        ),
        event("carl-1", &[(IdentifierKind::Phone, "+31633334444")]),
    ];
    store
        .in_batch("test", &offsets, async |batch| batch.apply(&events).await)
        .await
        .expect("projected");
    let (db, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows_of = async |value: &str| -> Vec<String> {
        db.query(
            "SELECT o.type FROM change_outbox AS o
             WHERE o.customer_id IN (SELECT customer_id FROM identifiers WHERE value = $1)
                OR o.detail->>'value' = $1
             ORDER BY o.seq",
            &[&value],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    assert!(
        rows_of("+31611112222").await.len() >= 3,
        "created, identifiers"
    );
    let bea: Uuid = db
        .query_one(
            "SELECT customer_id FROM identifiers WHERE value = '+31611112222'",
            &[],
        )
        .await
        .expect("bea")
        .get(0);
    let input = ErasureInput {
        request_id: Uuid::now_v7(),
        customer_id: bea,
        requested_by: "admin".into(),
        requested_at: chrono::Utc::now(),
    };
    // Distinct per identifier; the test does not need the real keyed hash.
    let subject_of = |identifier: &panorama_core::Identifier| {
        let mut subject = [0u8; 32];
        for (slot, byte) in subject.iter_mut().zip(identifier.value().bytes()) {
            *slot = byte;
        }
        subject
    };
    let outcome = store
        .in_batch("test", &offsets, async |batch| {
            batch.apply_erasure(&input, &subject_of).await
        })
        .await
        .expect("erased");
    assert!(outcome.applied);
    let left: Vec<(String, Option<String>)> = db
        .query(
            "SELECT type, detail->>'value' FROM change_outbox WHERE $1 = ANY(customers) ORDER BY seq",
            &[&bea],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        left,
        vec![("customer.erased".to_owned(), None)],
        "only the erasure is left to publish"
    );
    let identifiers: i64 = db
        .query_one(
            "SELECT count(*) FROM change_outbox WHERE detail->>'value' IN ('+31611112222', 'bea@example.nl')",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(identifiers, 0, "no identifier of Bea is published");
    assert!(
        !rows_of("+31633334444").await.is_empty(),
        "another customer's changes stay"
    );
}

/// Not a test of its own: the projector process [`exactly_once_while_the_projector_is_killed`]
/// runs, when started with [`CHILD_OPTIONS`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_projector() {
    let Ok(options) = std::env::var(CHILD_OPTIONS) else {
        return;
    };
    let options: Options = serde_json::from_str(&options).expect("child options");
    panorama::serve(&options, ProcessRole::Projector)
        .await
        .expect("the projector runs");
}

/// Starts the projector role in a process of its own, with `crash_points`.
fn spawn_projector(options: &Options, crash_points: &str) -> tokio::process::Child {
    let mut options = options.clone();
    options.crash_points = panorama_core::CrashPoints::parse(crash_points).expect("crash points");
    options.http.addr = "127.0.0.1:0".into();
    // A relay's claims settle after twice this: takeovers wait a moment only.
    options.kafka.produce_timeout = Duration::from_millis(500);
    let child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_projector",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_OPTIONS,
            serde_json::to_string(&options).expect("options"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the projector process starts");
    if let Some(pid) = child.id() {
        kill_when_parent_exits(pid).expect("watchdog");
    }
    child
}

/// Waits until `done` holds (failing after [`WAIT`] without progress),
/// starting the projector again whenever a crash point ended it.
async fn supervise(
    app: &TestApp,
    child: &mut tokio::process::Child,
    crash_points: &str,
    crashes: &mut usize,
    done: impl AsyncFn() -> Option<bool>,
) {
    let mut deadline = Instant::now() + WAIT;
    loop {
        if done().await == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "no progress in {WAIT:?}");
        // The process's exit is the tick: no sleeping.
        if tokio::time::timeout(Duration::from_millis(200), child.wait())
            .await
            .is_ok()
        {
            *crashes += 1;
            *child = spawn_projector(&app.options, crash_points);
            // A new member waits for the dead one's group session to end.
            deadline = Instant::now() + WAIT;
        }
    }
}

/// Rows the outbox ever held, copied by a trigger: what the topic must
/// hold, each exactly once.
const COPY_OUTBOX: &str = "
    CREATE TABLE outbox_copy AS SELECT seq, change_id, customer_id FROM change_outbox WITH NO DATA;
    CREATE FUNCTION copy_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO outbox_copy VALUES (NEW.seq, NEW.change_id, NEW.customer_id);
        RETURN NEW;
    END $$;
    CREATE TRIGGER copy_outbox AFTER INSERT ON change_outbox
        FOR EACH ROW EXECUTE FUNCTION copy_outbox();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_while_the_projector_is_killed() {
    let app = TestApp::builder().role(ProcessRole::Gateway).spawn().await;
    postgres()
        .psql(&app.database.name, COPY_OUTBOX)
        .expect("copy trigger");
    // Only the relay's crash points: a process that ends by itself
    // crashed between claim and produce or between produce and delete.
    let crashing = "change_feed.after_claim=0.15,change_feed.after_produce=0.15";
    let mut child = spawn_projector(&app.options, crashing);
    let (mut crashes, mut kills) = (0usize, 0usize);
    let started = Instant::now();
    let mut posted = 0i64;
    let mut round = 0;
    // At least 8 rounds of 60 events for 30 people, each round linking
    // some of their addresses (merges), and on until the relay crashed at
    // its crash points a few times; every other round, the projector is
    // killed (-9) while it projects and relays.
    while round < 8 || crashes < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(420),
            "only {crashes} crashes at the relay's crash points"
        );
        let mut events = Vec::new();
        for person in 0..30 {
            for step in 0..2 {
                let n = round * 2 + step;
                let phone = format!("+3161{:07}", 3_000_000 + person);
                let email = format!("p{person}-{}@example.com", n % 3);
                let identifiers: Vec<(&str, &str)> = if n % 3 == 0 {
                    vec![("phone", &phone), ("email", &email)]
                } else {
                    vec![("email", &email)]
                };
                let mut event = contact_with(
                    &format!("crash-{person}-{n}"),
                    at_minute(n as i64),
                    "email",
                    &identifiers,
                );
                event["attributes"] = json!({ "customer.round": round.to_string() });
                events.push(event);
            }
        }
        posted += events.len() as i64;
        let before = app.store.totals().await.map(|t| t.events).unwrap_or(0);
        let response = app.post_events(&json!({ "events": events })).await;
        assert_eq!(response.status(), 202);
        if round % 2 == 1 {
            // kill -9 while the round is being projected and relayed.
            supervise(&app, &mut child, crashing, &mut crashes, async || {
                Some(app.store.totals().await.ok()?.events > before)
            })
            .await;
            child.start_kill().expect("kill -9");
            child.wait().await.expect("reaped");
            kills += 1;
            child = spawn_projector(&app.options, crashing);
        }
        supervise(&app, &mut child, crashing, &mut crashes, async || {
            let projected = app.store.totals().await.ok()?.events == posted;
            Some(projected && app.store.outbox_backlog().await.ok()? == 0)
        })
        .await;
        round += 1;
    }
    child.start_kill().expect("kill -9");
    child.wait().await.expect("reaped");
    // A last projector without crash points drains everything.
    let mut child = spawn_projector(&app.options, "");
    app.wait_for_events(posted).await;
    eventually("outbox drained", WAIT, || async {
        (app.store.outbox_backlog().await.ok()? == 0).then_some(())
    })
    .await;
    child.start_kill().expect("stop");
    child.wait().await.expect("reaped");

    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT change_id, customer_id FROM outbox_copy ORDER BY seq",
            &[],
        )
        .await
        .expect("copy");
    let expected: Vec<(Uuid, Uuid)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert!(expected.len() > 100, "{} changes", expected.len());
    let wanted: HashSet<Uuid> = expected.iter().map(|(id, _)| *id).collect();
    // Nothing writes to the topic any more: read all of it.
    let total = app.records_in(&app.options.kafka.changes_topic).await as usize;
    let changes = read_feed(&app, WAIT, move |changes| changes.len() >= total).await;
    let seen: HashSet<Uuid> = changes.iter().map(Change::id).collect();
    assert!(wanted.is_subset(&seen), "every change is on the topic");
    let mut on_topic: HashMap<Uuid, usize> = HashMap::new();
    for change in &changes {
        *on_topic.entry(change.id()).or_default() += 1;
    }
    let duplicates: Vec<_> = on_topic.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "changes published more than once ({crashes} crashes, {kills} kills): {duplicates:?}"
    );
    assert_eq!(changes.len(), expected.len(), "no change unaccounted for");
    // Per customer, the topic's order is commit order (the outbox's seq
    // order per key).
    let mut want_order: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (id, customer) in &expected {
        want_order.entry(*customer).or_default().push(*id);
    }
    let mut got_order: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for change in &changes {
        got_order
            .entry(change.customer())
            .or_default()
            .push(change.id());
    }
    assert_eq!(got_order, want_order, "per-customer order");
    // relay_seq grows along every partition.
    let mut last: HashMap<i32, i64> = HashMap::new();
    for change in &changes {
        let seq: i64 = change.headers[panorama_projector::RELAY_SEQ_HEADER]
            .parse()
            .expect("relay_seq");
        let previous = last.insert(change.partition, seq);
        assert!(previous < Some(seq), "relay_seq grows within a partition");
    }
    println!(
        "{crashes} crashes, {kills} kills, {} changes",
        changes.len()
    );
}
