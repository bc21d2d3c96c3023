//! Live updates: `GET /v1/stream?customer={id}` as server-sent events.
//!
//! The projector (and every other writer of what agents see) appends rows
//! to the change log and notifies `panorama_changes` in its own
//! transaction (`panorama-store`'s `changes` module). Each API process
//! holds one dedicated listening connection ([`ChangeFeed`]) and turns every
//! notification into a tick of a `watch` channel. Each subscriber then
//! reads the change log after the last change it sent and writes the
//! changes as SSE frames. A frame's id names one change: its row's `seq`
//! and its place in the row, packed as `seq · 2^20 + index` (a row holds
//! one customer's changes of one transaction), so resuming after an id
//! sends exactly the changes after it, even within a row.
//!
//! A `watch` rather than a `broadcast` channel: subscribers never act on
//! the payload (it says nothing about their customer), only on "something
//! committed", so the latest tick is all they need. A burst of
//! notifications during one read coalesces into one more read, and a slow
//! subscriber cannot lag behind and lose ticks. After the listening
//! connection is re-established the feed ticks once, so every subscriber
//! re-reads whatever committed while nobody was listening; a safety poll
//! every few seconds covers anything else.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use panorama_store::{ChangeKind, CustomerChange, Store};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use uuid::Uuid;

use crate::error::ApiError;
use crate::limits::StreamGuard;
use crate::routes::params::invalid;
use crate::{AppState, metrics, problem, store};

/// Change rows read per query; a fuller backlog is read in several.
const PAGE: usize = 200;

/// First and longest wait before connecting the listener again.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How long an `EventSource` waits before reconnecting, sent as `retry:`.
const CLIENT_RETRY_MS: u64 = 1000;

/// Timing of live updates.
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// How often an idle stream sends a `: keepalive` comment.
    pub heartbeat: Duration,
    /// How often a stream re-reads the change log without a notification
    /// (a safety net; notifications normally arrive within milliseconds).
    pub poll: Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            heartbeat: Duration::from_secs(15),
            poll: Duration::from_secs(5),
        }
    }
}

/// The process's one listening connection, fanned out to subscribers.
#[derive(Debug)]
pub(crate) struct ChangeFeed {
    ticks: watch::Receiver<u64>,
}

impl ChangeFeed {
    /// Starts listening on the current Tokio runtime; `None` outside one.
    /// The listener stops once the feed and every subscriber are dropped.
    pub(crate) fn start(store: Store) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (sender, ticks) = watch::channel(0);
        runtime.spawn(listen(store, sender));
        Some(ChangeFeed { ticks })
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.ticks.clone()
    }
}

