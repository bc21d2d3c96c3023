//! The files in `deploy/` hold together: Prometheus' config and alert rules
//! pass `promtool`, the alert rules' own unit tests pass, and the Grafana
//! dashboard is valid JSON whose queries use only metric names the service
//! exports (and the README documents).
//!
//! promtool comes from `PANORAMA_PROMTOOL` or `PATH`; `make test` installs
//! it (scripts/ensure-promtool.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use panorama_e2e::prometheus::{Exposition, documented_metrics, metric_names};
use panorama_testkit::TestApp;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool(args: &[&str]) {
    let tool = std::env::var("PANORAMA_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let output = Command::new(&tool)
        .args(args)
        .current_dir(repo().join("deploy"))
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {tool} ({error}): run scripts/ensure-promtool.sh or set PANORAMA_PROMTOOL")
        });
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
}

fn expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr", Value::String(expr)) => found.push(expr.clone()),
                    _ => expressions(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| expressions(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_query_only_exported_metrics() {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/dashboards/panorama.json"))
        .expect("dashboard file");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "dashboard queries: {exprs:?}");
    let used = metric_names(&exprs.join("\n"));
    let alerts = std::fs::read_to_string(repo().join("deploy/alerts.yml")).expect("alerts");
    let alerted = metric_names(&alerts);

    let app = TestApp::spawn().await;
    let exported = app
        .anonymous
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let exported = Exposition::parse(&exported).expect("Prometheus text");
    // Families that appear only with their first labelled observation are
    // documented; they count as exported.
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let documented = documented_metrics(&readme);
    for name in used.iter().chain(&alerted) {
        assert!(
            documented.contains(name),
            "{name} is queried but not documented"
        );
        let labelled_later = [
            "panorama_ingest_events_total",
            "panorama_ingest_ignored_total",
            "panorama_http_request_duration_seconds",
            "panorama_projector_consumer_lag",
            "panorama_projector_stored_offset",
            "panorama_insights_contacts",
            "panorama_insights_feedback_score",
            "panorama_insights_feedback_responses",
            "panorama_readiness_check",
        ];
        assert!(
            exported.families.contains_key(name) || labelled_later.contains(&name.as_str()),
            "{name} is queried but not exported"
        );
    }
    for needed in [
        "panorama_ingest_events_total",
        "panorama_event_to_visible_seconds",
        "panorama_projector_consumer_lag",
        "panorama_http_request_duration_seconds",
        "panorama_identity_decisions_total",
        "panorama_projector_dlq_records_total",
        "panorama_insights_contacts",
        "panorama_insights_repeat_contact_rate",
        "panorama_insights_feedback_score",
    ] {
        assert!(
            used.iter().any(|name| name == needed),
            "no dashboard panel queries {needed}"
        );
    }
    app.stop().await;

    // docker-compose provisions the dashboard and the data source.
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose");
    for path in [
        "deploy/grafana/provisioning",
        "deploy/grafana/dashboards",
        "deploy/alerts.yml",
    ] {
        assert!(
            compose.contains(path),
            "docker-compose.yml does not mount {path}"
        );
        assert!(repo().join(path).exists(), "{path} is missing");
    }
}
