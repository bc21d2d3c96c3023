//! The audit pipeline: every authenticated request to a route of the agent
//! API (every route behind a token that the API role serves: customers and
//! lookups, identity, cases, notes, tasks, the live stream, the insights
//! and the audit trail itself; reads and writes alike) becomes an audit
//! entry with the token's name and role, the method, the route template,
//! the customer it was about, the kind of identifier a lookup named (never
//! its value) and the status.
//!
//! The [`record`] middleware runs after the handler has answered, so it
//! knows the matched route, the status and what the handler noted (the
//! customer a lookup found), and it writes the entry before the answer
//! leaves:
//!
//! - **A read** (`GET`) is answered only once its entry is committed. When
//!   the entry cannot be written, the caller gets 503
//!   `/problems/audit-unavailable` instead of the answer, so nothing is
//!   read without a trace. A read that failed with a server error keeps
//!   its answer (it served nothing) and its entry is queued as below.
//! - **Group commit.** Entries are committed by one task per process: it
//!   inserts every entry waiting at that moment (up to [`FLUSH_ROWS`]) in
//!   one statement and answers each request once that statement has
//!   committed; entries arriving meanwhile wait for the next statement,
//!   without a timer. Concurrent requests so share one insert and one WAL
//!   flush instead of a commit (and a pool connection) each, and a lone
//!   request still waits for its own insert only.
//! - **A change** has happened by the time its entry is written, and is on
//!   record anyway (the event it published, the merge it stored). A 503
//!   would invite a retry that repeats it, so when its entry cannot be
//!   written the entry goes to a bounded queue whose writer task retries it
//!   in the background, [`FLUSH_ROWS`] entries per statement at most every
//!   [`FLUSH_EVERY`]: best effort. When that queue is full or the retries
//!   fail, the entry is lost, counted in `panorama_audit_dropped_total` and
//!   logged; a deployment that must never lose one alerts on that counter.
//!
//! Requests without a valid token are not audited (they read and changed
//! nothing; the HTTP metrics count them), nor requests refused by a limit
//! (429, 503 `/problems/server-busy`: `panorama_http_limited_total` counts
//! them); requests refused for their role (403) are.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, ResponseError as _, web};
use panorama_store::{AuditRecord, Store};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub(crate) mod subject;

use subject::Subject;

use crate::auth::Caller;
use crate::endpoints::{ENDPOINTS, Served};
use crate::error::ApiError;
use crate::{AppState, metrics};

/// Longest an entry waits in the writer before it is inserted.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Most entries per insert.
pub(crate) const FLUSH_ROWS: usize = 500;
/// Entries the queue holds before new ones are dropped.
const QUEUE: usize = 10_000;
/// Entries waiting for the committer before requests wait to hand theirs
/// over: a bound on memory, far above what the pool's connections can have
/// in flight.
const COMMIT_QUEUE: usize = 4_096;
/// Tries per insert before its entries are given up.
const ATTEMPTS: u32 = 3;

/// Why an entry could not be committed, shared by the entries of one
/// statement: the store's error as text, for the log.
type CommitError = Arc<str>;

/// An entry handed to the committer, with where to say it is committed.
#[derive(Debug)]
struct Pending {
    record: AuditRecord,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// The request side of the pipeline.
#[derive(Debug)]
pub(crate) struct AuditSink {
    /// The committer's queue: a request's entry, committed before the
    /// request is answered.
    committer: mpsc::Sender<Pending>,
    /// The background writer's queue, for the entries of changes that
    /// could not be written at once.
    sender: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// Starts the committer and the writer on the current Tokio runtime;
    /// `None` outside one. Both flush what they hold and stop once the sink
    /// is dropped.
    pub(crate) fn start(store: Store) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (committer, pending) = mpsc::channel(COMMIT_QUEUE);
        runtime.spawn(commit(store.clone(), pending));
        let (sender, receiver) = mpsc::channel(QUEUE);
        runtime.spawn(write(store, receiver));
        Some(AuditSink { committer, sender })
    }

