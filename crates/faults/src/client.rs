//! The client: several tasks posting the generator's requests to the two
//! services that take events, failing over between them, and retrying
//! every request without a 202 with the same event ids, with backoff, as
//! channel providers do, until it is acknowledged. Every id attempted and
//! every id acknowledged is logged to the run directory.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::{Generator, Request};

/// First pause before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Longest pause between two attempts of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long one attempt may take: longer than the gateway's produce
/// timeout, so its own 503 comes first.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers that mean the request itself is wrong: retrying cannot help.
const REFUSALS: [u16; 4] = [400, 413, 415, 422];

/// What the client does.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Base URLs of the services that take events.
    pub urls: Vec<String>,
    /// A token with the channel (or admin) role.
    pub token: String,
    /// Concurrent posting tasks.
    pub clients: usize,
    /// Most events per second; `None` for as fast as the stack answers.
    pub rate: Option<f64>,
    /// The traffic's seed.
    pub seed: u64,
    /// Events to send.
    pub events: u64,
    /// People in the pool.
    pub persons: u64,
    /// No request is sent, and no retry made, after this.
    pub deadline: Instant,
}

/// The client's progress, shared with the fault injector: how many events
/// it has sent, and how many it may send before the next fault has fired.
#[derive(Debug, Clone)]
pub struct Progress {
    made: Arc<watch::Sender<u64>>,
    allowed: Arc<watch::Sender<u64>>,
    finished: Arc<watch::Sender<bool>>,
}

