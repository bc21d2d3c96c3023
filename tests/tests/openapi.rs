//! `GET /openapi.json` against the running application: it is public JSON,
//! OpenAPI 3.1, and what it says holds. Every documented operation is
//! served (not answered by the fallback for unknown routes), and every
//! operation's security requirements match what callers get: 401 without
//! credentials, 403 for a token without the documented role, the handler's
//! answer with it. (That the document lists exactly the routes the router
//! serves is checked in `panorama-server`'s unit tests, where the route
//! table is visible.)

use panorama_core::Role;
use panorama_testkit::TestApp;
use reqwest::Method;
use serde_json::Value;

const ORIGIN: &str = "https://shop.example";

/// What the fallback for unknown routes says; no handler says it.
const FALLBACK_DETAILS: [&str; 2] = [
    "no such route",
    "this route is not served by this process's roles, or the method is wrong",
];

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
            channels.channel_tokens = vec!["env-channel-token-1".into()];
            channels.web_write_keys = vec!["pk_web_1".into()];
            channels.web_allowed_origins = vec![ORIGIN.into()];
        })
        .spawn()
        .await
}

/// The path with every `{param}` filled in, and the required query
/// parameters.
fn concrete(path: &str, operation: &Value) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let mut filled = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                id.as_str()
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let required: Vec<String> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .filter_map(|p| p["name"].as_str())
        .map(|name| format!("{name}={id}"))
        .collect();
    if !required.is_empty() {
        filled = format!("{filled}?{}", required.join("&"));
    }
    filled
}

/// The role an operation's `bearer` requirement names, if it has one.
fn bearer_role(operation: &Value) -> Option<Role> {
    operation["security"]
        .as_array()?
        .iter()
        .find_map(|requirement| requirement["bearer"][0].as_str())
        .map(|role| role.parse().expect("a role"))
}

async fn send(app: &TestApp, method: &Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let response = app
        .request(method.clone(), path, token)
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_public_json_in_openapi_3_1() {
    let app = app().await;
    let agent = app.token(Role::Agent).await;
    let channel = app.token(Role::Channel).await;
    for token in [None, Some("pan_unknown"), Some(&agent), Some(&channel)] {
        let response = app
            .request(Method::GET, "/openapi.json", token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "as {token:?}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let document: Value = response.json().await.expect("JSON");
        let version = document["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1"), "openapi {version}");
        assert!(document["paths"]["/v1/events"]["post"].is_object());
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_served_and_guarded_as_documented() {
    let app = app().await;
    let document = app.get_json("/openapi.json").await;
    let agent = app.token(Role::Agent).await;
    let channel = app.token(Role::Channel).await;
    let token_of = |role: Role| match role {
        Role::Agent => agent.as_str(),
        Role::Channel => channel.as_str(),
        Role::Admin => app.admin_token.as_str(),
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            checked += 1;
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let url = concrete(path, operation);
            let what = format!("{method} {url}");
            let security = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // Served: with the documented credentials (or none), the
            // answer is the handler's, not the fallback's.
            let role = bearer_role(operation);
            let (status, body) = send(&app, &method, &url, role.map(token_of)).await;
            let detail = body["detail"].as_str().unwrap_or_default();
            if status == 405 || FALLBACK_DETAILS.contains(&detail) {
                failures.push(format!("{what}: not served: {status} {body}"));
            }
            match role {
                Some(needed) => {
                    if status == 401 || status == 403 {
                        failures.push(format!("{what} as {needed}: {status} {body}"));
                    }
                    let (status, body) = send(&app, &method, &url, None).await;
                    if status != 401 || body["type"] != "/problems/unauthorized" {
                        failures.push(format!("{what} without a token: {status} {body}"));
                    }
                    for role in [Role::Agent, Role::Channel] {
                        if role.grants(needed) {
                            continue;
                        }
                        let (status, body) = send(&app, &method, &url, Some(token_of(role))).await;
                        let names_role = body["detail"]
                            .as_str()
                            .is_some_and(|detail| detail.contains(needed.as_str()));
                        if status != 403 || !names_role {
                            failures.push(format!("{what} as {role}: {status} {body}"));
                        }
                    }
                }
                None if security.is_empty() => {
                    if status == 401 || status == 403 {
                        failures.push(format!("{what}: documented public, got {status}"));
                    }
                }
                // A provider's own signature or secret: none given here.
                None => {
                    if status != 401 {
                        failures.push(format!("{what} unsigned: {status} {body}"));
                    }
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} operations documented");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}
