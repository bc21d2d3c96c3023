//! Schemathesis, a property-based OpenAPI fuzzer, against the running
//! application: it reads `/openapi.json`, generates requests for every
//! operation (the document's examples, boundary values, random valid and
//! invalid data, and sequences of calls along the document's links: lookup
//! → profile, timeline, cases; open a case → resolve it; create a task →
//! update it; ...), sends them with an agent, a channel and an admin token
//! in turn, and checks every answer against the document: no 5xx, a
//! documented status, the documented content type, headers and body schema
//! (each server-sent event of `/v1/stream` too), and that requests the
//! document calls invalid are refused. Ids (and phone numbers and email
//! addresses) in paths, queries and bodies are drawn half the time from a
//! few seeded customers, cases and tasks, so requests reach real data, not
//! only 404s.
//!
//! A short run from a fixed seed is part of `cargo test` (and so of `make
//! test`); `make api-fuzz` is the long one. Knobs (environment):
//! `PANORAMA_API_FUZZ_EXAMPLES` (test cases per operation and phase),
//! `PANORAMA_API_FUZZ_SECONDS` (a time budget per token, spent repeating
//! the fuzzing and stateful phases) and `PANORAMA_API_FUZZ_SEED`.
//!
//! Schemathesis comes from `PANORAMA_SCHEMATHESIS` (the `st` executable);
//! `make test` installs it (scripts/ensure-schemathesis.sh). Its reports
//! go to `target/test-artifacts/api-fuzz/<role>/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use panorama_core::Role;
use panorama_e2e::contact_with;
use panorama_testkit::{TestApp, kill_when_parent_exits};
use serde_json::{Value, json};

/// Test cases per operation and phase in the short run.
const SHORT_EXAMPLES: u32 = 20;

/// The short run's seed: the same requests every time.
const SHORT_SEED: u64 = 20_260_101;

/// Longest a short run of one token may take; a long run gets its budget
/// on top.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// What every answer is checked for. Left out: `positive_data_acceptance`,
/// since the document's schemas cannot say everything a handler validates
/// (a phone number's or email address's syntax, a cursor the API handed
/// out, exactly one identifier of a lookup, an id in a body that must name
/// an existing customer), so it reports every such refusal of schema-valid
/// data; and `unsupported_method`, which wants 405 for every method a path
/// lacks where the API answers 404 "the method is wrong" for the methods it
/// serves elsewhere (a 405, for a method no route has, names the path's
/// methods in `Allow`).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection";

/// The browser origin the web channel allows, sent on every request so the
/// web routes get past their origin check.
const ORIGIN: &str = "https://shop.example";

/// The `st` executable, or a panic that says how to get it.
fn schemathesis() -> PathBuf {
    match std::env::var_os("PANORAMA_SCHEMATHESIS") {
        Some(path) if Path::new(&path).is_file() => PathBuf::from(path),
        Some(path) => panic!(
            "PANORAMA_SCHEMATHESIS={} is not a file: run scripts/ensure-schemathesis.sh",
            Path::new(&path).display()
        ),
        None => panic!(
            "PANORAMA_SCHEMATHESIS is not set: run \
             `export PANORAMA_SCHEMATHESIS=\"$(scripts/ensure-schemathesis.sh)\"` \
             (make test does)"
        ),
    }
}

/// A number from the environment, or `default`.
fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

fn artifacts(role: Role) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target
        .join("test-artifacts")
        .join("api-fuzz")
        .join(role.as_str());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// The app with every provider webhook on, so the fuzzer reaches their
/// signature checks rather than their 404.
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

/// The seeded customers' phone numbers, and the first one's email address.
const PHONES: [&str; 2] = ["+31612345678", "+31611112222"];
const EMAIL: &str = "anna@example.nl";

/// Ids the fuzzer draws path and query parameters from, besides random
/// ones, so that requests reach real customers, cases and tasks.
struct Seeded {
    customers: Vec<String>,
    cases: Vec<String>,
    tasks: Vec<String>,
}

