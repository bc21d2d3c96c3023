//! `/healthz` (the process answers) and `/readyz` (its dependencies do).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::AppState;

/// A named readiness check; `Err` says why not ready.
pub type ReadinessCheck = std::sync::Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync,
>;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    checks: Vec<CheckResult>,
}

#[derive(Serialize)]
struct CheckResult {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every check passes, else 503 with the failures.
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let checks = state.readiness.iter().map(|(name, check)| {
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
    let checks = futures::future::join_all(checks).await;
    let ready = checks.iter().all(|check| check.ok);
    let body = Readiness { ready, checks };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}
