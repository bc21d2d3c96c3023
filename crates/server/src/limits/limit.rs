//! The names of the limits: what a refusal's problem and the metric's label
//! say. A leaf, so the error type and the metrics can name a limit without
//! depending on how limits are counted.

/// Which limit refused a request. Its name is its setting's key under
/// `[limits]`, what a problem's `limit` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Requests per second of a token.
    TokenRate,
    /// Requests in progress of a token.
    TokenConcurrency,
    /// Requests per second of a write key.
    WriteKeyRate,
    /// Requests in progress of a write key.
    WriteKeyConcurrency,
    /// Failed token checks of a client address.
    FailedAuth,
    /// Ingest body bytes held by the process.
    IngestBytes,
    /// Live-update streams of a token.
    StreamsPerToken,
    /// Live-update streams of the process.
    Streams,
}

impl Limit {
    /// Every limit, for the metric's label values.
    pub(crate) const ALL: [Limit; 8] = [
        Limit::TokenRate,
        Limit::TokenConcurrency,
        Limit::WriteKeyRate,
        Limit::WriteKeyConcurrency,
        Limit::FailedAuth,
        Limit::IngestBytes,
        Limit::StreamsPerToken,
        Limit::Streams,
    ];

    /// The setting's key under `[limits]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::TokenRate => "token_rate",
            Limit::TokenConcurrency => "token_concurrency",
            Limit::WriteKeyRate => "write_key_rate",
            Limit::WriteKeyConcurrency => "write_key_concurrency",
            Limit::FailedAuth => "failed_auth_per_minute",
            Limit::IngestBytes => "ingest_inflight_bytes",
            Limit::StreamsPerToken => "streams_per_token",
            Limit::Streams => "streams",
        }
    }

    /// What the refusal tells the client.
    pub(crate) fn refusal(self) -> &'static str {
        match self {
            Limit::TokenRate => "this token sent more requests per second than it may",
            Limit::TokenConcurrency => "this token has as many requests in progress as it may",
            Limit::WriteKeyRate => "this write key sent more requests per second than it may",
            Limit::WriteKeyConcurrency => {
                "this write key has as many requests in progress as it may"
            }
            Limit::FailedAuth => {
                "too many failed token checks from this address; tokens this server has not \
                 seen lately are not checked for it until then"
            }
            Limit::IngestBytes => {
                "this server holds as many bytes of ingest requests as it may; nothing was accepted"
            }
            Limit::StreamsPerToken => {
                "this token has as many live-update streams open as it may; close one"
            }
            Limit::Streams => "this server has as many live-update streams open as it may",
        }
    }
}
