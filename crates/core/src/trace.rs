//! W3C trace context (`traceparent`): what the gateway carries on each event
//! through Kafka so the projector's work on it joins the same trace.

use std::fmt;
use std::sync::OnceLock;

use uuid::Uuid;

/// Makes a span a child of a remote span (set by a trace exporter).
pub type SpanLinker = fn(&tracing::Span, &TraceContext);

static LINKER: OnceLock<SpanLinker> = OnceLock::new();

/// Installs how spans join remote traces, once per process (the OTLP
/// exporter does this); without it, spans carry the ids as fields only.
pub fn set_span_linker(linker: SpanLinker) {
    let _ = LINKER.set(linker);
}

/// Makes `span` a child of the remote span `context` names, when an
/// exporter installed a linker; a no-op otherwise.
pub fn link_span(span: &tracing::Span, context: &TraceContext) {
    if let Some(linker) = LINKER.get() {
        linker(span, context);
    }
}

/// A parsed `traceparent`: version 00, trace id, parent span id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Parses a `traceparent` header value; `None` for anything that is not
    /// a valid version-00 value (an invalid header starts a new trace, as the
    /// W3C specification asks).
    pub fn parse(raw: &str) -> Option<TraceContext> {
        let mut parts = raw.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let span_id: [u8; 8] = decode_hex(span)?;
        let [flags] = decode_hex::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace, not sampled: the caller did not ask for tracing.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: *Uuid::new_v4().as_bytes(),
            span_id: new_span_id(),
            flags: 0,
        }
    }

    /// The context for a child span of this one: same trace and flags, a new
    /// span id.
    #[must_use]
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        encode_hex(&self.trace_id)
    }

    /// The span id, 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        encode_hex(&self.span_id)
    }

    /// Whether the caller asked for this trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }
}

fn new_span_id() -> [u8; 8] {
    let bytes = Uuid::new_v4().into_bytes();
    let mut span = [0u8; 8];
    span.copy_from_slice(&bytes[8..]);
    if span == [0; 8] {
        span[7] = 1;
    }
    span
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (index, pair) in text.as_bytes().chunks(2).enumerate() {
        let high = hex_digit(pair[0])?;
        let low = hex_digit(pair[1])?;
        out[index] = (high << 4) | low;
    }
    Some(out)
}

/// Lowercase hex only, as the specification requires.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_and_children_keep_the_trace() {
        let context = TraceContext::parse(SAMPLE).expect("valid");
        assert_eq!(context.to_string(), SAMPLE);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(context.sampled());
        let child = context.child();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_ne!(child.span_id(), context.span_id());
        assert!(TraceContext::parse(&child.to_string()).is_some());
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn new_roots_are_valid_and_unsampled() {
        let root = TraceContext::new_root();
        assert!(!root.sampled());
        assert_eq!(TraceContext::parse(&root.to_string()), Some(root));
    }
}
