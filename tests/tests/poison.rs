//! Nothing accepted is ever stuck. An event PostgreSQL refuses is isolated
//! from the batch it came in and dead-lettered, with its reason, while the
//! events around it become visible; records a producer wrote to the topic
//! past the event contract go the same way; and the gateway refuses those
//! same events at the door, naming the field.

use std::time::Duration;

use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_core::{EventDraft, IdentifierDraft, IdentifierKind, ValidationContext};
use panorama_e2e::{at_minute, contact};
use panorama_projector::{
    DLQ_EVENT_ID_HEADER, DLQ_OFFSET_HEADER, DLQ_PARTITION_HEADER, DLQ_REASON_HEADER,
    DLQ_SQLSTATE_HEADER,
};
use panorama_testkit::{TestApp, eventually};
use prost::Message as _;
use serde_json::{Value, json};

#[path = "support/topic.rs"]
mod topic;
use topic::read_records;

/// How soon ordinary events must be visible, poison or not (generous for a
/// loaded test machine; a stalled stream never gets there).
const VISIBLE_WITHIN: Duration = Duration::from_secs(20);

/// An ordinary contact of one of twenty customers.
fn ordinary(n: usize) -> Value {
    contact(
        n % 20,
        &format!("ordinary-{n}"),
        at_minute(n as i64),
        "phone",
    )
}

/// Waits, at most [`VISIBLE_WITHIN`], until the stored offsets reach
/// `records` and the history holds `events`: a poison event must not hold
/// the ordinary ones back for more than a moment.
async fn within_seconds(app: &TestApp, records: i64, events: i64) {
    eventually(
        "every record stored and every ordinary event visible",
        VISIBLE_WITHIN,
        || async {
            let stored = app.stored_offsets().await;
            let visible = app.store.totals().await.ok()?.events;
            (stored == records && visible == events).then_some(())
        },
    )
    .await;
}

