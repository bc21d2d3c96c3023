//! The privacy export end to end (`GET /v1/customers/{id}/export`): a
//! person with contacts on every channel, a case, a note, a task, feedback,
//! a merge with a second profile and a read in the audit trail is exported
//! as one JSON document, compared table by table with what the database
//! holds for the two profiles and with what the test wrote; nothing of a
//! neighbour is in it. A merged id exports the survivor, only admins may
//! export, the export is audited, and a long history streams in bounded
//! chunks from one snapshot.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt as _;
use panorama_core::Role;
use panorama_testkit::{TestApp, WAIT, eventually, random_name};
use serde_json::{Value, json};
use uuid::Uuid;

/// A contact event for `POST /v1/events`.
fn event(
    id: Uuid,
    at: DateTime<Utc>,
    channel: &str,
    event_type: &str,
    identifiers: &[(&str, &str)],
) -> Value {
    json!({
        "event_id": id,
        "occurred_at": at.to_rfc3339(),
        "channel": channel,
        "source": "e2e",
        "type": event_type,
        "direction": "inbound",
        "identifiers": identifiers
            .iter()
            .map(|(kind, value)| json!({"kind": kind, "value": value}))
            .collect::<Vec<_>>(),
    })
}

async fn post_events(app: &TestApp, events: &[Value]) {
    let response = app.post_events(&json!({ "events": events })).await;
    let status = response.status();
    assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
}

/// Posts an agent action as admin and returns the event id it published.
async fn action(app: &TestApp, path: &str, body: Value) -> (Uuid, Value) {
    let response = app.post_json(path, &body).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON answer");
    assert_eq!(status, 202, "{path}: {answer}");
    let event_id = answer["event_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("event id");
    (event_id, answer)
}

async fn customer_by_email(app: &TestApp, email: &str) -> Uuid {
    let profile = app
        .get_json(&format!("/v1/customers/lookup?email={email}"))
        .await;
    Uuid::parse_str(profile["id"].as_str().expect("id")).expect("uuid")
}

/// The rows `sql` selects, each as PostgreSQL's own `to_jsonb` of the row:
/// every column, read without the export's code.
async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let text = app
        .psql(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]') FROM ({sql}) AS t"
        ))
        .await;
    serde_json::from_str(text.trim()).expect("jsonb_agg answers JSON")
}

/// Whether a value as PostgreSQL renders it in JSON and as the export
/// wrote it are the same: timestamps as instants (the offsets are written
/// differently), `bytea` as the export's hex, reals as numbers.
fn same(stored: &Value, exported: &Value) -> bool {
    match (stored, exported) {
        (Value::String(stored), Value::String(exported)) => {
            if stored == exported {
                return true;
            }
            if let Some(hex) = stored.strip_prefix("\\x") {
                return hex == exported;
            }
            match (
                DateTime::parse_from_rfc3339(stored),
                DateTime::parse_from_rfc3339(exported),
            ) {
                (Ok(stored), Ok(exported)) => stored == exported,
                _ => false,
            }
        }
        (Value::Number(stored), Value::Number(exported)) => stored.as_f64() == exported.as_f64(),
        (Value::Array(stored), Value::Array(exported)) => {
            stored.len() == exported.len() && stored.iter().zip(exported).all(|(a, b)| same(a, b))
        }
        (Value::Object(stored), Value::Object(exported)) => {
            stored.len() == exported.len()
                && stored
                    .iter()
                    .all(|(key, a)| exported.get(key).is_some_and(|b| same(a, b)))
        }
        (stored, exported) => stored == exported,
    }
}

/// Checks that `exported` holds exactly the rows `stored`, matched by
/// `key`, each with every column of its table and nothing else.
fn assert_same_rows(what: &str, stored: &[Value], exported: &[Value], key: &[&str]) {
    let key_of = |row: &Value| -> String {
        key.iter()
            .map(|column| row[column].to_string())
            .collect::<Vec<_>>()
            .join("|")
    };
    let stored: BTreeMap<String, &Value> = stored.iter().map(|row| (key_of(row), row)).collect();
    let exported_keys: BTreeMap<String, &Value> =
        exported.iter().map(|row| (key_of(row), row)).collect();
    assert_eq!(
        exported_keys.len(),
        exported.len(),
        "{what}: a row twice in the export"
    );
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        exported_keys.keys().collect::<Vec<_>>(),
        "{what}: the rows held and the rows exported"
    );
    for (row_key, row) in &stored {
        let written = exported_keys[row_key];
        let columns: BTreeSet<&String> = row.as_object().expect("row").keys().collect();
        let fields: BTreeSet<&String> = written.as_object().expect("record").keys().collect();
        assert_eq!(
            columns, fields,
            "{what} {row_key}: every column, no other field"
        );
        for column in columns {
            assert!(
                same(&row[column], &written[column]),
                "{what} {row_key}.{column}: held {} exported {}",
                row[column],
                written[column]
            );
        }
    }
}

