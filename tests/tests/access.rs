//! Bearer-token access control through the real server and PostgreSQL:
//! every route × every kind of caller, revocation, the token store itself,
//! and a gateway-only process checking tokens against the database.

use std::time::{Duration, Instant};

use panorama_core::Role;
use panorama_e2e::{at_minute, contact};
use panorama_server::AUTH_CACHE_TTL;
use panorama_store::{Error as StoreError, SECRET_PREFIX};
use panorama_testkit::{TestApp, eventually};
use reqwest::Method;
use serde_json::{Value, json};

const CHANNEL_TOKEN: &str = "env-channel-token-1";
const ORIGIN: &str = "https://shop.example";

/// Who a route lets in.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone: the answer never depends on the bearer token.
    Public,
    /// Token-free: the provider's own signature decides, so every caller
    /// gets the same answer, whatever bearer token it sends.
    Provider,
    /// A token with this role, or admin.
    Needs(Role),
}

/// One route to try: method, path, body, who may call it.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    access: Access,
    headers: Vec<(&'static str, &'static str)>,
}

impl Route {
    /// Sends `name: value` too.
    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn route(method: Method, path: &str, body: Option<Value>, access: Access) -> Route {
    Route {
        method,
        path: path.to_owned(),
        body,
        access,
        headers: Vec::new(),
    }
}

/// Every route the all-in-one process serves. Adding a route is one line.
fn routes() -> Vec<Route> {
    use Access::{Needs, Provider, Public};
    let customer = uuid::Uuid::now_v7();
    let event = contact(1, "access-matrix-1", at_minute(1), "phone");
    vec![
        route(Method::GET, "/healthz", None, Public),
        route(Method::GET, "/readyz", None, Public),
        route(Method::GET, "/metrics", None, Public),
        route(Method::GET, "/openapi.json", None, Public),
        route(
            Method::POST,
            "/v1/events",
            Some(event),
            Needs(Role::Channel),
        ),
        route(Method::POST, "/v1/channels/twilio/voice", None, Provider),
        route(
            Method::POST,
            "/v1/channels/cti/events",
            Some(json!({})),
            Needs(Role::Channel),
        ),
        route(
            Method::POST,
            "/v1/channels/sendgrid/inbound",
            None,
            Provider,
        ),
        route(Method::POST, "/v1/channels/mailgun/inbound", None, Provider),
        route(
            Method::POST,
            "/v1/channels/email/mime",
            None,
            Needs(Role::Channel),
        ),
        route(Method::GET, "/v1/channels/meta/webhook", None, Provider),
        route(Method::POST, "/v1/channels/meta/webhook", None, Provider),
        route(
            Method::POST,
            "/v1/channels/web/events",
            Some(json!({})),
            Needs(Role::Channel),
        ),
        route(Method::OPTIONS, "/v1/channels/web/events", None, Provider)
            .with_header("origin", ORIGIN),
        route(
            Method::GET,
            "/v1/customers/lookup?phone=%2B31612345678",
            None,
            Needs(Role::Agent),
        ),
        route(
            Method::GET,
            &format!("/v1/customers/{customer}"),
            None,
            Needs(Role::Agent),
        ),
        route(
            Method::GET,
            &format!("/v1/customers/{customer}/timeline"),
            None,
            Needs(Role::Agent),
        ),
        route(
            Method::GET,
            &format!("/v1/customers/{customer}/identity"),
            None,
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/merge"),
            Some(json!({"other": uuid::Uuid::now_v7()})),
            Needs(Role::Admin),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/unmerge"),
            Some(json!({"merged": uuid::Uuid::now_v7()})),
            Needs(Role::Admin),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/notes"),
            Some(json!({"text": "called back"})),
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/feedback"),
            Some(json!({"metric": "nps", "score": 9})),
            Needs(Role::Agent),
        ),
        route(
            Method::GET,
            &format!("/v1/customers/{customer}/cases"),
            None,
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/cases"),
            Some(json!({"reason": "parcel"})),
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/cases/{customer}/resolve"),
            Some(json!({"outcome": "done"})),
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/cases/{customer}/reopen"),
            Some(json!({})),
            Needs(Role::Agent),
        ),
        route(
            Method::POST,
            &format!("/v1/customers/{customer}/tasks"),
            Some(json!({"title": "t", "due_at": "2030-01-01T00:00:00Z", "channel": "phone"})),
            Needs(Role::Agent),
        ),
        route(Method::GET, "/v1/tasks", None, Needs(Role::Agent)),
        route(
            Method::PATCH,
            &format!("/v1/tasks/{customer}"),
            Some(json!({"status": "done"})),
            Needs(Role::Agent),
        ),
        route(Method::GET, "/v1/insights", None, Needs(Role::Agent)),
        route(
            Method::GET,
            "/v1/identity/conflicts",
            None,
            Needs(Role::Admin),
        ),
        route(
            Method::POST,
            &format!("/v1/identity/conflicts/{customer}/resolve"),
            Some(json!({"action": "dismiss"})),
            Needs(Role::Admin),
        ),
        route(
            Method::GET,
            &format!("/v1/stream?customer={customer}"),
            None,
            Needs(Role::Agent),
        ),
        route(Method::GET, "/v1/audit", None, Needs(Role::Admin)),
        route(
            Method::POST,
            "/v1/notes",
            Some(
                json!({"identifier": {"kind": "phone", "value": "+31687650000"}, "text": "first call"}),
            ),
            Needs(Role::Agent),
        ),
        route(Method::GET, "/", None, Public),
        route(Method::GET, "/console/app.js", None, Public),
    ]
}

async fn app() -> TestApp {
    TestApp::builder()
        .configure(|options| {
            let channels = &mut options.channels;
            channels.public_url = Some("https://panorama.example.com".into());
            channels.twilio_auth_token = Some("twilio-auth-token".into());
            channels.meta_app_secret = Some("meta-app-secret".into());
            channels.meta_verify_token = Some("meta-verify-token".into());
            channels.sendgrid_secret = Some("sendgrid-secret".into());
            channels.mailgun_signing_key = Some("mailgun-signing-key".into());
            channels.channel_tokens = vec![CHANNEL_TOKEN.into()];
            channels.web_write_keys = vec!["pk_web_1".into()];
            channels.web_allowed_origins = vec![ORIGIN.into()];
        })
        .spawn()
        .await
}

async fn send(app: &TestApp, route: &Route, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = app.request(route.method.clone(), &route.path, token);
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    for (name, value) in &route.headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

/// A secret in the right shape that no token has.
fn unknown_secret() -> String {
    format!("{SECRET_PREFIX}{}", "A".repeat(43))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_kind_of_caller_as_its_role_says() {
    let app = app().await;
    // /readyz answers 503 until the projector has joined its group.
    app.wait_ready(&app.base_url).await;
    let garbage = unknown_secret();
    let agent = app.token(Role::Agent).await;
    let channel = app.token(Role::Channel).await;
    let callers: [(&str, Option<&str>, Option<Role>); 5] = [
        ("no token", None, None),
        ("garbage token", Some(&garbage), None),
        ("agent", Some(&agent), Some(Role::Agent)),
        ("channel", Some(&channel), Some(Role::Channel)),
        ("admin", Some(&app.admin_token), Some(Role::Admin)),
    ];
    let mut failures = Vec::new();
    for route in routes() {
        let mut provider_answers = Vec::new();
        for (who, token, role) in callers {
            let (status, challenge, body) = send(&app, &route, token).await;
            let what = format!("{} {} as {who}: {status} {body}", route.method, route.path);
            match (route.access, role) {
                (Access::Public, _) => {
                    if status == 401 || status == 403 || status >= 500 {
                        failures.push(format!("{what}: public routes answer anyone"));
                    }
                }
                (Access::Provider, _) => provider_answers.push(status),
                (Access::Needs(_), None) => {
                    if status != 401
                        || challenge.as_deref() != Some("Bearer")
                        || body["type"] != "/problems/unauthorized"
                    {
                        failures.push(format!("{what}: expected 401 with a Bearer challenge"));
                    }
                }
                (Access::Needs(needed), Some(role)) if role.grants(needed) => {
                    if status == 401 || status == 403 || status >= 500 {
                        failures.push(format!("{what}: expected the handler's answer"));
                    }
                }
                (Access::Needs(needed), Some(_)) => {
                    let names_role = body["detail"]
                        .as_str()
                        .is_some_and(|detail| detail.contains(needed.as_str()));
                    if status != 403 || body["type"] != "/problems/forbidden" || !names_role {
                        failures.push(format!("{what}: expected 403 naming {needed}"));
                    }
                }
            }
        }
        if !provider_answers.is_empty() {
            let first = provider_answers[0];
            if provider_answers.iter().any(|status| *status != first) || first == 403 {
                failures.push(format!(
                    "{} {}: a provider webhook answers every caller alike, got {provider_answers:?}",
                    route.method, route.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_routes_take_configured_tokens_and_api_tokens() {
    let app = app().await;
    let channel = app.token(Role::Channel).await;
    let call = json!({"call_id": "c1", "state": "ringing", "direction": "inbound", "caller": "+31612345678"});
    for token in [CHANNEL_TOKEN, channel.as_str(), app.admin_token.as_str()] {
        let response = app
            .request(Method::POST, "/v1/channels/cti/events", Some(token))
            .json(&call)
            .send()
            .await
            .expect("answer");
        assert_eq!(
            response.status(),
            200,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    let agent = app.token(Role::Agent).await;
    let response = app
        .request(Method::POST, "/v1/channels/cti/events", Some(&agent))
        .json(&call)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 403);
    // The configured token is a channel token, not an API token.
    let response = app
        .request(
            Method::GET,
            "/v1/customers/lookup?phone=%2B31612345678",
            Some(CHANNEL_TOKEN),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorization_headers_are_401_not_errors() {
    let app = app().await;
    let agent = app.token(Role::Agent).await;
    let path = "/v1/customers/lookup?phone=%2B31612345678";
    let status = |value: reqwest::header::HeaderValue| {
        let request = app
            .request(Method::GET, path, None)
            .header("authorization", value);
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    let header = |text: String| reqwest::header::HeaderValue::from_str(&text).expect("header");
    assert_eq!(
        status(header(format!("bearer {agent}"))).await,
        404,
        "scheme in any case"
    );
    assert_eq!(
        status(header(format!("BEARER   {agent}  "))).await,
        404,
        "extra spaces"
    );
    for bad in [
        header("Bearer".into()),
        header("Bearer ".into()),
        header(format!("Basic {agent}")),
        header(format!("Bearer{agent}")),
        header(format!("Bearer {agent}x")),
        header(format!("Bearer {}", &agent[..agent.len() - 1])),
        reqwest::header::HeaderValue::from_bytes(b"Bearer pan_\xc3\xa9\xff").expect("header"),
    ] {
        assert_eq!(status(bad.clone()).await, 401, "{bad:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_within_the_cache_window() {
    let app = app().await;
    let (info, secret) = app
        .store
        .create_token("desk-12", Role::Agent)
        .await
        .expect("create");
    assert_eq!(info.name, "desk-12");
    let path = "/v1/customers/lookup?phone=%2B31612345678";
    let status = || async {
        app.request(Method::GET, path, Some(secret.expose()))
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(
        status().await,
        404,
        "a live agent token reaches the handler"
    );
    assert!(app.store.revoke_token("desk-12").await.expect("revoke"));
    let revoked_at = Instant::now();
    eventually(
        "the revoked token to be refused",
        Duration::from_secs(30),
        || async { (status().await == 401).then_some(()) },
    )
    .await;
    assert!(
        revoked_at.elapsed() < AUTH_CACHE_TTL + Duration::from_secs(2),
        "refused after {:?}, the cache keeps successes for {AUTH_CACHE_TTL:?}",
        revoked_at.elapsed()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_hashes_one_live_token_per_name_and_touches_last_use() {
    let app = TestApp::spawn().await;
    let store = &app.store;
    let (info, secret) = store
        .create_token("desk-7", Role::Agent)
        .await
        .expect("create");
    assert!(secret.expose().starts_with(SECRET_PREFIX));
    assert!(
        !format!("{secret:?}").contains(secret.expose()),
        "Debug hides the secret"
    );

    // Only the hash is stored: no column of the row holds the secret.
    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT row_to_json(t)::text, encode(token_hash, 'hex') FROM api_tokens t WHERE id = $1",
            &[&info.id],
        )
        .await
        .expect("row");
    let (text, hash): (String, String) = (row.get(0), row.get(1));
    assert!(!text.contains(secret.expose()), "{text}");
    assert!(
        !text.contains(&secret.expose()[SECRET_PREFIX.len()..]),
        "{text}"
    );
    let expected: String = panorama_store::token_hash(secret.expose())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hash, expected);

    // One live token per name.
    assert!(matches!(
        store.create_token("desk-7", Role::Admin).await,
        Err(StoreError::TokenNameTaken(name)) if name == "desk-7"
    ));
    assert!(matches!(
        store.create_token("two words", Role::Agent).await,
        Err(StoreError::InvalidTokenName(_))
    ));

    // Authenticate: the live token, nothing else; last use recorded.
    assert!(info.last_used_at.is_none());
    let principal = store
        .authenticate(secret.expose())
        .await
        .expect("authenticate")
        .expect("a live token");
    assert_eq!(
        (principal.token_id, principal.name.as_str(), principal.role),
        (info.id, "desk-7", Role::Agent)
    );
    assert_eq!(
        store.authenticate(&unknown_secret()).await.expect("query"),
        None
    );
    assert_eq!(store.authenticate("").await.expect("query"), None);
    assert_eq!(store.authenticate("pan_é").await.expect("query"), None);
    let listed = store.list_tokens().await.expect("list");
    let desk = listed.iter().find(|t| t.name == "desk-7").expect("listed");
    assert_eq!(desk.role, Role::Agent);
    let first_use = desk.last_used_at.expect("last use recorded");
    // A second use within the minute does not write again.
    store.authenticate(secret.expose()).await.expect("again");
    let listed = store.list_tokens().await.expect("list");
    let desk = listed.iter().find(|t| t.name == "desk-7").expect("listed");
    assert_eq!(desk.last_used_at, Some(first_use));

    // Revoke: the token stops working, leaves the list, frees the name.
    assert!(store.revoke_token("desk-7").await.expect("revoke"));
    assert!(
        !store.revoke_token("desk-7").await.expect("revoke again"),
        "nothing left to revoke"
    );
    assert!(!store.revoke_token("nobody").await.expect("revoke unknown"));
    assert_eq!(
        store.authenticate(secret.expose()).await.expect("query"),
        None
    );
    assert!(
        store
            .list_tokens()
            .await
            .expect("list")
            .iter()
            .all(|t| t.name != "desk-7")
    );
    let (again, new_secret) = store
        .create_token("desk-7", Role::Channel)
        .await
        .expect("recreate");
    assert_ne!(again.id, info.id);
    assert_ne!(new_secret, secret);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_only_process_checks_tokens_against_the_database() {
    let app = TestApp::builder()
        .role(panorama::ProcessRole::Gateway)
        .spawn()
        .await;
    let event = contact(2, "gateway-only-1", at_minute(2), "email");
    let post = |token: Option<String>| {
        let request = app
            .request(Method::POST, "/v1/events", token.as_deref())
            .json(&event);
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(post(Some(app.token(Role::Channel).await)).await, 202);
    assert_eq!(post(Some(app.token(Role::Agent).await)).await, 403);
    assert_eq!(post(None).await, 401);
    let ready = app.get_json("/readyz").await;
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["postgres", "kafka"],
        "the gateway needs PostgreSQL for tokens"
    );
    app.stop().await;
}
