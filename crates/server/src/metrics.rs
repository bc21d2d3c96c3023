//! The HTTP side's Prometheus metrics, and the `/metrics` endpoint.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, TextEncoder, exponential_buckets, histogram_opts, opts, register_gauge,
    register_gauge_vec, register_histogram, register_histogram_vec, register_int_counter,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
};

use crate::AppState;

/// The `source` of events taken by `POST /v1/events` in
/// `panorama_ingest_events_total`: the event's own `source` is free text
/// and never a label value.
pub(crate) const SOURCE_EVENTS: &str = "events";

/// The `source` of agent actions in `panorama_ingest_events_total`.
pub(crate) const SOURCE_AGENT: &str = "agent";

/// Events ingested, by channel, source (the route that took them: an
/// adapter's source, [`SOURCE_EVENTS`] or [`SOURCE_AGENT`]) and outcome.
pub(crate) static INGESTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_events_total",
            "Events ingested, by channel, source (the adapter, events or agent) and outcome"
        ),
        &["channel", "source", "outcome"]
    )
    .expect("metric registers once")
});

/// Webhook payloads accepted with 200 but not mapped, by source and reason.
pub(crate) static IGNORED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_ignored_total",
            "Webhook payloads acknowledged but not mapped to events, by source and reason"
        ),
        &["source", "reason"]
    )
    .expect("metric registers once")
});

/// Requests refused before publishing, by reason.
pub(crate) static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_rejected_total",
            "Ingest requests refused, by reason"
        ),
        &["reason"]
    )
    .expect("metric registers once")
});

/// Identifier values a webhook gave that do not parse (kept on the event as
/// `unparsed.<kind>` attributes), by source and identifier kind.
pub(crate) static UNPARSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_unparsed_identifiers_total",
            "Identifier values in webhooks that do not parse, kept as unparsed.<kind> attributes, by source and kind"
        ),
        &["source", "kind"]
    )
    .expect("metric registers once")
});

/// Items of a provider batch refused on their own (the rest published),
/// by source.
pub(crate) static REFUSED_ITEMS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_refused_items_total",
            "Items of a webhook batch refused for breaking the event contract while the others were published, by source"
        ),
        &["source"]
    )
    .expect("metric registers once")
});

/// Bearer-token checks, by outcome: `accepted` (from the database),
/// `cached`, `invalid`, `forbidden` (valid token, wrong role), `stale`
/// (seen lately, accepted while the database is unreachable), `throttled`
/// (not checked: the address failed too often), `unavailable`.
pub(crate) static AUTH: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_http_auth_total",
            "Bearer-token checks, by outcome"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// The outcomes of [`AUTH`].
const AUTH_OUTCOMES: [&str; 7] = [
    "accepted",
    "cached",
    "invalid",
    "forbidden",
    "stale",
    "throttled",
    "unavailable",
];

/// Bearer-token checks that went to the database.
pub(crate) static AUTH_LOOKUPS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_http_auth_lookups_total",
        "Bearer-token checks that went to the database (not answered from the token cache)"
    ))
    .expect("metric registers once")
});

/// Requests refused by a limit, by limit (its setting's key).
pub(crate) static LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_http_limited_total",
            "Requests refused by a limit (429 or 503), by limit"
        ),
        &["limit"]
    )
    .expect("metric registers once")
});

/// Bytes of ingest request bodies this process holds.
pub(crate) static INGEST_INFLIGHT_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_http_ingest_inflight_bytes",
        "Bytes of ingest request bodies this process holds now"
    ))
    .expect("metric registers once")
});

/// Audit entries lost: queue full, or the database refused them.
pub(crate) static AUDIT_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_audit_dropped_total",
        "Audit entries dropped because the queue was full or the database refused them"
    ))
    .expect("metric registers once")
});

/// Time for the broker to acknowledge one request's records.
pub(crate) static PUBLISH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_broker_produce_seconds",
        "Time for the broker to acknowledge every record of one ingest request",
        exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// Publishes that failed (timeout or broker error).
pub(crate) static PUBLISH_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_broker_produce_failures_total",
        "Ingest requests whose records the broker did not acknowledge"
    ))
    .expect("metric registers once")
});