/// `GET /v1/customers/{id}/export` with `token` (the admin's when `None`).
async fn export_as(app: &TestApp, id: &str, token: Option<&str>) -> reqwest::Response {
    let path = format!("/v1/customers/{id}/export");
    match token {
        Some(token) => app.request(reqwest::Method::GET, &path, Some(token)),
        None => app.request(reqwest::Method::GET, &path, Some(&app.admin_token)),
    }
    .send()
    .await
    .expect("export answers")
}

/// The export of `id` as admin: its headers checked, its body parsed.
async fn export(app: &TestApp, id: Uuid, survivor: Uuid) -> (String, Value) {
    let response = export_as(app, &id.to_string(), None).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"customer-{survivor}.json\"").as_str()
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers.get("content-length").is_none(),
        "streamed, not sized up front"
    );
    let text = response.text().await.expect("export body");
    let document = serde_json::from_str(&text).expect("the export is one JSON document");
    (text, document)
}

fn list<'a>(document: &'a Value, member: &str) -> &'a [Value] {
    document[member]
        .as_array()
        .unwrap_or_else(|| panic!("{member} is a list"))
}

/// The properties of a schema of the published OpenAPI document.
async fn schema_properties(app: &TestApp, schema: &str) -> BTreeSet<String> {
    let document = app.get_json("/openapi.json").await;
    document["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} has properties"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_everything_written_about_the_person_and_nothing_else() {
    let app = TestApp::spawn().await;
    let start = Utc::now() - Duration::days(3);
    let at = |minutes: i64| start + Duration::minutes(minutes);
    let (ada_phone, ada_email, ada_whatsapp) = ("+31611110001", "ada@example.com", "31611110001");
    let (bea_phone, bea_email) = ("+31611110002", "bea@example.com");
    let (ned_phone, ned_email) = ("+31611110003", "ned@example.com");

    // Ada, on every channel, with every kind of body.
    let mut written: BTreeMap<Uuid, Value> = BTreeMap::new();
    let mut call = event(
        Uuid::now_v7(),
        at(0),
        "phone",
        "call.ended",
        &[("phone", ada_phone)],
    );
    call["duration_seconds"] = json!(125);
    call["agent_id"] = json!("agent-7");
    call["queue"] = json!("billing");
    call["outcome"] = json!("callback promised");
    call["sentiment"] = json!(0.25);
    call["conversation_id"] = json!("call-ada-1");
    call["contact_reason"] = json!("my parcel 4711 did not arrive");
    call["summary"] = json!("Ada called about parcel 4711");
    call["display_name"] = json!("Ada Lovelace");
    let mut mail = event(
        Uuid::now_v7(),
        at(60),
        "email",
        "email.received",
        &[("email", ada_email), ("phone", ada_phone)],
    );
    mail["subject"] = json!("Parcel 4711");
    mail["summary"] = json!("Dear team, parcel 4711 is still not here. Ada");
    mail["conversation_id"] = json!("<ada-1@example.com>");
    let mut form = event(
        Uuid::now_v7(),
        at(120),
        "web",
        "form.submitted",
        &[("email", ada_email)],
    );
    form["summary"] = json!("Contact form: where is parcel 4711?");
    form["attributes"] = json!({"form": "contact", "customer.tier": "gold"});
    let mut whatsapp = event(
        Uuid::now_v7(),
        at(180),
        "social",
        "message.received",
        &[("whatsapp", ada_whatsapp), ("phone", ada_phone)],
    );
    whatsapp["summary"] = json!("Any news about 4711?");
    let mut preferences = event(
        Uuid::now_v7(),
        at(200),
        "web",
        "consent.updated",
        &[("email", ada_email)],
    );
    preferences["consent"] = json!([
        {"channel": "email", "purpose": "marketing", "granted": false},
        {"channel": "phone", "purpose": "service", "granted": true}
    ]);
    for contact in [&call, &mail, &form, &whatsapp, &preferences] {
        let id = Uuid::parse_str(contact["event_id"].as_str().expect("id")).expect("uuid");
        written.insert(id, contact.clone());
    }
    post_events(
        &app,
        &[
            call.clone(),
            mail.clone(),
            form.clone(),
            whatsapp.clone(),
            preferences.clone(),
        ],
    )
    .await;
    app.wait_for_events(5).await;
    let ada = customer_by_email(&app, ada_email).await;

    // Bea, a profile of her own for now; Ned, the neighbour.
    let mut bea_call = event(
        Uuid::now_v7(),
        at(240),
        "phone",
        "call.missed",
        &[("phone", bea_phone)],
    );
    bea_call["summary"] = json!("Missed call from Bea's number");
    let mut bea_mail = event(
        Uuid::now_v7(),
        at(300),
        "email",
        "email.received",
        &[("email", bea_email), ("phone", bea_phone)],
    );
    bea_mail["subject"] = json!("Second address");
    bea_mail["summary"] = json!("Please also use this address for parcel 4711");
    for contact in [&bea_call, &bea_mail] {
        let id = Uuid::parse_str(contact["event_id"].as_str().expect("id")).expect("uuid");
        written.insert(id, contact.clone());
    }
    let ned_events: Vec<Value> = (0..2)
        .map(|n| {
            let mut contact = event(
                Uuid::now_v7(),
                at(320 + n),
                "email",
                "email.received",
                &[("email", ned_email), ("phone", ned_phone)],
            );
            contact["summary"] = json!("Neighbourly secret of Ned");
            contact["display_name"] = json!("Ned Neighbour");
            contact
        })
        .collect();
    let mut more = vec![bea_call.clone(), bea_mail.clone()];
    more.extend(ned_events.iter().cloned());
    post_events(&app, &more).await;
    app.wait_for_events(9).await;
    let bea = customer_by_email(&app, bea_email).await;
    let ned = customer_by_email(&app, ned_email).await;
    assert!(ada != bea && ada != ned && bea != ned);

    // What agents did: a case with a first note, a note, a task, feedback;
    // a note on Bea's profile too.
    let (case_event, opened) = action(
        &app,
        &format!("/v1/customers/{ada}/cases"),
        json!({"reason": "Parcel 4711 lost", "note": "prefers email"}),
    )
    .await;
    let case_id = opened["case_id"].as_str().expect("case id").to_owned();
    let (note_event, _) = action(
        &app,
        &format!("/v1/customers/{ada}/notes"),
        json!({"text": "Carrier says delivered; Ada disputes", "case_id": case_id}),
    )
    .await;
    let due = (Utc::now() + Duration::days(2)).to_rfc3339();
    let (task_event, task) = action(
        &app,
        &format!("/v1/customers/{ada}/tasks"),
        json!({"title": "Call Ada back about 4711", "due_at": due, "channel": "phone",
               "case_id": case_id, "assignee": "desk-12"}),
    )
    .await;
    let (feedback_event, _) = action(
        &app,
        &format!("/v1/customers/{ada}/feedback"),
        json!({"metric": "csat", "score": 4, "comment": "kind agent", "case_id": case_id}),
    )
    .await;
    let (bea_note_event, _) = action(
        &app,
        &format!("/v1/customers/{bea}/notes"),
        json!({"text": "Bea is Ada's second address"}),
    )
    .await;
    let actions = [
        case_event,
        note_event,
        task_event,
        feedback_event,
        bea_note_event,
    ];
    app.wait_for_events(14).await;
    let tasks = app.psql("SELECT count(*) FROM tasks").await;
    assert_eq!(tasks.trim(), "1", "the task is projected");

    // Bea turns out to be Ada: merged, Ada (the older) survives.
    let merged = app
        .post_json(
            &format!("/v1/customers/{ada}/merge"),
            &json!({"other": bea, "reason": "same person, two addresses"}),
        )
        .await;
    assert_eq!(merged.status(), 200);

    // An agent reads the profile through Bea's old id: in the audit trail.
    let desk = random_name("desk");
    let (_, agent) = app
        .store
        .create_token(&desk, Role::Agent)
        .await
        .expect("agent token");
    let agent = agent.expose().to_owned();
    let read = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/customers/{bea}"),
            Some(&agent),
        )
        .send()
        .await
        .expect("profile");
    assert_eq!(read.status(), 200);

    let (text, document) = export(&app, ada, ada).await;

    // The document's shape is the documented one.
    let members: BTreeSet<String> = document
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(members, schema_properties(&app, "CustomerExport").await);
    assert_eq!(document["format"], "panorama.customer-export.v1");
    assert_eq!(document["customer_id"], ada.to_string());
    assert_eq!(document["requested_id"], ada.to_string());
    for (member, schema) in [
        ("events", "ExportEvent"),
        ("identifiers", "ExportIdentifier"),
        ("cases", "ExportCase"),
        ("tasks", "ExportTask"),
        ("identity_history", "ExportHistory"),
        ("merged_profiles", "ExportCustomer"),
        ("audit", "AuditRecord"),
    ] {
        let documented = schema_properties(&app, schema).await;
        for record in list(&document, member) {
            let fields: BTreeSet<String> = record
                .as_object()
                .expect("record")
                .keys()
                .cloned()
                .collect();
            assert_eq!(fields, documented, "{member} records are {schema}s");
        }
    }

    // Table by table, what the database holds for Ada's two profiles, read
    // with the test's own SQL: exactly the export, every column.
    let profiles = format!("'{ada}', '{bea}'");
    let mut customers = vec![document["customer"].clone()];
    customers.extend(list(&document, "merged_profiles").iter().cloned());
    for (what, sql, exported, key) in [
        (
            "customers",
            format!("SELECT * FROM customers WHERE id IN ({profiles})"),
            customers,
            &["id"][..],
        ),
        (
            "identifiers",
            format!("SELECT * FROM identifiers WHERE customer_id IN ({profiles})"),
            list(&document, "identifiers").to_vec(),
            &["kind", "value"][..],
        ),
        (
            "events",
            format!("SELECT * FROM events WHERE customer_id IN ({profiles})"),
            list(&document, "events").to_vec(),
            &["event_id"][..],
        ),
        (
            "cases",
            format!("SELECT * FROM cases WHERE customer_id IN ({profiles})"),
            list(&document, "cases").to_vec(),
            &["id"][..],
        ),
        (
            "tasks",
            format!("SELECT * FROM tasks WHERE customer_id IN ({profiles})"),
            list(&document, "tasks").to_vec(),
            &["id"][..],
        ),
        (
            "customer_feedback",
            format!("SELECT * FROM customer_feedback WHERE customer_id IN ({profiles})"),
            list(&document, "feedback").to_vec(),
            &["customer_id", "metric"][..],
        ),
        (
            "customer_consent",
            format!("SELECT * FROM customer_consent WHERE customer_id IN ({profiles})"),
            list(&document, "consent").to_vec(),
            &["customer_id", "channel", "purpose"][..],
        ),
        (
            "customer_channels",
            format!("SELECT * FROM customer_channels WHERE customer_id IN ({profiles})"),
            list(&document, "channels").to_vec(),
            &["customer_id", "channel"][..],
        ),
        (
            "customer_daily_contacts",
            format!("SELECT * FROM customer_daily_contacts WHERE customer_id IN ({profiles})"),
            list(&document, "daily_contacts").to_vec(),
            &["customer_id", "day"][..],
        ),
        (
            "customer_attributes",
            format!("SELECT * FROM customer_attributes WHERE customer_id IN ({profiles})"),
            list(&document, "attributes").to_vec(),
            &["customer_id", "key"][..],
        ),
        (
            "customer_aliases",
            format!("SELECT * FROM customer_aliases WHERE customer_id IN ({profiles})"),
            list(&document, "aliases").to_vec(),
            &["id"][..],
        ),
        (
            "identity_history",
            format!("SELECT * FROM identity_history WHERE customers && ARRAY[{profiles}]::uuid[]"),
            list(&document, "identity_history").to_vec(),
            &["id"][..],
        ),
        (
            "identity_conflicts",
            format!(
                "SELECT * FROM identity_conflicts WHERE customers && ARRAY[{profiles}]::uuid[]"
            ),
            list(&document, "identity_conflicts").to_vec(),
            &["id"][..],
        ),
        (
            "identity_separations",
            format!(
                "SELECT * FROM identity_separations
                 WHERE customer_a IN ({profiles}) OR customer_b IN ({profiles})"
            ),
            list(&document, "identity_separations").to_vec(),
            &["customer_a", "customer_b"][..],
        ),
        (
            "customer_changes",
            // One record per entry of a row.
            format!(
                "SELECT ch.seq, x.n - 1 AS index, ch.customer_id, x.kind, x.event_id,
                        x.subject_id, ch.at
                 FROM customer_changes AS ch,
                      unnest(ch.kinds, ch.event_ids, ch.subject_ids)
                          WITH ORDINALITY AS x(kind, event_id, subject_id, n)
                 WHERE ch.customer_id IN ({profiles})"
            ),
            list(&document, "changes").to_vec(),
            &["seq", "index"][..],
        ),
        (
            "dead_letters",
            format!(
                "SELECT * FROM dead_letters WHERE event_id IN
                 (SELECT event_id FROM events WHERE customer_id IN ({profiles}))"
            ),
            list(&document, "dead_letters").to_vec(),
            &["topic", "partition", "offset"][..],
        ),
        (
            "audit_log",
            // The export's own entry is written after its snapshot.
            format!(
                "SELECT * FROM audit_log WHERE customer_id IN ({profiles})
                 AND route <> '/v1/customers/{{id}}/export'"
            ),
            list(&document, "audit").to_vec(),
            &["id"][..],
        ),
    ] {
        assert_same_rows(what, &rows(&app, &sql).await, &exported, key);
    }

    // And against what the test wrote: every event of both profiles with
    // its bodies, every identifier, the case, the task, the merge, the read.
    let events = list(&document, "events");
    let exported_ids: BTreeSet<Uuid> = events
        .iter()
        .map(|e| Uuid::parse_str(e["event_id"].as_str().expect("id")).expect("uuid"))
        .collect();
    let expected_ids: BTreeSet<Uuid> = written.keys().copied().chain(actions).collect();
    assert_eq!(exported_ids, expected_ids);
    for (id, contact) in &written {
        let exported = events
            .iter()
            .find(|e| e["event_id"] == id.to_string())
            .expect("written event exported");
        for field in [
            "channel",
            "type",
            "subject",
            "summary",
            "conversation_id",
            "contact_reason",
            "agent_id",
            "queue",
            "outcome",
            "duration_seconds",
            "sentiment",
            "display_name",
        ] {
            if let Some(value) = contact.get(field) {
                assert_eq!(&exported[field], value, "{id}.{field}");
            }
        }
        if let Some(consent) = contact.get("consent") {
            assert_eq!(&exported["consent"], consent, "{id}.consent");
        }
        if let Some(attributes) = contact.get("attributes") {
            assert_eq!(&exported["attributes"], attributes, "{id}.attributes");
        }
    }
    let occurred: Vec<&str> = events
        .iter()
        .map(|e| e["occurred_at"].as_str().expect("time"))
        .collect();
    let mut sorted = occurred.clone();
    sorted.sort_unstable();
    assert_eq!(occurred, sorted, "oldest first");
    let note = events
        .iter()
        .find(|e| e["event_id"] == note_event.to_string())
        .expect("note");
    assert_eq!(note["type"], "note.added");
    assert_eq!(note["summary"], "Carrier says delivered; Ada disputes");
    assert_eq!(note["case_id"], case_id.as_str());
    let feedback = events
        .iter()
        .find(|e| e["event_id"] == feedback_event.to_string())
        .expect("feedback");
    assert_eq!(
        (
            &feedback["feedback_metric"],
            &feedback["feedback_score"],
            &feedback["feedback_comment"]
        ),
        (&json!("csat"), &json!(4), &json!("kind agent"))
    );
    let identifiers: BTreeSet<(String, String)> = list(&document, "identifiers")
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or_default().to_owned(),
                i["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected_identifiers: BTreeSet<(String, String)> = [
        ("phone", ada_phone),
        ("email", ada_email),
        ("whatsapp", ada_whatsapp),
        ("phone", bea_phone),
        ("email", bea_email),
    ]
    .into_iter()
    .map(|(kind, value)| (kind.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(identifiers, expected_identifiers);
    assert!(
        list(&document, "identifiers")
            .iter()
            .all(|i| i["source"] == "e2e" && i["first_seen_at"].is_string())
    );
    // The agent's case, and the cases contacts opened by their reasons.
    let opened_by_agent = list(&document, "cases")
        .iter()
        .find(|c| c["id"] == case_id.as_str())
        .expect("the agent's case is exported");
    assert_eq!(opened_by_agent["agent_reason"], "Parcel 4711 lost");
    assert!(
        list(&document, "cases")
            .iter()
            .any(|c| c["reason"] == "my parcel 4711 did not arrive")
    );
    assert_eq!(list(&document, "tasks").len(), 1);
    assert_eq!(list(&document, "tasks")[0]["id"], task["task_id"]);
    assert_eq!(
        list(&document, "tasks")[0]["title"],
        "Call Ada back about 4711"
    );
    assert!(
        list(&document, "feedback")
            .iter()
            .any(|f| f["metric"] == "csat" && f["latest_score"] == 4)
    );
    assert!(
        list(&document, "attributes")
            .iter()
            .any(|a| a["key"] == "customer.tier" && a["value"] == "gold")
    );
    let consent: BTreeSet<(String, String, bool)> = list(&document, "consent")
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap_or_default().to_owned(),
                c["purpose"].as_str().unwrap_or_default().to_owned(),
                c["granted"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        consent,
        BTreeSet::from([
            ("email".to_owned(), "marketing".to_owned(), false),
            ("phone".to_owned(), "service".to_owned(), true),
        ])
    );
    let merges: Vec<&Value> = list(&document, "identity_history")
        .iter()
        .filter(|h| h["action"] == "merge")
        .collect();
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0]["survivor_id"], ada.to_string());
    assert_eq!(merges[0]["merged_id"], bea.to_string());
    assert_eq!(list(&document, "merged_profiles").len(), 1);
    assert_eq!(list(&document, "merged_profiles")[0]["id"], bea.to_string());
    assert_eq!(
        list(&document, "merged_profiles")[0]["merged_into"],
        ada.to_string()
    );
    let audit = list(&document, "audit");
    assert!(
        audit.iter().any(|entry| entry["actor"] == desk.as_str()
            && entry["route"] == "/v1/customers/{id}"
            && entry["customer_id"] == bea.to_string()
            && entry["status"] == 200),
        "the agent's read is in the export: {audit:?}"
    );
    assert!(
        audit
            .iter()
            .all(|entry| entry["route"] != "/v1/customers/{id}/export"),
        "the export's own entry is written after its snapshot"
    );

    // Nothing of the neighbour.
    for needle in [
        ned.to_string(),
        ned_phone.to_owned(),
        ned_email.to_owned(),
        "Ned Neighbour".to_owned(),
        "Neighbourly secret".to_owned(),
    ]
    .into_iter()
    .chain(
        ned_events
            .iter()
            .map(|e| e["event_id"].as_str().expect("id").to_owned()),
    ) {
        assert!(!text.contains(&needle), "the export mentions {needle}");
    }

    // Bea's old id exports Ada, the same history, and now the first
    // export's audit entry too.
    let (_, through_bea) = export(&app, bea, ada).await;
    assert_eq!(through_bea["customer_id"], ada.to_string());
    assert_eq!(through_bea["requested_id"], bea.to_string());
    assert_eq!(through_bea["events"], document["events"]);
    assert_eq!(through_bea["identifiers"], document["identifiers"]);
    assert!(
        list(&through_bea, "audit").iter().any(|entry| {
            entry["route"] == "/v1/customers/{id}/export"
                && entry["customer_id"] == ada.to_string()
                && entry["method"] == "GET"
        }),
        "the first export is in the second's audit"
    );

    // Only admins export; unknown and malformed ids are problems.
    let channel = app.token(Role::Channel).await;
    for token in [&agent, &channel] {
        let refused = export_as(&app, &ada.to_string(), Some(token)).await;
        assert_eq!(refused.status(), 403);
    }
    let unknown = export_as(&app, &Uuid::now_v7().to_string(), None).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = unknown.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/not-found");
    let malformed = export_as(&app, "not-a-uuid", None).await;
    assert_eq!(malformed.status(), 400);
    let anonymous = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/customers/{ada}/export"),
            None,
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401);

    // The exports are in the audit trail, by the admin; so are the refusals.
    let trail = app
        .get_json(&format!("/v1/audit?customer={ada}&limit=200"))
        .await;
    let exports: Vec<(String, String, i64, String)> = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["route"] == "/v1/customers/{id}/export")
        .map(|entry| {
            (
                entry["method"].as_str().unwrap_or_default().to_owned(),
                entry["customer_id"].as_str().unwrap_or_default().to_owned(),
                entry["status"].as_i64().unwrap_or_default(),
                entry["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let get = || "GET".to_owned();
    assert_eq!(
        exports,
        vec![
            (get(), ada.to_string(), 403, "channel".to_owned()),
            (get(), ada.to_string(), 403, "agent".to_owned()),
            (get(), bea.to_string(), 200, "admin".to_owned()),
            (get(), ada.to_string(), 200, "admin".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_streams_in_bounded_chunks_from_one_snapshot() {
    let app = TestApp::spawn().await;
    let email = "long@example.com";
    let start = Utc::now() - Duration::days(30);
    let total = 3_000;
    let mut written = Vec::with_capacity(total);
    for batch in 0..6 {
        let events: Vec<Value> = (0..total / 6)
            .map(|n| {
                let index = batch * (total / 6) + n;
                let mut contact = event(
                    Uuid::now_v7(),
                    start + Duration::seconds(i64::try_from(index).unwrap_or_default() * 600),
                    "email",
                    "email.received",
                    &[("email", email)],
                );
                contact["summary"] =
                    json!(format!("message {index}: {}", "lorem ipsum ".repeat(30)));
                contact
            })
            .collect();
        written.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().expect("id").to_owned()),
        );
        post_events(&app, &events).await;
    }
    app.wait_for_events(i64::try_from(total).unwrap_or_default())
        .await;
    let customer = customer_by_email(&app, email).await;

    // Over HTTP: many chunks, one complete document, the whole history in
    // order.
    let mut response = export_as(&app, &customer.to_string(), None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-length").is_none());
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.expect("the stream continues") {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    let document: Value = serde_json::from_slice(&body).expect("a complete JSON document");
    let events = list(&document, "events");
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, written, "every event, oldest first");
    assert!(
        body.len() > 10 * panorama_store::EXPORT_CHUNK_BYTES,
        "a long document: {} bytes",
        body.len()
    );
    assert!(chunks > 1, "streamed in {chunks} chunks");

    // Through the store: every chunk is bounded, and the stream's
    // snapshot does not see what is written after it started.
    let mut stream = app
        .store
        .export(customer)
        .await
        .expect("export")
        .expect("a customer");
    let late = event(
        Uuid::now_v7(),
        Utc::now(),
        "email",
        "email.received",
        &[("email", email)],
    );
    post_events(&app, std::slice::from_ref(&late)).await;
    app.wait_for_events(i64::try_from(total + 1).unwrap_or_default())
        .await;
    let mut streamed = Vec::new();
    let mut largest = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk");
        largest = largest.max(chunk.len());
        streamed.extend_from_slice(&chunk);
    }
    assert!(
        largest <= panorama_store::EXPORT_CHUNK_BYTES + 16 * 1024,
        "a chunk of {largest} bytes"
    );
    let snapshot: Value = serde_json::from_slice(&streamed).expect("complete");
    assert_eq!(list(&snapshot, "events").len(), total, "one snapshot");
    assert!(!String::from_utf8_lossy(&streamed).contains(late["event_id"].as_str().expect("id")));

    // A reader that leaves early: its transaction is rolled back and its
    // connection is usable again.
    let mut abandoned = app
        .store
        .export(customer)
        .await
        .expect("export")
        .expect("a customer");
    let first = abandoned
        .next()
        .await
        .expect("a first chunk")
        .expect("bytes");
    assert!(!first.is_empty());
    drop(abandoned);
    eventually("no session left in a transaction", WAIT, || async {
        let open = app
            .psql(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            )
            .await;
        (open.trim() == "0").then_some(())
    })
    .await;
    for _ in 0..8 {
        assert!(app.store.profile(customer).await.expect("a read").is_some());
    }
}
