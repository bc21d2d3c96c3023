//! Erasure end to end (docs/privacy.md): a customer with a history on
//! every channel, merged automatically and by hand, with cases, notes,
//! tasks, feedback and consent, is erased through the API. Afterwards no
//! column of any table, in the projection or in `panorama_privacy`, holds
//! anything of theirs (the columns are found from `information_schema`, so
//! a new table is covered without a list to update), the audit trail keeps
//! who did what and when without naming them, a neighbour is untouched, a
//! late webhook does not bring them back, a replay does not either, and the
//! roll-ups still add up to what the remaining events say.

use std::collections::{BTreeMap, BTreeSet};

use panorama::replay::{ReplayOptions, replay};
use panorama_channels::multipart::{self, Part};
use panorama_core::{Identifier, IdentifierKind, ValidationContext};
use panorama_e2e::prometheus::Exposition;
use panorama_proto::sealed::SubjectSecret;
use panorama_simulator::DemoSecrets;
use panorama_store::{ErasureInput, ErasureOutcome, ErasureState, PartitionOffset, Store};
use panorama_testkit::{TestApp, WAIT, aggregate_mismatches, eventually, migrated_database};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use uuid::Uuid;

#[path = "support/webhooks.rs"]
mod webhooks;
use webhooks::{meta_webhook, twilio_call};

/// The erased person's phone number, as the gateway normalises it.
const PHONE: &str = "+31611112222";
/// The neighbour's.
const NEIGHBOUR_PHONE: &str = "+31633334444";
const NEIGHBOUR_EMAIL: &str = "bert.neighbour@example.nl";

/// What must not be found anywhere once the person is erased (matched
/// case-insensitively as substrings): their number in every spelling, their
/// name and addresses, the texts they and the agents wrote.
const NEEDLES: &[&str] = &[
    "11112222",
    "erasmus",
    "caerase",
    "qv42",
    "zx81",
    "kp77",
    "jj12",
    "acc-erase-9",
    "mm31",
    "ht56",
    "rb90",
    "wy23",
    "fd45",
];

/// The events of the customer that owns the neighbour's phone number
/// (`$1`), by its identifier: a replay may give the customer another id.
const NEIGHBOUR_EVENTS: &str = "SELECT e.event_id FROM events AS e
     JOIN customers AS c ON c.id = e.customer_id
     WHERE c.survivor_id = (SELECT p.survivor_id FROM identifiers AS i
                            JOIN customers AS p ON p.id = i.customer_id
                            WHERE i.kind = 'phone' AND i.value = $1)";

/// The route of an erasure request, as the audit trail names it.
const ERASURE_ROUTE: &str = "/v1/customers/{id}/erasure";

async fn app() -> TestApp {
    TestApp::builder()
        .simulated_channels()
        .configure(|options| {
            options.default_region = "NL".parse().ok();
            // Keys are read at every use, so a gateway seals nothing with
            // a key an erasure destroyed a moment ago, nor drops a call
            // whose suppression was just lifted.
            options.privacy.key_cache = std::time::Duration::ZERO;
        })
        .spawn()
        .await
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// The ids of the events a webhook answer accepted.
async fn accepted(response: reqwest::Response) -> Vec<String> {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body["accepted"]
        .as_array()
        .unwrap_or_else(|| panic!("accepted events: {body}"))
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect()
}

/// A completed inbound call from `phone`, signed as Twilio signs.
async fn call(app: &TestApp, call_sid: &str, phone: &str) -> reqwest::Response {
    twilio_call(app, call_sid, phone).await
}

/// An email through SendGrid's Inbound Parse (raw mode), signed by the
/// sender's domain, so the address is verified.
async fn sendgrid_email(app: &TestApp) -> Vec<String> {
    let raw = "From: Anna Erasmus <Anna.Erasmus@Example.nl>\r\n\
               To: support@shop.example\r\n\
               Subject: sendgrid-zx81 my order is missing\r\n\
               Message-ID: <erasmus-order@mail.example.nl>\r\n\
               Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\
               \r\n\
               Hello, sendgrid-zx81 here: the parcel did not arrive.\r\n";
    let boundary = "xYzZY";
    let part = |name: &str, data: &[u8]| Part {
        name: name.into(),
        filename: None,
        content_type: None,
        data: data.to_vec(),
    };
    let body = multipart::encode(
        boundary,
        &[
            part("email", raw.as_bytes()),
            part("to", b"support@shop.example"),
            part("dkim", b"{@example.nl : pass}"),
        ],
    );
    let response = app
        .anonymous
        .post(format!("{}/v1/channels/sendgrid/inbound", app.base_url))
        .basic_auth("inbound", Some(DemoSecrets::SENDGRID_SECRET))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("answer");
    accepted(response).await
}

/// A WhatsApp message from the person's number, signed as Meta signs.
async fn whatsapp(app: &TestApp) -> Vec<String> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Anna Erasmus"}, "wa_id": "31611112222"}],
                    "messages": [{
                        "from": "31611112222",
                        "id": "wamid.erasmus-qv42",
                        "timestamp": "1795424400",
                        "type": "text",
                        "text": {"body": "whatsapp-qv42 any news on my parcel?"}
                    }]
                }
            }]
        }]
    });
    accepted(meta_webhook(app, &body).await).await
}

