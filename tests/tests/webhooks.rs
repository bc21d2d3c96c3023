//! Outbound webhooks (README "Outbound webhooks") against a real HTTP
//! receiver on 127.0.0.1 that checks every signature with its own HMAC
//! (the `hmac` and `sha2` crates), not Panorama's signing code.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_core::Role;
use panorama_e2e::{at_minute, contact};
use panorama_proto::v1::CustomerChange;
use panorama_testkit::{TestApp, WAIT, eventually};
use prost::Message as _;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    /// Whether `webhook-signature` holds a `v1,` signature of the content
    /// under the secret, and the timestamp is recent.
    verified: bool,
    body: Value,
    at: Instant,
}

/// What the receiver answers.
#[derive(Debug, Default)]
struct Behaviour {
    /// Answer 500 to this many more requests about this customer (any
    /// customer when `None`).
    failures_left: usize,
    failing_customer: Option<Uuid>,
    /// Answer 500 to everything.
    always_fail: bool,
}

#[derive(Debug, Default)]
struct ReceiverState {
    secret: Mutex<Vec<u8>>,
    received: Mutex<Vec<Received>>,
    behaviour: Mutex<Behaviour>,
}

/// A webhook receiver on a free port of 127.0.0.1.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(shared.clone()))
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            server: handle,
        }
    }

    /// Verifies signatures with `secret` (`whsec_<base64>`) from now on.
    fn trust(&self, secret: &str) {
        let encoded = secret.strip_prefix("whsec_").expect("whsec_ prefix");
        *self.state.secret.lock().expect("lock") = STANDARD.decode(encoded).expect("base64");
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    fn behave(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("lock") = behaviour;
    }

    async fn wait_for(&self, what: &str, count: usize) -> Vec<Received> {
        eventually(what, WAIT, || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// The receiver's handler: verify, record, answer as told.
async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let signatures = header("webhook-signature");
    let secret = state.secret.lock().expect("lock").clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let recent = timestamp
        .parse::<i64>()
        .is_ok_and(|at| (chrono::Utc::now().timestamp() - at).abs() < 300);
    let verified = recent && signatures.split(' ').any(|given| given == expected);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let customer = body["data"]["customer_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok());
    state.received.lock().expect("lock").push(Received {
        id,
        verified,
        body,
        at: Instant::now(),
    });
    let mut behaviour = state.behaviour.lock().expect("lock");
    let concerned = behaviour.failing_customer.is_none() || behaviour.failing_customer == customer;
    if behaviour.always_fail || (concerned && behaviour.failures_left > 0) {
        behaviour.failures_left = behaviour.failures_left.saturating_sub(1);
        return HttpResponse::InternalServerError().body("receiver not ready");
    }
    HttpResponse::NoContent().finish()
}

/// An app whose webhooks retry fast and may reach 127.0.0.1.
async fn app(disable_after_failures: u32) -> TestApp {
    TestApp::builder()
        .configure(move |options| {
            options.webhooks.allow_private_addresses = true;
            options.webhooks.poll = Duration::from_millis(50);
            options.webhooks.timeout = Duration::from_secs(2);
            options.webhooks.first_retry = Duration::from_millis(300);
            options.webhooks.max_retry = Duration::from_secs(2);
            options.webhooks.disable_after_failures = disable_after_failures;
            options.webhooks.disable_after = Duration::ZERO;
        })
        .spawn()
        .await
}

/// Registers `url` for `types`; returns the subscription (with its secret).
async fn register(app: &TestApp, url: &str, types: &[&str]) -> Value {
    let response = app
        .post_json("/v1/webhooks", &json!({"url": url, "types": types}))
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

/// A change record as the change feed carries it.
fn change(change_type: &str, customer: Uuid) -> (Uuid, OutboundRecord) {
    let change_id = Uuid::now_v7();
    let now = chrono::Utc::now();
    let value = CustomerChange {
        change_id: change_id.as_bytes().to_vec(),
        r#type: change_type.to_owned(),
        time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: 0,
        }),
        customer_id: customer.as_bytes().to_vec(),
        event_id: Vec::new(),
        detail: None,
    }
    .encode_to_vec();
    let record = OutboundRecord {
        key: customer.to_string(),
        payload: value,
        headers: vec![
            ("ce_id".into(), change_id.to_string().into_bytes()),
            ("ce_type".into(), change_type.as_bytes().to_vec()),
        ],
    };
    (change_id, record)
}

async fn publish(app: &TestApp, records: Vec<OutboundRecord>) {
    let producer =
        Producer::new(&ProducerSettings::new(&app.options.kafka.brokers)).expect("producer");
    producer
        .publish(&app.options.kafka.changes_topic, &records)
        .await
        .expect("published");
}

/// Every delivery of a subscription, newest first.
async fn all_deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/v1/webhooks/{webhook}/deliveries?limit=200"))
        .await;
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Deliveries of a subscription with `status`.
async fn deliveries(app: &TestApp, webhook: &str, status: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!(
            "/v1/webhooks/{webhook}/deliveries?status={status}&limit=200"
        ))
        .await;
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_arrive_signed_in_order_per_customer_and_are_listed() {
    let app = app(1_000).await;
    let receiver = Receiver::start().await;

    // Admins only; bad URLs and types are refused naming the field.
    let agent = app.token(Role::Agent).await;
    let refused = app
        .request(reqwest::Method::POST, "/v1/webhooks", Some(&agent))
        .json(&json!({"url": receiver.url, "types": ["*"]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 403);
    let listed = app
        .request(reqwest::Method::GET, "/v1/webhooks", Some(&agent))
        .send()
        .await
        .expect("answer");
    assert_eq!(listed.status(), 403);
    for (body, field) in [
        (json!({"url": "ftp://example.com/", "types": ["*"]}), "url"),
        (
            json!({"url": "http://user:pw@example.com/", "types": ["*"]}),
            "url",
        ),
        (
            json!({"url": receiver.url, "types": ["case.*", "case.closed"]}),
            "types[1]",
        ),
        (json!({"url": receiver.url, "types": []}), "types"),
        (json!({"url": receiver.url}), "types"),
    ] {
        let response = app.post_json("/v1/webhooks", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }

    let created = register(&app, &receiver.url, &["customer.*", "case.opened"]).await;
    let secret = created["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    receiver.trust(secret);
    let webhook = created["id"].as_str().expect("id").to_owned();
    let shown = app.get_json(&format!("/v1/webhooks/{webhook}")).await;
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(shown["enabled"], true);

    // Two customers, five changes each, interleaved; and a type nobody
    // asked for.
    let customers = [Uuid::now_v7(), Uuid::now_v7()];
    let mut expected: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let mut records = Vec::new();
    for round in 0..5 {
        for (index, customer) in customers.iter().enumerate() {
            let kind = if round % 2 == 0 {
                "customer.updated"
            } else {
                "case.opened"
            };
            let (id, record) = change(kind, *customer);
            expected[index].push(id.to_string());
            records.push(record);
        }
    }
    let (_, unwanted) = change("task.created", customers[0]);
    records.push(unwanted);
    publish(&app, records).await;

    let received = receiver.wait_for("ten deliveries", 10).await;
    assert!(
        received.iter().all(|r| r.verified),
        "every signature verifies"
    );
    for (index, customer) in customers.iter().enumerate() {
        let order: Vec<String> = received
            .iter()
            .filter(|r| r.body["data"]["customer_id"] == json!(customer))
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(
            order, expected[index],
            "customer {index}'s changes in order"
        );
    }
    let first = &received[0];
    assert!(first.body["timestamp"].is_string());
    assert!(
        ["customer.updated", "case.opened"].contains(&first.body["type"].as_str().unwrap_or(""))
    );
    assert_eq!(first.body["data"]["change_id"], json!(first.id));

    // Listed per subscription, with their attempts.
    let delivered = eventually("ten delivered", WAIT, || async {
        let delivered = deliveries(&app, &webhook, "delivered").await;
        (delivered.len() == 10).then_some(delivered)
    })
    .await;
    assert!(deliveries(&app, &webhook, "pending").await.is_empty());
    let one = &delivered[0];
    let detail = app
        .get_json(&format!(
            "/v1/webhooks/{webhook}/deliveries/{}",
            one["id"].as_str().expect("id")
        ))
        .await;
    let attempts = detail["attempt_log"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status_code"], 204);
    assert!(attempts[0]["duration_ms"].is_number());
    let page = app
        .get_json(&format!("/v1/webhooks/{webhook}/deliveries?limit=4"))
        .await;
    assert_eq!(page["deliveries"].as_array().map(Vec::len), Some(4));
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let next = app
        .get_json(&format!(
            "/v1/webhooks/{webhook}/deliveries?limit=4&cursor={cursor}"
        ))
        .await;
    assert_eq!(next["deliveries"].as_array().map(Vec::len), Some(4));
    assert_ne!(next["deliveries"][0]["id"], page["deliveries"][0]["id"]);

    // Removing it removes its deliveries.
    let removed = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/webhooks/{webhook}"),
            Some(&app.admin_token),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(removed.status(), 204);
    assert_eq!(
        app.get(&format!("/v1/webhooks/{webhook}")).await.status(),
        404
    );
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_retries_with_growing_delays_and_holds_back_only_its_customer() {
    let app = app(1_000).await;
    let receiver = Receiver::start().await;
    let created = register(&app, &receiver.url, &["*"]).await;
    receiver.trust(created["secret"].as_str().expect("secret"));
    let webhook = created["id"].as_str().expect("id").to_owned();
    let (stuck, free) = (Uuid::now_v7(), Uuid::now_v7());
    receiver.behave(Behaviour {
        failures_left: 3,
        failing_customer: Some(stuck),
        always_fail: false,
    });
    let (first, record_first) = change("case.opened", stuck);
    let (second, record_second) = change("case.resolved", stuck);
    let (other, record_other) = change("case.opened", free);
    publish(&app, vec![record_first, record_second, record_other]).await;

    let received = receiver
        .wait_for("three failures, then three deliveries", 6)
        .await;
    assert!(received.iter().all(|r| r.verified));
    let of = |id: &Uuid| -> Vec<&Received> {
        received.iter().filter(|r| r.id == id.to_string()).collect()
    };
    // The other customer's change went through while the first was failing.
    assert_eq!(of(&other).len(), 1);
    let attempts = of(&first);
    assert_eq!(attempts.len(), 4, "three failures and the success");
    assert_eq!(of(&second).len(), 1);
    let last_of_first = attempts[3].at;
    assert!(
        of(&second)[0].at >= last_of_first,
        "the customer's order holds"
    );
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(200), "{gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "delays grow: {gaps:?}"
    );

    let listed = deliveries(&app, &webhook, "delivered").await;
    let delivery = listed
        .iter()
        .find(|d| d["change_id"] == json!(first))
        .expect("the first change's delivery");
    let detail = app
        .get_json(&format!(
            "/v1/webhooks/{webhook}/deliveries/{}",
            delivery["id"].as_str().expect("id")
        ))
        .await;
    let codes: Vec<i64> = detail["attempt_log"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(codes, [500, 500, 500, 204]);
    assert_eq!(
        detail["attempt_log"][0]["error"],
        "HTTP 500: receiver not ready"
    );
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_failure_disables_the_subscription_until_an_admin_enables_it() {
    let app = app(3).await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour {
        always_fail: true,
        ..Behaviour::default()
    });
    let created = register(&app, &receiver.url, &["customer.merged"]).await;
    receiver.trust(created["secret"].as_str().expect("secret"));
    let webhook = created["id"].as_str().expect("id").to_owned();
    let (merged, record) = change("customer.merged", Uuid::now_v7());
    publish(&app, vec![record]).await;

    let disabled = eventually("the subscription disabled", WAIT, || async {
        let shown = app.get_json(&format!("/v1/webhooks/{webhook}")).await;
        (shown["enabled"] == false).then_some(shown)
    })
    .await;
    assert_eq!(disabled["consecutive_failures"], 3);
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("3 failed"))
    );
    assert_eq!(disabled["pending"], 1, "the delivery waits");
    let failures = receiver.received().len();
    assert_eq!(failures, 3);

    receiver.behave(Behaviour::default());
    let enabled = app
        .post_json(&format!("/v1/webhooks/{webhook}/enable"), &json!({}))
        .await;
    assert_eq!(enabled.status(), 200);
    let received = receiver.wait_for("the delivery after enabling", 4).await;
    assert_eq!(received.len(), 4, "nothing was sent while disabled");
    assert!(
        received
            .iter()
            .all(|r| r.id == merged.to_string() && r.verified)
    );
    let shown = eventually("the subscription healthy", WAIT, || async {
        let shown = app.get_json(&format!("/v1/webhooks/{webhook}")).await;
        (shown["consecutive_failures"] == 0 && shown["pending"] == 0).then_some(shown)
    })
    .await;
    assert_eq!(shown["enabled"], true);
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_events_become_webhooks_and_a_receiver_that_is_down_never_slows_projection() {
    let app = app(1_000).await;
    // A port nobody listens on.
    let down = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().expect("addr").port()
        )
    };
    let receiver = Receiver::start().await;
    let dead = register(&app, &down, &["*"]).await;
    let live = register(&app, &receiver.url, &["customer.created"]).await;
    receiver.trust(live["secret"].as_str().expect("secret"));
    let dead_id = dead["id"].as_str().expect("id").to_owned();

    let events: Vec<Value> = (0..20)
        .map(|index| {
            contact(
                index,
                &format!("wh-{index}"),
                at_minute(index as i64),
                "email",
            )
        })
        .collect();
    let started = Instant::now();
    assert_eq!(
        app.post_events(&json!({ "events": events })).await.status(),
        202
    );
    app.wait_for_events(20).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "projected in {:?} with a receiver down",
        started.elapsed()
    );

    // Every new customer reached the live receiver.
    let received = receiver.wait_for("twenty customer.created", 20).await;
    assert!(
        received
            .iter()
            .all(|r| r.verified && r.body["type"] == "customer.created")
    );
    let customer = received[0].body["data"]["customer_id"]
        .as_str()
        .expect("customer id");
    let profile = app.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(
        profile.status(),
        200,
        "the delivery names a projected customer"
    );

    // The dead one's deliveries pile up, retrying, each with its error.
    let pending = eventually("deliveries retrying", WAIT, || async {
        let pending = deliveries(&app, &dead_id, "pending").await;
        (pending.len() >= 20 && pending.iter().any(|d| d["attempts"].as_i64() >= Some(1)))
            .then_some(pending)
    })
    .await;
    let tried = pending
        .iter()
        .find(|d| d["attempts"].as_i64() >= Some(1))
        .expect("a delivery tried");
    assert!(
        tried["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{tried}"
    );

    // Erasing a customer takes its deliveries along, pending (the dead
    // receiver's) and delivered (the live one's), with their attempts and
    // queues; then its `customer.erased` is delivered as usual. First every
    // change on the feed has its delivery, so none of the customer's
    // comes after the erasure.
    let changes_topic = app.options.kafka.changes_topic.clone();
    eventually(
        "every change queued for the dead receiver",
        WAIT,
        || async {
            let relayed = app.store.outbox_backlog().await.ok()? == 0;
            let on_feed = app.records_in(&changes_topic).await;
            (relayed && all_deliveries(&app, &dead_id).await.len() as i64 == on_feed).then_some(())
        },
    )
    .await;
    let live_id = live["id"].as_str().expect("id").to_owned();
    let of_customer = |listed: &[Value]| -> Vec<String> {
        listed
            .iter()
            .filter(|d| d["customer_id"] == customer)
            .map(|d| d["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let queued = of_customer(&all_deliveries(&app, &dead_id).await);
    assert!(queued.len() >= 2, "{queued:?}");
    assert_eq!(
        of_customer(&deliveries(&app, &live_id, "delivered").await),
        vec!["customer.created"]
    );
    let response = app
        .post_json(&format!("/v1/customers/{customer}/erasure"), &json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let status_url = accepted["status_url"]
        .as_str()
        .expect("status_url")
        .to_owned();
    let status = eventually("the erasure done", WAIT, || async {
        let status = app.get_json(&status_url).await;
        (status["status"] == "done").then_some(status)
    })
    .await;
    let counts = &status["counts"];
    assert_eq!(
        counts["webhook_deliveries"],
        json!(queued.len() + 1),
        "{status}"
    );
    assert!(counts["webhook_attempts"].as_u64() >= Some(1), "{status}");
    // The dead receiver's queue of the customer; the live one's emptied
    // when its last delivery was sent.
    assert_eq!(counts["webhook_queues"], json!(1), "{status}");
    let left = eventually("customer.erased queued", WAIT, || async {
        let left = of_customer(&all_deliveries(&app, &dead_id).await);
        left.contains(&"customer.erased".to_owned()).then_some(left)
    })
    .await;
    assert_eq!(left, vec!["customer.erased"], "earlier changes are gone");
    assert!(of_customer(&all_deliveries(&app, &live_id).await).is_empty());
    receiver.stop().await;
    app.stop().await;
}