/// Keeps one `LISTEN` connection up, reconnecting with backoff, and ticks
/// `sender` on every notification and after every (re)connect.
async fn listen(store: Store, sender: watch::Sender<u64>) {
    let tick = |sender: &watch::Sender<u64>| sender.send_modify(|n| *n = n.wrapping_add(1));
    let mut backoff = RECONNECT_MIN;
    loop {
        let connected = tokio::select! {
            () = sender.closed() => return,
            connected = store.listen_changes() => connected,
        };
        match connected {
            Ok(mut listener) => {
                backoff = RECONNECT_MIN;
                tracing::debug!("change listener connected");
                // Whatever committed while nobody listened is read now.
                tick(&sender);
                loop {
                    tokio::select! {
                        () = sender.closed() => return,
                        notification = listener.next() => match notification {
                            Some(_) => tick(&sender),
                            None => break,
                        },
                    }
                }
                tracing::warn!("change listener lost its connection; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "change listener cannot connect");
            }
        }
        tokio::select! {
            () = sender.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Counts an open stream for `panorama_sse_connections` while it lives.
struct Connected;

impl Connected {
    fn new() -> Self {
        metrics::SSE_CONNECTIONS.inc();
        Connected
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::SSE_CONNECTIONS.dec();
    }
}

/// One subscriber's state between frames.
struct Subscriber {
    store: Store,
    requested: Uuid,
    survivor: Uuid,
    /// The id of the last change sent (or skipped): reads start after it.
    after: i64,
    ticks: watch::Receiver<u64>,
    heartbeat: Interval,
    poll: Interval,
    /// Frames ready to send.
    pending: VecDeque<Bytes>,
    /// Whether the change log must be read before waiting again.
    stale: bool,
    /// Its place under the stream limits, and the watch on its token.
    guard: StreamGuard,
    _connected: Connected,
}

fn interval(period: Duration) -> Interval {
    let period = period.max(Duration::from_millis(10));
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// Where a stream resumes: `Last-Event-ID` (what `EventSource` sends on
/// reconnect), else `?after=`.
fn resume_point(
    request: &HttpRequest,
    query: &HashMap<String, String>,
) -> Result<Option<i64>, ApiError> {
    let seq = |name: &str, text: &str| {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq >= 0)
            .ok_or_else(|| invalid(name, "must be an event id this stream sent"))
    };
    if let Some(value) = request.headers().get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| invalid("Last-Event-ID", "must be an event id this stream sent"))?;
        if !text.trim().is_empty() {
            return seq("Last-Event-ID", text).map(Some);
        }
    }
    query
        .get("after")
        .map(|text| seq("after", text))
        .transpose()
}

/// The stream's events and their `data`, for the OpenAPI document only:
/// the stream writes them with [`super::frame`] and `json!`.
pub(crate) mod doc {
    #![allow(dead_code)]

    use chrono::{DateTime, Utc};
    use panorama_store::{CustomerProfile, TimelineEntry};
    use serde::Serialize;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};
    use uuid::Uuid;

    /// One event of the stream as an `EventSource` reads it. Before OpenAPI
    /// 3.2 (`itemSchema`), a `text/event-stream` answer's `schema` is
    /// read as the schema of each event, so it is this object rather than
    /// `string`; `data`'s `contentSchema` says what its JSON holds.
    pub(crate) struct StreamEvent;

    impl PartialSchema for StreamEvent {
        fn schema() -> RefOr<Schema> {
            let text = |description: &str| {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(description))
            };
            let mut data = text("One line of JSON, a `StreamData` object.")
                .content_media_type("application/json")
                .build();
            // utoipa has no builder for `contentSchema` (JSON Schema
            // 2020-12, so OpenAPI 3.1); the schema's map of extra keywords
            // carries it.
            data.extensions.get_or_insert_with(Default::default).insert(
                "contentSchema".to_owned(),
                serde_json::json!({ "$ref": "#/components/schemas/StreamData" }),
            );
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "One server-sent event: its `id:`, `event:` and `data:` lines. The \
                     `retry: 1000` the stream starts with and the `: keepalive` comments \
                     carry no data and are not events.",
                ))
                .property(
                    "id",
                    text(
                        "Its position in the customer's change log (`seq · 2^20 + index`: \
                         the row and the change's place in it): resume after it. Ids grow \
                         along a stream; keep it as a string, it can pass 2^53.",
                    )
                    .pattern(Some("^[0-9]+$")),
                )
                .property(
                    "event",
                    text(
                        "What changed: `timeline`, `profile`, `case`, or a later kind \
                         (treat one you do not know like `case`).",
                    )
                    .min_length(Some(1)),
                )
                .property("data", data)
                .property(
                    "retry",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .description(Some("Milliseconds to wait before reconnecting.")),
                )
                .required("id")
                .required("event")
                .required("data")
                .into()
        }
    }

    impl ToSchema for StreamEvent {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((StreamData::name().into_owned(), StreamData::schema()));
        }
    }

    /// One event's `data`: a JSON object on one line.
    #[derive(Serialize, utoipa::ToSchema)]
    pub(crate) struct StreamData {
        /// The customer now (the survivor: it changes after a merge).
        customer_id: Uuid,
        /// The id the stream follows.
        requested_id: Uuid,
        /// When the change was recorded.
        at: DateTime<Utc>,
        /// `timeline` events: the new entry, as in the timeline.
        #[serde(skip_serializing_if = "Option::is_none")]
        entry: Option<TimelineEntry>,
        /// `profile` events: the whole current profile.
        #[serde(skip_serializing_if = "Option::is_none")]
        profile: Option<CustomerProfile>,
        /// `case` and later kinds: what changed (e.g. the case id); read it
        /// by id.
        #[serde(skip_serializing_if = "Option::is_none")]
        subject_id: Option<Uuid>,
        /// `case` and later kinds: the event behind the change, when there
        /// is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<Uuid>,
    }
}