/// A web form relayed by the shop's back end (its channel token vouches
/// for the identifiers): it names the email address and the national
/// phone number, so it links the caller and the emailer.
async fn web_form(app: &TestApp) -> Vec<String> {
    let form = json!({
        "type": "form.submitted",
        "visitor_id": "v-erasmus-1",
        "event_id": "erasmus-form-kp77",
        "url": "https://shop.example/contact",
        "form": {"id": "contact", "fields": {
            "name": "Anna Erasmus",
            "email": "anna.erasmus@example.nl",
            "phone": "06 11112222",
            "message": "webform-kp77 please call me back"
        }}
    });
    let response = app
        .request(
            reqwest::Method::POST,
            "/v1/channels/web/events",
            Some(DemoSecrets::CHANNEL_TOKEN),
        )
        .header("origin", DemoSecrets::WEB_ORIGIN)
        .json(&form)
        .send()
        .await
        .expect("answer");
    accepted(response).await
}

/// `POST` as admin; the answer's status must be `status`.
async fn post(app: &TestApp, path: &str, body: &Value, status: u16) -> Value {
    let response = app.post_json(path, body).await;
    let got = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn lookup(app: &TestApp, query: &str) -> Option<Uuid> {
    let response = app.get(&format!("/v1/customers/lookup?{query}")).await;
    if response.status() == 404 {
        return None;
    }
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().and_then(|id| Uuid::parse_str(id).ok())
}

/// The person and the neighbour, once every contact is projected.
struct History {
    /// The surviving customer of the person.
    survivor: Uuid,
    /// A profile merged into it: what the erasure is asked for.
    merged: Uuid,
    /// Every profile of the person's merge tree.
    profiles: Vec<Uuid>,
    /// The ids of the person's events.
    events: Vec<Uuid>,
    /// The neighbour.
    neighbour: Uuid,
    /// Events of both, as the projection holds them.
    total_events: i64,
}

/// A person with a history on every channel, merged automatically (a web
/// form links the caller and the emailer) and by hand (an account known
/// from the CRM), with a case, a note, a task, survey feedback and a
/// consent statement; and a neighbour with a call, an email and a note.
async fn history(app: &TestApp) -> History {
    let mut posted = 0;
    posted += accepted(call(app, "CAerase0001", PHONE).await).await.len();
    posted += sendgrid_email(app).await.len();
    posted += whatsapp(app).await.len();
    let account = json!({
        "event_id": "erasmus-crm-jj12",
        "channel": "web",
        "source": "crm",
        "type": "form.submitted",
        "direction": "inbound",
        "identifiers": [{"kind": "account", "value": "ACC-ERASE-9"}],
        "display_name": "Anna Erasmus",
        "summary": "events-api-jj12 account opened",
    });
    assert_eq!(app.post_events(&account).await.status(), 202);
    posted += 1;
    // The neighbour.
    let mut neighbours = accepted(call(app, "CAneighbour01", NEIGHBOUR_PHONE).await)
        .await
        .len();
    let neighbour_email = json!({
        "event_id": "neighbour-email-1",
        "channel": "email",
        "source": "crm",
        "type": "email.received",
        "direction": "inbound",
        "identifiers": [
            {"kind": "email", "value": NEIGHBOUR_EMAIL},
            {"kind": "phone", "value": NEIGHBOUR_PHONE}
        ],
        "display_name": "Bert Neighbour",
        "summary": "neighbour asks about his invoice",
    });
    assert_eq!(app.post_events(&neighbour_email).await.status(), 202);
    neighbours += 1;
    app.wait_for_events((posted + neighbours) as i64).await;
    // Every profile exists before the form links them, so they merge.
    posted += web_form(app).await.len();
    app.wait_for_events((posted + neighbours) as i64).await;

    let survivor = lookup(app, "phone=%2B31611112222")
        .await
        .expect("the caller");
    assert_eq!(
        lookup(app, "email=anna.erasmus@example.nl").await,
        Some(survivor),
        "the form merged the caller and the emailer"
    );
    let account = lookup(app, "account=ACC-ERASE-9")
        .await
        .expect("the CRM's customer");
    assert_ne!(account, survivor);
    post(
        app,
        &format!("/v1/customers/{survivor}/merge"),
        &json!({"other": account, "reason": "same person, said on the phone"}),
        200,
    )
    .await;
    // The older customer survives: whichever it is, the lookup says.
    let survivor = lookup(app, "account=ACC-ERASE-9").await.expect("merged");
    assert_eq!(lookup(app, "phone=%2B31611112222").await, Some(survivor));

    let case = post(
        app,
        &format!("/v1/customers/{survivor}/cases"),
        &json!({"reason": "case-reason-mm31 parcel lost"}),
        202,
    )
    .await;
    let case_id = case["case_id"].clone();
    post(
        app,
        &format!("/v1/customers/{survivor}/notes"),
        &json!({"text": "note-text-ht56 promised a refund", "case_id": case_id}),
        202,
    )
    .await;
    post(
        app,
        &format!("/v1/customers/{survivor}/tasks"),
        &json!({
            "title": "task-title-rb90 call back",
            "due_at": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
            "channel": "phone",
        }),
        202,
    )
    .await;
    post(
        app,
        &format!("/v1/customers/{survivor}/feedback"),
        &json!({"metric": "nps", "score": 3, "comment": "feedback-comment-wy23 too slow"}),
        202,
    )
    .await;
    post(
        app,
        &format!("/v1/customers/{survivor}/consent"),
        &json!({"channel": "email", "purpose": "marketing", "granted": false,
                "note": "consent-note-fd45 said no on the phone"}),
        202,
    )
    .await;
    let neighbour = lookup(app, "phone=%2B31633334444")
        .await
        .expect("the neighbour");
    post(
        app,
        &format!("/v1/customers/{neighbour}/notes"),
        &json!({"text": "neighbour note: invoice explained"}),
        202,
    )
    .await;
    posted += 5;
    neighbours += 1;
    app.wait_for_events((posted + neighbours) as i64).await;

    let db = client(&app.database.url).await;
    let profiles: Vec<Uuid> = db
        .query(
            "SELECT id FROM customers WHERE survivor_id = $1 ORDER BY id",
            &[&survivor],
        )
        .await
        .expect("profiles")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        profiles.len() >= 3,
        "a tree of three profiles: {profiles:?}"
    );
    let merged = *profiles
        .iter()
        .find(|id| **id != survivor)
        .expect("a merged profile");
    let events: Vec<Uuid> = db
        .query(
            "SELECT event_id FROM events WHERE customer_id = ANY($1)",
            &[&profiles],
        )
        .await
        .expect("events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(events.len(), posted, "the person's events are in the tree");
    History {
        survivor,
        merged,
        profiles,
        events,
        neighbour,
        total_events: (posted + neighbours) as i64,
    }
}

/// Everything the API shows of the neighbour that must not change: the
/// profile (but for the windows counted back from now), the timeline, the
/// identity and the export (but for when it was made and the audit trail,
/// which these reads add to).
async fn neighbour_view(app: &TestApp, neighbour: Uuid) -> Value {
    let mut profile = app.get_json(&format!("/v1/customers/{neighbour}")).await;
    for moving in ["contacts", "signals"] {
        profile.as_object_mut().map(|object| object.remove(moving));
    }
    let timeline = app
        .get_json(&format!("/v1/customers/{neighbour}/timeline?limit=200"))
        .await;
    let identity = app
        .get_json(&format!("/v1/customers/{neighbour}/identity"))
        .await;
    let mut export = app
        .get_json(&format!("/v1/customers/{neighbour}/export"))
        .await;
    for moving in ["exported_at", "audit"] {
        export.as_object_mut().map(|object| object.remove(moving));
    }
    json!({"profile": profile, "timeline": timeline, "identity": identity, "export": export})
}

/// Asks for the erasure of `customer` and waits until it is done: its
/// status.
async fn erase(app: &TestApp, customer: Uuid) -> Value {
    let response = app
        .post_json(&format!("/v1/customers/{customer}/erasure"), &json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("Location");
    let accepted: Value = response.json().await.expect("json");
    let id = accepted["erasure_id"].as_str().expect("erasure_id");
    assert!(
        ["in_progress", "done"].contains(&accepted["status"].as_str().unwrap_or_default()),
        "{accepted}"
    );
    assert_eq!(accepted["status_url"], format!("/v1/erasures/{id}"));
    assert_eq!(location, format!("/v1/erasures/{id}"));
    eventually("the erasure done", WAIT, || async {
        let status = app.get_json(&location).await;
        (status["status"] == "done").then_some(status)
    })
    .await
}

/// Every column of every table of `schemas` that can hold text (text,
/// varchar, json, jsonb and their arrays) or ids (uuid and uuid arrays),
/// from the catalogue: `(schema, table, column, is_uuid)`.
async fn columns(
    db: &tokio_postgres::Client,
    schemas: &[&str],
) -> Vec<(String, String, String, bool)> {
    let schemas: Vec<String> = schemas.iter().map(|s| (*s).to_owned()).collect();
    let rows = db
        .query(
            "SELECT c.table_schema, c.table_name, c.column_name, c.udt_name IN ('uuid', '_uuid')
             FROM information_schema.columns AS c
             JOIN information_schema.tables AS t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = ANY($1) AND t.table_type = 'BASE TABLE'
               AND c.udt_name IN ('text', 'varchar', 'bpchar', 'json', 'jsonb', 'uuid',
                                  '_text', '_varchar', '_json', '_jsonb', '_uuid')
             ORDER BY 1, 2, 3",
            &[&schemas],
        )
        .await
        .expect("columns");
    rows.iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

/// Every value in `schemas` that contains one of `needles` (text columns)
/// or one of `ids` (uuid columns), as `schema.table.column: value`, but
/// for the columns `allowed` (`(table, column)`), which the caller checks
/// itself.
async fn traces(
    db: &tokio_postgres::Client,
    schemas: &[&str],
    ids: &[Uuid],
    allowed: &[(&str, &str)],
) -> Vec<String> {
    let needles: Vec<String> = NEEDLES.iter().map(|n| format!("%{n}%")).collect();
    let ids: Vec<String> = ids.iter().map(|id| format!("%{id}%")).collect();
    // Text and JSON name ids too (a merge's `moved`, a conflict's list).
    let texts: Vec<String> = needles.iter().chain(&ids).cloned().collect();
    let mut found = Vec::new();
    let columns = columns(db, schemas).await;
    assert!(columns.len() > 50, "too few columns: {columns:?}");
    for (schema, table, column, is_uuid) in columns {
        if allowed.contains(&(table.as_str(), column.as_str())) {
            continue;
        }
        let patterns = if is_uuid { &ids } else { &texts };
        let sql = format!(
            "SELECT \"{column}\"::text FROM \"{schema}\".\"{table}\"
             WHERE \"{column}\"::text ILIKE ANY($1) LIMIT 1000"
        );
        for row in db.query(&sql, &[patterns]).await.expect(&sql) {
            let value: String = row.get(0);
            found.push(format!("{schema}.{table}.{column}: {value}"));
        }
    }
    found
}

async fn scrape(app: &TestApp) -> Exposition {
    Exposition::parse(&app.metrics_text().await).expect("Prometheus text")
}

/// The audit trail keeps that the erasure happened, who asked and when,
/// and every request about the person (under the erasure's id), without
/// naming them.
async fn check_audit(db: &tokio_postgres::Client, erasure: Uuid, named: &[Uuid]) {
    let rows = db
        .query(
            "SELECT actor, method, status, customer_id FROM audit_log
             WHERE route = $1 AND status = 202",
            &[&ERASURE_ROUTE],
        )
        .await
        .expect("audit");
    assert_eq!(rows.len(), 1, "one erasure accepted on record");
    let (actor, method, status, customer): (String, String, i32, Option<Uuid>) = (
        rows[0].get(0),
        rows[0].get(1),
        rows[0].get(2),
        rows[0].get(3),
    );
    assert!(actor.starts_with("testkit_admin"), "{actor}");
    assert_eq!((method.as_str(), status), ("POST", 202));
    // Written as the request was answered: before the projector applied it
    // (then scrubbed to the erasure's id) or after (then it names the id
    // asked for, which names nobody any more).
    assert!(
        customer == Some(erasure) || customer.is_some_and(|id| named.contains(&id)),
        "{customer:?}"
    );
    let scrubbed: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE customer_id = $1 AND route <> $2",
            &[&erasure, &ERASURE_ROUTE],
        )
        .await
        .expect("scrubbed")
        .get(0);
    assert!(
        scrubbed >= 5,
        "the reads and changes about the person stay on record: {scrubbed}"
    );
    let naming: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE customer_id = ANY($1) AND route <> $2",
            &[&named, &ERASURE_ROUTE],
        )
        .await
        .expect("naming")
        .get(0);
    assert_eq!(naming, 0, "audit entries still naming the person");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_leaves_nothing_behind_and_does_not_come_back() {
    let app = app().await;
    let person = history(&app).await;
    let db = client(&app.database.url).await;
    // Before: the needles are there, so the scan can find them.
    let before = traces(&db, &["public"], &person.profiles, &[]).await;
    for needle in NEEDLES {
        assert!(
            before.iter().any(|hit| hit.to_lowercase().contains(needle)),
            "{needle} is nowhere before the erasure: the scan would not see it after"
        );
    }
    let neighbour = neighbour_view(&app, person.neighbour).await;
    let requests_before = scrape(&app)
        .await
        .sum("panorama_privacy_erasure_requests_total", &[]);

    // Unknown customers and erasures are 404, ids that are no UUIDs 400.
    let unknown = Uuid::now_v7();
    post(
        &app,
        &format!("/v1/customers/{unknown}/erasure"),
        &json!({}),
        404,
    )
    .await;
    assert_eq!(
        app.get(&format!("/v1/erasures/{unknown}")).await.status(),
        404
    );
    assert_eq!(app.get("/v1/erasures/not-an-id").await.status(), 400);

    // Erased through a profile merged into the customer: the whole tree goes.
    assert_ne!(person.merged, person.survivor);
    let status = erase(&app, person.merged).await;
    let erasure = Uuid::parse_str(status["erasure_id"].as_str().expect("id")).expect("uuid");
    assert_eq!(status["customer_id"], json!(person.merged));
    assert!(
        status["requested_by"]
            .as_str()
            .unwrap_or_default()
            .starts_with("testkit_admin")
    );
    assert!(status["done_at"].is_string(), "{status}");
    let counts = &status["counts"];
    assert_eq!(counts["events"], json!(person.events.len()), "{status}");
    assert_eq!(
        counts["customers"],
        json!(person.profiles.len()),
        "{status}"
    );
    assert!(counts["identifiers"].as_u64() >= Some(5), "{status}");
    assert_eq!(counts["suppressions"], counts["identifiers"], "{status}");
    for table in [
        "cases",
        "tasks",
        "customer_consent",
        "identity_history",
        "customer_feedback",
    ] {
        assert!(counts[table].as_u64() >= Some(1), "{table}: {status}");
    }
    assert!(
        scrape(&app)
            .await
            .sum("panorama_privacy_erasure_requests_total", &[])
            > requests_before
    );

    // The erasure leaves one change naming the survivor, `customer.erased`,
    // for the feed's consumers; the relay publishes it and deletes its row.
    eventually("customer.erased relayed", WAIT, || async {
        let waiting: i64 = db
            .query_one(
                "SELECT count(*) FROM change_outbox
                 WHERE type = 'customer.erased' AND customers && $1",
                &[&person.profiles],
            )
            .await
            .expect("outbox")
            .get(0);
        (waiting == 0).then_some(())
    })
    .await;

    // Nothing of the person in any column of any table, projection and
    // privacy schema alike; no row names their profiles or events, but
    // the erasure request (which names the id asked for) and the audit
    // entry of the erasure itself, checked below.
    let mut ids = person.profiles.clone();
    ids.extend(&person.events);
    let allowed = [
        ("erasure_requests", "customer_id"),
        ("audit_log", "customer_id"),
    ];
    let left = traces(&db, &["public", "panorama_privacy"], &ids, &allowed).await;
    assert!(
        left.is_empty(),
        "left after the erasure:\n{}",
        left.join("\n")
    );
    check_audit(&db, erasure, &person.profiles).await;
    let requests: i64 = db
        .query_one(
            "SELECT count(*) FROM panorama_privacy.erasure_requests WHERE customer_id = ANY($1)",
            &[&person.profiles],
        )
        .await
        .expect("requests")
        .get(0);
    assert_eq!(requests, 1);

    // The roll-ups add up to what the remaining events say, and the API
    // knows nobody by the person's ids or identifiers.
    let mismatches = aggregate_mismatches(&db).await.expect("recount");
    assert!(mismatches.is_empty(), "{mismatches:?}");
    for id in &person.profiles {
        assert_eq!(app.get(&format!("/v1/customers/{id}")).await.status(), 404);
    }
    assert_eq!(lookup(&app, "phone=%2B31611112222").await, None);
    assert_eq!(lookup(&app, "email=anna.erasmus@example.nl").await, None);
    assert_eq!(
        neighbour_view(&app, person.neighbour).await,
        neighbour,
        "the neighbour changed"
    );

    // A late webhook of the person is dropped, not stored, and counted:
    // by the gateway when it checks suppressions before publishing, else
    // by the projector.
    let dropped = |metrics: &Exposition| {
        metrics.sum("panorama_ingest_events_total", &[("outcome", "suppressed")])
            + metrics.sum("panorama_projector_erased_records_total", &[])
    };
    let dropped_before = dropped(&scrape(&app).await);
    let answer = call(&app, "CAerase0002", PHONE).await;
    assert_eq!(answer.status(), 200);
    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;
    let remaining = person.total_events - person.events.len() as i64;
    assert_eq!(
        app.store.totals().await.expect("totals").events,
        remaining,
        "the late call was stored"
    );
    assert_eq!(lookup(&app, "phone=%2B31611112222").await, None);
    assert!(
        dropped(&scrape(&app).await) > dropped_before,
        "the drop is not counted"
    );
    let left = traces(&db, &["public", "panorama_privacy"], &ids, &allowed).await;
    assert!(
        left.is_empty(),
        "back after a late call:\n{}",
        left.join("\n")
    );

    // Lifting the suppression of the number: a new call is a new
    // customer, with nothing of the old history.
    for (body, status, field) in [
        (json!({"kind": "fax", "value": "1"}), 422, "kind"),
        (json!({"kind": "phone"}), 422, "value"),
        (
            json!({"kind": "phone", "value": "+31 6 1299 9999"}),
            404,
            "",
        ),
    ] {
        let response = app
            .http
            .delete(format!("{}/v1/suppressions", app.base_url))
            .json(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), status, "{body}");
        if !field.is_empty() {
            let problem: Value = response.json().await.expect("problem");
            assert_eq!(problem["field"], field, "{problem}");
        }
    }
    let lift = || async {
        app.http
            .delete(format!("{}/v1/suppressions", app.base_url))
            .json(&json!({"kind": "phone", "value": "06 1111 2222"}))
            .send()
            .await
            .expect("answer")
            .status()
    };
    assert_eq!(lift().await, 204);
    assert_eq!(lift().await, 404, "lifted once");
    accepted(call(&app, "CAerase0003", PHONE).await).await;
    app.wait_for_events(remaining + 1).await;
    let again = lookup(&app, "phone=%2B31611112222")
        .await
        .expect("a new customer");
    assert!(!person.profiles.contains(&again));
    let timeline = app
        .get_json(&format!("/v1/customers/{again}/timeline"))
        .await;
    assert_eq!(timeline["entries"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_an_erasure_does_not_bring_the_person_back() {
    let mut app = app().await;
    let person = history(&app).await;
    let db = client(&app.database.url).await;
    let neighbour_events: BTreeSet<Uuid> = db
        .query(NEIGHBOUR_EVENTS, &[&NEIGHBOUR_PHONE])
        .await
        .expect("neighbour's events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let status = erase(&app, person.merged).await;
    let erasure = Uuid::parse_str(status["erasure_id"].as_str().expect("id")).expect("uuid");

    // The manual merge is not on the topic: the switch has to be told.
    app.running
        .as_mut()
        .expect("running")
        .stop_projector()
        .await;
    let mut options = ReplayOptions::new("erasure_replay");
    options.switch = true;
    options.discard_manual_identity = true;
    let report = eventually("the replay switched", WAIT, || async {
        match replay(&app.options, &options).await {
            Ok(report) => Some(report),
            Err(error) => {
                eprintln!("switch refused: {error:#}");
                None
            }
        }
    })
    .await;
    let switched = report.switched.expect("switched");

    let fresh = client(&app.database.url).await;
    let mut ids = person.profiles.clone();
    ids.extend(&person.events);
    let allowed = [
        ("erasure_requests", "customer_id"),
        ("audit_log", "customer_id"),
    ];
    let left = traces(
        &fresh,
        &["public", "panorama_privacy", &switched.previous_schema],
        &ids,
        &allowed,
    )
    .await;
    assert!(
        left.is_empty(),
        "back after the replay:\n{}",
        left.join("\n")
    );
    check_audit(&fresh, erasure, &person.profiles).await;
    // The request stays done, with what the live erasure counted.
    let after: (String, serde_json::Value) = fresh
        .query_one(
            "SELECT status, counts FROM panorama_privacy.erasure_requests WHERE id = $1",
            &[&erasure],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .expect("request");
    assert_eq!(after, ("done".to_owned(), status["counts"].clone()));
    // The neighbour is rebuilt as they were, and the roll-ups add up.
    let replayed: BTreeSet<Uuid> = fresh
        .query(NEIGHBOUR_EVENTS, &[&NEIGHBOUR_PHONE])
        .await
        .expect("neighbour's events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        replayed.len(),
        3,
        "a call, an email and a note: {replayed:?}"
    );
    assert_eq!(replayed, neighbour_events);
    let all: i64 = fresh
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("events")
        .get(0);
    assert_eq!(all, person.total_events - person.events.len() as i64);
    let mismatches = aggregate_mismatches(&fresh).await.expect("recount");
    assert!(mismatches.is_empty(), "{mismatches:?}");
    app.stop().await;
}

/// Projects `event` (JSON for `POST /v1/events`) through `store` in a batch
/// of its own.
async fn project(store: &Store, event: Value) {
    let event = serde_json::from_value::<panorama_core::EventDraft>(event)
        .expect("draft")
        .validate(&ValidationContext::now(None))
        .expect("valid");
    let offsets: [PartitionOffset; 0] = [];
    store
        .apply_batch("test", &[event], &offsets)
        .await
        .expect("batch");
}

/// Applies `input` in a batch transaction of its own, as the projector
/// does for an erasure record.
async fn apply(
    store: &Store,
    input: &ErasureInput,
    subject_of: &(dyn Fn(&Identifier) -> [u8; 32] + Sync),
) -> ErasureOutcome {
    let offsets: [PartitionOffset; 0] = [];
    store
        .in_batch("test", &offsets, async |batch| {
            batch.apply_erasure(input, subject_of).await
        })
        .await
        .expect("erasure")
}

fn contact(event_id: &str, day: u32, channel: &str, identifiers: &[(&str, &str)]) -> Value {
    let event_type = if channel == "phone" {
        "call.ended"
    } else {
        "email.received"
    };
    json!({
        "event_id": event_id,
        "occurred_at": format!("2026-03-{day:02}T10:00:00Z"),
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

fn survey(event_id: &str, day: u32, identifiers: &[(&str, &str)], score: i64) -> Value {
    let mut event = contact(event_id, day, "email", identifiers);
    event["type"] = json!("feedback.submitted");
    event["feedback"] = json!({"metric": "nps", "score": score, "comment": "slow"});
    event
}

/// The store's side without the HTTP API or a broker: keys destroyed and
/// subjects suppressed for the erased person only, roll-ups lowered by
/// exactly the erased contacts, requests recorded, reused while pending,
/// applied once, and done with empty counts for an unknown customer;
/// suppressions expire after the configured days or hold until lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_erases_a_tree_once_and_keeps_the_rollups_true() {
    let (database, store) = migrated_database(2).await;
    let a = [("phone", "+31612000001"), ("email", "a@example.com")];
    // Person A comes as two customers, linked by a later event.
    project(&store, contact("a-1", 1, "phone", &a[..1])).await;
    project(&store, contact("a-2", 1, "email", &a[1..])).await;
    project(&store, contact("a-3", 2, "email", &a)).await;
    project(&store, survey("a-4", 2, &a[1..], 2)).await;
    // Neighbour B shares a day and channel with A.
    let b = [("phone", "+31612000002"), ("email", "b@example.com")];
    project(&store, contact("b-1", 1, "phone", &b)).await;
    project(&store, survey("b-2", 2, &b, 9)).await;
    let db = client(&database.url).await;
    let merged: i64 = db
        .query_one(
            "SELECT count(*) FROM customers WHERE survivor_id <> id",
            &[],
        )
        .await
        .expect("merged")
        .get(0);
    assert_eq!(merged, 1);
    let profile: Uuid = db
        .query_one(
            "SELECT customer_id FROM identifiers WHERE value = 'a@example.com'",
            &[],
        )
        .await
        .expect("a's profile")
        .get(0);

    let secret = SubjectSecret::new(&store.subject_secret().await.expect("secret"));
    let subject = |kind: IdentifierKind, value: &str| {
        *secret
            .subject(&Identifier::parse(kind, value, None).expect("identifier"))
            .as_bytes()
    };
    let a_subjects = [
        subject(IdentifierKind::Phone, "+31612000001"),
        subject(IdentifierKind::Email, "a@example.com"),
    ];
    let b_subjects = [
        subject(IdentifierKind::Phone, "+31612000002"),
        subject(IdentifierKind::Email, "b@example.com"),
    ];
    let all: Vec<[u8; 32]> = a_subjects.iter().chain(&b_subjects).copied().collect();
    let keys = store.issue_subject_keys(&all).await.expect("keys");
    assert_eq!(keys.keys.len(), 4);

    // Recorded, reused while pending, then on the topic.
    let request = store
        .request_erasure(profile, "admin-1")
        .await
        .expect("request")
        .expect("a known customer");
    assert_eq!(request.status, ErasureState::Received);
    let again = store
        .request_erasure(profile, "admin-2")
        .await
        .expect("request")
        .expect("a known customer");
    assert_eq!(
        again.erasure_id, request.erasure_id,
        "a pending request is reused"
    );
    assert!(
        store
            .request_erasure(Uuid::now_v7(), "admin-1")
            .await
            .expect("request")
            .is_none()
    );
    let marked = store
        .mark_erasure_published(request.erasure_id)
        .await
        .expect("mark")
        .expect("the request");
    assert_eq!(marked.status, ErasureState::InProgress);

    let subject_of = |identifier: &Identifier| *secret.subject(identifier).as_bytes();
    let input = ErasureInput {
        request_id: request.erasure_id,
        customer_id: profile,
        requested_by: request.requested_by.clone(),
        requested_at: request.requested_at,
    };
    let outcome = apply(&store, &input, &subject_of).await;
    assert!(outcome.applied);
    let counts: BTreeMap<String, u64> = outcome.counts.iter().cloned().collect();
    assert_eq!(counts["events"], 4, "{counts:?}");
    assert_eq!(counts["customers"], 2, "{counts:?}");
    assert_eq!(counts["identifiers"], 2, "{counts:?}");
    assert_eq!(counts["subject_keys"], 2, "{counts:?}");
    assert_eq!(counts["suppressions"], 2, "{counts:?}");
    assert_eq!(counts["customer_feedback"], 1, "{counts:?}");

    // A's keys are gone and their subjects suppressed (no new key either);
    // B's keys are the same.
    let now = store.issue_subject_keys(&all).await.expect("keys");
    for subject in &a_subjects {
        assert!(now.suppressed.contains(subject));
        assert!(!now.keys.contains_key(subject));
    }
    for subject in &b_subjects {
        assert_eq!(now.keys.get(subject), keys.keys.get(subject));
    }
    // The roll-ups count B's contacts only (the day both called is
    // lowered, A's emails are gone), and agree with the events.
    let rollups: Vec<(String, String, i64)> = db
        .query(
            "SELECT day::text, channel, contacts FROM daily_channel_contacts ORDER BY 1, 2",
            &[],
        )
        .await
        .expect("rollups")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        rollups,
        vec![("2026-03-01".to_owned(), "phone".to_owned(), 1)]
    );
    let scores: Vec<i16> = db
        .query("SELECT score FROM daily_feedback", &[])
        .await
        .expect("feedback")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(scores, vec![9]);
    let mismatches = aggregate_mismatches(&db).await.expect("recount");
    assert!(mismatches.is_empty(), "{mismatches:?}");

    // Done with its counts; applied once.
    let done = store
        .erasure_status(request.erasure_id)
        .await
        .expect("status")
        .expect("the request");
    assert_eq!(done.status, ErasureState::Done);
    assert!(done.done_at.is_some());
    assert_eq!(done.counts, counts);
    let twice = apply(&store, &input, &subject_of).await;
    assert!(!twice.applied);
    assert_eq!(twice.rows(), 0);
    assert_eq!(
        store
            .erasure_status(request.erasure_id)
            .await
            .expect("status"),
        Some(done)
    );

    // A request the API never recorded (a replica's topic), for a
    // customer that does not exist: recorded from the record, done, empty.
    let unknown = ErasureInput {
        request_id: Uuid::now_v7(),
        customer_id: Uuid::now_v7(),
        requested_by: "elsewhere".into(),
        requested_at: chrono::Utc::now(),
    };
    let outcome = apply(&store, &unknown, &subject_of).await;
    assert!(outcome.applied);
    let status = store
        .erasure_status(unknown.request_id)
        .await
        .expect("status")
        .expect("recorded from the record");
    assert_eq!(status.status, ErasureState::Done);
    assert!(status.counts.is_empty());

    // B, erased by a store whose suppressions last a week.
    let b: Uuid = db
        .query_one(
            "SELECT customer_id FROM identifiers WHERE value = '+31612000002'",
            &[],
        )
        .await
        .expect("b")
        .get(0);
    let weekly = store.clone().with_suppression_days(7);
    let request = weekly
        .request_erasure(b, "admin-1")
        .await
        .expect("request")
        .expect("b");
    let input_b = ErasureInput {
        request_id: request.erasure_id,
        customer_id: b,
        requested_by: request.requested_by,
        requested_at: request.requested_at,
    };
    apply(&weekly, &input_b, &subject_of).await;
    let expiries: Vec<(Option<f64>, Uuid)> = db
        .query(
            "SELECT extract(epoch FROM expires_at - now())::float8 / 86400, erasure_id
             FROM panorama_privacy.suppressions ORDER BY 2",
            &[],
        )
        .await
        .expect("suppressions")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(expiries.len(), 4, "{expiries:?}");
    for (days, erasure) in &expiries {
        if *erasure == input.request_id {
            assert_eq!(*days, None, "A's hold until lifted");
        } else {
            assert!(
                days.is_some_and(|days| (6.9..=7.0).contains(&days)),
                "{days:?}"
            );
        }
    }
    // Lifting: once.
    assert!(store.lift_suppression(&a_subjects[0]).await.expect("lift"));
    assert!(!store.lift_suppression(&a_subjects[0]).await.expect("lift"));
    let empty: i64 = db
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("events")
        .get(0);
    assert_eq!(empty, 0);
    assert!(aggregate_mismatches(&db).await.expect("recount").is_empty());
}