/// Events per accepted `POST /v1/events` request.
pub(crate) static INGEST_BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "panorama_ingest_batch_size",
        "Events per POST /v1/events request that passed validation",
        exponential_buckets(1.0, 2.0, 11).expect("valid buckets")
    ))
    .expect("metric registers once")
});

/// Records the producer holds that the broker has not acknowledged yet.
static PRODUCER_QUEUE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_broker_producer_queue_depth",
        "Records in the gateway's producer queue not yet acknowledged by the broker"
    ))
    .expect("metric registers once")
});

/// Open server-sent-event streams (`GET /v1/stream`).
pub(crate) static SSE_CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_api_sse_connections",
        "Server-sent-event streams open to agent desktops"
    ))
    .expect("metric registers once")
});

/// Counts one open server-sent-event stream for as long as it lives: hold
/// one in the stream, and the gauge drops when the stream is dropped.
#[derive(Debug)]
pub struct SseConnection(());

impl SseConnection {
    /// Counts a stream that just opened.
    pub fn open() -> SseConnection {
        SSE_CONNECTIONS.inc();
        SseConnection(())
    }
}

impl Drop for SseConnection {
    fn drop(&mut self) {
        SSE_CONNECTIONS.dec();
    }
}

/// Erasure requests the API published to the topic (the projector applies
/// them: `panorama_projector_erasures_total`).
pub(crate) static ERASURE_REQUESTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_privacy_erasure_requests_total",
        "Erasure requests published to the contact-event topic by this process"
    ))
    .expect("metric registers once")
});

/// Suppressions of erased identifiers lifted by an admin.
pub(crate) static SUPPRESSIONS_LIFTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "panorama_privacy_suppressions_lifted_total",
        "Suppressions of erased identifiers lifted through DELETE /v1/suppressions"
    ))
    .expect("metric registers once")
});

/// 1 when every readiness check passed at the last look, else 0.
pub(crate) static READY: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_ready",
        "1 when every readiness check of this process passed at the last look, else 0"
    ))
    .expect("metric registers once")
});

/// Each readiness check: 1 passing, 0 failing.
pub(crate) static READINESS_CHECK: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_readiness_check",
            "Readiness checks of this process, by check (postgres, kafka, projector): 1 passing, 0 failing"
        ),
        &["check"]
    )
    .expect("metric registers once")
});

/// Contacts per channel over the insights window.
pub(crate) static INSIGHTS_CONTACTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_insights_contacts",
            "Customer contacts received in the insights window, by channel"
        ),
        &["channel"]
    )
    .expect("metric registers once")
});

/// Share of contacting customers who contacted more than once.
pub(crate) static INSIGHTS_REPEAT_RATE: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(opts!(
        "panorama_insights_repeat_contact_rate",
        "Share (0 to 1) of the cases opened in the insights window with two or more contacts"
    ))
    .expect("metric registers once")
});

/// Survey scores over the insights window: NPS (-100 to 100), CSAT (% of
/// 4 and 5), CES (mean, 1 to 7).
pub(crate) static INSIGHTS_SCORE: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        opts!(
            "panorama_insights_feedback_score",
            "Survey score in the insights window, by metric: nps (-100..100), csat (% satisfied), ces (mean effort 1..7); NaN without answers"
        ),
        &["metric"]
    )
    .expect("metric registers once")
});

/// Survey answers over the insights window.
pub(crate) static INSIGHTS_RESPONSES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_insights_feedback_responses",
            "Survey answers received in the insights window, by metric"
        ),
        &["metric"]
    )
    .expect("metric registers once")
});

/// When the insights gauges were last computed (Unix seconds).
pub(crate) static INSIGHTS_REFRESHED: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(opts!(
        "panorama_insights_refreshed_timestamp_seconds",
        "When the insights gauges were last computed, as Unix time"
    ))
    .expect("metric registers once")
});

/// HTTP latency by route template, method and status class.
static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        histogram_opts!(
            "panorama_http_request_duration_seconds",
            "HTTP request latency by route template, method and status class",
            exponential_buckets(0.0001, 2.0, 18).expect("valid buckets")
        ),
        &["route", "method", "status"]
    )
    .expect("metric registers once")
});

