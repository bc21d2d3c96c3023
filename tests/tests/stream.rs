//! Live updates end to end: an event posted to the gateway reaches an
//! agent's `GET /v1/stream` as a timeline frame, in one process and with
//! gateway, projector and API as separate processes; a stream resumes with
//! `Last-Event-ID`, sends heartbeats, and follows a customer into a merge.
//! A batch's changes of one customer share one row of the change log, and
//! an id still names one change: a stream resumes inside a row, and a page
//! that ends inside one goes on after it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use panorama::ProcessRole;
use panorama_core::{ContactEvent, EventDraft, Role, ValidationContext};
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_store::{PartitionOffset, Store};
use panorama_testkit::{TestApp, WAIT, eventually, migrated_database};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// One server-sent event, or a comment.
#[derive(Debug, Clone, Default)]
struct Frame {
    id: Option<i64>,
    event: Option<String>,
    data: Option<Value>,
    comment: Option<String>,
}

impl Frame {
    fn is(&self, event: &str) -> bool {
        self.event.as_deref() == Some(event)
    }

    fn event_id(&self) -> Option<&str> {
        self.data.as_ref()?["entry"]["event_id"].as_str()
    }
}

/// A connected stream, read incrementally.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens the stream of `customer` as `token`, resuming after
    /// `last_event_id` if given; asserts the SSE headers.
    async fn open(
        base_url: &str,
        token: &str,
        customer: &str,
        last_event_id: Option<i64>,
    ) -> Stream {
        let mut request = reqwest::Client::new()
            .get(format!("{base_url}/v1/stream?customer={customer}"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("the stream answers");
        assert_eq!(response.status(), 200);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), "text/event-stream");
        assert_eq!(header("cache-control"), "no-cache");
        assert_eq!(header("x-accel-buffering"), "no");
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame (event or comment), failing the test after [`WAIT`].
    async fn next(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let text: String = self.buffer.drain(..end + 2).collect();
                let frame = parse(&text);
                if frame.id.is_none() && frame.event.is_none() && frame.comment.is_none() {
                    continue; // `retry:` only
                }
                return frame;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("a frame within the deadline")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("frames are UTF-8"));
        }
    }

    /// Reads frames until one matches `wanted`; returns every frame read,
    /// the match last.
    async fn until(&mut self, wanted: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let done = wanted(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}

fn parse(text: &str) -> Frame {
    let mut frame = Frame::default();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comment = Some(comment.trim().to_owned());
        } else if let Some(id) = line.strip_prefix("id: ") {
            frame.id = Some(id.parse().expect("numeric ids"));
        } else if let Some(event) = line.strip_prefix("event: ") {
            frame.event = Some(event.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            frame.data = Some(serde_json::from_str(data).expect("JSON data"));
        }
    }
    frame
}

/// Posts `event` to the gateway at `base_url` and returns its event id.
async fn post(base_url: &str, token: &str, event: &Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/events"))
        .bearer_auth(token)
        .json(event)
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("JSON");
    body["accepted"][0].as_str().expect("an id").to_owned()
}