/// Two customers with a few contacts, a case and a task.
async fn seed(app: &TestApp) -> Seeded {
    let hours_ago = |hours: i64| Utc::now() - Span::hours(hours);
    let events = json!({ "events": [
        contact_with("fuzz-call-1", hours_ago(30), "phone", &[("phone", PHONES[0]), ("email", EMAIL)]),
        contact_with("fuzz-mail-1", hours_ago(20), "email", &[("email", EMAIL)]),
        contact_with("fuzz-chat-1", hours_ago(10), "chat", &[("phone", PHONES[1])]),
    ]});
    let response = app.post_events(&events).await;
    assert_eq!(
        response.status(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    app.wait_for_events(3).await;
    let mut customers = Vec::new();
    for phone in PHONES {
        let phone = phone.replace('+', "%2B");
        let profile = app
            .get_json(&format!("/v1/customers/lookup?phone={phone}"))
            .await;
        customers.push(profile["id"].as_str().expect("id").to_owned());
    }
    let case = app
        .post_json(
            &format!("/v1/customers/{}/cases", customers[0]),
            &json!({ "reason": "my order did not arrive" }),
        )
        .await;
    assert_eq!(case.status(), 202);
    let case: Value = case.json().await.expect("JSON");
    let task = app
        .post_json(
            &format!("/v1/customers/{}/tasks", customers[0]),
            &json!({ "title": "call back", "due_at": hours_ago(-24).to_rfc3339(), "channel": "phone" }),
        )
        .await;
    assert_eq!(task.status(), 202);
    let task: Value = task.json().await.expect("JSON");
    app.wait_for_events(5).await;
    Seeded {
        customers,
        cases: vec![case["case_id"].as_str().expect("case id").to_owned()],
        tasks: vec![task["task_id"].as_str().expect("task id").to_owned()],
    }
}

/// `schemathesis.toml`: the hooks (a serializer for raw email); ids in
/// paths, queries and bodies drawn half the time from what was seeded (so
/// an admin run merges and unmerges real customers); and streams read up
/// to their first event or a second of silence (a live stream never ends
/// by itself).
fn config(seeded: &Seeded) -> String {
    let list = |ids: &[&String]| {
        ids.iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let customers: Vec<&String> = seeded.customers.iter().collect();
    let cases: Vec<&String> = seeded.cases.iter().collect();
    let all: Vec<&String> = customers
        .iter()
        .chain(&cases)
        .copied()
        .chain(&seeded.tasks)
        .collect();
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis_hooks.py");
    format!(
        "hooks = '{hooks}'\n\
         [dictionaries.customers]\nvalues = [{customers}]\n\
         [dictionaries.cases]\nvalues = [{cases}]\n\
         [dictionaries.ids]\nvalues = [{all}]\n\
         [dictionaries.phones]\nvalues = [{phones}]\n\
         [dictionaries.emails]\nvalues = [\"{EMAIL}\"]\n\
         [parameters]\n\
         \"path.id\" = {{ dictionary = \"ids\", probability = 0.5 }}\n\
         \"query.customer\" = {{ dictionary = \"customers\", probability = 0.5 }}\n\
         \"query.phone\" = {{ dictionary = \"phones\", probability = 0.5 }}\n\
         \"query.email\" = {{ dictionary = \"emails\", probability = 0.5 }}\n\
         \"body.case_id\" = {{ dictionary = \"cases\", probability = 0.5 }}\n\
         \"body.other\" = {{ dictionary = \"customers\", probability = 0.5 }}\n\
         \"body.merged\" = {{ dictionary = \"customers\", probability = 0.5 }}\n\
         [[operations]]\ninclude-path = \"/v1/stream\"\nmax-stream-events = 1\nrequest-timeout = 1\n",
        hooks = hooks.display(),
        customers = list(&customers),
        cases = list(&cases),
        all = list(&all),
        phones = PHONES.map(|phone| format!("\"{phone}\"")).join(", "),
    )
}

/// One schemathesis run with `token`; its output when it found anything.
async fn fuzz(app: &TestApp, config: &Path, role: Role, token: &str) -> Option<String> {
    let examples = setting("PANORAMA_API_FUZZ_EXAMPLES", SHORT_EXAMPLES.into());
    let seconds = setting("PANORAMA_API_FUZZ_SECONDS", 0);
    let seed = setting("PANORAMA_API_FUZZ_SEED", SHORT_SEED);
    let reports = artifacts(role);
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{}/openapi.json", app.base_url))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--header", &format!("Origin: {ORIGIN}")])
        .args(["--checks", CHECKS])
        .args(["--seed", &seed.to_string()])
        .args(["--max-examples", &examples.to_string()])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--report", "junit,ndjson"])
        .arg("--report-dir")
        .arg(&reports)
        .arg("--no-color")
        .current_dir(&reports)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if seconds > 0 {
        command.args(["--max-time", &seconds.to_string()]);
    }
    let child = command.spawn().unwrap_or_else(|error| {
        panic!("cannot run schemathesis ({error}): run scripts/ensure-schemathesis.sh")
    });
    if let Some(pid) = child.id() {
        kill_when_parent_exits(pid).expect("watchdog");
    }
    let timeout = RUN_TIMEOUT + Duration::from_secs(seconds);
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis as {role} ran past {timeout:?}"))
        .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("schemathesis as {role}:\n{text}");
    (!output.status.success()).then(|| format!("as {role} ({}):\n{text}", output.status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_document_says_under_fuzzing() {
    let _ = schemathesis();
    let app = app().await;
    let seeded = seed(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("schemathesis.toml");
    let config = config(&seeded);
    println!("schemathesis.toml:\n{config}");
    std::fs::write(&config_path, config).expect("write the config");
    let agent = app.token(Role::Agent).await;
    let channel = app.token(Role::Channel).await;
    let mut failures = Vec::new();
    for (role, token) in [
        (Role::Agent, agent.as_str()),
        (Role::Channel, channel.as_str()),
        (Role::Admin, app.admin_token.as_str()),
    ] {
        failures.extend(fuzz(&app, &config_path, role, token).await);
    }
    app.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
