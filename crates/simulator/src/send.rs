//! Sending: one request at a time in plan order (so a one-partition topic
//! sees them in that order), paced by the rate, never before the event's
//! own time. A request counts as sent once Panorama answered 2xx; 503s,
//! timeouts and refused connections are retried with backoff; any other
//! answer is an error (a simulator bug, logged with the problem body).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::gateway::drafts;
use crate::planned::{PlannedEvent, Provider};
use crate::progress::{Progress, Rate};
use crate::providers::{Credentials, Request, Route, events_request, webhook_request};

/// Counts of one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests answered 2xx.
    pub sent: u64,
    /// Events Panorama accepted from them.
    pub events: u64,
    /// Requests not sent: the provider is not configured.
    pub skipped: u64,
    /// Requests refused or never answered after every retry.
    pub errors: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Planned requests handled (sent, skipped or failed).
    pub planned: u64,
    /// Per provider.
    pub providers: BTreeMap<Provider, Counts>,
}

impl Report {
    /// Totals over every provider.
    pub fn total(&self) -> Counts {
        self.providers
            .values()
            .fold(Counts::default(), |sum, c| Counts {
                sent: sum.sent + c.sent,
                events: sum.events + c.events,
                skipped: sum.skipped + c.skipped,
                errors: sum.errors + c.errors,
            })
    }

    fn line(&self, phase: &str, rate: f64) -> String {
        let total = self.total();
        let mut line = format!(
            "simulate ({phase}): {} sent, {} events, {rate:.1}/s, {} errors",
            total.sent, total.events, total.errors
        );
        if total.skipped > 0 {
            line.push_str(&format!(", {} skipped", total.skipped));
        }
        for (provider, counts) in &self.providers {
            line.push_str(&format!(" · {} {}", provider.as_str(), counts.sent));
        }
        line
    }
}

/// How to send.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) client: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) credentials: Credentials,
    pub(crate) region: Option<panorama_core::Region>,
    pub(crate) attempts: u32,
}

/// Why a request failed for good.
enum Failure {
    /// Refused: the status and the body.
    Refused(u16, String),
    /// Retries ran out.
    Unanswered(String),
}

