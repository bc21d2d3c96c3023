//! No caller can exhaust the service: a token or a write key past its rate
//! or its requests in progress is answered 429, ingest bodies past the
//! process's byte budget 503, live-update streams past a token's or the
//! process's bound 429 or 503; each problem+json with `Retry-After` and
//! the limit's name, while well-behaved callers keep getting 2xx answers.
//! A stream ends when its token is revoked, and the gateway keeps taking
//! events from tokens it saw lately while PostgreSQL is down.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use panorama::ProcessRole;
use panorama_core::Role;
use panorama_e2e::prometheus::Exposition;
use panorama_e2e::{at_minute, contact, phone_of};
use panorama_testkit::{PgCluster, TestApp, WAIT, eventually, random_name};
use reqwest::Method;
use serde_json::{Value, json};

const WRITE_KEY: &str = "pk_limits_1";
const ORIGIN: &str = "https://shop.example";

/// Asserts that `response` is the refusal of `limit` with `status`, with a
/// whole number of seconds in `Retry-After`.
async fn assert_limited(response: reqwest::Response, status: u16, limits: &[&str]) {
    assert_eq!(response.status().as_u16(), status);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/problem+json");
    let seconds: u64 = header("retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!(seconds >= 1);
    let problem: Value = response.json().await.expect("a problem");
    let kind = if status == 429 {
        "/problems/too-many-requests"
    } else {
        "/problems/server-busy"
    };
    assert_eq!(problem["type"], kind, "{problem}");
    assert_eq!(problem["status"], status);
    let limit = problem["limit"].as_str().unwrap_or_default();
    assert!(limits.contains(&limit), "{problem}");
}

/// Sends `count` requests made by `request`, `clients` at a time, and
/// returns the answers.
async fn flood<F>(count: usize, clients: usize, request: F) -> Vec<reqwest::Response>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    futures::stream::iter(0..count)
        .map(|n| {
            let request = request(n);
            async move { request.send().await.expect("an answer") }
        })
        .buffer_unordered(clients)
        .collect()
        .await
}

