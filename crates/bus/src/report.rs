//! Why a client cannot reach the brokers. librdkafka retries a failed TLS
//! handshake or SASL login in the background and reports it only to the
//! client's error callback, while the operation that waited on it just
//! times out; [`Reporting`] keeps the last such reason so the timeout can
//! say it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::Error;

/// How long a reported reason explains a later failure: longer than any
/// operation waits, short enough not to blame an old, fixed problem.
const RECENT: Duration = Duration::from_secs(60);

/// The last connection failure a client reported.
#[derive(Debug, Default)]
pub(crate) struct ConnectionReport {
    last: Mutex<Option<(Instant, String)>>,
}

impl ConnectionReport {
    /// Keeps (and logs) `error` when it says why the client cannot connect:
    /// TLS, SASL, or a protocol mismatch.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let connection = matches!(
            code,
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
        ) || reason.contains("security.protocol");
        if !connection {
            tracing::warn!(%error, reason, "kafka client error");
            return;
        }
        tracing::warn!(%error, reason, "cannot connect to the broker");
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), reason.to_owned()));
        }
    }

    /// `error`, or the connection failure behind it when a timeout or an
    /// unreachable broker follows one the client recently reported.
    pub(crate) fn explain(&self, error: Error) -> Error {
        let waited = match &error {
            Error::Timeout(_) => true,
            Error::Kafka(kafka) => matches!(
                kafka.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::OperationTimedOut
                        | RDKafkaErrorCode::MessageTimedOut
                        | RDKafkaErrorCode::RequestTimedOut
                        | RDKafkaErrorCode::AllBrokersDown
                        | RDKafkaErrorCode::BrokerTransportFailure
                        | RDKafkaErrorCode::Authentication
                        | RDKafkaErrorCode::SSL
                )
            ),
            _ => false,
        };
        if !waited {
            return error;
        }
        match self.recent() {
            Some(reason) => Error::Connect(reason),
            None => error,
        }
    }

    fn recent(&self) -> Option<String> {
        let last = self.last.lock().ok()?;
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < RECENT)
            .map(|(_, reason)| reason.clone())
    }
}

/// The context of the producer and the admin and metadata clients: it
/// keeps their connection failures (shared, since a producer's context is
/// out of reach once the producer is built).
#[derive(Debug, Default)]
pub(crate) struct Reporting {
    pub(crate) report: Arc<ConnectionReport>,
}

impl ClientContext for Reporting {
    fn error(&self, error: KafkaError, reason: &str) {
        self.report.record(&error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if is_expected_warning(facility, message) {
            tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
        }
    }
}

/// Whether a client log line is a warning Panorama asked for: the change
/// feed's producer sets `enable.gapless.guarantee` on purpose
/// (`ordered.rs`), and librdkafka warns on every start that the property
/// is experimental. Kept at debug level; every other line keeps its level.
fn is_expected_warning(facility: &str, message: &str) -> bool {
    facility == "CONFWARN"
        // librdkafka puts the thread first: "[thrd:app]: Configuration ...".
        && message.contains("Configuration property enable.gapless.guarantee is experimental")
}

/// For the metadata client, which produces nothing.
impl ProducerContext for Reporting {
    type DeliveryOpaque = ();

    fn delivery(&self, _result: &DeliveryResult<'_>, _opaque: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gapless_guarantee_warning_is_expected() {
        assert!(is_expected_warning(
            "CONFWARN",
            "[thrd:app]: Configuration property enable.gapless.guarantee is experimental: When \
             set to `true`, any error that could result in a gap in the produced message series ..."
        ));
        assert!(!is_expected_warning(
            "CONFWARN",
            "Configuration property queue.buffering.backpressure.threshold is deprecated: ..."
        ));
        assert!(!is_expected_warning(
            "FAIL",
            "Configuration property enable.gapless.guarantee is experimental"
        ));
    }
}