impl Sender {
    /// Sends `event` by its provider's route; the events accepted.
    async fn send(&self, event: &PlannedEvent, route: &Route) -> Result<u64, Failure> {
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=self.attempts.max(1) {
            // Built per attempt: Mailgun's signature is made fresh each time.
            let request = match route {
                Route::Webhook => {
                    let nonce = uuid::Uuid::new_v4().simple().to_string();
                    webhook_request(event, &self.credentials, Utc::now(), &nonce)
                }
                _ => {
                    let drafts = drafts(event, Utc::now(), self.region)
                        .map_err(|e| Failure::Refused(0, e))?;
                    if drafts.is_empty() {
                        return Ok(0);
                    }
                    events_request(
                        &drafts,
                        self.credentials.token.as_deref().unwrap_or_default(),
                    )
                }
            };
            match self.post(&request).await {
                Ok((status, body)) if (200..300).contains(&status) => {
                    return Ok(accepted(&body));
                }
                Ok((503, body)) => last = format!("503: {body}"),
                Ok((status, body)) => return Err(Failure::Refused(status, body)),
                Err(error) => last = error.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        Err(Failure::Unanswered(last))
    }

    async fn post(&self, request: &Request) -> Result<(u16, String), reqwest::Error> {
        let mut builder = self
            .client
            .post(format!("{}{}", self.base_url, request.path))
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

/// How many events an answer accepted.
fn accepted(body: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|answer| {
            answer
                .get("accepted")?
                .as_array()
                .map(|ids| ids.len() as u64)
        })
        .unwrap_or(0)
}

/// Pacing and limits of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Requests per second in the live part.
    pub(crate) rate: f64,
    /// Requests per second while sending the history.
    pub(crate) backfill_rate: f64,
    /// Stop after this many planned requests.
    pub(crate) events: Option<u64>,
    /// Stop after this long.
    pub(crate) duration: Option<Duration>,
    /// How often progress is shown; log lines come every ten of these.
    pub(crate) progress: Duration,
}

/// Sends `plan` until a limit is reached or `stop` resolves.
pub(crate) async fn send_plan(
    sender: &Sender,
    plan: impl Iterator<Item = PlannedEvent>,
    routes: &BTreeMap<Provider, Route>,
    pace: Pace,
    stop: impl std::future::Future<Output = ()>,
) -> Report {
    let mut report = Report::default();
    let mut progress = Progress::new(pace.progress * 10);
    let mut rate = Rate::default();
    let started = Instant::now();
    let deadline = pace.duration.map(|d| started + d);
    let mut next_slot = started;
    let mut last_shown = started;
    tokio::pin!(stop);
    for event in plan {
        if pace.events.is_some_and(|limit| report.planned >= limit) {
            break;
        }
        let per_second = if event.live {
            pace.rate
        } else {
            pace.backfill_rate
        };
        // Never before the event's own time: occurred_at is never future.
        let wait_for_time = (event.at - Utc::now()).to_std().unwrap_or_default();
        let due = next_slot.max(Instant::now() + wait_for_time);
        if deadline.is_some_and(|deadline| due > deadline) {
            break;
        }
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            let nap = (due - now).min(pace.progress);
            tokio::select! {
                () = &mut stop => return finish(report, &progress, &mut rate),
                () = tokio::time::sleep(nap) => {}
            }
            show(&report, &mut progress, &mut rate, &event);
            last_shown = Instant::now();
        }
        next_slot = due + Duration::from_secs_f64(1.0 / per_second.max(0.001));
        let counts = report.providers.entry(event.provider).or_default();
        match routes.get(&event.provider) {
            Some(route @ (Route::Webhook | Route::Events)) => {
                let outcome = tokio::select! {
                    () = &mut stop => return finish(report, &progress, &mut rate),
                    outcome = sender.send(&event, route) => outcome,
                };
                match outcome {
                    Ok(events) => {
                        counts.sent += 1;
                        counts.events += events;
                    }
                    Err(Failure::Refused(status, body)) => {
                        counts.errors += 1;
                        let (problem, field) = problem_of(status, &body);
                        tracing::error!(
                            provider = event.provider.as_str(),
                            seq = event.seq,
                            status,
                            problem,
                            field,
                            "simulated request refused"
                        );
                    }
                    Err(Failure::Unanswered(error)) => {
                        counts.errors += 1;
                        tracing::warn!(provider = event.provider.as_str(), seq = event.seq, %error, "simulated request not answered after retries");
                    }
                }
            }
            _ => counts.skipped += 1,
        }
        report.planned += 1;
        if last_shown.elapsed() >= pace.progress {
            show(&report, &mut progress, &mut rate, &event);
            last_shown = Instant::now();
        }
    }
    finish(report, &progress, &mut rate)
}

/// What to log of a refusal: the problem's type and field, not its detail,
/// which may quote the value refused (a phone number). Status 0 is the
/// simulator's own plan failing validation, whose message names fields only.
fn problem_of(status: u16, body: &str) -> (String, String) {
    if status == 0 {
        return (body.to_owned(), String::new());
    }
    let problem: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = |name: &str| problem[name].as_str().unwrap_or_default().to_owned();
    match text("type") {
        kind if kind.is_empty() => (format!("a body of {} bytes", body.len()), String::new()),
        kind => (kind, text("field")),
    }
}

fn show(report: &Report, progress: &mut Progress, rate: &mut Rate, event: &PlannedEvent) {
    let total = report.total();
    let per_second = rate.sample(total.sent as i64);
    let phase = if event.live { "live" } else { "history" };
    if progress.show(&report.line(phase, per_second)) {
        tracing::info!(
            phase,
            sent = total.sent,
            events = total.events,
            errors = total.errors,
            skipped = total.skipped,
            rate = (per_second * 10.0).round() / 10.0,
            at = %event.at,
            "simulate progress"
        );
    }
}

fn finish(report: Report, progress: &Progress, rate: &mut Rate) -> Report {
    progress.finish();
    let total = report.total();
    tracing::info!(
        sent = total.sent,
        events = total.events,
        errors = total.errors,
        skipped = total.skipped,
        rate = (rate.sample(total.sent as i64) * 10.0).round() / 10.0,
        seconds = progress.elapsed().as_secs(),
        "simulate done"
    );
    report
}