/// The answers of a flood with `status`, after asserting that each of the
/// others is a 2xx.
fn with_status(answers: Vec<reqwest::Response>, status: u16) -> Vec<reqwest::Response> {
    let (refused, others): (Vec<_>, Vec<_>) = answers
        .into_iter()
        .partition(|response| response.status().as_u16() == status);
    for response in &others {
        assert!(response.status().is_success(), "{}", response.status());
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_token_is_refused_while_other_tokens_keep_working() {
    // A well-behaved client sends fewer requests than a second's allowance.
    const RATE: u32 = 50;
    let app = TestApp::builder()
        .configure(|options| {
            options.limits.token_rate = RATE;
            options.limits.token_concurrency = 4;
            // Answered at once: this test counts refusals, not their pace.
            options.limits.refusal_delay_ms = 0;
        })
        .spawn()
        .await;
    let flooder = app.token(Role::Agent).await;
    let polite = app.token(Role::Agent).await;
    let flood = flood(1_000, 32, |_| {
        app.request(Method::GET, "/v1/tasks", Some(&flooder))
    });
    let well_behaved = async {
        let mut statuses = Vec::new();
        for _ in 0..RATE - 10 {
            let response = app
                .request(Method::GET, "/v1/tasks", Some(&polite))
                .send()
                .await
                .expect("an answer");
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    let (answers, statuses) = tokio::join!(flood, well_behaved);
    assert!(
        statuses.iter().all(|status| *status == 200),
        "the well-behaved token got {statuses:?}"
    );
    let refused = with_status(answers, 429);
    assert!(refused.len() >= 500, "{} of 1000 refused", refused.len());
    for response in refused {
        assert_limited(response, 429, &["token_rate", "token_concurrency"]).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ignoring_retry_after_hears_its_refusals_only_after_the_delay() {
    const DELAY: Duration = Duration::from_millis(400);
    let app = TestApp::builder()
        .configure(|options| {
            options.limits.token_rate = 2;
            options.limits.token_concurrency = 0;
            options.limits.refusal_delay_ms = DELAY.as_millis() as u64;
        })
        .spawn()
        .await;
    let flooder = app.token(Role::Agent).await;
    // Four clients asking again as soon as they are answered, for as long
    // as it takes to be refused twelve times.
    let refusals = futures::stream::iter(0..4)
        .map(|_| async {
            let mut timed = Vec::new();
            while timed.len() < 3 {
                let started = std::time::Instant::now();
                let response = app
                    .request(Method::GET, "/v1/tasks", Some(&flooder))
                    .send()
                    .await
                    .expect("an answer");
                if response.status().as_u16() == 429 {
                    timed.push((started.elapsed(), response));
                }
            }
            timed
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    for (elapsed, response) in refusals.into_iter().flatten() {
        assert!(
            elapsed >= DELAY,
            "a refusal was answered after {elapsed:?}, before the {DELAY:?} its client should wait"
        );
        assert_limited(response, 429, &["token_rate"]).await;
    }
    // The hold is not counted as the request's duration, and the refused
    // requests did nothing: the token's own well-paced request still works.
    eventually("the flooder's rate refills", WAIT, || async {
        app.request(Method::GET, "/v1/tasks", Some(&flooder))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
            .then_some(())
    })
    .await;
    app.stop().await;
}

/// A web form as a browser posts it.
fn web_form(n: usize) -> Value {
    json!({
        "type": "form.submitted",
        "visitor_id": format!("v-{n}"),
        "event_id": format!("form-{n}"),
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "url": "https://shop.example/contact",
        "form": {"id": "contact", "fields": {"email": format!("visitor{n}@example.nl")}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_write_key_is_refused_while_back_ends_keep_working() {
    let app = TestApp::builder()
        .configure(|options| {
            options.limits.write_key_rate = 20;
            options.limits.write_key_concurrency = 4;
            options.limits.refusal_delay_ms = 0;
            options.channels.web_write_keys = vec![WRITE_KEY.into()];
            options.channels.web_allowed_origins = vec![ORIGIN.into()];
        })
        .spawn()
        .await;
    let channel = app.token(Role::Channel).await;
    let browsers = flood(300, 16, |n| {
        app.request(Method::POST, "/v1/channels/web/events", None)
            .header("origin", ORIGIN)
            .header("x-panorama-write-key", WRITE_KEY)
            .json(&web_form(n))
    });
    let back_end = async {
        let mut statuses = Vec::new();
        for n in 0..10 {
            let response = app
                .request(Method::POST, "/v1/channels/web/events", Some(&channel))
                .json(&web_form(1_000 + n))
                .send()
                .await
                .expect("an answer");
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    let (answers, statuses) = tokio::join!(browsers, back_end);
    assert!(
        statuses.iter().all(|status| *status == 200),
        "the back end got {statuses:?}"
    );
    let refused = with_status(answers, 429);
    assert!(!refused.is_empty(), "the write key's flood was let through");
    for response in refused {
        assert_limited(response, 429, &["write_key_rate", "write_key_concurrency"]).await;
    }
    app.stop().await;
}

/// A `POST` written by hand, so its body can be sent in chunks, as slowly
/// as the test wants.
struct ChunkedPost {
    stream: TcpStream,
}

impl ChunkedPost {
    /// Sends the head of a chunked `POST path` with `token`.
    fn start(port: u16, path: &str, token: &str) -> ChunkedPost {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .expect("the head");
        ChunkedPost { stream }
    }

    fn send(&mut self, bytes: &[u8]) {
        write!(self.stream, "{:x}\r\n", bytes.len()).expect("chunk size");
        self.stream.write_all(bytes).expect("chunk");
        self.stream.write_all(b"\r\n").expect("chunk end");
        self.stream.flush().expect("flush");
    }

    /// Ends the body and reads the answer's status.
    fn finish(mut self) -> u16 {
        self.stream.write_all(b"0\r\n\r\n").expect("last chunk");
        self.answer()
    }

    /// Reads the answer's status, whether or not the body was finished.
    fn answer(mut self) -> u16 {
        let mut head = [0u8; 12];
        self.stream.read_exact(&mut head).expect("a status line");
        std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|code| code.parse().ok())
            .expect("a status code")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_bytes_held_at_once_are_bounded() {
    const BUDGET: usize = 64 * 1024;
    let app = TestApp::builder()
        .configure(|options| options.limits.ingest_inflight_bytes = BUDGET)
        .spawn()
        .await;
    let port = app.running.as_ref().expect("running").port;
    let channel = app.token(Role::Channel).await;
    // A body bigger than what is left once the held one is in.
    let probe = || {
        let body = format!("{{{}}}", " ".repeat(40 * 1024));
        app.request(Method::POST, "/v1/events", Some(&channel))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(probe().await.expect("an answer").status(), 422, "admitted");

    // A slow client: 48 KiB of its body sent, the rest still to come.
    let mut held = tokio::task::spawn_blocking({
        let channel = channel.clone();
        move || {
            let mut post = ChunkedPost::start(port, "/v1/events", &channel);
            post.send(format!("{{\"events\":{}", " ".repeat(48 * 1024)).as_bytes());
            post
        }
    })
    .await
    .expect("the slow client");

    // Once the server holds those bytes, a body that does not fit is
    // refused before it is read.
    let refused = eventually("a body over the budget to be refused", WAIT, || async {
        let response = probe().await.expect("an answer");
        (response.status() == 503).then_some(response)
    })
    .await;
    assert_limited(refused, 503, &["ingest_inflight_bytes"]).await;
    // A chunked body that does not fit is cut and refused alike.
    let cut = tokio::task::spawn_blocking({
        let channel = channel.clone();
        move || {
            let mut post = ChunkedPost::start(port, "/v1/events", &channel);
            post.send(format!("{{\"events\":{}", " ".repeat(20 * 1024)).as_bytes());
            post.answer()
        }
    })
    .await
    .expect("a chunked client");
    assert_eq!(cut, 503);
    // A small event still fits beside the held body.
    assert_eq!(
        app.request(Method::POST, "/v1/events", Some(&channel))
            .json(&contact(1, "small-1", at_minute(1), "phone"))
            .send()
            .await
            .expect("an answer")
            .status(),
        202
    );

    // The slow client finishes: accepted, and its bytes are given back.
    let event = contact(2, "slow-1", at_minute(2), "phone").to_string();
    let status = tokio::task::spawn_blocking(move || {
        held.send(format!("[{event}]}}").as_bytes());
        held.finish()
    })
    .await
    .expect("the slow client");
    assert_eq!(status, 202);
    eventually("the budget to be given back", WAIT, || async {
        (probe().await.expect("an answer").status() == 422).then_some(())
    })
    .await;
    app.stop().await;
}

/// A customer to follow, and its id.
async fn a_customer(app: &TestApp) -> String {
    let response = app
        .post_events(&contact(7, "followed-1", at_minute(7), "phone"))
        .await;
    assert_eq!(response.status(), 202);
    app.wait_for_events(1).await;
    let phone = phone_of(7).replace('+', "%2B");
    app.get_json(&format!("/v1/customers/lookup?phone={phone}"))
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

async fn open_stream(app: &TestApp, customer: &str, token: &str) -> reqwest::Response {
    app.request(
        Method::GET,
        &format!("/v1/stream?customer={customer}"),
        Some(token),
    )
    .send()
    .await
    .expect("the stream answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_per_token_and_per_process() {
    let app = TestApp::builder()
        .configure(|options| {
            options.limits.streams_per_token = 2;
            options.limits.streams = 3;
            // A stream whose client left is noticed at its next write.
            options.live.heartbeat = Duration::from_millis(100);
        })
        .spawn()
        .await;
    let customer = a_customer(&app).await;
    let (first, second, third) = (
        app.token(Role::Agent).await,
        app.token(Role::Agent).await,
        app.token(Role::Agent).await,
    );
    let mut open = Vec::new();
    for token in [&first, &first, &second] {
        let stream = open_stream(&app, &customer, token).await;
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }
    assert_limited(
        open_stream(&app, &customer, &first).await,
        429,
        &["streams_per_token"],
    )
    .await;
    assert_limited(
        open_stream(&app, &customer, &third).await,
        503,
        &["streams"],
    )
    .await;
    // Another agent's reads are not held up by the streams.
    assert_eq!(app.get("/v1/tasks").await.status(), 200);

    // A closed stream frees its place.
    drop(open.remove(0));
    let stream = eventually("a place for another stream", WAIT, || async {
        let stream = open_stream(&app, &customer, &third).await;
        (stream.status() == 200).then_some(stream)
    })
    .await;
    drop(stream);
    drop(open);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_is_revoked() {
    let app = TestApp::spawn().await;
    let customer = a_customer(&app).await;
    let name = random_name("desk");
    let (_, secret) = app
        .store
        .create_token(&name, Role::Agent)
        .await
        .expect("a token");
    let mut stream = open_stream(&app, &customer, secret.expose()).await;
    assert_eq!(stream.status(), 200);
    assert!(app.store.revoke_token(&name).await.expect("revoked"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Some(chunk) = tokio::time::timeout_at(deadline, stream.chunk())
        .await
        .expect("the stream ends within the deadline")
        .expect("the stream reads")
    {
        assert!(!chunk.is_empty());
    }
    assert_eq!(
        open_stream(&app, &customer, secret.expose()).await.status(),
        401
    );
    app.stop().await;
}

async fn stale_acceptances(app: &TestApp) -> f64 {
    Exposition::parse(&app.metrics_text().await)
        .expect("Prometheus text")
        .sum("panorama_http_auth_total", &[("outcome", "stale")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_takes_events_from_tokens_it_saw_while_postgres_is_down() {
    let cluster = tokio::task::spawn_blocking(PgCluster::private)
        .await
        .expect("task")
        .map(Arc::new)
        .expect("a private cluster");
    let database = cluster.create_database().expect("a database");
    let url = database.url.clone();
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .configure(move |options| options.database.url = url)
        .spawn()
        .await;
    let seen = app.token(Role::Channel).await;
    let unseen = app.token(Role::Channel).await;
    // One customer's events: the gateway holds that customer's keys (a
    // customer it has never seen is answered 503, below).
    let post = |token: String, n: usize| {
        let request = app
            .request(Method::POST, "/v1/events", Some(&token))
            .json(&contact(
                0,
                &format!("outage-{n}"),
                at_minute(n as i64),
                "phone",
            ));
        async move { request.send().await.expect("an answer") }
    };
    assert_eq!(post(seen.clone(), 0).await.status(), 202);

    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.stop()
    })
    .await
    .expect("task")
    .expect("PostgreSQL stops");
    // Past the cache's fresh window the token is checked again, which
    // fails; it is accepted as seen lately, every time.
    let before = stale_acceptances(&app).await;
    let app_ref = &app;
    let mut n = 0;
    eventually("a token accepted without the database", WAIT, || {
        n += 1;
        let answer = post(seen.clone(), n);
        async move {
            let response = answer.await;
            let status = response.status();
            assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
            (stale_acceptances(app_ref).await > before).then_some(())
        }
    })
    .await;
    // A token it never saw cannot be checked.
    let refused = post(unseen, 10_000).await;
    assert_eq!(refused.status(), 503);
    let problem: Value = refused.json().await.expect("a problem");
    assert_eq!(problem["type"], "/problems/database-unavailable");
    // A customer it never saw cannot be sealed: its keys must be in
    // PostgreSQL before their first use, or an erasure could not destroy
    // them. Answered 503 with Retry-After, so the sender tries again.
    let stranger = app
        .request(Method::POST, "/v1/events", Some(&seen))
        .json(&contact(7, "outage-stranger", at_minute(7), "phone"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(stranger.status(), 503);
    assert!(stranger.headers().contains_key("retry-after"));

    tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.start()
    })
    .await
    .expect("task")
    .expect("PostgreSQL starts");
    app.stop().await;
}