/// `GET /v1/stream?customer={id}[&after={seq}]` — new timeline entries and
/// profile changes of a customer as server-sent events.
#[utoipa::path(
    get,
    path = "/v1/stream",
    tag = "stream",
    summary = "Follow a customer's live updates",
    description = "A stream of [server-sent events](https://html.spec.whatwg.org/multipage/server-sent-events.html) \
        (`text/event-stream`): it starts with `retry: 1000`, then one event per change \
        after the customer's latest change (load the timeline first, then open the \
        stream).\n\n\
        Each event has `id:` (its position in the customer's change log), `event:` and \
        `data:` (one line of JSON, the `StreamData` schema):\n\n\
        - `timeline`: a new timeline entry (`entry`);\n\
        - `profile`: the whole current profile (`profile`), after the entries that changed \
        it and after merges and unmerges; reload the timeline when its `customer_id` \
        changed;\n\
        - `case` and later kinds: `subject_id` and `event_id`; read the subject by id.\n\n\
        **Resume** with the `Last-Event-ID` header (browsers' `EventSource` sends it) or \
        `?after=`: the stream sends exactly what was missed, in order, nothing twice, \
        within the 24 h the change log keeps. An id sent before schema migration 21 (a bare \
        row number) resumes from an earlier place: changes come again, none is lost; drop \
        timeline entries you have by `entry.event_id`. An idle stream sends the comment \
        `: keepalive` every 15 s. Errors come before the stream starts, as problem+json.\n\n\
        **Limits**: a token has at most `PANORAMA_SSE_STREAMS_PER_TOKEN` (16) streams open \
        (past it `429`), a process `PANORAMA_SSE_STREAMS` (1024; past it `503`), each with \
        `limit` naming the setting. A stream ends when its token is revoked, within about \
        6 s.",
    params(
        ("customer" = Uuid, Query, description = "The customer to follow (a merged id works too)"),
        ("after" = Option<i64>, Query, minimum = 0, description = "Resume after this event id; `Last-Event-ID` wins"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (what `EventSource` sends on reconnect)"),
    ),
    responses(
        (status = 200, description = "The stream, until the client leaves or the server shuts down",
            content_type = "text/event-stream", body = doc::StreamEvent,
            headers(
                ("Cache-Control" = String, description = "`no-cache`"),
                ("X-Accel-Buffering" = String, description = "`no`: nginx does not buffer the stream"),
            ),
            example = json!("retry: 1000\n\nid: 4711\nevent: timeline\ndata: {\"customer_id\":\"...\",\"requested_id\":\"...\",\"at\":\"...\",\"entry\":{...}}\n\n: keepalive\n\n")),
        problem::Read,
    ),
)]
pub(crate) async fn stream(
    request: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(name) = query
        .keys()
        .find(|name| !["customer", "after"].contains(&name.as_str()))
    {
        return Err(invalid(
            name,
            "unknown parameter; expected customer or after",
        ));
    }
    let raw = query
        .get("customer")
        .ok_or_else(|| invalid("customer", "the customer to follow is required"))?;
    let requested =
        Uuid::parse_str(raw).map_err(|_| invalid("customer", "customer ids are UUIDs"))?;
    let resume = resume_point(&request, &query)?;
    // Before the database is asked anything: 429 or 503 past the limits.
    let guard = StreamGuard::open(&state, &request)?;
    let store = store(&state)?.clone();
    let feed = state.feed.as_ref().ok_or(ApiError::Internal)?;
    // Subscribed before the first read, so nothing committed after that
    // read goes unnoticed.
    let mut ticks = feed.subscribe();
    ticks.borrow_and_update();
    let Some((survivor, latest)) = store.latest_change(requested).await? else {
        return Err(ApiError::NotFound(format!("no customer {requested}")));
    };
    let live = state.settings.live;
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from(format!("retry: {CLIENT_RETRY_MS}\n\n")));
    let subscriber = Subscriber {
        store,
        requested,
        survivor,
        // An id beyond the customer's latest cannot be one this customer's
        // stream sent (another database, a restore): starting there would
        // skip changes, while starting at the latest loses nothing.
        after: resume.map_or(latest, |resume| resume.min(latest)),
        ticks,
        heartbeat: interval(live.heartbeat),
        poll: interval(live.poll),
        pending,
        stale: true,
        guard,
        _connected: Connected::new(),
    };
    tracing::debug!(customer = %requested, after = subscriber.after, "stream opened");
    let body = futures::stream::unfold(subscriber, |mut subscriber| async move {
        let frame = subscriber.next_frame().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), subscriber))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

