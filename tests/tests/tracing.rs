//! One event followed end to end: the trace id sent with the ingest request
//! is on the gateway's request span, and the projector's span for that
//! event is a child of it (through the record's `traceparent` header).
//!
//! The spans are captured by a process-wide subscriber, so this file holds
//! one test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use panorama_e2e::contact;
use panorama_testkit::{TestApp, WAIT, eventually};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::{Layer, Registry};

type Fields = HashMap<String, String>;

/// Every `http_request` and `project_event` span, with its fields as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, String, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != "http_request" && name != "project_event" {
            return;
        }
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Ok(mut spans) = self.0.lock() {
            spans.push((id.into_u64(), name.to_owned(), fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Ok(mut spans) = self.0.lock() {
            if let Some((_, _, fields)) = spans
                .iter_mut()
                .rev()
                .find(|(span, _, _)| *span == id.into_u64())
            {
                values.record(&mut Visitor(fields));
            }
        }
    }
}

impl Capture {
    fn find(&self, name: &str, key: &str, value: &str) -> Option<Fields> {
        let spans = self.0.lock().ok()?;
        spans
            .iter()
            .find(|(_, span, fields)| {
                span == name && fields.get(key).map(String::as_str) == Some(value)
            })
            .map(|(_, _, fields)| fields.clone())
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_id_on_ingest_reaches_the_projector_span() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(Registry::default().with(capture.clone()))
        .expect("first subscriber of this process");
    let app = TestApp::spawn().await;

    let response = app
        .http
        .post(format!("{}/v1/events", app.base_url))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("x-request-id", "req-trace-1")
        .json(&contact(1, "traced-1", panorama_e2e::at_minute(1), "phone"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 202);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-trace-1")
    );
    let body: serde_json::Value = response.json().await.expect("json");
    let event_id = body["accepted"][0].as_str().expect("event id").to_owned();

    // Untraced and wrongly traced requests are accepted too, and get a
    // request id of their own.
    let untraced = app
        .http
        .post(format!("{}/v1/events", app.base_url))
        .header("traceparent", "not-a-trace")
        .json(&contact(
            2,
            "untraced-1",
            panorama_e2e::at_minute(2),
            "phone",
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(untraced.status(), 202);
    assert!(untraced.headers().contains_key("x-request-id"));
    let untraced_body: serde_json::Value = untraced.json().await.expect("json");
    let untraced_id = untraced_body["accepted"][0]
        .as_str()
        .expect("id")
        .to_owned();

    app.wait_for_events(2).await;
    let projected = eventually(
        "the projector's span for the traced event",
        WAIT,
        || async { capture.find("project_event", "event_id", &event_id) },
    )
    .await;
    assert_eq!(projected["trace_id"], TRACE_ID);
    let gateway = capture
        .find("http_request", "request_id", "req-trace-1")
        .expect("the gateway's request span");
    assert_eq!(gateway["trace_id"], TRACE_ID);
    assert_eq!(gateway["parent_span_id"], CALLER_SPAN);
    assert_eq!(gateway["route"], "/v1/events");
    // The projector's span hangs under the gateway's, not the caller's.
    assert_eq!(projected["parent_span_id"], gateway["span_id"]);
    assert_ne!(projected["span_id"], gateway["span_id"]);
    assert!(projected.contains_key("customer_id"));
    assert!(
        capture
            .find("project_event", "event_id", &untraced_id)
            .is_none(),
        "events of unsampled traces get no per-event span"
    );
    app.stop().await;
}
