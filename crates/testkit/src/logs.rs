//! The application's log as text, for tests that check what it says (and
//! what it must never say, such as a customer's phone number).
//!
//! [`capture_logs`] installs the process-wide `tracing` subscriber, so it
//! must run before the first [`crate::TestApp::spawn`] of the test binary
//! (which would otherwise install its own), and a binary that uses it holds
//! nothing else that needs another subscriber: one test file, one test.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Everything the process logged at info level and above since
/// [`capture_logs`]: each event with the fields of the spans it is in, and a
/// line for each span when it opens and when it closes, with every field it
/// recorded. That is what a deployment with `PANORAMA_LOG=info` writes, and
/// what it exports as spans.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLogs {
    /// The log so far.
    pub fn text(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Each of `needles` that the log holds, with the first line holding it.
    pub fn find<'a>(&self, needles: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
        let text = self.text();
        needles
            .into_iter()
            .filter_map(|needle| {
                let line = text.lines().find(|line| line.contains(needle))?;
                Some((needle.to_owned(), line.to_owned()))
            })
            .collect()
    }
}

/// Appends what the subscriber writes to the shared buffer.
struct Appender(Arc<Mutex<Vec<u8>>>);

impl Write for Appender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing the process's log at info level (also what libraries
/// log through the `log` crate) and returns the capture; later calls return
/// the same one. Panics when another subscriber is installed already: call
/// it first thing in the test, before [`crate::TestApp::spawn`].
pub fn capture_logs() -> CapturedLogs {
    static CAPTURE: OnceLock<CapturedLogs> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = CapturedLogs::default();
            let buffer = capture.buffer.clone();
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
                .with_writer(move || Appender(buffer.clone()));
            tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info"))
                .with(layer)
                .try_init()
                .expect("capture_logs runs before any other subscriber is installed");
            capture
        })
        .clone()
}
