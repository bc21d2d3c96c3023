//! The HTTP side's Prometheus metrics, and the `/metrics` endpoint.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    TextEncoder, exponential_buckets, histogram_opts, opts, register_histogram,
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec,
};

use crate::AppState;

/// Events ingested, by channel, source and outcome.
pub(crate) static INGESTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "panorama_ingest_events_total",
            "Events ingested, by channel, source and outcome"
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

/// Bearer-token checks, by outcome: `accepted` (from the database),
/// `cached`, `invalid`, `forbidden` (valid token, wrong role).
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

/// Open live-update streams (`GET /v1/stream`).
pub(crate) static SSE_CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "panorama_sse_connections",
        "Open live-update streams (GET /v1/stream)"
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
            "PostgreSQL pool connections by state (max, open, idle, waiting)"
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

/// Times every request under its route template (never the raw path, so
/// customer ids do not become label values).
pub(crate) async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let response = next.call(request).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = format!("{}xx", response.status().as_u16() / 100);
    HTTP_SECONDS
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
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
    if let Some(store) = state.store.as_ref().or(state.access.as_ref()) {
        let pool = store.pool_status();
        for (name, value) in [
            ("max", pool.max_size),
            ("open", pool.size),
            ("idle", pool.available),
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