    /// Commits `record` together with the entries of the requests waiting
    /// at the same time; `Ok` once it is committed.
    async fn commit(&self, record: AuditRecord) -> Result<(), CommitError> {
        let (done, committed) = oneshot::channel();
        let stopped = || CommitError::from("the audit committer stopped");
        self.committer
            .send(Pending { record, done })
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
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

/// Commits the entries requests hand over, every one waiting at that
/// moment in one statement, and tells each request how it went; until the
/// sink is dropped.
async fn commit(store: Store, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(FLUSH_ROWS);
    while pending.recv_many(&mut batch, FLUSH_ROWS).await > 0 {
        let (records, waiting): (Vec<AuditRecord>, Vec<_>) = batch
            .drain(..)
            .map(|entry| (entry.record, entry.done))
            .unzip();
        let outcome = store
            .record_audit(&records)
            .await
            .map_err(|error| CommitError::from(error.to_string()));
        for done in waiting {
            // A request that stopped waiting (its client went away) needs
            // no answer.
            let _ = done.send(outcome.clone());
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
/// route, or the `customer` parameter of the stream, the conflict and task
/// lists and the audit trail. `None` when there is none or it is no UUID.
fn customer_of(request: &HttpRequest, route: &str) -> Option<Uuid> {
    if route.starts_with("/v1/customers/{id}") {
        return Uuid::parse_str(request.match_info().get("id")?).ok();
    }
    if matches!(
        route,
        "/v1/stream" | "/v1/identity/conflicts" | "/v1/tasks" | "/v1/audit"
    ) {
        let query = web::Query::<std::collections::HashMap<String, String>>::from_query(
            request.query_string(),
        )
        .ok()?;
        return Uuid::parse_str(query.get("customer")?).ok();
    }
    None
}

/// The audited route templates: every route of the agent API behind a
/// token (served by the API role, with a role in the route table), so a
/// route added there is audited without a list to forget. Everything they
/// answer is about customers, one by one or in aggregate; the routes left
/// out are the gateway's (ingest), the console's static files and the
/// operational ones (health, metrics, the API document).
static AUDITED: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    ENDPOINTS
        .iter()
        .filter(|endpoint| endpoint.served == Served::Api && endpoint.role.is_some())
        .map(|endpoint| endpoint.path.as_str())
        .collect()
});

/// Whether requests to `route` are audited.
fn audited(route: &str) -> bool {
    AUDITED.contains(route)
}

/// Middleware: writes an audit entry for every authenticated request to an
/// audited route once the handler has answered, before the answer leaves;
/// a read whose entry cannot be written is answered 503 instead.
pub(crate) async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let http = response.request();
    let Some(route) = crate::endpoints::template_of(http).filter(|route| audited(route)) else {
        return Ok(response.map_into_left_body());
    };
    let Some(sink) = http
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.audit.as_ref())
    else {
        return Ok(response.map_into_left_body());
    };
    // The principal the authentication middleware left for this request.
    let Ok(caller) = Caller::of(http) else {
        return Ok(response.map_into_left_body());
    };
    // Refused by a limit: nothing was read or done, and writing an entry
    // for each would let a flood write to the database.
    if http
        .extensions()
        .get::<crate::limits::refusal::Limited>()
        .is_some()
    {
        return Ok(response.map_into_left_body());
    }
    let subject = http
        .extensions()
        .get::<Subject>()
        .cloned()
        .unwrap_or_default();
    let record = AuditRecord {
        id: Uuid::now_v7(),
        at: chrono::Utc::now(),
        actor: caller.principal().name.clone(),
        role: caller.role().to_string(),
        method: http.method().to_string(),
        customer_id: subject.customer.or_else(|| customer_of(http, route)),
        route: route.to_owned(),
        status: i32::from(response.status().as_u16()),
        identifier_kind: subject.identifier_kind.map(|kind| kind.as_str().to_owned()),
    };
    let Err(error) = sink.commit(record.clone()).await else {
        return Ok(response.map_into_left_body());
    };
    let read = http.method() == Method::GET;
    if read && !response.status().is_server_error() {
        tracing::error!(
            %error,
            route = %record.route,
            "cannot write the audit entry of a read; answering 503 instead"
        );
        let refused = ApiError::AuditUnavailable.error_response();
        let (http, _) = response.into_parts();
        return Ok(ServiceResponse::new(http, refused).map_into_right_body());
    }
    tracing::warn!(
        %error,
        route = %record.route,
        "cannot write an audit entry now; the background writer retries it"
    );
    sink.push(record);
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use panorama_core::IdentifierKind;

    use super::subject::{note_customer, note_identifier_kind};
    use super::*;

    #[test]
    fn every_agent_api_route_is_audited_ingest_and_operations_not() {
        for route in [
            "/v1/customers/{id}/timeline",
            "/v1/customers/lookup",
            "/v1/identity/conflicts/{id}/resolve",
            "/v1/stream",
            "/v1/cases/{id}/resolve",
            "/v1/tasks",
            "/v1/tasks/{id}",
            "/v1/notes",
            "/v1/insights",
            "/v1/audit",
        ] {
            assert!(audited(route), "{route}");
        }
        for route in ["/v1/events", "/v1/channels/twilio/voice", "/metrics", "/"] {
            assert!(!audited(route), "{route}");
        }
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
        let trail = actix_web::test::TestRequest::default()
            .uri(&format!("/v1/audit?customer={id}&limit=5"))
            .to_http_request();
        assert_eq!(customer_of(&trail, "/v1/audit"), Some(id));
    }

    #[test]
    fn handlers_note_the_customer_found_and_the_identifier_kind() {
        let request = actix_web::test::TestRequest::default().to_http_request();
        let id = Uuid::now_v7();
        note_identifier_kind(&request, IdentifierKind::Email);
        note_customer(&request, id);
        let subject = request.extensions().get::<Subject>().cloned();
        let subject = subject.expect("noted");
        assert_eq!(subject.customer, Some(id));
        assert_eq!(subject.identifier_kind, Some(IdentifierKind::Email));
    }
}