impl Subscriber {
    /// The next bytes to send; `None` ends the stream (the process is
    /// shutting down, or the stream's token was revoked).
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.stale {
                self.stale = false;
                self.read().await;
                continue;
            }
            tokio::select! {
                changed = self.ticks.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    self.ticks.borrow_and_update();
                    self.stale = true;
                }
                _ = self.poll.tick() => self.stale = true,
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b": keepalive\n\n")),
                () = self.guard.revoked() => {
                    tracing::info!(customer = %self.requested, "stream ended: its token was revoked");
                    return None;
                }
            }
        }
    }

    /// Reads the changes after the change `after` names and queues their
    /// frames. A failed
    /// read is retried at the next tick or poll.
    async fn read(&mut self) {
        let changes = match self
            .store
            .changes_since(self.requested, self.after, PAGE)
            .await
        {
            Ok(Some((survivor, changes))) => {
                self.survivor = survivor;
                changes
            }
            Ok(None) => {
                tracing::warn!(customer = %self.requested, "streamed customer no longer exists");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, customer = %self.requested, "cannot read changes; retrying at the next poll");
                return;
            }
        };
        let Some(last) = changes.last().map(|change| change.id) else {
            return;
        };
        // A full page: there may be more.
        self.stale = changes.len() >= PAGE;
        // Only the last profile change of a page is sent: each frame
        // carries the whole current profile.
        let last_profile = changes
            .iter()
            .rev()
            .find(|change| change.kind == ChangeKind::Profile)
            .map(|change| change.id);
        for change in &changes {
            if change.kind == ChangeKind::Profile && Some(change.id) != last_profile {
                continue;
            }
            if let Some(data) = self.data(change).await {
                self.pending
                    .push_back(frame(change.id, change.kind.as_str(), &data));
            }
        }
        self.after = last;
    }

    /// The JSON of one frame; `None` when there is nothing to send.
    async fn data(&self, change: &CustomerChange) -> Option<serde_json::Value> {
        let mut data = json!({
            "customer_id": self.survivor,
            "requested_id": self.requested,
            "at": change.at,
        });
        match &change.kind {
            ChangeKind::Timeline => {
                data["entry"] = serde_json::to_value(change.entry.as_ref()?).ok()?;
            }
            ChangeKind::Profile => match self.store.profile(self.requested).await {
                Ok(Some(profile)) => data["profile"] = serde_json::to_value(profile).ok()?,
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the profile for a stream");
                    data["profile"] = serde_json::Value::Null;
                }
            },
            ChangeKind::Case | ChangeKind::Other(_) => {
                data["event_id"] = json!(change.event_id);
                data["subject_id"] = json!(change.subject_id);
            }
        }
        Some(data)
    }
}

