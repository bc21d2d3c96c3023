//! `/healthz` (the process answers) and `/readyz` (its dependencies do).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::{AppState, metrics};

/// A named readiness check; `Err` says why not ready.
pub type ReadinessCheck = std::sync::Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync,
>;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// `/readyz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// Whether every check passed.
    ready: bool,
    /// Each check.
    checks: Vec<CheckResult>,
}

/// One readiness check.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CheckResult {
    /// `postgres`, `broker`, ...
    name: String,
    /// Whether it passed.
    ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "The process is up",
    description = "No token needed; checks nothing else.",
    responses((status = 200, description = "Up", body = Health)),
)]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// `GET /readyz`: 200 when every check passes, else 503 with the failures.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "PostgreSQL and the broker are reachable",
    description = "No token needed. Checks, with a 2 s timeout each, that PostgreSQL answers \
        and the schema is current, and that the topic exists on the broker (gateway and \
        projector roles).",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the failing checks (not a problem body)", body = Readiness,
            headers(("Retry-After" = String, description = "`5`"))),
    ),
)]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let checks = run_checks(&state.readiness).await;
    let ready = checks.iter().all(|check| check.ok);
    record(&checks, ready);
    let body = Readiness { ready, checks };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Runs the checks every `interval` so `panorama_ready` and
/// `panorama_readiness_check` stay current between probes (alerts read
/// them); stops with the runtime or when the handle is aborted.
pub fn spawn_readiness_monitor(
    checks: Vec<(String, ReadinessCheck)>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_ready = None;
        loop {
            ticker.tick().await;
            let results = run_checks(&checks).await;
            let ready = results.iter().all(|check| check.ok);
            record(&results, ready);
            if was_ready != Some(ready) {
                let failing: Vec<&str> = results
                    .iter()
                    .filter(|check| !check.ok)
                    .map(|check| check.name.as_str())
                    .collect();
                if ready {
                    tracing::info!("ready");
                } else {
                    tracing::warn!(?failing, "not ready");
                }
                was_ready = Some(ready);
            }
        }
    })
}

fn record(checks: &[CheckResult], ready: bool) {
    for check in checks {
        metrics::READINESS_CHECK
            .with_label_values(&[check.name.as_str()])
            .set(i64::from(check.ok));
    }
    metrics::READY.set(i64::from(ready));
}

async fn run_checks(checks: &[(String, ReadinessCheck)]) -> Vec<CheckResult> {
    let checks = checks.iter().map(|(name, check)| {
        let name = name.clone();
        let future = check();
        async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, future).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            CheckResult {
                name,
                ok: outcome.is_ok(),
                error: outcome.err(),
            }
        }
    });
    futures::future::join_all(checks).await
}