/// Connection pool figures.
static DB_POOL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "panorama_db_pool_connections",
            "PostgreSQL pool connections by state (max, open, idle, in_use, waiting)"
        ),
        &["state"]
    )
    .expect("metric registers once")
});

static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!("panorama_build_info", "Panorama version; always 1"),
        &["version"]
    )
    .expect("metric registers once")
});

/// Registers every metric of the HTTP side, with fixed label values at
/// zero, so a scrape shows each series before its first use.
pub fn register() {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    for outcome in AUTH_OUTCOMES {
        AUTH.with_label_values(&[outcome]).inc_by(0);
    }
    AUTH_LOOKUPS.inc_by(0);
    for limit in crate::limits::limit::Limit::ALL {
        LIMITED.with_label_values(&[limit.as_str()]).inc_by(0);
    }
    INGEST_INFLIGHT_BYTES.add(0);
    for reason in ["validation", "unauthorized", "forbidden", "malformed"] {
        REJECTED.with_label_values(&[reason]).inc_by(0);
    }
    LazyLock::force(&INGESTED);
    LazyLock::force(&IGNORED);
    LazyLock::force(&UNPARSED);
    for source in [
        panorama_channels::meta::SOURCE_WHATSAPP,
        panorama_channels::meta::SOURCE_MESSENGER,
        panorama_channels::meta::SOURCE_INSTAGRAM,
    ] {
        REFUSED_ITEMS.with_label_values(&[source]).inc_by(0);
    }
    LazyLock::force(&PUBLISH_SECONDS);
    PUBLISH_FAILURES.inc_by(0);
    LazyLock::force(&INGEST_BATCH_SIZE);
    PRODUCER_QUEUE.set(0);
    SSE_CONNECTIONS.add(0);
    LazyLock::force(&HTTP_SECONDS);
    for state in ["max", "open", "idle", "in_use", "waiting"] {
        DB_POOL.with_label_values(&[state]).set(0);
    }
    LazyLock::force(&READY);
    LazyLock::force(&READINESS_CHECK);
    LazyLock::force(&INSIGHTS_CONTACTS);
    LazyLock::force(&INSIGHTS_REPEAT_RATE);
    LazyLock::force(&INSIGHTS_SCORE);
    LazyLock::force(&INSIGHTS_RESPONSES);
    LazyLock::force(&INSIGHTS_REFRESHED);
    ERASURE_REQUESTS.inc_by(0);
    SUPPRESSIONS_LIFTED.inc_by(0);
}

/// The methods that are label values as they are; any other token a client
/// sends is `other`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// A request method as a label value: one of [`METHODS`] or `other`.
fn method_label(method: &Method) -> &'static str {
    METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Times every request under its route template (never the raw path, so
/// customer ids do not become label values) and its method (never a token
/// a client made up).
pub(crate) async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = method_label(request.method());
    let response = next.call(request).await?;
    let route = crate::endpoints::template_of(response.request()).unwrap_or("unmatched");
    let status = format!("{}xx", response.status().as_u16() / 100);
    HTTP_SECONDS
        .with_label_values(&[route, method, status.as_str()])
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// `GET /metrics` in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "No token needed. Every metric is named `panorama_*`, with low-cardinality labels.",
    responses(
        (status = 200, description = "The Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "The metrics could not be encoded (no body)"),
    ),
)]
pub(crate) async fn render(state: actix_web::web::Data<AppState>) -> HttpResponse {
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    if let Some(producer) = &state.producer {
        PRODUCER_QUEUE.set(i64::from(producer.queue_depth()));
    }
    if let Some(store) = state.store.as_ref().or(state.access.as_ref()) {
        let pool = store.pool_status();
        for (name, value) in [
            ("max", pool.max_size),
            ("open", pool.size),
            ("idle", pool.available),
            ("in_use", pool.size.saturating_sub(pool.available)),
            ("waiting", pool.waiting),
        ] {
            DB_POOL
                .with_label_values(&[name])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
    let mut buffer = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&prometheus::gather(), &mut buffer) {
        tracing::error!(%error, "cannot encode metrics");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_the_known_ones_or_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(made_up.as_bytes()).expect("a token");
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
