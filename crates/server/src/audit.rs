//! The audit pipeline: every authenticated request to a customer or
//! identity route (reads and writes alike) becomes an audit entry with the
//! token's name and role, the method, the route template, the customer id
//! asked for and the status.
//!
//! The [`record`] middleware runs after the handler has answered, so it
//! knows the matched route and the status, and it never waits for the
//! database: entries go through a bounded queue to one writer task, which
//! inserts them with one statement every [`FLUSH_EVERY`] or
//! [`FLUSH_ROWS`] entries, whichever comes first.
//!
//! **When the queue is full** (the database is down or far behind), an
//! entry is dropped, counted in `panorama_audit_dropped_total` and logged
//! as a warning; the request is not slowed down. Blocking instead would
//! turn an audit backlog into an outage of the agent API, at exactly the
//! moment the database is struggling. A deployment that must never lose an
//! entry alerts on that counter (it should stay 0). Requests without a
//! valid token are not audited (they read and changed nothing; the HTTP
//! metrics count them); requests refused for their role (403) are.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use panorama_store::{AuditRecord, Store};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::Caller;
use crate::{AppState, metrics};

/// Longest an entry waits in the writer before it is inserted.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Most entries per insert.
pub(crate) const FLUSH_ROWS: usize = 500;
/// Entries the queue holds before new ones are dropped.
const QUEUE: usize = 10_000;
/// Tries per insert before its entries are given up.
const ATTEMPTS: u32 = 3;

/// The request side of the pipeline.
#[derive(Debug)]
pub(crate) struct AuditSink {
    sender: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// Starts the writer on the current Tokio runtime; `None` outside one.
    /// The writer flushes what it holds and stops once the sink is dropped.
    pub(crate) fn start(store: Store) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        runtime.spawn(write(store, receiver));
        Some(AuditSink { sender })
    }

    fn push(&self, record: AuditRecord) {
        if let Err(error) = self.sender.try_send(record) {
            metrics::AUDIT_DROPPED.inc();
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            tracing::warn!(reason, "audit entry dropped");
        }
    }
}

/// Inserts queued entries in batches until the queue closes.
async fn write(store: Store, mut receiver: mpsc::Receiver<AuditRecord>) {
    let mut batch = Vec::with_capacity(FLUSH_ROWS);
    loop {
        if receiver.recv_many(&mut batch, FLUSH_ROWS).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        let mut open = true;
        while open && batch.len() < FLUSH_ROWS {
            let room = FLUSH_ROWS - batch.len();
            tokio::select! {
                received = receiver.recv_many(&mut batch, room) => open = received > 0,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        flush(&store, &mut batch).await;
        if !open {
            return;
        }
    }
}

async fn flush(store: &Store, batch: &mut Vec<AuditRecord>) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store.record_audit(batch).await {
            Ok(()) => break,
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "cannot write audit entries; retrying");
                tokio::time::sleep(FLUSH_EVERY * attempt).await;
            }
            Err(error) => {
                metrics::AUDIT_DROPPED.inc_by(batch.len() as u64);
                tracing::error!(%error, entries = batch.len(), "audit entries lost");
                break;
            }
        }
    }
    batch.clear();
}

/// The customer a request is about: the `{id}` of a `/v1/customers/{id}`
/// route, or the `customer` parameter of the stream and the conflict list.
/// `None` when there is none or it is no UUID.
fn customer_of(request: &HttpRequest, route: &str) -> Option<Uuid> {
    if route.starts_with("/v1/customers/{id}") {
        return Uuid::parse_str(request.match_info().get("id")?).ok();
    }
    if route == "/v1/stream" || route == "/v1/identity/conflicts" {
        let query = web::Query::<std::collections::HashMap<String, String>>::from_query(
            request.query_string(),
        )
        .ok()?;
        return Uuid::parse_str(query.get("customer")?).ok();
    }
    None
}

/// Whether requests to `route` are audited: every customer and identity
/// route, and the live stream.
fn audited(route: &str) -> bool {
    [
        "/v1/customers",
        "/v1/identity",
        "/v1/cases",
        "/v1/tasks",
        "/v1/notes",
    ]
    .iter()
    .any(|prefix| route.starts_with(prefix))
        || route == "/v1/stream"
}

/// Middleware: queues an audit entry for every authenticated request to an
/// audited route, once the handler has answered.
pub(crate) async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let http = response.request();
    let Some(route) = http.match_pattern().filter(|route| audited(route)) else {
        return Ok(response);
    };
    let Some(sink) = http
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.audit.as_ref())
    else {
        return Ok(response);
    };
    // The principal the authentication middleware left for this request.
    let Ok(caller) = Caller::of(http) else {
        return Ok(response);
    };
    sink.push(AuditRecord {
        id: Uuid::now_v7(),
        at: chrono::Utc::now(),
        actor: caller.principal().name.clone(),
        role: caller.role().to_string(),
        method: http.method().to_string(),
        customer_id: customer_of(http, &route),
        route,
        status: i32::from(response.status().as_u16()),
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_case_task_and_identity_routes_are_audited_others_not() {
        assert!(audited("/v1/customers/{id}/timeline"));
        assert!(audited("/v1/customers/lookup"));
        assert!(audited("/v1/identity/conflicts/{id}/resolve"));
        assert!(audited("/v1/stream"));
        assert!(audited("/v1/cases/{id}/resolve"));
        assert!(audited("/v1/tasks/{id}"));
        assert!(!audited("/v1/events"));
        assert!(!audited("/v1/audit"));
        assert!(!audited("/metrics"));
    }

    #[test]
    fn the_customer_comes_from_the_path_or_the_customer_parameter() {
        let id = Uuid::now_v7();
        let stream = actix_web::test::TestRequest::default()
            .uri(&format!("/v1/stream?customer={id}"))
            .to_http_request();
        assert_eq!(customer_of(&stream, "/v1/stream"), Some(id));
        let garbage = actix_web::test::TestRequest::default()
            .uri("/v1/stream?customer=nope")
            .to_http_request();
        assert_eq!(customer_of(&garbage, "/v1/stream"), None);
        let conflict = actix_web::test::TestRequest::default()
            .uri(&format!("/v1/identity/conflicts/{id}/resolve"))
            .param("id", id.to_string())
            .to_http_request();
        assert_eq!(
            customer_of(&conflict, "/v1/identity/conflicts/{id}/resolve"),
            None,
            "a conflict id is no customer id"
        );
        let profile = actix_web::test::TestRequest::default()
            .uri(&format!("/v1/customers/{id}"))
            .param("id", id.to_string())
            .to_http_request();
        assert_eq!(customer_of(&profile, "/v1/customers/{id}"), Some(id));
    }
}