impl Progress {
    /// Progress at 0, allowed to send `allowed` events.
    pub fn new(allowed: u64) -> Progress {
        Progress {
            made: Arc::new(watch::Sender::new(0)),
            allowed: Arc::new(watch::Sender::new(allowed)),
            finished: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Whether the client has stopped sending (every event sent and
    /// acknowledged, or the deadline passed).
    pub fn finished(&self) -> bool {
        *self.finished.borrow()
    }

    /// Events sent so far (each at least once).
    pub fn made(&self) -> u64 {
        *self.made.borrow()
    }

    /// Lets the client send up to `events` events.
    pub fn allow(&self, events: u64) {
        self.allowed.send_replace(events);
    }

    /// Waits until the client has sent at least `events` events, or has
    /// stopped.
    pub async fn reached(&self, events: u64) {
        let mut made = self.made.subscribe();
        let mut finished = self.finished.subscribe();
        tokio::select! {
            _ = made.wait_for(|made| *made >= events) => {}
            _ = finished.wait_for(|finished| *finished) => {}
        }
    }

    /// Waits until the client may send more than `made` events.
    async fn allowed_beyond(&self, made: u64) {
        let mut allowed = self.allowed.subscribe();
        let _ = allowed.wait_for(|allowed| *allowed > made).await;
    }
}

/// What the client did.
#[derive(Debug, Default)]
pub struct ClientReport {
    /// Every event id sent at least once.
    pub attempted: HashSet<Uuid>,
    /// Every event id a 202 named.
    pub acknowledged: HashSet<Uuid>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that needed more than one attempt.
    pub retried: u64,
    /// Answers by status code or error.
    pub answers: BTreeMap<String, u64>,
    /// Requests refused as invalid (never retried).
    pub rejected: u64,
    /// 202 answers that named other ids than the request's.
    pub wrong_answers: u64,
    /// Events sent but not acknowledged by the deadline.
    pub unacknowledged: u64,
    /// Events never sent because the deadline came first.
    pub unsent: u64,
    /// From the first request to the last acknowledgement.
    pub elapsed: Duration,
}

/// Paces the generator.
#[derive(Debug)]
struct Source {
    generator: Generator,
    started: Instant,
}

/// What the posting tasks share.
#[derive(Debug)]
struct Shared {
    options: ClientOptions,
    http: reqwest::Client,
    source: tokio::sync::Mutex<Source>,
    progress: Progress,
    ledger: Mutex<ClientReport>,
    attempted_log: Mutex<BufWriter<File>>,
    acknowledged_log: Mutex<BufWriter<File>>,
    requests_log: Mutex<BufWriter<File>>,
    started: Instant,
    last_ack: Mutex<Instant>,
}

/// Sends every event of `options` and returns what happened, writing
/// `attempted.ids` (`id request`), `acknowledged.ids` and
/// `requests.jsonl` (one line per request: attempts and answers) into
/// `run_dir`.
///
/// # Errors
///
/// When a log file cannot be written or a posting task fails.
pub async fn run(
    options: ClientOptions,
    progress: Progress,
    run_dir: &Path,
) -> Result<ClientReport> {
    let create = |name: &str| {
        File::create(run_dir.join(name))
            .map(BufWriter::new)
            .map_err(Error::io(format!("creating {name}")))
    };
    let http = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|error| Error::Setup(format!("HTTP client: {error}")))?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        source: tokio::sync::Mutex::new(Source {
            generator: Generator::new(
                options.seed,
                options.events,
                options.persons,
                chrono::Utc::now(),
            ),
            started,
        }),
        options,
        http,
        progress,
        ledger: Mutex::new(ClientReport::default()),
        attempted_log: Mutex::new(create("attempted.ids")?),
        acknowledged_log: Mutex::new(create("acknowledged.ids")?),
        requests_log: Mutex::new(create("requests.jsonl")?),
        started,
        last_ack: Mutex::new(started),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..shared.options.clients.max(1) {
        tasks.spawn(post_requests(Arc::clone(&shared)));
    }
    while let Some(joined) = tasks.join_next().await {
        joined?;
    }
    shared.progress.finished.send_replace(true);
    for log in [
        &shared.attempted_log,
        &shared.acknowledged_log,
        &shared.requests_log,
    ] {
        lock(log)
            .flush()
            .map_err(Error::io("writing the client's logs"))?;
    }
    let mut report = std::mem::take(&mut *lock(&shared.ledger));
    let source = shared.source.lock().await;
    report.unsent = source.generator.total() - source.generator.made();
    report.elapsed = lock(&shared.last_ack).duration_since(shared.started);
    Ok(report)
}

/// One posting task: takes the next request, posts it until acknowledged,
/// and so on until the generator is done.
async fn post_requests(shared: Arc<Shared>) {
    while let Some(request) = next_request(&shared).await {
        {
            let mut ledger = lock(&shared.ledger);
            ledger.attempted.extend(request.ids.iter().copied());
        }
        {
            let mut log = lock(&shared.attempted_log);
            for id in &request.ids {
                let _ = writeln!(log, "{id} {}", request.seq);
            }
        }
        post_until_acknowledged(&shared, &request).await;
    }
}

/// The next request, once the pace and the fault schedule allow it;
/// `None` when every event was sent or the deadline passed.
async fn next_request(shared: &Shared) -> Option<Request> {
    let mut source = shared.source.lock().await;
    let made = source.generator.made();
    if made >= source.generator.total() {
        return None;
    }
    let deadline = tokio::time::Instant::from_std(shared.options.deadline);
    // Not past the next fault before it fired.
    if tokio::time::timeout_at(deadline, shared.progress.allowed_beyond(made))
        .await
        .is_err()
    {
        return None;
    }
    if let Some(rate) = shared.options.rate.filter(|rate| *rate > 0.0) {
        let due = source.started + Duration::from_secs_f64(made as f64 / rate);
        if due >= shared.options.deadline {
            return None;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
    }
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let request = source.generator.next_request(unix_ms)?;
    shared.progress.made.send_replace(source.generator.made());
    Some(request)
}

/// Posts `request` until a 202 or the deadline: first to the services in
/// turn (request by request, so each takes its share of the traffic
/// whatever happened before), after any other answer to the next one,
/// backing off.
async fn post_until_acknowledged(shared: &Shared, request: &Request) {
    let urls = &shared.options.urls;
    let mut target = usize::try_from(request.seq).unwrap_or_default();
    let mut answers: Vec<String> = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    let outcome = loop {
        if Instant::now() >= shared.options.deadline {
            break "unacknowledged";
        }
        let url = &urls[target % urls.len()];
        let response = shared
            .http
            .post(format!("{url}/v1/events"))
            .bearer_auth(&shared.options.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone())
            .send()
            .await;
        let (answer, body) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                (status.to_string(), response.text().await.ok())
            }
            Err(error) if error.is_timeout() => ("timeout".to_owned(), None),
            Err(error) if error.is_connect() => ("connect".to_owned(), None),
            Err(_) => ("io".to_owned(), None),
        };
        answers.push(answer.clone());
        if answer == "202" {
            break if names(body.as_deref(), &request.ids) {
                "acknowledged"
            } else {
                tracing::error!(request = request.seq, body = ?body, "a 202 named other ids than were sent");
                "wrong_answer"
            };
        }
        if REFUSALS.iter().any(|code| code.to_string() == answer) {
            tracing::error!(request = request.seq, status = %answer, body = ?body, "request refused as invalid");
            break "rejected";
        }
        target = target.wrapping_add(1);
        let jitter = Duration::from_millis(u64::from(request.seq.to_le_bytes()[0]) % 50);
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    record(shared, request, &answers, outcome, target % urls.len());
}

/// Whether a 202's body names exactly `ids`, in order.
fn names(body: Option<&str>, ids: &[Uuid]) -> bool {
    let Some(body) = body.and_then(|body| serde_json::from_str::<Value>(body).ok()) else {
        return false;
    };
    let Some(accepted) = body.get("accepted").and_then(Value::as_array) else {
        return false;
    };
    accepted.len() == ids.len()
        && accepted
            .iter()
            .zip(ids)
            .all(|(named, id)| named.as_str().and_then(|s| s.parse::<Uuid>().ok()) == Some(*id))
}

/// Books a finished request in the ledger and the logs.
fn record(shared: &Shared, request: &Request, answers: &[String], outcome: &str, target: usize) {
    {
        let mut ledger = lock(&shared.ledger);
        ledger.requests += answers.len() as u64;
        if answers.len() > 1 {
            ledger.retried += 1;
        }
        for answer in answers {
            *ledger.answers.entry(answer.clone()).or_default() += 1;
        }
        match outcome {
            "acknowledged" => ledger.acknowledged.extend(request.ids.iter().copied()),
            "rejected" => ledger.rejected += 1,
            "wrong_answer" => ledger.wrong_answers += 1,
            _ => ledger.unacknowledged += request.ids.len() as u64,
        }
    }
    if outcome == "acknowledged" {
        *lock(&shared.last_ack) = Instant::now();
        let mut log = lock(&shared.acknowledged_log);
        for id in &request.ids {
            let _ = writeln!(log, "{id}");
        }
    }
    let line = json!({
        "request": request.seq,
        "events": request.ids.len(),
        "first_id": request.ids.first(),
        "answers": answers,
        "outcome": outcome,
        "last_target": shared.options.urls.get(target),
        "done_ms": shared.started.elapsed().as_millis() as u64,
    });
    let _ = writeln!(lock(&shared.requests_log), "{line}");
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_202_must_name_exactly_the_ids_sent() {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let body = json!({"accepted": ids}).to_string();
        assert!(names(Some(&body), &ids));
        let reversed = json!({"accepted": [ids[1], ids[0]]}).to_string();
        assert!(!names(Some(&reversed), &ids));
        let short = json!({"accepted": [ids[0]]}).to_string();
        assert!(!names(Some(&short), &ids));
        assert!(!names(Some("not json"), &ids));
        assert!(!names(None, &ids));
    }

    #[tokio::test]
    async fn progress_tells_the_injector_how_far_the_client_is() {
        let progress = Progress::new(10);
        assert_eq!(progress.made(), 0);
        let waiting = tokio::spawn({
            let progress = progress.clone();
            async move { progress.reached(5).await }
        });
        progress.made.send_replace(7);
        waiting.await.expect("reached");
        // Allowed beyond 7 already (10), then not beyond 10 until allowed.
        progress.allowed_beyond(7).await;
        let blocked = tokio::time::timeout(Duration::from_millis(50), progress.allowed_beyond(10));
        assert!(blocked.await.is_err());
        progress.allow(20);
        progress.allowed_beyond(10).await;
        // A client that stopped early releases the injector too.
        assert!(!progress.finished());
        progress.finished.send_replace(true);
        progress.reached(1_000).await;
        assert!(progress.finished());
    }
}
