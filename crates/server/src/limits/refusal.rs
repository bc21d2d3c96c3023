//! A refused request: counted, and turned into its 429 or 503 answer.

use std::time::Duration;

use crate::error::ApiError;
use crate::limits::counting::retry_after_secs;
use crate::limits::limit::Limit;
use crate::metrics;

/// Left in a request's extensions when a limit refused it: the audit
/// pipeline does not record it (it did nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limited;

/// Counts a request refused by `limit`, and returns the whole seconds its
/// client should wait (`Retry-After`) for `wait`.
pub(crate) fn count_refusal(limit: Limit, wait: Duration) -> u64 {
    metrics::LIMITED.with_label_values(&[limit.as_str()]).inc();
    tracing::debug!(limit = limit.as_str(), "request refused: limit");
    retry_after_secs(wait)
}

/// The refusal of a request over `limit`, counted: 429 for a limit of the
/// caller's, 503 for one of the process's.
pub(crate) fn refused(limit: Limit, wait: Duration) -> ApiError {
    let retry_after = count_refusal(limit, wait);
    match limit {
        Limit::IngestBytes | Limit::Streams => ApiError::ServerBusy { limit, retry_after },
        _ => ApiError::TooManyRequests { limit, retry_after },
    }
}
