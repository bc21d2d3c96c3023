//! OTLP trace export (cargo feature `otlp`): spans go over OTLP/HTTP to
//! `PANORAMA_OTLP_ENDPOINT`, and the spans Panorama opens for a traced
//! request or event join the caller's trace.

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use panorama_core::TraceContext;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::Registry;

/// The exporter's provider, to flush on exit.
pub(crate) struct Exporter(SdkTracerProvider);

impl Exporter {
    /// Sends what is still buffered.
    pub(crate) fn shutdown(self) {
        if let Err(error) = self.0.shutdown() {
            eprintln!("otlp: shutdown failed: {error}");
        }
    }
}

/// The tracing layer that exports to `endpoint` (`http://host:4318`).
pub(crate) fn layer(
    endpoint: &str,
) -> anyhow::Result<(OpenTelemetryLayer<Registry, SdkTracer>, Exporter)> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .context("cannot build the OTLP exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("panorama")
                .build(),
        )
        .build();
    let tracer = provider.tracer("panorama");
    panorama_core::set_span_linker(link);
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Exporter(provider),
    ))
}

/// Makes `span` a child of the remote span in `context`.
fn link(span: &tracing::Span, context: &TraceContext) {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&context.trace_id()),
        SpanId::from_hex(&context.span_id()),
    ) else {
        return;
    };
    let flags = if context.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}