async fn customer_id(app: &TestApp, base_url: &str, index: usize) -> String {
    let response = app
        .http
        .get(format!(
            "{base_url}/v1/customers/lookup?phone={}",
            phone_of(index).replace('+', "%2B")
        ))
        .send()
        .await
        .expect("lookup answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["id"].as_str().expect("id").to_owned()
}

/// Posts an event while `stream` is open and reads until its timeline
/// frame; prints how long that took (information only: CI machines vary).
async fn posted_event_reaches(
    stream: &mut Stream,
    gateway: &str,
    token: &str,
    event: Value,
) -> Vec<Frame> {
    let started = Instant::now();
    let id = post(gateway, token, &event).await;
    let frames = stream
        .until(|frame| frame.is("timeline") && frame.event_id() == Some(id.as_str()))
        .await;
    println!("post to timeline frame: {:?}", started.elapsed());
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_posted_to_the_gateway_reaches_a_connected_stream() {
    let app = TestApp::spawn().await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(1, "live-1", at_minute(1), "phone"),
    )
    .await;
    app.wait_for_events(1).await;
    let customer = customer_id(&app, &app.base_url, 1).await;
    let agent = app.token(Role::Agent).await;

    let mut stream = Stream::open(&app.base_url, &agent, &customer, None).await;
    let event = contact(1, "live-2", at_minute(2), "email");
    let frames = posted_event_reaches(&mut stream, &app.base_url, &app.admin_token, event).await;

    let timeline = frames.last().expect("the timeline frame");
    let data = timeline.data.as_ref().expect("data");
    assert_eq!(data["customer_id"], customer.as_str());
    assert_eq!(data["entry"]["channel"], "email");
    assert!(
        frames
            .iter()
            .all(|frame| !frame.is("timeline") || frame.id == timeline.id),
        "only the new entry, not the history: {frames:?}"
    );
    let profiles = stream.until(|frame| frame.is("profile")).await;
    let profile = profiles.last().expect("the profile frame");
    let data = profile.data.as_ref().expect("data");
    assert_eq!(data["profile"]["event_count"], 2);
    assert!(profile.id > timeline.id, "ids increase");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_an_api_process_sees_what_another_process_projected() {
    // The gateway serves ingest; the projector and the API run as two more
    // processes' worth of wiring on the same database.
    let gateway = TestApp::builder().role(ProcessRole::Gateway).spawn().await;
    let projector = gateway.start_role(ProcessRole::Projector).await;
    let api = gateway.start_role(ProcessRole::Api).await;
    let api_url = api.base_url();

    post(
        &gateway.base_url,
        &gateway.admin_token,
        &contact(2, "split-1", at_minute(1), "phone"),
    )
    .await;
    gateway.wait_for_events(1).await;
    let customer = customer_id(&gateway, &api_url, 2).await;
    let agent = gateway.token(Role::Agent).await;

    let mut stream = Stream::open(&api_url, &agent, &customer, None).await;
    let event = contact(2, "split-2", at_minute(2), "web");
    let frames =
        posted_event_reaches(&mut stream, &gateway.base_url, &gateway.admin_token, event).await;
    let entry = &frames.last().and_then(|f| f.data.as_ref()).expect("data")["entry"];
    assert_eq!(entry["channel"], "web");

    drop(stream);
    api.stop().await.expect("the api stops");
    projector.stop().await.expect("the projector stops");
}

/// An app with quick heartbeats and customer `index` known from one
/// projected contact (`event_id`): the app, the customer's id and an agent
/// token.
async fn app_with_one_customer(index: usize, event_id: &str) -> (TestApp, String, String) {
    let app = TestApp::builder()
        .configure(|options| options.live.heartbeat = Duration::from_millis(300))
        .spawn()
        .await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(index, event_id, at_minute(0), "phone"),
    )
    .await;
    app.wait_for_events(1).await;
    let customer = customer_id(&app, &app.base_url, index).await;
    let agent = app.token(Role::Agent).await;
    (app, customer, agent)
}

/// Merges `newer` into `older` through the API and reads `stream` (open
/// on one of them) up to the `profile` frame the merge sends.
async fn merge_and_await_profile(
    app: &TestApp,
    stream: &mut Stream,
    older: &str,
    newer: &str,
) -> Vec<Frame> {
    let merged = app
        .post_json(
            &format!("/v1/customers/{older}/merge"),
            &json!({"other": newer}),
        )
        .await;
    assert_eq!(merged.status(), 200);
    stream.until(|frame| frame.is("profile")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_after_last_event_id_with_exactly_what_it_missed() {
    let (app, customer, agent) = app_with_one_customer(3, "resume-0").await;

    let mut stream = Stream::open(&app.base_url, &agent, &customer, None).await;
    let seen = posted_event_reaches(
        &mut stream,
        &app.base_url,
        &app.admin_token,
        contact(3, "resume-1", at_minute(1), "phone"),
    )
    .await;
    let seen_entry = seen
        .last()
        .and_then(Frame::event_id)
        .expect("id")
        .to_owned();
    let last = stream.until(|frame| frame.is("profile")).await;
    let last_id = last.last().and_then(|frame| frame.id).expect("an id");
    drop(stream);

    let missed = [
        post(
            &app.base_url,
            &app.admin_token,
            &contact(3, "resume-2", at_minute(2), "email"),
        )
        .await,
        post(
            &app.base_url,
            &app.admin_token,
            &contact(3, "resume-3", at_minute(3), "chat"),
        )
        .await,
    ];
    app.wait_for_events(4).await;

    let mut stream = Stream::open(&app.base_url, &agent, &customer, Some(last_id)).await;
    let mut received: Vec<String> = Vec::new();
    let mut ids = vec![last_id];
    // Everything missed is sent at once on reconnect; a heartbeat after
    // both entries shows that nothing else followed.
    loop {
        let frame = stream.next().await;
        let both = missed.iter().all(|id| received.contains(id));
        if both && frame.comment.as_deref() == Some("keepalive") {
            break;
        }
        record(&frame, &mut received, &mut ids);
    }
    assert_eq!(
        received.iter().collect::<HashSet<_>>().len(),
        received.len(),
        "no entry twice: {received:?}"
    );
    let mut expected = missed.to_vec();
    expected.sort();
    received.sort();
    assert_eq!(
        received, expected,
        "exactly the missed entries, not {seen_entry}"
    );
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase: {ids:?}"
    );
}

fn record(frame: &Frame, received: &mut Vec<String>, ids: &mut Vec<i64>) {
    if let Some(id) = frame.id {
        ids.push(id);
    }
    if frame.is("timeline") {
        received.push(frame.event_id().expect("an entry").to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_sends_heartbeats() {
    let app = TestApp::builder()
        .configure(|options| options.live.heartbeat = Duration::from_millis(100))
        .spawn()
        .await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(4, "beat-1", at_minute(1), "phone"),
    )
    .await;
    app.wait_for_events(1).await;
    let customer = customer_id(&app, &app.base_url, 4).await;
    let agent = app.token(Role::Agent).await;
    let mut stream = Stream::open(&app.base_url, &agent, &customer, None).await;
    for _ in 0..3 {
        let frame = stream.next().await;
        assert_eq!(frame.comment.as_deref(), Some("keepalive"), "{frame:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_follows_its_customer_into_a_merge() {
    let app = TestApp::spawn().await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(5, "merge-1", at_minute(1), "phone"),
    )
    .await;
    app.wait_for_events(1).await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(6, "merge-2", at_minute(2), "phone"),
    )
    .await;
    app.wait_for_events(2).await;
    let older = customer_id(&app, &app.base_url, 5).await;
    let newer = customer_id(&app, &app.base_url, 6).await;
    let agent = app.token(Role::Agent).await;

    let mut stream = Stream::open(&app.base_url, &agent, &newer, None).await;
    let frames = merge_and_await_profile(&app, &mut stream, &older, &newer).await;
    let profile = frames.last().and_then(|f| f.data.as_ref()).expect("data");
    assert_eq!(profile["customer_id"], older.as_str(), "now the survivor");
    assert_eq!(profile["requested_id"], newer.as_str());

    // An event of the survivor's own reaches the merged customer's stream.
    let frames = posted_event_reaches(
        &mut stream,
        &app.base_url,
        &app.admin_token,
        contact(5, "merge-3", at_minute(3), "email"),
    )
    .await;
    let data = frames.last().and_then(|f| f.data.as_ref()).expect("data");
    assert_eq!(data["customer_id"], older.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_are_refused_before_the_stream_starts() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent).await;
    let unknown = uuid::Uuid::now_v7();
    let cases: [(String, Option<&str>, u16, &str); 5] = [
        (
            format!("customer={unknown}"),
            None,
            401,
            "/problems/unauthorized",
        ),
        (
            format!("customer={unknown}"),
            Some(&agent),
            404,
            "/problems/not-found",
        ),
        (
            "customer=nope".into(),
            Some(&agent),
            400,
            "/problems/invalid-parameter",
        ),
        (
            String::new(),
            Some(&agent),
            400,
            "/problems/invalid-parameter",
        ),
        (
            format!("customer={unknown}&after=x"),
            Some(&agent),
            400,
            "/problems/invalid-parameter",
        ),
    ];
    for (query, token, status, problem) in cases {
        let response = app
            .request(reqwest::Method::GET, &format!("/v1/stream?{query}"), token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), status, "?{query}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let body: Value = response.json().await.expect("problem");
        assert_eq!(body["type"], problem, "?{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keep_working_when_the_listening_connection_is_killed() {
    // A safety poll far beyond the test: only notifications deliver.
    let app = TestApp::builder()
        .configure(|options| options.live.poll = Duration::from_secs(3600))
        .spawn()
        .await;
    post(
        &app.base_url,
        &app.admin_token,
        &contact(7, "kill-1", at_minute(1), "phone"),
    )
    .await;
    app.wait_for_events(1).await;
    let customer = customer_id(&app, &app.base_url, 7).await;
    let agent = app.token(Role::Agent).await;
    let mut stream = Stream::open(&app.base_url, &agent, &customer, None).await;

    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let listening = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    let killed = client.query(listening, &[]).await.expect("terminate");
    assert_eq!(killed.len(), 1, "one listening connection per process");
    // The listener reconnects: wait until it listens again.
    eventually("the listener to reconnect", WAIT, || async {
        let rows = client
            .query(
                listening
                    .replace("pg_terminate_backend(pid)", "pid")
                    .as_str(),
                &[],
            )
            .await
            .ok()?;
        (rows.len() == 1).then_some(())
    })
    .await;

    posted_event_reaches(
        &mut stream,
        &app.base_url,
        &app.admin_token,
        contact(7, "kill-2", at_minute(2), "email"),
    )
    .await;
}

/// Projects `events` (JSON for `POST /v1/events`) through `store` in one
/// batch, as the projector does with what it read at once; returns their
/// ids in order.
async fn project_batch(store: &Store, events: &[Value]) -> Vec<String> {
    let events: Vec<ContactEvent> = events
        .iter()
        .map(|event| {
            serde_json::from_value::<EventDraft>(event.clone())
                .expect("draft")
                .validate(&ValidationContext::now(None))
                .expect("valid")
        })
        .collect();
    let offsets: [PartitionOffset; 0] = [];
    store
        .apply_batch("test", &events, &offsets)
        .await
        .expect("batch");
    events
        .iter()
        .map(|event| event.event_id.to_string())
        .collect()
}

/// `count` contacts of customer `index`, one a minute from `first_minute`.
fn contacts(index: usize, prefix: &str, first_minute: i64, count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let minute = first_minute + n as i64;
            contact(index, &format!("{prefix}-{n}"), at_minute(minute), "chat")
        })
        .collect()
}

/// Reads `stream` until a heartbeat after all of `wanted` arrived (nothing
/// else was pending then); returns the timeline entries' event ids and
/// every frame id, in the order received.
async fn read_until_quiet(stream: &mut Stream, wanted: &[String]) -> (Vec<String>, Vec<i64>) {
    let mut received = Vec::new();
    let mut ids = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = stream.next().await;
        let all = wanted.iter().all(|id| received.contains(id));
        assert!(
            all || Instant::now() < deadline,
            "still missing entries after {WAIT:?}: got {} of {}",
            received.len(),
            wanted.len()
        );
        if all && frame.comment.as_deref() == Some("keepalive") {
            return (received, ids);
        }
        record(&frame, &mut received, &mut ids);
    }
}

/// The row part of a stream id (`seq · 2^20 + index`).
fn row_of(id: i64) -> i64 {
    id >> 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_records_one_change_row_per_customer() {
    let (database, store) = migrated_database(2).await;
    // Three customers, four events each, interleaved, in one batch.
    let events: Vec<Value> = (0..12)
        .map(|n| {
            contact(
                20 + n % 3,
                &format!("rows-{n}"),
                at_minute(n as i64),
                "phone",
            )
        })
        .collect();
    let ids = project_batch(&store, &events).await;

    let (client, connection) = tokio_postgres::connect(&database.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT customer_id, kinds, event_ids FROM customer_changes ORDER BY seq",
            &[],
        )
        .await
        .expect("rows");
    let entries: usize = rows
        .iter()
        .map(|row| row.get::<_, Vec<String>>(1).len())
        .sum();
    println!(
        "{} events: {} change rows ({:.2} a event), {} changes (one row each before)",
        ids.len(),
        rows.len(),
        rows.len() as f64 / ids.len() as f64,
        entries
    );
    assert_eq!(rows.len(), 3, "one row per customer");
    // Each customer's row: its four entries in batch order, its profile,
    // and the case its contacts opened.
    assert_eq!(entries, 3 * 6, "per customer 4 entries, a profile, a case");
    for (n, row) in rows.iter().enumerate() {
        let kinds: Vec<String> = row.get(1);
        let events: Vec<Option<Uuid>> = row.get(2);
        let timeline: Vec<Option<Uuid>> = ids
            .iter()
            .skip(n)
            .step_by(3)
            .map(|id| Some(id.parse().expect("uuid")))
            .collect();
        assert_eq!(
            events[..4],
            timeline,
            "the customer's events in batch order"
        );
        assert_eq!(
            kinds,
            [
                "timeline", "timeline", "timeline", "timeline", "profile", "case"
            ]
        );
    }
}

/// The reading side on its own: pages of a few changes each walk a row of
/// many, each page starting after the id the last one ended with, and
/// resuming after any change of the row gives exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_since_walks_a_row_change_by_change() {
    let (_database, store) = migrated_database(2).await;
    let first = project_batch(&store, &contacts(30, "walk-first", 0, 1)).await;
    let customer = store
        .lookup(
            &panorama_core::Identifier::parse(
                panorama_core::IdentifierKind::Phone,
                &phone_of(30),
                None,
            )
            .expect("a phone"),
        )
        .await
        .expect("lookup")
        .expect("a customer");
    let (_, start) = store
        .latest_change(customer)
        .await
        .expect("latest")
        .expect("known");
    let batch = project_batch(&store, &contacts(30, "walk", 1, 7)).await;
    assert_eq!(first.len(), 1);

    // Pages of three: every change once, in order, ids increasing.
    let mut after = start;
    let mut walked = Vec::new();
    loop {
        let (_, page) = store
            .changes_since(customer, after, 3)
            .await
            .expect("read")
            .expect("known");
        let Some(last) = page.last() else { break };
        after = last.id;
        walked.extend(page);
    }
    let ids: Vec<i64> = walked.iter().map(|change| change.id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    let timeline: Vec<String> = walked
        .iter()
        .filter_map(|change| change.event_id.map(|id| id.to_string()))
        .collect();
    assert_eq!(timeline, batch, "every entry once, in order");
    let row = walked[0].seq;
    assert!(walked.iter().all(|change| change.seq == row), "one row");
    let indexes: Vec<u32> = walked.iter().map(|change| change.index).collect();
    assert_eq!(indexes, (0..indexes.len() as u32).collect::<Vec<_>>());

    // From after each change of the row: exactly the ones after it.
    for (n, change) in walked.iter().enumerate() {
        let (_, rest) = store
            .changes_since(customer, change.id, 100)
            .await
            .expect("read")
            .expect("known");
        let rest: Vec<i64> = rest.iter().map(|change| change.id).collect();
        assert_eq!(rest, ids[n + 1..], "after entry {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_inside_a_row_and_pages_through_a_large_one() {
    let (app, customer, agent) = app_with_one_customer(8, "row-start").await;
    let mut stream = Stream::open(&app.base_url, &agent, &customer, None).await;

    // More entries than the stream reads in one page (200): the first page
    // ends inside the row, the next goes on after its last entry.
    let batch = project_batch(&app.store, &contacts(8, "row", 1, 250)).await;
    let (received, ids) = read_until_quiet(&mut stream, &batch).await;
    drop(stream);
    assert_eq!(received, batch, "every entry once, in order");
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase: {ids:?}"
    );
    assert_eq!(ids.len(), 252, "the entries, a profile, a case: {ids:?}");
    let row = row_of(ids[0]);
    assert!(ids.iter().all(|id| row_of(*id) == row), "one row: {ids:?}");
    assert_eq!(ids[249] - ids[0], 249, "entries numbered in the row");

    // Resuming after the second entry: exactly the rest, nothing twice.
    let mut stream = Stream::open(&app.base_url, &agent, &customer, Some(ids[1])).await;
    let (rest, rest_ids) = read_until_quiet(&mut stream, &batch[2..]).await;
    drop(stream);
    assert_eq!(rest, batch[2..], "the entries after the second, once each");
    assert_eq!(rest_ids, ids[2..], "under the ids first sent");

    // The next batch is a later row, with larger ids.
    let mut stream = Stream::open(&app.base_url, &agent, &customer, Some(ids[251])).await;
    let next = project_batch(&app.store, &contacts(8, "row-next", 300, 3)).await;
    let (received, next_ids) = read_until_quiet(&mut stream, &next).await;
    drop(stream);
    assert_eq!(received, next);
    assert!(row_of(next_ids[0]) > row, "{next_ids:?}");
    assert!(
        next_ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase: {next_ids:?}"
    );

    // An id as the previous version sent it (the bare seq of a row) names
    // an earlier place: the stream sends that row's entries again rather
    // than skip any.
    let mut stream = Stream::open(&app.base_url, &agent, &customer, Some(row)).await;
    let (replayed, _) = read_until_quiet(&mut stream, &batch).await;
    assert!(batch.iter().all(|id| replayed.contains(id)), "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_follows_a_merge_into_rows_of_the_survivor() {
    let app = TestApp::spawn().await;
    project_batch(
        &app.store,
        &[
            contact(9, "fold-1", at_minute(1), "phone"),
            contact(10, "fold-2", at_minute(2), "phone"),
        ],
    )
    .await;
    let older = customer_id(&app, &app.base_url, 9).await;
    let newer = customer_id(&app, &app.base_url, 10).await;
    let agent = app.token(Role::Agent).await;
    let mut stream = Stream::open(&app.base_url, &agent, &newer, None).await;
    let frames = merge_and_await_profile(&app, &mut stream, &older, &newer).await;
    let merge_id = frames.last().and_then(|frame| frame.id).expect("an id");

    // Contacts of both profiles, now one customer's: one row of the
    // survivor, every entry on the merged profile's stream.
    let mut batch = contacts(10, "fold-newer", 10, 2);
    batch.extend(contacts(9, "fold-older", 20, 2));
    let batch = project_batch(&app.store, &batch).await;
    let mut received = Vec::new();
    let mut ids = vec![merge_id];
    let frames = stream
        .until(|frame| frame.is("timeline") && frame.event_id() == Some(batch[3].as_str()))
        .await;
    for frame in &frames {
        record(frame, &mut received, &mut ids);
        if frame.is("timeline") {
            assert_eq!(
                frame.data.as_ref().expect("data")["customer_id"],
                older.as_str()
            );
        }
    }
    assert_eq!(received, batch, "the survivor's entries, in order");
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase: {ids:?}"
    );
    assert!(row_of(ids[1]) == row_of(ids[4]), "one row: {ids:?}");
}