/// One SSE frame. JSON text holds no raw newline, so `data` is one line.
fn frame(id: i64, event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_one_event_each() {
        let text = frame(7, "timeline", &json!({"a": "line\nbreak"}));
        assert_eq!(
            std::str::from_utf8(&text).expect("utf-8"),
            "id: 7\nevent: timeline\ndata: {\"a\":\"line\\nbreak\"}\n\n"
        );
    }

    /// The document describes each event the stream sends as a client
    /// reads it: an object of the frame's fields, whose `data` is a
    /// `StreamData`. (A whole-stream `string` broke the document for every
    /// event, for clients that read a stream's schema per event.)
    #[test]
    fn the_document_describes_each_frame_the_stream_sends() {
        let document = serde_json::to_value(crate::openapi::document()).expect("serialises");
        let resolve = |schema: &serde_json::Value| -> serde_json::Value {
            match schema["$ref"].as_str() {
                Some(target) => document
                    .pointer(target.trim_start_matches('#'))
                    .cloned()
                    .expect("the reference resolves"),
                None => schema.clone(),
            }
        };
        let answer = &document["paths"]["/v1/stream"]["get"]["responses"]["200"]["content"];
        let event_schema = resolve(&answer["text/event-stream"]["schema"]);
        assert_eq!(event_schema["type"], "object", "{event_schema}");
        let data = json!({
            "customer_id": Uuid::nil(),
            "requested_id": Uuid::nil(),
            "at": "2026-01-01T00:00:00Z",
            "subject_id": Uuid::nil(),
            "event_id": null,
        });
        let sent = frame(42, "case", &data);
        let mut event = serde_json::Map::new();
        for line in std::str::from_utf8(&sent).expect("utf-8").lines() {
            if let Some((field, value)) = line.split_once(": ") {
                event.insert(field.to_owned(), json!(value));
            }
        }
        for required in event_schema["required"].as_array().expect("required") {
            let required = required.as_str().expect("a name");
            assert!(event.contains_key(required), "the frame has no {required}");
        }
        for (field, value) in &event {
            let property = &event_schema["properties"][field];
            assert_eq!(property["type"], "string", "{field}");
            let pattern = property["pattern"].as_str().unwrap_or_default();
            if pattern == "^[0-9]+$" {
                let text = value.as_str().unwrap_or_default();
                assert!(text.bytes().all(|b| b.is_ascii_digit()), "{field}: {text}");
            }
        }
        let data_schema = &event_schema["properties"]["data"];
        assert_eq!(data_schema["contentMediaType"], "application/json");
        let content = resolve(&data_schema["contentSchema"]);
        let sent_data: serde_json::Value =
            serde_json::from_str(event["data"].as_str().expect("data")).expect("JSON data");
        let properties = content["properties"].as_object().expect("properties");
        for key in sent_data.as_object().expect("an object").keys() {
            assert!(properties.contains_key(key), "undocumented {key}");
        }
        for required in content["required"].as_array().expect("required") {
            let required = required.as_str().expect("a name");
            assert!(sent_data.get(required).is_some(), "data without {required}");
        }
    }

    #[test]
    fn resume_prefers_last_event_id_and_refuses_garbage() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let plain = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(resume_point(&plain, &query(&[])).ok(), Some(None));
        assert_eq!(
            resume_point(&plain, &query(&[("after", "12")])).ok(),
            Some(Some(12))
        );
        let with_header = actix_web::test::TestRequest::default()
            .insert_header(("Last-Event-ID", "40"))
            .to_http_request();
        assert_eq!(
            resume_point(&with_header, &query(&[("after", "12")])).ok(),
            Some(Some(40))
        );
        assert!(resume_point(&plain, &query(&[("after", "-1")])).is_err());
        let garbage = actix_web::test::TestRequest::default()
            .insert_header(("Last-Event-ID", "abc"))
            .to_http_request();
        assert!(resume_point(&garbage, &query(&[])).is_err());
    }
}