fn header(record: &panorama_bus::ConsumedRecord, name: &str) -> String {
    record
        .header(name)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_postgresql_refuses_is_dead_lettered_and_the_rest_of_its_batch_committed() {
    let app = TestApp::builder().partitions(1).spawn().await;
    // PostgreSQL refuses one event for a reason no retry can fix, as an
    // index entry too large or a value out of range would.
    app.psql(
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.summary = 'refuse me' THEN
             RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22023';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_marked BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION refuse_marked();",
    )
    .await;

    // One request, so the refused event shares a batch with 80 others.
    let mut events: Vec<Value> = (0..80).map(ordinary).collect();
    let mut marked = ordinary(1000);
    marked["summary"] = json!("refuse me");
    events.insert(40, marked);
    let response = app.post_events(&json!({ "events": events })).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("ids");
    let marked_id = accepted["accepted"][40].as_str().expect("id").to_owned();
    let later: Vec<Value> = (80..100).map(ordinary).collect();
    assert_eq!(
        app.post_events(&json!({ "events": later })).await.status(),
        202
    );

    within_seconds(&app, 101, 100).await;
    assert_eq!(
        app.psql(&format!(
            "SELECT count(*) FROM events WHERE event_id = '{marked_id}'"
        ))
        .await
        .trim(),
        "0"
    );
    assert_eq!(
        app.psql("SELECT reason, sqlstate, partition, \"offset\", event_id FROM dead_letters")
            .await
            .trim(),
        format!("rejected|22023|0|40|{marked_id}"),
        "the ledger holds exactly the refused event"
    );
    let dead = read_records(&app, &app.options.kafka.dlq_topic, 1).await;
    assert_eq!(dead.len(), 1, "exactly one dead letter");
    assert_eq!(header(&dead[0], DLQ_REASON_HEADER), "rejected");
    assert_eq!(header(&dead[0], DLQ_SQLSTATE_HEADER), "22023");
    assert_eq!(header(&dead[0], DLQ_PARTITION_HEADER), "0");
    assert_eq!(header(&dead[0], DLQ_OFFSET_HEADER), "40");
    assert_eq!(header(&dead[0], DLQ_EVENT_ID_HEADER), marked_id);
    // The dead letter is the original record, still sealed: the
    // dead-letter topic holds nothing an erasure could not reach.
    let payload = dead[0].payload.as_deref().expect("payload");
    match panorama_proto::sealed::decode_record(payload).expect("the original record") {
        panorama_proto::sealed::Record::Sealed(sealed) => {
            assert_eq!(sealed.event_id.to_string(), marked_id);
        }
        other => panic!("the dead letter is not sealed: {other:?}"),
    }
    app.stop().await;
}

/// A valid event in the contract's protobuf form, to bend past the contract.
fn protobuf_event(event_id: &str) -> panorama_proto::v1::ContactEvent {
    let context = ValidationContext::now(None);
    let event = EventDraft {
        event_id: Some(event_id.to_owned()),
        channel: Some("chat".into()),
        source: Some("producer".into()),
        event_type: Some("chat.message".into()),
        identifiers: vec![IdentifierDraft::new(
            IdentifierKind::Email,
            "poison@example.com",
        )],
        ..EventDraft::default()
    }
    .validate(&context)
    .expect("valid");
    panorama_proto::to_proto(&event)
}

/// `n` characters of CJK Extension B: four bytes each in UTF-8.
fn four_byte_text(n: u32) -> String {
    (0..n)
        .map(|i| char::from_u32(0x20000 + i % 0xa6d0).expect("a CJK Extension B character"))
        .collect()
}

/// The events that stopped the stream once, each as a record a producer
/// writes to the topic directly, and as what a sender would post.
fn poisons() -> Vec<(
    &'static str,
    panorama_proto::v1::ContactEvent,
    Option<Value>,
)> {
    let mut long_thread = protobuf_event("poison-thread");
    long_thread.conversation_id = four_byte_text(998);

    let mut ancient = protobuf_event("poison-received-at");
    // Year -7500: chrono has it, PostgreSQL's timestamptz does not.
    ancient.received_at = Some(prost_types::Timestamp {
        seconds: -298_800_000_000,
        nanos: 0,
    });

    let mut handle = protobuf_event("poison-handle");
    handle.identifiers = vec![panorama_proto::v1::Identifier {
        kind: panorama_proto::v1::IdentifierKind::X as i32,
        value: "İ".repeat(100),
        trust: panorama_proto::v1::Trust::Unspecified as i32,
    }];

    let mut assignee = protobuf_event("poison-assignee");
    assignee.channel = panorama_proto::v1::Channel::Agent as i32;
    assignee.r#type = "task.created".into();
    assignee.subject = "call back".into();
    assignee.attributes = [
        (
            "task.id".to_owned(),
            "0193a0c0-0000-7000-8000-000000000001".to_owned(),
        ),
        ("task.due_at".to_owned(), "2026-12-01T10:00:00Z".to_owned()),
        ("task.channel".to_owned(), "phone".to_owned()),
        ("task.assignee".to_owned(), four_byte_text(1024)),
    ]
    .into_iter()
    .collect();

    let posted = |event_id: &str| {
        let mut body = contact(7, event_id, at_minute(1), "chat");
        body["source"] = json!("producer");
        body
    };
    let mut thread_body = posted("poison-thread-posted");
    thread_body["conversation_id"] = json!(four_byte_text(998));
    let mut handle_body = posted("poison-handle-posted");
    handle_body["identifiers"] = json!([{"kind": "x", "value": "İ".repeat(100)}]);
    let mut assignee_body = posted("poison-assignee-posted");
    assignee_body["type"] = json!("task.created");
    assignee_body["subject"] = json!("call back");
    assignee_body["attributes"] = json!({
        "task.id": "0193a0c0-0000-7000-8000-000000000002",
        "task.due_at": "2026-12-01T10:00:00Z",
        "task.assignee": four_byte_text(1024),
    });
    vec![
        ("conversation_id", long_thread, Some(thread_body)),
        ("received_at", ancient, None),
        ("identifiers[0].value", handle, Some(handle_body)),
        ("attributes.task.assignee", assignee, Some(assignee_body)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_contract_are_refused_at_the_door_and_dead_lettered_from_the_topic() {
    let app = TestApp::builder().partitions(1).spawn().await;
    let producer =
        Producer::new(&ProducerSettings::new(&app.options.kafka.brokers)).expect("producer");
    let poisons = poisons();
    let mut ordinary_count = 0usize;
    let mut post_ordinary = async |app: &TestApp| {
        assert_eq!(
            app.post_events(&ordinary(ordinary_count)).await.status(),
            202
        );
        ordinary_count += 1;
    };
    post_ordinary(&app).await;
    for (field, record, posted) in &poisons {
        // At the door: refused, naming the field, nothing published.
        if let Some(body) = posted {
            let response = app.post_events(body).await;
            assert_eq!(response.status(), 422, "{field}");
            let problem: Value = response.json().await.expect("problem");
            assert!(
                problem["field"]
                    .as_str()
                    .is_some_and(|at| at.starts_with(field.split('.').next().unwrap_or(field))),
                "{field}: {problem}"
            );
        }
        // From a producer that writes to the topic directly.
        producer
            .publish(
                &app.options.kafka.topic,
                &[OutboundRecord {
                    key: "email:poison@example.com".into(),
                    payload: record.encode_to_vec(),
                    headers: vec![],
                }],
            )
            .await
            .expect("written to the topic");
        post_ordinary(&app).await;
    }

    // Ordinary events 0..5 at offsets 0, 2, 4, 6, 8; poisons between them.
    within_seconds(&app, 9, 5).await;
    let ledger = app
        .psql("SELECT \"offset\", reason FROM dead_letters ORDER BY \"offset\"")
        .await;
    assert_eq!(
        ledger.trim(),
        "1|invalid\n3|invalid\n5|invalid\n7|invalid",
        "each poison dead-lettered as breaking the contract"
    );
    let dead = read_records(&app, &app.options.kafka.dlq_topic, 4).await;
    let offsets: Vec<String> = dead
        .iter()
        .map(|record| header(record, DLQ_OFFSET_HEADER))
        .collect();
    assert_eq!(offsets, ["1", "3", "5", "7"]);
    for record in &dead {
        assert_eq!(header(record, DLQ_REASON_HEADER), "invalid");
    }
    app.stop().await;
}
